"""The run-time settings as a Litestar dependency: a handler declares ``settings: RuntimeSettings``.

Controllers that read them take :func:`dependencies` as theirs (kept out of
:mod:`app.config.runtime`, which the worker imports without Litestar).
"""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

# Litestar reads the provider's annotations at run time: a real import.
from .runtime import RuntimeSettings, settings_of

__all__ = ["dependencies"]


def _settings(state: State) -> RuntimeSettings:
    return settings_of(state)


def dependencies() -> dict[str, Provide]:
    return {"settings": Provide(_settings, sync_to_thread=False)}

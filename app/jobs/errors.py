"""Errors of training jobs and oversight, beneath the application's root (:mod:`app.core.errors`)::

    AppError
    ├── Invalid
    │   └── JobError        a bad spec or request (400)
    ├── Missing
    │   └── JobNotFound     no such run, model or checkpoint (404)
    ├── Conflict
    │   └── Conflict        the request does not fit the current state: over budget, not running,
    │                       not approved (409); ``extensions`` carries the numbers
    └── Forbidden
        └── Forbidden       the principal may not do this (403), e.g. resuming one's own halt
"""

from __future__ import annotations

from typing import Any

from ..core import errors

__all__ = ["Conflict", "Forbidden", "JobError", "JobNotFound"]


class JobError(errors.Invalid):
    """A job spec or request that cannot be accepted."""


class JobNotFound(errors.Missing):
    """No such run, model or checkpoint."""


class Conflict(errors.Conflict):
    """The request contradicts the current state (409); ``extensions`` go into the problem detail."""

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.extensions = extensions


class Forbidden(errors.Forbidden):
    """The acting principal may not do this (403)."""

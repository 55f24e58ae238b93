"""What request handlers declare instead of reaching into ``request.app.state``.

``create_app`` installs :func:`dependencies` on the app; a handler names what it needs::

    @post("/", opt={"scope": "jobs:submit"})
    async def submit(self, db: DbDep, log: LogDep, keyring: KeyringDep, queue: QueueDep,
                     caller: CallerDep, data: Any = Body()) -> ...

The objects themselves are made once, in the app's lifespan (``app/server/core.py``), and live
on ``app.state``; this module is the only reader of those names. ``principal`` is the
authenticated caller the guards (:mod:`app.auth`) put on the request, ``caller`` the same as the
log records it (an Actor: pseudonym and role); a handler behind no guard must not ask for them.
``app_settings`` is the frozen :class:`~app.core.settings.Settings` the app was built with,
``settings`` the run-time layer (:mod:`app.config.runtime`), ``objects`` the object store (None
when none is configured). Code that holds a connection rather than declaring parameters (guards,
portal pages) uses the ``*_of`` helpers.
"""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException

from ledger.log import Log

# Litestar reads the providers' annotations at run time: these are real imports.
from ..accounts.service import Principal
from ..config.runtime import RuntimeSettings, settings_of
from ..events.index import EventIndex
from ..events.recording import Actor
from ..jobs.queue import Queue
from ..objects import ObjectStore
from .database import Database
from .keyring import Keyring
from .settings import Settings

__all__ = ["AppSettingsDep", "CallerDep", "DbDep", "IndexDep", "KeyringDep", "LogDep", "PrincipalDep",
           "QueueDep", "ObjectsDep", "SettingsDep", "actor_of", "app_settings_of", "db_of", "dependencies",
           "json_body", "keyring_of", "log_of", "objects_of", "queue_of"]

Req = Request[Any, Any, Any]

# What a handler writes to be given one (``db: DbDep``): Litestar injects by the parameter's name,
# and the marker says so explicitly (an unmarked name is inferred, deprecated for Litestar 3).
DbDep = NamedDependency[Database]
LogDep = NamedDependency[Log]
KeyringDep = NamedDependency[Keyring]
QueueDep = NamedDependency[Queue]
IndexDep = NamedDependency[EventIndex]
PrincipalDep = NamedDependency[Principal]
CallerDep = NamedDependency[Actor]
SettingsDep = NamedDependency[RuntimeSettings]  # the run-time settings (app.config.runtime)
AppSettingsDep = NamedDependency[Settings]  # the app's settings (app.core.settings), built once
ObjectsDep = NamedDependency[ObjectStore | None]  # bundles, reports, archives; None when unconfigured


def _db(state: State) -> Database:
    db: Database = state.db
    return db


def _app_settings(state: State) -> Settings:
    """The app's settings: ``create_app`` built them once and keeps them on the state."""
    settings: Settings = state.app_settings
    return settings


def _log(state: State) -> Log:
    log: Log = state.log
    return log


def _keyring(state: State) -> Keyring:
    keyring: Keyring | None = getattr(state, "keyring", None)
    if keyring is None:  # an app built without one: the home's, made once
        from ledger.home import LogHome

        keyring = state.keyring = Keyring.of(LogHome.resolve(None), _app_settings(state))
    return keyring


def _queue(state: State) -> Queue:
    queue: Queue | None = getattr(state, "queue", None)
    if queue is None:  # before the jobs lifespan ran (a test app): the configured one, made once
        from ..jobs.queue import queue_from_env

        queue = state.queue = queue_from_env(_app_settings(state))
    return queue


def _event_index(state: State) -> EventIndex:
    index: EventIndex = state.event_index
    return index


def _settings(state: State) -> RuntimeSettings:
    return settings_of(state)


def _objects(state: State) -> ObjectStore | None:
    objects: ObjectStore | None = getattr(state, "objects", None)
    return objects


def _principal(request: Req) -> Principal:
    principal: Principal = request.state.principal
    return principal


def keyring_of(request: Req) -> Keyring:
    """The app's keyring, for code that holds a request rather than declaring a dependency."""
    return _keyring(request.app.state)


def db_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Database:
    """The app's database, for code that holds a connection (guards, portal pages)."""
    return _db(connection.app.state)


def app_settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    """The app's settings, for code that holds a connection (portal pages, middleware)."""
    return _app_settings(connection.app.state)


def log_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Log:
    return _log(connection.app.state)


def objects_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ObjectStore | None:
    return _objects(connection.app.state)


def queue_of(request: Req) -> Queue:
    return _queue(request.app.state)


def actor_of(request: Req) -> Actor:
    """The authenticated caller as the log records them: pseudonym and role."""
    principal = request.state.principal
    return Actor.of_account(keyring_of(request).pseudonymizer, principal.account, principal.role)


async def json_body(request: Req) -> Any:
    """The body as JSON, or a 400 saying why not."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as e:
        raise ClientException(f"the body is not JSON: {e}") from None


def dependencies() -> dict[str, Provide]:
    """The app-wide dependencies, by the parameter name a handler gives them."""
    return {
        "db": Provide(_db, sync_to_thread=False),
        "log": Provide(_log, sync_to_thread=False),
        "keyring": Provide(_keyring, sync_to_thread=False),
        "queue": Provide(_queue, sync_to_thread=False),
        "event_index": Provide(_event_index, sync_to_thread=False),
        "principal": Provide(_principal, sync_to_thread=False),
        "caller": Provide(actor_of, sync_to_thread=False),
        "settings": Provide(_settings, sync_to_thread=False),
        "app_settings": Provide(_app_settings, sync_to_thread=False),
        "objects": Provide(_objects, sync_to_thread=False),
    }

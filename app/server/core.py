"""``create_app``: the one place the server is assembled.

The app owns one :class:`ledger.Log` for its lifetime: opened on startup (creating and
migrating the home if needed, so ``rlhf-audit serve`` works on a bare machine), with the
background integrator running so appends from any process get checkpointed and timestamped,
and closed on shutdown. A log handed in (tests, embedding) stays the caller's: the app only
starts and stops its integrator.

Operations endpoints (``/healthz``, ``/readyz``, ``/metrics``) and the request-id, access-log
and metrics middleware come from ``app.server.observability`` and ``app.server.metrics``; logging itself is
configured by ``rlhf-audit serve``, not here (it is process-wide state).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar
from litestar.datastructures import State

from ledger.errors import LedgerError
from ledger.home import LogHome, public_keys
from ledger.log import Log
from ledger.timestamping import LocalTSAClient

from .. import auth
from ..admin.api import AccountsController, ConfigController
from ..compliance.api import ComplianceController
from ..compliance.schedule import compliance_lifespan
from ..config.runtime import RuntimeSettings, kept_fresh
from ..config.runtime import load as load_settings
from ..core.database import Database, open_home
from ..core.deps import dependencies
from ..core.errors import AppError, Unavailable
from ..core.json_body import MAX_BODY_BYTES, BodyLimits
from ..core.keyring import Keyring
from ..core.params import UrlTextGuard
from ..core.problems import exception_handlers
from ..core.settings import Settings
from ..datasets.api import DatasetsController
from ..events.index import kept_indexed
from ..evidence.api import BundlesController, evidence_key_pem
from ..incidents.api import IncidentsController
from ..jobs.api import JobsController, jobs_lifespan
from ..keys.kek_rotation import settle_records_kek
from ..log.api import LogController, healthz
from ..log.events_api import EventsController
from ..objects import object_store
from ..oversight.api import ModelsController, OversightController
from ..portal import error_pages, portal_router, static_files, template_config
from .metrics import Metrics, metrics
from .observability import ObservabilityMiddleware, readyz

__all__ = ["create_app"]


async def _open(home: LogHome) -> tuple[Database, Log]:
    if not home.exists():
        home.init()
    return await open_home(home, migrate=True)


def _keys_of(log: Log) -> dict[str, Any]:
    local = next((t.tsa for t in log.tsas if isinstance(t, LocalTSAClient)), None)
    return public_keys(log.origin, log.signer.verifier, local, log.key_history)


def create_app(home: LogHome | None = None, *, db: Database | None = None, log: Log | None = None,
               keyring: Keyring | None = None, settings: Settings | None = None) -> Litestar:
    """The Litestar app over ``db`` and ``log`` (given together, their owner closes them), or over
    the database and log of ``home`` (default: LogHome.resolve()).

    ``keyring`` (off-log keys: pseudonyms, TOTP and CSRF secrets) defaults to the home's;
    ``settings`` (:mod:`app.core.settings`) to those built now, kept on ``app.state.app_settings``."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = log is None
        the_home = home or LogHome.resolve(None)
        if log is None or db is None:
            the_db, the_log = await _open(the_home)
        else:
            the_db, the_log = db, log
        app.state.db = the_db
        app.state.log = the_log
        app.state.public_keys = _keys_of(the_log)
        app.state.keyring = keyring or Keyring.of(the_home, app_settings)
        try:  # an interrupted records-key rotation: finish or undo it (app.keys.kek_rotation)
            await settle_records_kek(the_db, the_log, app.state.keyring)
        except (LedgerError, AppError) as e:  # start anyway: the keyring refuses the records key till settled
            structlog.get_logger("app").warning("records key rotation not settled", error=str(e))
        app.state.public_keys["evidence_key"] = evidence_key_pem(app.state.keyring)  # bundles' signer
        app.state.objects = object_store(the_home, app_settings)  # bundles, reports, dataset archives
        tsa_dir = the_home.tsa_dir if (owned or home is not None) and the_home.exists() else None
        app.state.settings = RuntimeSettings(the_db, the_log, tsa_dir)
        try:
            await load_settings(app.state.settings)  # run-time configuration stored in the database
        except Unavailable as e:  # start anyway: /readyz says why, and the settings reload later
            structlog.get_logger("app").warning("settings not loaded", error=str(e))
        await the_log.start()
        try:
            # the event index, caught up every 0.5 s; the settings, reloaded every 5 s
            async with kept_fresh(app.state.settings), kept_indexed(the_db, the_log) as index:
                app.state.event_index = index
                yield
        finally:
            if owned:
                await the_log.close()
            else:
                await the_log.stop()
            if owned:
                await the_db.close()

    if (db is None) != (log is None):
        raise TypeError("create_app: give both db and log (sharing one engine), or neither")
    observed = Metrics()  # this app's own registry: apps in one process do not share figures
    app_settings = settings or Settings.load(home.path if home is not None else None)
    return Litestar(
        route_handlers=[LogController, EventsController, AccountsController, ConfigController,
                        auth.AuthController, DatasetsController, JobsController,
                        OversightController, ModelsController, ComplianceController, BundlesController,
                        IncidentsController,
                        healthz, readyz, metrics,
                        portal_router(), static_files()],
        lifespan=[lifespan, jobs_lifespan, compliance_lifespan],
        exception_handlers=error_pages(exception_handlers()),
        template_config=template_config(),
        middleware=[ObservabilityMiddleware(observed), UrlTextGuard(), BodyLimits(),
                    *auth.middleware(app_settings)],
        request_max_body_size=MAX_BODY_BYTES,  # BodyLimits answers first, with the same limit
        stores=auth.stores(app_settings),
        dependencies=dependencies(),
        state=State({"metrics": observed, "app_settings": app_settings}),
        logging_config=None,  # Litestar would reconfigure the root logger; `serve` configures logging
    )

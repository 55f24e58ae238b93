"""Request ids, JSON access logs, request metrics and the readiness probe.

:class:`ObservabilityMiddleware` wraps every routed request: it takes the caller's
``X-Request-ID`` when it is a sane token (at most 128 of ``[A-Za-z0-9._-]``) or makes one (uuid4
hex), echoes it in the response, binds it with ``structlog.contextvars`` for everything logged
while the request runs, times the request into the ``rlhf_audit_http_request_duration_seconds``
histogram (labelled by the route template Litestar routed it to, e.g. ``/log/v1/proof/{index}``,
never the raw path) and logs one access line.

Requests no route matches (an unknown path, a wrong method) are answered by Litestar's router
before any middleware runs, so they get neither a request id nor an access line.

:func:`configure_logging` makes structlog and the standard library's loggers write JSON lines to
stderr. It changes process-wide state, so ``create_app`` never calls it: ``rlhf-audit serve``
does. Unconfigured (tests, embedding), structlog keeps its defaults or the embedder's set-up.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import orjson
import structlog
from litestar import Response, get
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import StorageError

from ..core.deps import LogDep
from ..core.problems import classify, problem, request_id
from .metrics import Metrics

__all__ = ["ObservabilityMiddleware", "configure_logging", "readyz", "request_id_from"]

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_access = structlog.get_logger("rlhf_audit.access")
_log = logging.getLogger("app")


def _json(obj: Any, **_: Any) -> str:
    """orjson for the access log: one line per request, so a few µs each matter under load."""
    return orjson.dumps(obj, default=str).decode()


def _stderr_logger(*_: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)  # whatever sys.stderr is now (pytest swaps it)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler on the current ``sys.stderr``, like ``logging.lastResort``."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr: ``timestamp`` (ISO, UTC), ``level``, ``event`` and bound context."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(serializer=_json)],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()  # the ledger's and Litestar's stdlib logging
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer()]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)


def request_id_from(scope: Scope) -> str:
    """The caller's X-Request-ID if it is a sane token, else a fresh uuid4 hex."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def _route_of(scope: Scope) -> str | None:
    template = scope.get("path_template")
    if template:
        return str(template)
    handler = scope.get("route_handler")
    paths = sorted(getattr(handler, "paths", ()) or ())
    return paths[0] if paths else None


class ObservabilityMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        rid = request_id_from(scope)
        status = 500  # what the server answers if the app raises before starting a response
        header = (REQUEST_ID_HEADER.lower().encode(), rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), header]}  # type: ignore[typeddict-item]
            await send(message)

        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                await next_app(scope, receive, send_with_id)
            except Exception as e:  # answered by the app's handlers (a refused CSRF token: 403)
                status = classify(e)[0]
                raise
            finally:
                elapsed = time.perf_counter() - started
                route = _route_of(scope)
                self.metrics.observe(scope["method"], route, status, elapsed)
                (_access.error if status >= 500 else _access.info)(
                    "request", request_id=rid, method=scope["method"], path=scope["path"], route=route,
                    status=status, duration_ms=round(elapsed * 1000, 3))


@get("/readyz", include_in_schema=False)
async def readyz(log: LogDep) -> Response[Any]:
    """Readiness: 200 while the database answers, else a 503 problem detail."""
    try:
        size, _ = await log.tree_head()
    except StorageError as e:  # the driver's words stay in the server log
        _log.warning("not ready (request %s): %s", request_id(), e)
        return problem(503, "the log's database does not answer")
    return Response({"status": "ready", "tree_size": size}, headers={"Cache-Control": "no-store"})

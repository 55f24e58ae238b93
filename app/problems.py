"""Every error the public API answers is an RFC 9457 problem detail (``application/problem+json``).

Auditors script against this API, so a bad request must say what was wrong, in one shape, with a
4xx status: a 5xx would read as "the log is down". The ledger's own errors map by meaning:
``NotFound`` (no such entry, size, tile or hash) is 404; a malformed proof or entry is 400; any
other ``LedgerError`` (storage, configuration) is 503, the log being unable to answer right now.
Litestar's own exceptions (validation of query and path parameters, unknown routes, wrong
methods) keep their status and gain the same shape.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from ledger.errors import EntryError, LedgerError, NotFound, ProofError

__all__ = ["PROBLEM_JSON", "exception_handlers", "problem"]

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("app")


def problem(status: int, detail: str, headers: dict[str, str] | None = None,
            **extensions: Any) -> Response[dict[str, Any]]:
    """A problem detail with ``type`` about:blank, whose title is the status phrase (RFC 9457 4.2.1)."""
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase,
                            "status": status, "detail": detail, **extensions}
    return Response(body, status_code=status, media_type=PROBLEM_JSON,
                    headers={**(headers or {}), "Cache-Control": "no-store"})


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    extra = {"errors": exc.extra} if isinstance(exc.extra, list) and exc.extra else {}
    if exc.status_code >= 500:
        _log.error("server error: %s", exc.detail)
        return problem(exc.status_code, "the server failed to answer")
    # The exception's headers survive (a 401 keeps its WWW-Authenticate challenge).
    return problem(exc.status_code, exc.detail or HTTPStatus(exc.status_code).phrase,
                   headers=dict(exc.headers or {}), **extra)


def _not_found(_: Request[Any, Any, Any], exc: NotFound) -> Response[dict[str, Any]]:
    return problem(404, str(exc))


def _bad_input(_: Request[Any, Any, Any], exc: LedgerError) -> Response[dict[str, Any]]:
    return problem(400, str(exc))


def _unavailable(_: Request[Any, Any, Any], exc: LedgerError) -> Response[dict[str, Any]]:
    _log.warning("log unavailable: %s: %s", type(exc).__name__, exc)
    return problem(503, f"the log cannot answer right now: {exc}")


def _internal(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    _log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal server error")


def exception_handlers() -> ExceptionHandlersMap:
    """The handlers ``create_app`` installs; the most specific class wins (Litestar follows the MRO)."""
    return {
        HTTPException: _http,
        NotFound: _not_found,
        ProofError: _bad_input,
        EntryError: _bad_input,
        LedgerError: _unavailable,
        Exception: _internal,
    }

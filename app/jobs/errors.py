"""Errors of training jobs and oversight, beneath the ledger's root so the CLI and API know them::

    LedgerError
    ├── EntryError
    │   └── JobError        a bad spec or request (400)
    ├── NotFound
    │   └── JobNotFound     no such run, model or checkpoint (404)
    ├── Conflict            the request does not fit the current state: over budget, not running,
    │                       not approved (409); ``extensions`` carries the numbers
    └── Forbidden           the principal may not do this (403), e.g. resuming one's own halt
"""

from __future__ import annotations

from typing import Any

from ledger.errors import EntryError, LedgerError, NotFound

__all__ = ["Conflict", "Forbidden", "JobError", "JobNotFound"]


class JobError(EntryError):
    """A job spec or request that cannot be accepted."""


class JobNotFound(NotFound):
    """No such run, model or checkpoint."""


class Conflict(LedgerError):
    """The request contradicts the current state (409)."""

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.extensions = extensions


class Forbidden(LedgerError):
    """The acting principal may not do this (403)."""

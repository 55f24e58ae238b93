"""Errors raised by the ledger.

Every error the ledger raises derives from :class:`LedgerError`, so callers (the CLI, the
API) can turn any of them into a clear message without a traceback::

    LedgerError
    ├── ConfigError          the home, a key or a setting is missing or unusable
    ├── EntryError           an event cannot go on the log (not a JSON object, too large, not canonical)
    ├── NotFound             an index, size, hash or checkpoint the log does not have
    ├── StorageError         the database failed or holds something impossible
    ├── TimestampError       a TSA could not be reached or answered badly
    └── VerificationError    a proof, note, checkpoint, timestamp or audit does not check out
        ├── ProofError
        ├── NoteError
        └── TimestampVerificationError

Errors from SQLAlchemy, httpx and the crypto libraries are translated into these at the boundary.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EntryError",
    "LedgerError",
    "NotFound",
    "NoteError",
    "ProofError",
    "StorageError",
    "TimestampError",
    "TimestampVerificationError",
    "VerificationError",
]


class LedgerError(Exception):
    """Root of every error the ledger raises."""


class ConfigError(LedgerError):
    """The log's home, a key or a setting is missing or unusable."""


class EntryError(LedgerError):
    """An event cannot be put on the log."""


class NotFound(LedgerError):
    """The log has no such index, tree size, leaf hash or checkpoint."""


class StorageError(LedgerError):
    """The database failed, or holds something the ledger never writes."""


class TimestampError(LedgerError):
    """A time-stamp authority could not be reached or gave an unusable answer."""


class VerificationError(LedgerError):
    """Something does not check out: a proof, a signed note, a timestamp or the self-audit."""


class ProofError(VerificationError):
    """An inclusion or consistency proof is malformed or does not match the roots."""


class NoteError(VerificationError):
    """A signed note or key string is malformed, or a signature does not verify."""


class TimestampVerificationError(VerificationError):
    """An RFC 3161 timestamp response does not verify."""

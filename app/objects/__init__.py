"""The object store: run artefacts (checkpoints, final models), evidence bundles, compliance
reports and the encrypted archives of dataset versions.

These are too large for the log, so the log carries their SHA-256s and the bytes live here
under keys like ``runs/<run>/checkpoint-4/model.safetensors``; anyone can re-hash what the
store holds and compare it with the log (``rlhf-audit verify`` does).

- :class:`FileStore`: a directory (default ``<home>/objects``), the embedded default.
- :class:`S3Store`: any S3 API (MinIO in ``compose.yaml``) through the ``minio`` client, chosen when
  ``RLHF_AUDIT_S3_ENDPOINT`` is set, in a bucket with object lock (write once, COMPLIANCE
  retention of ``RLHF_AUDIT_S3_RETENTION_DAYS``, at least 183). See ``docs/operations.md``.

Keys are relative POSIX paths; ``..``, absolute paths and empty segments are refused
(:class:`ObjectError`), so a key can never escape the store.
"""

from __future__ import annotations

import os
from pathlib import Path

from ledger.errors import ConfigError
from ledger.home import LogHome

from .base import ObjectError, ObjectStore, Stored
from .files import FileStore
from .s3 import DEFAULT_RETENTION_DAYS, S3Store

__all__ = ["DEFAULT_RETENTION_DAYS", "MIN_RETENTION_DAYS", "FileStore", "ObjectError", "ObjectStore",
           "S3Store", "Stored", "object_store", "retention_days"]

ENV_ENDPOINT = "RLHF_AUDIT_S3_ENDPOINT"
ENV_BUCKET = "RLHF_AUDIT_S3_BUCKET"
ENV_ACCESS = "RLHF_AUDIT_S3_ACCESS_KEY"
ENV_SECRET = "RLHF_AUDIT_S3_SECRET_KEY"
ENV_SECURE = "RLHF_AUDIT_S3_SECURE"
ENV_RETENTION = "RLHF_AUDIT_S3_RETENTION_DAYS"
ENV_UNLOCKED = "RLHF_AUDIT_S3_ALLOW_UNLOCKED"
ENV_OBJECTS_DIR = "RLHF_AUDIT_OBJECTS_DIR"
MIN_RETENTION_DAYS = 183  # EU AI Act Art. 19(1): logs kept at least six months
MAX_RETENTION_DAYS = 36500
_NO = ("0", "false", "no")
_YES = ("1", "true", "yes")


def retention_days() -> int:
    """``RLHF_AUDIT_S3_RETENTION_DAYS``, refused below the legal minimum (no override: a shorter
    lock is a deployment that cannot show six months of evidence)."""
    raw = os.environ.get(ENV_RETENTION, "").strip()
    if not raw:
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_RETENTION} must be a whole number of days, not {raw!r}") from None
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise ConfigError(f"{ENV_RETENTION}={days}: object-lock retention must be {MIN_RETENTION_DAYS} to "
                          f"{MAX_RETENTION_DAYS} days (EU AI Act Art. 19 asks for at least six months)")
    return days


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _NO + _YES:
        raise ConfigError(f"{name} must be 1/true/yes or 0/false/no, not {raw!r}")
    return raw in _YES


def object_store(home: LogHome | None = None) -> ObjectStore:
    """The configured store: S3 when ``RLHF_AUDIT_S3_ENDPOINT`` is set, else ``<home>/objects``."""
    endpoint = os.environ.get(ENV_ENDPOINT)
    if endpoint:
        missing = [n for n in (ENV_BUCKET, ENV_ACCESS, ENV_SECRET) if not os.environ.get(n)]
        if missing:
            raise ConfigError(f"{ENV_ENDPOINT} is set but {', '.join(missing)} are not")
        return S3Store(endpoint, os.environ[ENV_BUCKET], os.environ[ENV_ACCESS], os.environ[ENV_SECRET],
                       secure=_flag(ENV_SECURE, True), retention_days=retention_days(),
                       object_lock=not _flag(ENV_UNLOCKED, False))
    chosen = os.environ.get(ENV_OBJECTS_DIR)
    return FileStore(Path(chosen) if chosen else (home or LogHome.resolve(None)).path / "objects")

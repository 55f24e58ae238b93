"""The object store: run artefacts (checkpoints, final models), evidence bundles, compliance
reports and the encrypted archives of dataset versions.

These are too large for the log, so the log carries their SHA-256s and the bytes live here
under keys like ``runs/<run>/checkpoint-4/model.safetensors``; anyone can re-hash what the
store holds and compare it with the log (``rlhf-audit verify`` does).

- :class:`FileStore`: a directory (default ``<home>/objects``), the embedded default.
- :class:`S3Store`: any S3 API (MinIO in ``compose.yaml``) through the ``minio`` client, chosen when
  ``RLHF_AUDIT_S3_ENDPOINT`` is set, in a bucket with object lock (write once, COMPLIANCE
  retention of ``RLHF_AUDIT_S3_RETENTION_DAYS``, at least 183). :func:`object_store` picks one
  from the application's :class:`~app.core.settings.Settings`. See ``docs/operations.md``.

Keys are relative POSIX paths; ``..``, absolute paths and empty segments are refused
(:class:`ObjectError`, 400), so a key can never escape the store. A missing object is
:class:`ObjectMissing` (404), a failing or unreachable store :class:`ObjectStoreUnavailable` (503),
a store configured wrongly :class:`~app.core.errors.Misconfigured`.
"""

from __future__ import annotations

from ledger.home import LogHome

from ..core.errors import Misconfigured
from ..core.settings import Settings
from .base import ObjectError, ObjectMissing, ObjectStore, ObjectStoreUnavailable, Stored
from .files import FileStore
from .s3 import DEFAULT_RETENTION_DAYS, S3Store

__all__ = ["DEFAULT_RETENTION_DAYS", "MIN_RETENTION_DAYS", "FileStore", "ObjectError", "ObjectMissing",
           "ObjectStore", "ObjectStoreUnavailable", "S3Store", "Stored", "object_store"]

ENV_ENDPOINT = "RLHF_AUDIT_S3_ENDPOINT"  # these are read into Settings (app.core.settings)
ENV_BUCKET = "RLHF_AUDIT_S3_BUCKET"
ENV_ACCESS = "RLHF_AUDIT_S3_ACCESS_KEY"
ENV_SECRET = "RLHF_AUDIT_S3_SECRET_KEY"
ENV_SECURE = "RLHF_AUDIT_S3_SECURE"
ENV_RETENTION = "RLHF_AUDIT_S3_RETENTION_DAYS"
ENV_UNLOCKED = "RLHF_AUDIT_S3_ALLOW_UNLOCKED"
ENV_OBJECTS_DIR = "RLHF_AUDIT_OBJECTS_DIR"
MIN_RETENTION_DAYS = 183  # EU AI Act Art. 19(1): logs kept at least six months (Settings refuses less)
MAX_RETENTION_DAYS = 36500


def object_store(home: LogHome | None, settings: Settings) -> ObjectStore:
    """The configured store: S3 when ``settings.s3_endpoint`` (``RLHF_AUDIT_S3_ENDPOINT``) is set,
    else ``settings.objects_dir`` or ``<home>/objects``. ``Settings`` has checked the retention
    (no override below the legal minimum: a shorter lock cannot show six months of evidence)."""
    if settings.s3_endpoint:
        given = ((ENV_BUCKET, settings.s3_bucket), (ENV_ACCESS, settings.s3_access_key),
                 (ENV_SECRET, settings.s3_secret_key))
        missing = [n for n, v in given if not v]
        if missing:
            raise Misconfigured(f"{ENV_ENDPOINT} is set but {', '.join(missing)} are not")
        assert settings.s3_bucket and settings.s3_access_key and settings.s3_secret_key
        return S3Store(settings.s3_endpoint, settings.s3_bucket, settings.s3_access_key,
                       settings.s3_secret_key, secure=settings.s3_secure,
                       retention_days=settings.s3_retention_days,
                       object_lock=not settings.s3_allow_unlocked)
    return FileStore(settings.objects_dir or (home or LogHome.resolve(None)).path / "objects")

"""Objects in an S3 bucket (MinIO or any S3 API) under write-once object lock.

Evidence must outlive anyone's wish to change it (EU AI Act Art. 19 keeps logs at least six
months), so by default the bucket must have object lock, which implies versioning: every PUT
carries an explicit COMPLIANCE retention date, which nobody (not the root account) can shorten
or delete a version before, and an overwrite only adds a newer version. A bucket this store
creates gets object lock and a default COMPLIANCE rule; an existing bucket without object lock
or versioning is refused, unless the store was built with ``object_lock=False`` (the explicit
opt-out ``RLHF_AUDIT_S3_ALLOW_UNLOCKED=1``, for development only).

Each PUT also sends ``x-amz-checksum-sha256``: locked buckets require a checksum, and the server
then refuses bytes that changed in transit. Objects go up in one PUT (S3's limit: 5 GiB each).
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from ..core.errors import Misconfigured
from .base import CHUNK, ObjectMissing, ObjectStoreUnavailable, Stored, check_key, get_dir, put_dir

__all__ = ["DEFAULT_RETENTION_DAYS", "MAX_OBJECT", "S3Store"]

DEFAULT_RETENTION_DAYS = 183  # six months: EU AI Act Art. 19(1)
MAX_OBJECT = 5 * 1024**3  # S3's largest single PUT
_MIN_PART = 5 * 1024**2
T = TypeVar("T")


def _checksum_headers(digest: bytes) -> dict[str, str]:
    return {"x-amz-sdk-checksum-algorithm": "SHA256",
            "x-amz-checksum-sha256": base64.b64encode(digest).decode()}


class S3Store:
    """Objects in ``bucket``; checked (or created with object lock) on first use."""

    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, *,
                 secure: bool = True, retention_days: int = DEFAULT_RETENTION_DAYS,
                 object_lock: bool = True) -> None:
        from minio import Minio
        from minio.helpers import check_bucket_name

        try:
            check_bucket_name(bucket)
        except ValueError as e:
            raise Misconfigured(f"RLHF_AUDIT_S3_BUCKET: {e}") from None
        if retention_days < 1:
            raise Misconfigured("object-lock retention must be at least one day")
        self.bucket = bucket
        self.retention_days = retention_days
        self.object_lock = object_lock
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure)
        self._ready = False

    # -- the bucket -----------------------------------------------------------------------

    def _prepare(self) -> None:
        from minio.commonconfig import COMPLIANCE
        from minio.error import S3Error
        from minio.objectlockconfig import DAYS, ObjectLockConfig

        if not self.client.bucket_exists(self.bucket):
            try:
                self.client.make_bucket(self.bucket, object_lock=self.object_lock)
                if self.object_lock:
                    self.client.set_object_lock_config(
                        self.bucket, ObjectLockConfig(COMPLIANCE, self.retention_days, DAYS))
                return
            except S3Error as e:  # another process made it first: check theirs
                if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        if self.object_lock:
            self._check_worm()

    def _check_worm(self) -> None:
        from minio.error import S3Error

        how = ("create the bucket with object lock (mc mb --with-lock, or let rlhf-audit create it), "
               "or set RLHF_AUDIT_S3_ALLOW_UNLOCKED=1 to run without write-once storage (development only)")
        try:
            self.client.get_object_lock_config(self.bucket)
        except S3Error as e:
            if e.code in ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"):
                raise Misconfigured(f"bucket {self.bucket} has no object lock, so evidence in it could be "
                                    f"overwritten or deleted: {how}") from None
            raise
        if self.client.get_bucket_versioning(self.bucket).status != "Enabled":
            raise Misconfigured(f"bucket {self.bucket} has object lock but versioning is not enabled: {how}")

    def _call(self, what: str, key: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError

        try:
            if not self._ready:
                self._prepare()
                self._ready = True
            return fn(*args, **kwargs)
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject", "NoSuchVersion"):
                raise ObjectMissing(f"no object {key!r} in bucket {self.bucket}") from None
            raise ObjectStoreUnavailable(f"object store: {what}: {e.code}: {e.message}") from e
        except (MinioException, HTTPError, OSError) as e:
            raise ObjectStoreUnavailable(f"object store unreachable while {what}: {e}") from e

    # -- writing --------------------------------------------------------------------------

    def _put(self, key: str, stream: BinaryIO, size: int, digest: bytes) -> Stored:
        from minio.commonconfig import COMPLIANCE
        from minio.retention import Retention

        k = check_key(key)
        if size > MAX_OBJECT:
            raise ObjectStoreUnavailable(f"{k} is {size:,} bytes; one object may be at most "
                                         f"{MAX_OBJECT:,} (multipart uploads are not supported)")
        until = None
        if self.object_lock:
            until = (datetime.now(UTC) + timedelta(days=self.retention_days)).replace(microsecond=0)
        headers = _checksum_headers(digest)
        result = self._call("storing", k, self.client.put_object, self.bucket, k, stream, size,
                            metadata=headers, part_size=max(size, _MIN_PART),
                            retention=Retention(COMPLIANCE, until) if until else None)
        echoed = result.http_headers.get("x-amz-checksum-sha256")
        if echoed and echoed != headers["x-amz-checksum-sha256"]:
            raise ObjectStoreUnavailable(f"object store: the server stored {k} with checksum {echoed}, "
                                         "not ours")
        return Stored(k, "sha256:" + digest.hex(), size, result.version_id, until)

    def put_file(self, key: str, path: Path) -> Stored:
        """Hash the file, then send it: the server refuses it if it changed in between."""
        check_key(key)
        try:
            with open(path, "rb") as f:
                h = hashlib.sha256()
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                size = f.tell()
                f.seek(0)
                return self._put(key, f, size, h.digest())
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectMissing(f"no file {path} to store") from None

    def put_bytes(self, key: str, data: bytes) -> Stored:
        return self._put(key, io.BytesIO(data), len(data), hashlib.sha256(data).digest())

    def put_dir(self, prefix: str, directory: Path) -> list[Stored]:
        return put_dir(self, prefix, directory)

    def legal_hold(self, key: str) -> None:
        """Legal hold on the newest version: no deletion until it is lifted, whatever the retention."""
        k = check_key(key)
        newest = self._call("setting a legal hold", k, self.client.stat_object, self.bucket, k)
        self._call("setting a legal hold", k, self.client.enable_object_legal_hold, self.bucket, k,
                   version_id=newest.version_id)

    # -- reading --------------------------------------------------------------------------

    def get(self, key: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._call("fetching", key, self.client.fget_object, self.bucket, check_key(key), str(dest))
        return dest

    def get_dir(self, prefix: str, dest: Path) -> list[str]:
        return get_dir(self, prefix, dest)

    def list(self, prefix: str = "") -> list[str]:
        p = check_key(prefix) + "/" if prefix else None
        objects = self._call("listing", prefix, self.client.list_objects, self.bucket, prefix=p,
                             recursive=True)
        found: list[Any] = self._call("listing", prefix, list, objects)
        return sorted(str(o.object_name) for o in found)

    def _stream(self, what: str, key: str, use: Callable[[Any], T]) -> T:
        k = check_key(key)
        response = self._call(what, k, self.client.get_object, self.bucket, k)
        try:
            return self._call(what, k, use, response)
        finally:
            response.close()
            response.release_conn()

    def read(self, key: str) -> bytes:
        return self._stream("reading", key, lambda r: bytes(r.read()))

    def sha256(self, key: str) -> str:
        """``sha256:<hex>`` of the newest version, streamed."""
        def digest(response: Any) -> str:
            h = hashlib.sha256()
            for chunk in response.stream(CHUNK):
                h.update(chunk)
            return "sha256:" + h.hexdigest()

        return self._stream("hashing", key, digest)

    def url(self, key: str) -> str:
        k = check_key(key)
        return str(self._call("signing", k, self.client.presigned_get_object, self.bucket, k,
                              expires=timedelta(hours=1)))

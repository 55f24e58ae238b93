"""The object store for run artefacts: checkpoints, final models, tokenizers.

Model files are too large for the log; the log carries their SHA-256s and a Merkle root, and
the bytes live here under keys like ``runs/<run>/checkpoint-4/model.safetensors``. Anyone can
re-hash what the store holds and compare it with the log.

- :class:`FileStore`: a directory (default ``<home>/objects``), the embedded default.
- :class:`S3Store`: any S3 API (MinIO in ``compose.yaml``) through the ``minio`` client, chosen when
  ``RLHF_AUDIT_S3_ENDPOINT`` is set (with ``..._BUCKET``, ``..._ACCESS_KEY``, ``..._SECRET_KEY``;
  ``RLHF_AUDIT_S3_SECURE=0`` for plain HTTP).

Keys are relative POSIX paths; ``..``, absolute paths and empty segments are refused
(:class:`ObjectError`), so a key can never escape the store.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

from ledger.errors import ConfigError, EntryError, NotFound, StorageError
from ledger.home import LogHome

__all__ = ["FileStore", "ObjectError", "ObjectStore", "S3Store", "object_store"]

ENV_ENDPOINT = "RLHF_AUDIT_S3_ENDPOINT"
ENV_BUCKET = "RLHF_AUDIT_S3_BUCKET"
ENV_ACCESS = "RLHF_AUDIT_S3_ACCESS_KEY"
ENV_SECRET = "RLHF_AUDIT_S3_SECRET_KEY"
ENV_SECURE = "RLHF_AUDIT_S3_SECURE"
ENV_OBJECTS_DIR = "RLHF_AUDIT_OBJECTS_DIR"


class ObjectError(EntryError):
    """A key that cannot name an object (absolute, ``..``, empty)."""


def _key(key: str) -> str:
    p = PurePosixPath(key)
    if not key or p.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")):
        raise ObjectError(f"bad object key {key!r}: use a relative path without '..'")
    return str(p)


def _files_of(directory: Path) -> list[tuple[str, Path]]:
    if not directory.is_dir():
        raise NotFound(f"no directory {directory}")
    return sorted((p.relative_to(directory).as_posix(), p) for p in directory.rglob("*") if p.is_file())


@runtime_checkable
class ObjectStore(Protocol):
    """Where artefacts go. Implementations are synchronous: workers call them from threads."""

    def put_file(self, key: str, path: Path) -> str: ...
    def put_dir(self, prefix: str, directory: Path) -> list[str]: ...
    def get(self, key: str, dest: Path) -> Path: ...
    def get_dir(self, prefix: str, dest: Path) -> list[str]: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def read(self, key: str) -> bytes: ...
    def url(self, key: str) -> str: ...


class FileStore:
    """Objects as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _key(key)

    def put_file(self, key: str, path: Path) -> str:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)  # readers see the whole file or none
        except FileNotFoundError:
            raise NotFound(f"no file {path} to store") from None
        except OSError as e:
            raise StorageError(f"cannot store {key}: {e}") from e
        return _key(key)

    def put_dir(self, prefix: str, directory: Path) -> list[str]:
        return [self.put_file(f"{_key(prefix)}/{rel}", p) for rel, p in _files_of(Path(directory))]

    def get(self, key: str, dest: Path) -> Path:
        source = self._path(key)
        if not source.is_file():
            raise NotFound(f"no object {key!r} in {self.root}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        return dest

    def get_dir(self, prefix: str, dest: Path) -> list[str]:
        keys = self.list(prefix)
        if not keys:
            raise NotFound(f"no objects under {prefix!r}")
        base = _key(prefix)
        for k in keys:
            self.get(k, dest / k[len(base) + 1:])
        return keys

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / _key(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return [(PurePosixPath(_key(prefix)) / rel).as_posix() if prefix else rel
                for rel, _ in _files_of(base) if not rel.rsplit("/", 1)[-1].startswith(".")]

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no object {key!r} in {self.root}") from None

    def url(self, key: str) -> str:
        return self._path(key).resolve().as_uri()

    def path(self, key: str) -> Path:
        return self._path(key)


class S3Store:
    """Objects in an S3 bucket (MinIO or any S3 API), created on first use."""

    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, *,
                 secure: bool = True) -> None:
        from minio import Minio
        from minio.helpers import check_bucket_name

        try:
            check_bucket_name(bucket)
        except ValueError as e:
            raise ConfigError(f"{ENV_BUCKET}: {e}") from None
        self.bucket = bucket
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure)
        self._ready = False

    def _call(self, what: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError

        try:
            if not self._ready:
                if not self.client.bucket_exists(self.bucket):
                    self.client.make_bucket(self.bucket)
                self._ready = True
            return fn(*args, **kwargs)
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject"):
                raise NotFound(f"no object {args[1]!r} in bucket {self.bucket}") from None
            raise StorageError(f"object store: {what}: {e.code}: {e.message}") from e
        except (MinioException, HTTPError, OSError) as e:
            raise StorageError(f"object store unreachable while {what}: {e}") from e

    def put_file(self, key: str, path: Path) -> str:
        if not Path(path).is_file():
            raise NotFound(f"no file {path} to store")
        self._call("storing", self.client.fput_object, self.bucket, _key(key), str(path))
        return _key(key)

    def put_dir(self, prefix: str, directory: Path) -> list[str]:
        return [self.put_file(f"{_key(prefix)}/{rel}", p) for rel, p in _files_of(Path(directory))]

    def get(self, key: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._call("fetching", self.client.fget_object, self.bucket, _key(key), str(dest))
        return dest

    def get_dir(self, prefix: str, dest: Path) -> list[str]:
        keys = self.list(prefix)
        if not keys:
            raise NotFound(f"no objects under {prefix!r}")
        base = _key(prefix)
        for k in keys:
            self.get(k, dest / k[len(base) + 1:])
        return keys

    def list(self, prefix: str = "") -> list[str]:
        p = _key(prefix) + "/" if prefix else None
        objects = self._call("listing", self.client.list_objects, self.bucket, prefix=p, recursive=True)
        return sorted(o.object_name for o in self._call("listing", list, objects))

    def read(self, key: str) -> bytes:
        response = self._call("reading", self.client.get_object, self.bucket, _key(key))
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def url(self, key: str) -> str:
        from datetime import timedelta

        return str(self._call("signing", self.client.presigned_get_object, self.bucket, _key(key),
                              expires=timedelta(hours=1)))


def object_store(home: LogHome | None = None) -> ObjectStore:
    """The configured store: S3 when ``RLHF_AUDIT_S3_ENDPOINT`` is set, else ``<home>/objects``."""
    endpoint = os.environ.get(ENV_ENDPOINT)
    if endpoint:
        missing = [n for n in (ENV_BUCKET, ENV_ACCESS, ENV_SECRET) if not os.environ.get(n)]
        if missing:
            raise ConfigError(f"{ENV_ENDPOINT} is set but {', '.join(missing)} are not")
        return S3Store(endpoint, os.environ[ENV_BUCKET], os.environ[ENV_ACCESS], os.environ[ENV_SECRET],
                       secure=os.environ.get(ENV_SECURE, "1") not in ("0", "false", "no"))
    chosen = os.environ.get(ENV_OBJECTS_DIR)
    return FileStore(Path(chosen) if chosen else (home or LogHome.resolve(None)).path / "objects")

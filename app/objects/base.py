"""What every object store shares: key checking, the record of a stored object, the protocol, and
its errors (the application's kinds: a bad key is the caller's 400, a missing object 404, a store
that fails or cannot be reached 503; one configured wrongly raises ``Misconfigured``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, runtime_checkable

from ..core.errors import Invalid, Missing, Unavailable

__all__ = ["CHUNK", "ObjectError", "ObjectMissing", "ObjectStore", "ObjectStoreUnavailable", "Stored",
           "check_key", "files_of", "get_dir", "put_dir", "sha256_of_stream"]

CHUNK = 1 << 20


class ObjectError(Invalid):
    """A key that cannot name an object (absolute, ``..``, empty)."""


class ObjectMissing(Missing):
    """No object under the key (or no local file or directory to store)."""


class ObjectStoreUnavailable(Unavailable):
    """The store failed to read or write, or could not be reached."""


def check_key(key: str) -> str:
    p = PurePosixPath(key)
    if not key or p.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")):
        raise ObjectError(f"bad object key {key!r}: use a relative path without '..'")
    return str(p)


def files_of(directory: Path) -> list[tuple[str, Path]]:
    if not directory.is_dir():
        raise ObjectMissing(f"no directory {directory}")
    return sorted((p.relative_to(directory).as_posix(), p) for p in directory.rglob("*") if p.is_file())


def sha256_of_stream(stream: BinaryIO) -> str:
    """``sha256:<hex>`` of a stream, read in chunks (models are too large to hold twice)."""
    h = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class Stored:
    """What a put stored: the key, the SHA-256 of the bytes (``sha256:<hex>``, as the log writes
    hashes), their size, and on a versioned bucket the version and its COMPLIANCE lock date."""

    key: str
    sha256: str
    size: int
    version_id: str | None = None
    retain_until: datetime | None = None


@runtime_checkable
class ObjectStore(Protocol):
    """Where artefacts go. Implementations are synchronous: workers call them from threads."""

    def put_file(self, key: str, path: Path) -> Stored: ...
    def put_bytes(self, key: str, data: bytes) -> Stored: ...
    def put_dir(self, prefix: str, directory: Path) -> list[Stored]: ...
    def get(self, key: str, dest: Path) -> Path: ...
    def get_dir(self, prefix: str, dest: Path) -> list[str]: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def read(self, key: str) -> bytes: ...
    def sha256(self, key: str) -> str: ...
    def legal_hold(self, key: str) -> None: ...
    def url(self, key: str) -> str: ...


def put_dir(store: ObjectStore, prefix: str, directory: Path) -> list[Stored]:
    """Every file under ``directory`` as ``<prefix>/<relative path>``."""
    return [store.put_file(f"{check_key(prefix)}/{rel}", p) for rel, p in files_of(Path(directory))]


def get_dir(store: ObjectStore, prefix: str, dest: Path) -> list[str]:
    """Every object under ``prefix`` into ``dest``, keeping the relative paths; their keys."""
    keys = store.list(prefix)
    if not keys:
        raise ObjectMissing(f"no objects under {prefix!r}")
    base = check_key(prefix)
    for k in keys:
        store.get(k, dest / k[len(base) + 1:])
    return keys

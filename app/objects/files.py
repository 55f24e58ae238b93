"""Objects as files in a directory: the embedded default (``<home>/objects``).

No write-once guarantee: anyone with the directory can change a file. The log still holds each
object's SHA-256, so ``rlhf-audit verify`` notices; production uses an S3 bucket with object lock.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from .base import (
    CHUNK,
    ObjectMissing,
    ObjectStoreUnavailable,
    Stored,
    check_key,
    files_of,
    get_dir,
    put_dir,
    sha256_of_stream,
)

__all__ = ["FileStore"]


class FileStore:
    """Objects as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write(self, key: str, fill: Iterable[bytes]) -> Stored:
        """Write through a temporary file and rename: readers see the whole file or none."""
        target = self._path(key)
        h = hashlib.sha256()
        size = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            with open(tmp, "wb") as out:
                for chunk in fill:
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            os.replace(tmp, target)
        except OSError as e:
            raise ObjectStoreUnavailable(f"cannot store {key}: {e}") from e
        return Stored(check_key(key), "sha256:" + h.hexdigest(), size)

    def put_file(self, key: str, path: Path) -> Stored:
        check_key(key)
        try:
            source = open(path, "rb")  # noqa: SIM115 (closed below, after the write)
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectMissing(f"no file {path} to store") from None
        with source:
            return self._write(key, iter(lambda: source.read(CHUNK), b""))

    def put_bytes(self, key: str, data: bytes) -> Stored:
        return self._write(key, [data])

    def put_dir(self, prefix: str, directory: Path) -> list[Stored]:
        return put_dir(self, prefix, directory)

    def get(self, key: str, dest: Path) -> Path:
        source = self._path(key)
        if not source.is_file():
            raise ObjectMissing(f"no object {key!r} in {self.root}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        return dest

    def get_dir(self, prefix: str, dest: Path) -> list[str]:
        return get_dir(self, prefix, dest)

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / check_key(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return [(PurePosixPath(check_key(prefix)) / rel).as_posix() if prefix else rel
                for rel, _ in files_of(base) if not rel.rsplit("/", 1)[-1].startswith(".")]

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectMissing(f"no object {key!r} in {self.root}") from None

    def sha256(self, key: str) -> str:
        try:
            with open(self._path(key), "rb") as f:
                return sha256_of_stream(f)
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectMissing(f"no object {key!r} in {self.root}") from None

    def legal_hold(self, key: str) -> None:
        """The nearest a directory has: the file made read-only (its owner can still undo it)."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(f"no object {key!r} in {self.root}")
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    def url(self, key: str) -> str:
        return self._path(key).resolve().as_uri()

    def path(self, key: str) -> Path:
        return self._path(key)

"""Hashes of a model directory: every file's SHA-256 and one RFC 6962 Merkle root over them.

The root commits to the whole directory (file names and contents), so one value on the log
identifies a checkpoint or a final model, and any file can later be proven part of it.

Leaves are the files in order of their relative POSIX path (UTF-8 bytes); a leaf's entry is
``path || 0x00 || SHA-256(file)`` (32 raw bytes), hashed as an RFC 6962 leaf
(``SHA-256(0x00 || entry)``) and folded with :func:`ledger.merkle.root_of`. File hashes and
the root are written ``sha256:<hex>``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ledger.merkle import leaf_hash, root_of

__all__ = ["directory_root", "hash_directory", "hash_file"]

_CHUNK = 1 << 20


def hash_file(path: Path) -> str:
    """``sha256:<hex>`` of one file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def directory_root(files: dict[str, str]) -> str:
    """The Merkle root over ``{relative path: "sha256:<hex>"}`` (see the module docstring)."""
    leaves = []
    for rel in sorted(files, key=lambda p: p.encode()):
        digest = bytes.fromhex(files[rel].removeprefix("sha256:"))
        leaves.append(leaf_hash(rel.encode() + b"\x00" + digest))
    return "sha256:" + root_of(leaves).hex()


def hash_directory(path: str | Path) -> tuple[dict[str, str], str]:
    """Every regular file under ``path`` (recursively) hashed, and the directory's root.

    A single file is hashed as a directory holding just that file (its name as the path).
    """
    path = Path(path)
    if path.is_file():
        files = {path.name: hash_file(path)}
    elif path.is_dir():
        files = {p.relative_to(path).as_posix(): hash_file(p)
                 for p in sorted(path.rglob("*")) if p.is_file()}
    else:
        raise FileNotFoundError(f"no such file or directory: {path}")
    return dict(sorted(files.items(), key=lambda kv: kv[0].encode())), directory_root(files)

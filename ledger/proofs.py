"""Inclusion and consistency proofs as values an auditor can keep and check."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from .errors import ProofError
from .merkle import verify_consistency, verify_inclusion

__all__ = ["ConsistencyProof", "InclusionProof", "b64", "unb64"]


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def unb64(s: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except ValueError as e:
        raise ProofError(f"{s[:60]!r} is not standard padded base64") from e


@dataclass(frozen=True)
class InclusionProof:
    """The audit path from the leaf at ``leaf_index`` to the root of a tree of ``tree_size``."""

    leaf_index: int
    tree_size: int
    audit_path: tuple[bytes, ...]

    def verify(self, leaf_hash: bytes, root_hash: bytes) -> None:
        verify_inclusion(self.leaf_index, self.tree_size, leaf_hash, self.audit_path, root_hash)

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "audit_path": [b64(h) for h in self.audit_path],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> InclusionProof:
        try:
            return cls(int(obj["leaf_index"]), int(obj["tree_size"]),
                       tuple(unb64(h) for h in obj["audit_path"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ProofError(f"malformed inclusion proof: {e}") from e


@dataclass(frozen=True)
class ConsistencyProof:
    """Shows the tree of size ``first`` is a prefix of the tree of size ``second``."""

    first: int
    second: int
    hashes: tuple[bytes, ...]

    def verify(self, first_root: bytes, second_root: bytes) -> None:
        verify_consistency(self.first, self.second, self.hashes, first_root, second_root)

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "second": self.second,
            "consistency": [b64(h) for h in self.hashes],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ConsistencyProof:
        try:
            return cls(int(obj["first"]), int(obj["second"]),
                       tuple(unb64(h) for h in obj["consistency"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ProofError(f"malformed consistency proof: {e}") from e

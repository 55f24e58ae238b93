"""RFC 6962 / RFC 9162 Merkle tree hashing and proof verification.

Pure functions over bytes, shared by the writing side (which builds proofs from stored tiles)
and the checking side (which verifies them): nothing here touches storage. The verifiers
follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 exactly, including its policy points: hashes are
32 bytes, a consistency proof from size 0 is an error, and between equal sizes it is empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleBuilder",
    "consistency_ranges",
    "inclusion_ranges",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "range_nodes",
    "root_from_inclusion",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return _sha256(b"\x00" + entry).digest()


def _leaf_hashes(entries: Sequence[bytes]) -> list[bytes]:
    return [_sha256(b"\x00" + e).digest() for e in entries]


try:  # ledger/_merkle.c: the same hashes through OpenSSL in one call (2-3x faster)
    from ._merkle import leaf_hashes as _compiled_leaf_hashes
except ImportError:  # built where a C compiler and the OpenSSL headers were at hand
    _compiled_leaf_hashes = _leaf_hashes


def leaf_hashes(entries: Sequence[bytes]) -> list[bytes]:
    """[leaf_hash(e) for e in entries], in one call: what appends and the self-audit hash."""
    try:
        return _compiled_leaf_hashes(entries)
    except TypeError:  # the compiled path takes bytes only; bytearray, memoryview: hashlib's
        return _leaf_hashes(entries)


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def fold_level(hashes: Sequence[bytes]) -> list[bytes]:
    """Hash adjacent pairs of an even-length level into the level above."""
    it = iter(hashes)
    return [_sha256(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=True)]


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, by the RFC's definition (for small inputs and tests)."""
    builder = MerkleBuilder()
    for h in leaf_hashes:
        builder.push(h)
    return builder.root()


class MerkleBuilder:
    """Streaming tree root: keeps only the right border (one hash per set bit of the size).

    ``push`` costs amortised one node hash; memory is O(log n).
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (height, hash), heights strictly decreasing
        self.size = 0

    def push(self, h: bytes, height: int = 0) -> None:
        """Add a leaf hash (height 0) or, when aligned, the root of a perfect subtree."""
        stack = self._stack
        self.size += 1 << height
        while stack and stack[-1][0] == height:
            height += 1
            h = _sha256(b"\x01" + stack.pop()[1] + h).digest()
        stack.append((height, h))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        it = reversed(self._stack)
        acc = next(it)[1]
        for _, h in it:
            acc = _sha256(b"\x01" + h + acc).digest()
        return acc


def range_nodes(begin: int, end: int) -> list[tuple[int, int]]:
    """Perfect subtrees (height, index) whose left-to-right fold is MTH(D[begin:end]).

    ``begin`` must be aligned the way RFC 6962's recursion produces ranges: a multiple of the
    largest power of two not exceeding ``end - begin``.
    """
    nodes: list[tuple[int, int]] = []
    while begin < end:
        n = end - begin
        height = n.bit_length() - 1  # largest perfect subtree that fits
        if n & (n - 1) == 0:
            nodes.append((height, begin >> height))
            break
        k = 1 << height
        nodes.append((height, begin >> height))
        begin += k
    return nodes


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of ``range_nodes`` (left to right) into the range's MTH."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(b"\x01" + h + acc).digest()
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges [a, b) whose MTHs form PATH(index, D[0:size]), leaf-side first (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    path: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs form PROOF(first, D[0:second]) (RFC 9162 2.1.4.1)."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    out: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, second, first, True
    # SUBPROOF(m, D[lo:hi], complete), unrolled: each step appends one range after the recursion,
    # so collect them and reverse at the end.
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def _check_hash(h: bytes, what: str) -> None:
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} is {len(h)} bytes, not {HASH_SIZE}")


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2; raises ProofError unless ``leaf`` is at ``index`` under ``root``."""
    _check_hash(root, "root hash")
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof does not lead to the root hash")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root an inclusion proof of ``leaf`` at ``index`` leads to (for a
    signature over the root, as a COSE receipt has); raises ProofError if the proof is malformed."""
    _check_hash(leaf, "leaf hash")
    for h in proof:
        _check_hash(h, "proof hash")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_consistency(  # noqa: C901 (RFC 9162 2.1.4.2, step by step)
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> None:
    """RFC 9162 2.1.4.2; raises ProofError unless the tree of ``first`` is a prefix of ``second``."""
    if first < 1 or first > second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == second:  # as the reference verifier: only the roots' equality matters
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("equal sizes but different roots")
        return
    _check_hash(first_root, "first root")
    _check_hash(second_root, "second root")
    for h in proof:
        _check_hash(h, "proof hash")
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first root is the proof's implicit start
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than needed")
    if fr != first_root:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("consistency proof does not lead to the second root")



"""Property tests: proofs built from tiles verify, and any tampering is refused."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger._internal.tree import TileCache, edge_coords, extend, lookup_nodes, root_from_edge, tile_levels
from ledger.errors import ProofError
from ledger.merkle import (
    consistency_ranges,
    fold_range,
    inclusion_ranges,
    leaf_hash,
    range_nodes,
    root_of,
    verify_consistency,
    verify_inclusion,
)

MAX = 1200  # crosses tile boundaries (256) and reaches level-1 tiles with several hashes


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(b"%d" % i) for i in range(n)]


LEAVES = leaves(MAX)
_, TILES, _ = extend(0, {}, LEAVES)


def prove(ranges: list[tuple[int, int]]) -> list[bytes]:
    per_range = [range_nodes(a, b) for a, b in ranges]
    cache = TileCache(len(TILES))
    for key, data in TILES.items():
        cache.put(key, tile_levels(data))
    hashes, missing = lookup_nodes({n for rn in per_range for n in rn}, cache)
    assert not missing
    return [fold_range([hashes[n] for n in rn]) for rn in per_range]


def root(size: int) -> bytes:
    return root_of(LEAVES[:size])


def flip(proof: list[bytes], which: int, bit: int) -> list[bytes]:
    i = which % len(proof)
    h = bytearray(proof[i])
    h[bit // 8 % 32] ^= 1 << (bit % 8)
    return [*proof[:i], bytes(h), *proof[i + 1 :]]


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return size, draw(st.integers(0, size - 1))


@settings(max_examples=300, deadline=None)
@given(size_and_index(), st.integers(0, 10_000), st.integers(0, 255))
def test_inclusion_proofs_verify_and_tampering_fails(si: tuple[int, int], which: int, bit: int) -> None:
    size, index = si
    proof = prove(inclusion_ranges(index, size))
    verify_inclusion(index, size, LEAVES[index], proof, root(size))
    wrong = [
        (index, size, LEAVES[(index + 1) % MAX], proof, root(size)),  # another leaf
        (index, size, LEAVES[index], proof, hashlib.sha256(b"x").digest()),  # another root
        (index, size, LEAVES[index], [*proof, LEAVES[0]], root(size)),  # padded
    ]
    if proof:
        wrong.append((index, size, LEAVES[index], flip(proof, which, bit), root(size)))
        wrong.append((index, size, LEAVES[index], proof[:-1], root(size)))  # truncated
    if size > 1:
        wrong.append(((index + 1) % size, size, LEAVES[index], proof, root(size)))
    for args in wrong:
        try:
            verify_inclusion(*args)
        except ProofError:
            continue
        raise AssertionError(f"tampered inclusion proof accepted: {args[:2]}")


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    second = draw(st.integers(1, MAX))
    return draw(st.integers(1, second)), second


@settings(max_examples=300, deadline=None)
@given(two_sizes(), st.integers(0, 10_000), st.integers(0, 255))
def test_consistency_proofs_verify_and_tampering_fails(sizes: tuple[int, int], which: int, bit: int) -> None:
    first, second = sizes
    proof = prove(consistency_ranges(first, second)) if first < second else []
    verify_consistency(first, second, proof, root(first), root(second))
    if first == second:
        return
    for args in [
        (first, second, flip(proof, which, bit), root(first), root(second)),
        (first, second, proof[:-1], root(first), root(second)),
        (first, second, [*proof, LEAVES[0]], root(first), root(second)),
        (first, second, proof, root(first - 1) if first > 1 else LEAVES[5], root(second)),
        (first, second, proof, root(first), root(second - 1)),
    ]:
        try:
            verify_consistency(*args)
        except ProofError:
            continue
        raise AssertionError(f"tampered consistency proof accepted: {first} -> {second}")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_extending_in_any_batches_gives_the_same_tiles_and_root(batches: list[int]) -> None:
    size, edge, tiles = 0, {}, {}
    for n in batches:
        new = LEAVES[size : size + n] if size + n <= MAX else leaves(size + n)[size:]
        size, writes, _ = extend(size, edge, new)
        tiles.update(writes)
        edge = {k: tiles[k] for k in edge_coords(size)}
        assert root_from_edge(size, edge) == root_of((LEAVES if size <= MAX else leaves(size))[:size])
    _, once, _ = extend(0, {}, (LEAVES if size <= MAX else leaves(size))[:size])
    assert tiles == once

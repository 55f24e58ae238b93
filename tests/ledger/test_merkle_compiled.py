"""The compiled Merkle hashing (ledger/_merkle.c, OpenSSL) gives exactly hashlib's hashes."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import merkle
from ledger._internal import tree

try:
    from ledger import _merkle
except ImportError:  # not built: no C compiler or no OpenSSL headers at install time
    _merkle = None  # type: ignore[assignment]

built = pytest.mark.skipif(_merkle is None and os.environ.get("CI") != "true",
                           reason="ledger._merkle is not built here")


@built
def test_the_compiled_path_is_built_and_used() -> None:
    assert _merkle is not None, "CI builds ledger._merkle (setup.py): it must be importable"
    assert merkle._compiled_leaf_hashes is _merkle.leaf_hashes
    assert tree._tile_levels is _merkle.tile_levels


@built
@given(st.lists(st.binary(max_size=600), max_size=40))
def test_leaf_hashes_are_hashlibs(entries: list[bytes]) -> None:
    assert _merkle.leaf_hashes(entries) == [hashlib.sha256(b"\x00" + e).digest() for e in entries]


@built
def test_leaf_hashes_of_the_largest_entry_and_of_nothing() -> None:
    big = os.urandom(65535)
    assert _merkle.leaf_hashes((big, b"")) == [hashlib.sha256(b"\x00" + big).digest(),
                                               hashlib.sha256(b"\x00").digest()]
    with pytest.raises(TypeError, match="entry 1 is str"):
        _merkle.leaf_hashes([b"x", "x"])


@built
@given(st.integers(min_value=1, max_value=256), st.randoms(use_true_random=False))
def test_tile_levels_are_the_python_ones(width: int, rng) -> None:  # type: ignore[no-untyped-def]
    data = rng.randbytes(width * 32)
    assert _merkle.tile_levels(data) == tree._python_tile_levels(data)


@built
def test_a_bad_tile_is_refused() -> None:
    for bad in (b"x" * 31, b"x" * 257 * 32):
        with pytest.raises(ValueError, match="up to 256 hashes"):
            _merkle.tile_levels(bad)
    assert _merkle.tile_levels(b"") == [b""]


@built
def test_leaf_index_rows_are_in_key_order() -> None:
    hashes = os.urandom(32 * 1000) + b"\x00" * 64  # and two equal prefixes: ordered by index
    prefixes, indices = _merkle.leaf_index_rows(hashes, 7)
    got = [(prefixes[k * 8 : k * 8 + 8], i) for k, i in enumerate(json.loads(indices))]
    assert got == sorted((hashes[k * 32 : k * 32 + 8], 7 + k) for k in range(1002))
    assert _merkle.leaf_index_rows(b"", 0) == (b"", "[]")
    with pytest.raises(ValueError, match="32 bytes"):
        _merkle.leaf_index_rows(b"x" * 33, 0)


def test_leaf_hashes_of_other_bytes_like_objects() -> None:
    data = [bytearray(b"a"), memoryview(b"bc"), b"d"]
    assert merkle.leaf_hashes(data) == [hashlib.sha256(b"\x00" + bytes(d)).digest() for d in data]

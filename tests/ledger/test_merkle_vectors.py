"""RFC 6962 hashing and RFC 9162 proofs against every published vector."""

from __future__ import annotations

import pytest

from ledger.errors import ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from tests.support.vectors import h, load

TREE = load("rfc6962_tree.json")
LEAVES = [leaf_hash(h(x)) for x in TREE["leaf_inputs"]]


def test_roots_for_every_size() -> None:
    for size, root in TREE["root_hashes_by_tree_size"].items():
        assert root_of(LEAVES[: int(size)]) == h(root)
    assert root_of([]) == EMPTY_ROOT


def test_complete_subtree_hashes() -> None:
    for level, nodes in enumerate(TREE["node_hashes_by_level"]):
        for i, node in enumerate(nodes):
            assert root_of(LEAVES[i << level : (i + 1) << level]) == h(node)


INCLUSION = load("inclusion_proofs.json")["cases"]
CONSISTENCY = load("consistency_proofs.json")["cases"]


def test_vector_counts() -> None:
    assert len(INCLUSION) + len(CONSISTENCY) == 196


@pytest.mark.parametrize("case", INCLUSION, ids=[c["file"] for c in INCLUSION])
def test_inclusion_vector(case: dict) -> None:
    args = (case["leafIdx"], case["treeSize"], h(case["leafHash"]),
            [h(p) for p in case["proof"] or []], h(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("case", CONSISTENCY, ids=[c["file"] for c in CONSISTENCY])
def test_consistency_vector(case: dict) -> None:
    args = (case["size1"], case["size2"], [h(p) for p in case["proof"] or []],
            h(case["root1"]), h(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)

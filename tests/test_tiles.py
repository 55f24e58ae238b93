"""C2SP tlog-tiles path encoding and tile counts, against the spec's worked examples."""

from __future__ import annotations

import pytest

from ledger.tiles import encode_index, entries_path, parse_tile_path, tile_path, tiles_for_size

from .vectors import load

PATHS = load("tlog_tiles_paths.json")


@pytest.mark.parametrize("case", PATHS["tile_index_path_encoding"], ids=lambda c: str(c["N"]))
def test_index_encoding(case: dict) -> None:
    assert encode_index(case["N"]) == case["path"]
    assert parse_tile_path(f"0/{case['path']}") == (0, case["N"], 256)


@pytest.mark.parametrize("case", PATHS["tile_counts"], ids=lambda c: str(c["tree_size"]))
def test_tile_counts(case: dict) -> None:
    for level in case["per_level"]:
        assert tiles_for_size(case["tree_size"], level["level"]) == (
            level["full_tiles"], level["partial_width"])


def test_paths_round_trip() -> None:
    assert tile_path(2, 1234067, 17) == "tile/2/x001/x234/067.p/17"
    assert entries_path(5) == "tile/entries/005"
    assert parse_tile_path("entries/x001/000.p/3") == (None, 1000, 3)
    assert parse_tile_path("1/067") == (1, 67, 256)


@pytest.mark.parametrize("bad", [
    "0/67", "0/x1/067", "0/001/067", "0/067.p/0", "0/067.p/256", "0/067.p/07", "00/067",
    "-1/067", "x/067", "0/", "0/067.p/", "entries/67", "0/x000/067.p/3x",
])
def test_non_canonical_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_tile_path(bad)

"""C2SP tlog-tiles path encoding and tile counts, against the spec's worked examples."""

from __future__ import annotations

import pytest

from ledger.tiles import encode_index, entries_path, parse_tile_path, tile_path, tiles_for_size
from tests.support.vectors import load

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


@pytest.mark.parametrize("beyond", [
    "0/x036/x028/x797/x018/x963/968",  # 2**55: its first leaf would be entry 2**63
    "0/x009/x223/x372/x036/x854/x775/808", "entries/x036/x028/x797/x018/x963/968",
    "7/001", "7/000.p/128", "8/000.p/1", "63/000.p/1", "0/" + "x999/" * 40 + "999",
])
def test_tiles_beyond_any_log_are_refused(beyond: str) -> None:
    with pytest.raises(ValueError, match="beyond"):
        parse_tile_path(beyond)


def test_the_last_tiles_a_log_can_have_parse() -> None:
    last = (1 << 55) - 1  # the level-0 tile holding entry 2**63 - 2, the last a log can hold
    assert parse_tile_path(f"0/{encode_index(last)}.p/255") == (0, last, 255)
    assert parse_tile_path("7/000.p/127") == (7, 0, 127)

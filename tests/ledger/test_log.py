"""The log over real storage (SQLite and PostgreSQL): append, integrate, prove, look up."""

from __future__ import annotations

import asyncio
import random

import pytest

from ledger._internal import store as store_module
from ledger.canonical import MAX_ENTRY_BYTES
from ledger.checkpoint import Checkpoint
from ledger.errors import EntryError, NotFound
from ledger.log import Log, SequencedEntry
from ledger.merkle import leaf_hash, root_of
from ledger.note import open_note
from ledger.storage import Store
from ledger.tiles import tiles_for_size
from tests.support.vectors import load


def events(n: int, start: int = 0) -> list[dict]:
    return [{"kind": "test.event", "seq": start + i, "run": "r1", "loss": 0.5 / (i + 1)}
            for i in range(n)]


async def test_append_returns_indices_and_leaf_hashes(log: Log) -> None:
    out = await log.append(events(3))
    assert [e.leaf_index for e in out] == [0, 1, 2]
    for e in out:
        assert e.leaf_hash == leaf_hash(await log.entry(e.leaf_index))
    assert await log.store.sequenced_size() == 3
    assert await log.latest_checkpoint() is None  # not integrated yet: append is only durable


async def test_growing_tree_every_proof_checks_out(log: Log, signer) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    leaves: list[bytes] = []
    published: dict[int, bytes] = {}
    while len(leaves) < 700:  # crosses level-0 tile boundaries at 256 and 512
        batch = events(rng.choice([1, 2, 5, 31, 100, 255]), len(leaves))
        leaves += [e.leaf_hash for e in await log.append(batch)]
        cp = await log.integrate()
        assert cp is not None and cp.size == len(leaves)
        assert cp.checkpoint.root_hash == root_of(leaves)
        body = open_note(cp.note, [signer.verifier]).text
        assert Checkpoint.parse(body) == cp.checkpoint
        published[cp.size] = cp.checkpoint.root_hash
    sizes = sorted(published)
    for cold in (False, True):  # from the tile cache, then from the stored rows alone
        for size in sizes:
            for index in {0, size - 1, size // 2, rng.randrange(size)}:
                if cold:
                    log._cache.clear()
                proof = await log.inclusion_proof(index, size)
                proof.verify(leaves[index], published[size])
        for a in sizes:
            for b in sizes:
                if a <= b:
                    if cold:
                        log._cache.clear()
                    (await log.consistency_proof(a, b)).verify(published[a], published[b])


async def test_proofs_agree_with_published_vectors(log: Log) -> None:
    tree = load("rfc6962_tree.json")
    derived = load("derived_all_proofs_size8.json")
    await log.append_entries([bytes.fromhex(x) for x in tree["leaf_inputs"]])
    await log.integrate()
    for case in derived["inclusion"]:
        proof = await log.inclusion_proof(case["leafIdx"], case["treeSize"])
        assert [h.hex() for h in proof.audit_path] == case["proof"]
    for case in derived["consistency"]:
        proof = await log.consistency_proof(case["size1"], case["size2"])
        assert [h.hex() for h in proof.hashes] == case["proof"]


async def test_tiles_and_entry_bundles_rebuild_the_root(log: Log) -> None:
    """A client that knows only the tlog-tiles spec rebuilds the checkpoint's root."""
    entries = [b"entry %d" % i for i in range(600)]
    await log.append_entries(entries)
    cp = await log.integrate()
    assert cp is not None and cp.size == 600
    bundle = await log.entry_bundle(2, 600 - 512)
    parsed, pos = [], 0
    while pos < len(bundle):
        n = int.from_bytes(bundle[pos : pos + 2], "big")
        parsed.append(bundle[pos + 2 : pos + 2 + n])
        pos += 2 + n
    assert parsed == entries[512:]
    level0 = (await log.tile(0, 0) + await log.tile(0, 1) + await log.tile(0, 2, 600 - 512))
    hashes = [level0[i : i + 32] for i in range(0, len(level0), 32)]
    assert root_of(hashes) == cp.checkpoint.root_hash
    assert await log.tile(1, 0, 2) == root_of(hashes[:256]) + root_of(hashes[256:512])
    assert await log.tile(0, 2, 5) == level0[512 * 32 : 517 * 32]  # any narrower width
    for bad in [(0, 2, 256), (0, 3, 1), (1, 0, 3), (0, 0, 0), (0, -1, 1)]:
        with pytest.raises(NotFound):
            await log.tile(*bad)
    with pytest.raises(NotFound):
        await log.entry_bundle(2, 100)  # only 88 integrated


async def test_lookup_by_leaf_hash(log: Log) -> None:
    out = await log.append(events(300))
    await log.integrate()
    target = out[257]
    assert await log.find(target.leaf_hash) == [257]
    proof = await log.inclusion_proof_by_hash(target.leaf_hash)
    assert proof.leaf_index == 257
    with pytest.raises(NotFound):
        await log.inclusion_proof_by_hash(leaf_hash(b"never appended"))


async def test_an_append_returns_its_entries_as_a_sequence(log: Log) -> None:
    out = await log.append(events(5))
    hashes = [leaf_hash(await log.entry(i)) for i in range(5)]
    assert len(out) == 5 and out.first == 0 and out.leaf_hashes == hashes
    assert list(out) == [SequencedEntry(i, h) for i, h in enumerate(hashes)] == out
    assert out[-1] == SequencedEntry(4, hashes[4]) and out[1:3] == [out[1], out[2]]
    first, *_, last = out
    assert (first.leaf_index, last.leaf_index) == (0, 4) and out.index(out[3]) == 3
    with pytest.raises(IndexError):
        out[5]
    more = await log.append(events(2))
    assert more.first == 5 and more != out and [e.leaf_index for e in more] == [5, 6]
    assert len(await log.append([])) == 0


async def test_the_leaf_index_follows_the_tree(log: Log, store: Store, signer) -> None:  # type: ignore[no-untyped-def]
    """Integration leaves the leaf-hash index behind; a lookup catches it up first, and two
    logs on one database indexing at once add every row exactly once."""
    out = await log.append(events(700))
    await log.integrate()
    assert await store.leaf_index_size() == 0 and await store.leaf_index_count() == 0
    assert await log.find(out[650].leaf_hash) == [650]  # caught up by the lookup itself
    assert await store.leaf_index_size() == 700 and await store.leaf_index_count() == 700

    more = await log.append(events(600, start=700))
    await log.integrate()
    other = Log(Store(store.url), signer)
    try:
        other.INDEX_SLICE = log.INDEX_SLICE = 100  # many small slices, so the two interleave
        covered = await asyncio.gather(log.index_leaves(), other.index_leaves())
        assert covered == [1300, 1300]
        # grown by another process: a miss reads the newest tree and catches up before answering
        late = await other.append(events(3, start=1300))
        await other.integrate()
        assert await log.find(late[1].leaf_hash) == [1301]
    finally:
        await other.close()
    assert await store.leaf_index_count() == 1303
    assert await log.find(more[-1].leaf_hash) == [1299]
    assert await log.index_leaves(upto=10**9) == 1303  # never beyond the tree


async def test_both_ways_of_writing_index_rows_agree(log: Log, store: Store,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows sorted in C and fed by json_each, or sorted by the database (no C extension, or
    PostgreSQL): every integrated entry is indexed under its own hash."""
    await log.append(events(300))
    await log.append_entries([b'{"kind":"x"}'] * 2)  # a duplicate pair
    await log.integrate()
    monkeypatch.setattr(store_module, "_sorted_index_rows", None)
    assert await log.index_leaves(150) == 150
    monkeypatch.undo()
    assert await log.index_leaves() == 302
    async with store.engine.connect() as conn:
        rows = (await conn.exec_driver_sql("SELECT hash_prefix, idx FROM leaf_index")).fetchall()
    hashes = await store.level0_hashes(0, 302)
    assert sorted((bytes(p), int(i)) for p, i in rows) == sorted(
        (hashes[i * 32 : i * 32 + 8], i) for i in range(302))
    assert await log.find(leaf_hash(b'{"kind":"x"}')) == [300, 301]


async def test_a_duplicate_entry_is_found_at_both_indices(log: Log) -> None:
    await log.append([{"kind": "same"}, {"kind": "other"}, {"kind": "same"}])
    await log.integrate()
    assert await log.find(leaf_hash(b'{"kind":"same"}')) == [0, 2]


async def test_entries_are_stored_as_runs_of_entry_bundles(log: Log, store: Store) -> None:
    """A row per bundle an append touches, none crossing a multiple of 256; reads see entries."""
    sizes = [1000, 1, 1, 300, 210]
    appended: list[bytes] = []
    for n in sizes:
        batch = [f'{{"kind":"e","i":{len(appended) + i}}}'.encode() for i in range(n)]
        await log.append_entries(batch)
        appended += batch
    async with store.engine.connect() as conn:
        firsts = [int(r[0]) for r in (await conn.exec_driver_sql(
            "SELECT idx FROM entry_bundles ORDER BY idx")).fetchall()]
    assert firsts == [0, 256, 512, 768, 1000, 1001, 1002, 1024, 1280, 1302]
    assert await store.read_entries(0, 1512) == appended
    assert await store.read_entries(1000, 1003) == appended[1000:1003]
    assert await store.read_entries_at([5, 1001, 1511, 1512]) == {
        5: appended[5], 1001: appended[1001], 1511: appended[1511]}
    assert [e for chunk in [rows async for rows in store.scan_entries(0, 1512, chunk=300)]
            for e in chunk] == list(enumerate(appended))
    assert await store.entries_after(1300) == 212


async def test_concurrent_appends_share_group_commits(log: Log, store: Store) -> None:
    """Single-event appends arriving together are committed in a few transactions, and each
    caller still gets its own index and entry."""
    transactions = 0
    sequence = store.sequence

    async def counting(entries):  # type: ignore[no-untyped-def]
        nonlocal transactions
        transactions += 1
        return await sequence(entries)

    store.sequence = counting  # type: ignore[method-assign]
    out = await asyncio.gather(*(log.append(events(1, start=i)) for i in range(64)))
    indices = [o[0].leaf_index for o in out]
    assert sorted(indices) == list(range(64))
    assert transactions < 64
    await log.integrate()
    for i, (entry,) in enumerate(out):
        assert leaf_hash(await log.entry(entry.leaf_index)) == entry.leaf_hash
        assert f'"seq":{i}}}' in (await log.entry(entry.leaf_index)).decode()


async def test_bad_entries_append_nothing(log: Log) -> None:
    await log.append(events(2))
    with pytest.raises(EntryError):
        await log.append([*events(3), {"kind": "x", "blob": "a" * MAX_ENTRY_BYTES}])
    with pytest.raises(EntryError):
        await log.append_entries([b'{"a":1}', b"x" * (MAX_ENTRY_BYTES + 1)])
    with pytest.raises(EntryError):
        await log.append([{"kind": "x", "bad": float("nan")}])
    assert await log.store.sequenced_size() == 2


async def test_not_found_errors(log: Log) -> None:
    with pytest.raises(NotFound):
        await log.checkpoint()
    await log.append(events(4))
    await log.integrate()
    with pytest.raises(NotFound):
        await log.entry(4)
    with pytest.raises(NotFound):
        await log.inclusion_proof(4)
    with pytest.raises(NotFound):
        await log.inclusion_proof(0, 5)
    with pytest.raises(NotFound):
        await log.consistency_proof(2, 9)
    with pytest.raises(NotFound):
        await log.checkpoint(3)


async def test_background_integration_and_wait(log: Log) -> None:
    await log.start()
    out = await log.append(events(10))
    cp = await log.wait_for(out[-1].leaf_index, timeout=10)
    assert cp.size >= 10
    # Timestamps follow on the same loop.
    for _ in range(100):
        if not await log.timestamp_gaps():
            break
        await asyncio.sleep(0.05)
    assert await log.store.timestamps(cp.size)


async def test_wait_times_out_without_integrator(log: Log) -> None:
    out = await log.append(events(1))
    with pytest.raises(TimeoutError):
        await log.wait_for(out[0].leaf_index, timeout=0.2)


async def test_tile_layout_matches_the_spec_at_70000(store: Store, log: Log) -> None:
    """tlog-tiles' worked example: 70,000 entries -> 273 full level-0 tiles + width 112, ..."""
    example = load("tlog_tiles_paths.json")["tile_counts"][0]
    assert example["tree_size"] == 70000
    size = 0
    for start in range(0, 70000, 10000):
        await log.append_entries([b"%d" % i for i in range(start, start + 10000)])
        size += 10000
    cp = await log.integrate()
    assert cp is not None and cp.size == 70000
    for level_info in example["per_level"]:
        level = level_info["level"]
        full, partial = tiles_for_size(70000, level)
        assert (full, partial) == (level_info["full_tiles"], level_info["partial_width"])
        tiles = dict([t async for t in store.scan_tiles(level)])
        assert sum(1 for t in tiles.values() if len(t) == 256 * 32) == full
        if partial:
            assert len(tiles[full]) == partial * 32
    leaves = [leaf_hash(b"%d" % i) for i in range(70000)]
    assert cp.checkpoint.root_hash == root_of(leaves)
    for index in (0, 65535, 65536, 69999, 12345):
        (await log.inclusion_proof(index)).verify(leaves[index], cp.checkpoint.root_hash)
    (await log.consistency_proof(65536, 70000)).verify(root_of(leaves[:65536]), cp.checkpoint.root_hash)


@pytest.mark.parametrize(("url", "words"), [
    ("sqlite://", "in-memory SQLite"),
    ("sqlite:///:memory:", "in-memory SQLite"),
    ("mysql://x/y", "unusable database URL"),
    ("not a url", "unusable database URL"),
])
def test_unusable_database_urls_are_refused_clearly(url: str, words: str) -> None:
    from ledger.errors import ConfigError

    with pytest.raises(ConfigError, match=words):
        Store(url)


async def test_stop_ends_the_integrator_even_as_it_is_woken(log: Log) -> None:
    """A cancellation arriving as the integrator's wake-up event is set must stop it there
    (on Python 3.11, ``asyncio.wait_for`` swallowed it: the integrator went on integrating,
    and in CI a ``stop()`` hung for good)."""
    integrate, after_stop = log.integrate, []
    stopping = False

    async def counted() -> object:
        after_stop.append(stopping)
        return await integrate()

    log.integrate = counted  # type: ignore[method-assign]
    for _ in range(20):
        stopping = False
        await log.start()
        await asyncio.sleep(0.01)  # the integrator is now waiting for its next turn
        log._wake.set()  # a waiter wakes it ...
        stopping = True
        async with asyncio.timeout(10):
            await log.stop()  # ... just as it is stopped
        assert log._runner is None
    assert not any(after_stop)  # no integration began after a stop

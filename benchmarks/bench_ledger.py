"""Ledger speed and memory figures (issue #2). Prints them; asserts nothing.

    python benchmarks/bench_ledger.py            # everything (about 2-4 minutes here)
    python benchmarks/bench_ledger.py --quick    # 100k appends only

Figures are ratios measured in one run where a target compares two things, because this
machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.database import Database  # noqa: E402
from ledger.audit import audit_log  # noqa: E402
from ledger.canonical import canonical_event  # noqa: E402
from ledger.log import Log, SequencedEntry  # noqa: E402
from ledger.merkle import leaf_hashes  # noqa: E402
from ledger.note import Signer  # noqa: E402
from ledger.storage import Store  # noqa: E402

# One fixed key for every log here, so a log built in one process can be audited in another.
SIGNER = Signer.generate("bench.example/log")
PG_ADMIN = os.environ.get("RLHF_AUDIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def event_lines(n: int, start: int = 0) -> list[bytes]:
    """Typical audit events, as JSON Lines would bring them."""
    return [
        json.dumps({
            "kind": "training.step", "run": "run-2026-11-25-a", "step": i,
            "actor": "pseud:3f9a1c0e", "at": "2026-11-25T08:00:00.123Z",
            "metrics": {"loss": 0.6931 / (1 + i % 97), "reward_accuracy": 0.5 + (i % 50) / 100},
            "epsilon_spent": 0.0001 * (i % 1000), "dataset": "prefs@v3",
        }).encode()
        for i in range(start, start + n)
    ]


async def appends(log: Log, lines: list[bytes], batch: int) -> SequencedEntry:
    """Canonicalise and append JSON Lines in batches, one batch at a time.

    (Measured and not kept: canonicalising batch k+1 in a worker process while the log
    sequences batch k gained 3-5 %: the log's own thread, not canonicalisation, sets the pace
    once the rest is off it. Overlapping it in a thread was slower: the GIL.)"""
    last = None
    for k in range(0, len(lines), batch):
        last = (await log.append_entries([canonical_event(x) for x in lines[k : k + batch]]))[-1]
    assert last is not None
    return last


async def append_run(url: str, n: int, batch: int = 1000) -> dict[str, float]:
    store = Store(url)
    await Database(store.engine).migrate()
    log = Log(store, SIGNER, interval=0.5)
    lines = event_lines(n)
    await log.start()
    t0 = time.perf_counter()
    last = await appends(log, lines, batch)
    t_seq = time.perf_counter() - t0
    await log.wait_for(last.leaf_index, timeout=120)
    t_all = time.perf_counter() - t0
    await log.stop()
    # The leaf-hash index follows the tree off the append path (the integrator catches it up
    # when idle): timed here on its own, and counted in a second ratio.
    t0 = time.perf_counter()
    assert await log.index_leaves() == n
    t_index = time.perf_counter() - t0
    entries = [canonical_event(line) for line in lines]
    bare = {"bare_insert_per_s": n / await bare_insert(store, entries, batch)}
    if store.dialect == "sqlite":
        bare["bare_raw_per_s"] = n / bare_insert_raw(store.engine.url.database or "", entries, batch)
    await log.close()
    fastest = max(bare.values())
    return {"end_to_end_per_s": n / t_all, "sequenced_per_s": n / t_seq, **bare,
            "ratio_to_bare": (n / t_all) / fastest, "index_per_s": n / t_index,
            "with_index_per_s": n / (t_all + t_index),
            "ratio_with_index": n / (t_all + t_index) / fastest}


async def bare_insert(store: Store, entries: list[bytes], batch: int) -> float:
    """Seconds to INSERT the same entry bytes into the same database through SQLAlchemy (the
    driver's executemany, one transaction per batch)."""
    ph = "?" if store.dialect == "sqlite" else "%s"
    blob = "BLOB" if store.dialect == "sqlite" else "BYTEA"
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE TABLE bench_bare (idx BIGINT PRIMARY KEY, data {blob})")
    t0 = time.perf_counter()
    for k in range(0, len(entries), batch):
        async with store.engine.begin() as conn:
            await conn.exec_driver_sql(f"INSERT INTO bench_bare (idx, data) VALUES ({ph}, {ph})",
                                       [(k + i, e) for i, e in enumerate(entries[k : k + batch])])
    return time.perf_counter() - t0


def bare_insert_raw(path: str, entries: list[bytes], batch: int) -> float:
    """Seconds for the same INSERTs straight through ``sqlite3`` (WAL, synchronous=FULL as the
    log's), one ``executemany`` per transaction: the storage's own limit from Python."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE bench_bare_raw (idx INTEGER PRIMARY KEY, data BLOB)")
    t0 = time.perf_counter()
    for k in range(0, len(entries), batch):
        chunk = entries[k : k + batch]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO bench_bare_raw (idx, data) VALUES (?, ?)",
                         zip(range(k, k + len(chunk)), chunk, strict=True))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


async def stages(url: str, n: int = 100_000, batch: int = 1000) -> dict[str, float]:
    """µs per entry of each step of the append path, one step at a time, in this process."""
    lines = event_lines(n)
    t0 = time.perf_counter()
    entries = [canonical_event(x) for x in lines]
    t_canon = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(0, n, batch):
        leaf_hashes(entries[k : k + batch])  # as Log.append_entries does
    t_hash = time.perf_counter() - t0
    store = Store(url)
    await Database(store.engine).migrate()
    log = Log(store, SIGNER, interval=60)  # no integration while appending
    t0 = time.perf_counter()
    for k in range(0, n, batch):
        await log.append_entries(entries[k : k + batch])  # hashes, then sequences
    t_seq = time.perf_counter() - t0 - t_hash
    t0 = time.perf_counter()
    await log.integrate()  # with the leaf hashes the appends left in memory, as in a running log
    t_int = time.perf_counter() - t0
    t0 = time.perf_counter()
    await log.index_leaves()
    t_index = time.perf_counter() - t0
    await log.close()
    us = 1e6 / n
    return {"canonicalise": t_canon * us, "leaf hash": t_hash * us, "sequence": t_seq * us,
            "integrate": t_int * us, "index leaf hashes": t_index * us}


def pg_database() -> tuple[str, str]:
    import psycopg

    name = f"rlhf_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, name


def drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def build(url: str, n: int, batch: int = 10000) -> Log:
    store = Store(url, sqlite_synchronous="NORMAL")
    await Database(store.engine).migrate()
    log = Log(store, SIGNER, interval=0.5)
    lines = event_lines(n)
    for k in range(0, n, batch):
        await log.append_entries([canonical_event(x) for x in lines[k : k + batch]])
        if (k // batch) % 10 == 9:
            await log.integrate()
    await log.integrate()
    return log


async def proof_latencies(log: Log, samples: int = 2000) -> tuple[float, float]:
    """Median µs per inclusion proof: with the full-tile cache cold (emptied every call) and warm."""
    size = (await log.tree_head()).size
    rng = random.Random(1)
    cold, warm = [], []
    for _ in range(samples):
        i = rng.randrange(size)
        log._cache.clear()
        t0 = time.perf_counter()
        await log.inclusion_proof(i, size)
        cold.append(time.perf_counter() - t0)
    idx = [rng.randrange(size) for _ in range(200)]
    for i in idx:
        await log.inclusion_proof(i)
    for _ in range(samples):
        i = rng.choice(idx)
        t0 = time.perf_counter()
        await log.inclusion_proof(i, size)
        warm.append(time.perf_counter() - t0)
    return statistics.median(cold) * 1e6, statistics.median(warm) * 1e6


def peak_rss_mb() -> float:
    """This process's own high-water mark (VmHWM). ru_maxrss would include the parent's: on
    Linux it survives fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def million_child(path: str, n: int) -> None:
    """Append n entries in 1,000-entry batches with background integration; report peak RSS."""

    async def main() -> dict[str, float]:
        store = Store(f"sqlite+aiosqlite:///{path}", sqlite_synchronous="NORMAL")
        await Database(store.engine).migrate()
        log = Log(store, SIGNER, interval=0.5)
        await log.start()
        t0 = time.perf_counter()
        last = None
        for k in range(0, n, 100_000):  # generate input in slices to keep it out of the peak
            last = await appends(log, event_lines(100_000, k), 1000)
        assert last is not None
        await log.wait_for(last.leaf_index, timeout=300)
        elapsed = time.perf_counter() - t0
        await log.close()
        return {"n": n, "per_s": n / elapsed, "peak_rss_mb": peak_rss_mb()}

    print(json.dumps(asyncio.run(main())))


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print("== appending 100,000 events in batches of 1,000 (end to end incl. integration)")
        r = await append_run(f"sqlite+aiosqlite:///{tmp}/a.db", 100_000)
        print(f"SQLite:     {r['end_to_end_per_s']:>9,.0f} entries/s end to end "
              f"(sequencing alone {r['sequenced_per_s']:,.0f}/s); bare INSERT "
              f"{r['bare_insert_per_s']:,.0f} rows/s (SQLAlchemy), {r['bare_raw_per_s']:,.0f} rows/s "
              f"(sqlite3); ratio to the faster {r['ratio_to_bare']:.2f}")
        print(f"            leaf-hash index following the tree: {r['index_per_s']:,.0f} entries/s; "
              f"appends and index together {r['with_index_per_s']:,.0f}/s, ratio "
              f"{r['ratio_with_index']:.2f}")
        url, name = pg_database()
        try:
            r = await append_run(url, 100_000)
        finally:
            drop_pg(name)
        print(f"PostgreSQL: {r['end_to_end_per_s']:>9,.0f} entries/s end to end "
              f"(sequencing alone {r['sequenced_per_s']:,.0f}/s); bare INSERT "
              f"{r['bare_insert_per_s']:,.0f} rows/s; ratio {r['ratio_to_bare']:.2f}; leaf-hash "
              f"index {r['index_per_s']:,.0f} entries/s, together {r['with_index_per_s']:,.0f}/s")
        steps = await stages(f"sqlite+aiosqlite:///{tmp}/stages.db")
        print("SQLite, µs per entry, one step at a time: "
              + ", ".join(f"{name} {cost:.2f}" for name, cost in steps.items()))
        if args.quick:
            return

        print("== memory: appending 1,000,000 entries in a fresh process")
        out = subprocess.run([sys.executable, __file__, "--million-child", f"{tmp}/m.db",
                              SIGNER.skey],
                             check=True, capture_output=True, text=True).stdout
        m = json.loads(out.strip().splitlines()[-1])
        print(f"1M appends: {m['per_s']:,.0f} entries/s end to end, peak RSS {m['peak_rss_mb']:.0f} MB")

        print("== inclusion proofs (in-process, SQLite)")
        small = await build(f"sqlite+aiosqlite:///{tmp}/s.db", 10_000)
        cold_s, warm_s = await proof_latencies(small)
        await small.close()
        store = Store(f"sqlite+aiosqlite:///{tmp}/m.db")
        big = Log(store, SIGNER)
        cold_b, warm_b = await proof_latencies(big)
        print(f"10,000 entries:    median {cold_s:6.0f} µs (tile cache cold), {warm_s:5.0f} µs (warm)")
        print(f"1,000,000 entries: median {cold_b:6.0f} µs (tile cache cold), {warm_b:5.0f} µs (warm)")
        print(f"ratio 1M/10k: {cold_b / cold_s:.2f} cold, {warm_b / warm_s:.2f} warm")

        print("== verify: recomputing 1,000,000 stored leaves")
        t0 = time.perf_counter()
        report = await audit_log(big)
        elapsed = time.perf_counter() - t0
        assert report.ok, report.problems
        tree_s = report.seconds["recompute tree"]
        print(f"recomputing the tree (every leaf hash, tile and checkpoint root): {tree_s:.2f} s "
              f"= {report.entries_checked / tree_s:,.0f} leaves/s")
        print(f"whole self-audit ({report.tiles_checked:,} tiles, {report.checkpoints_checked} "
              f"checkpoints with signatures and consistency proofs): {elapsed:.2f} s = "
              f"{report.entries_checked / elapsed:,.0f} leaves/s")
        await big.close()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--million-child":
        SIGNER = Signer.from_skey(sys.argv[3])
        million_child(sys.argv[2], 1_000_000)
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="only the 100k append figures")
    asyncio.run(main(parser.parse_args()))

"""How far one PostgreSQL carries the log (issue #7): a 10,000,000-entry log, built through the
real ``Log`` API, with its append rate per segment, its size on disk and its proof costs as it
grows. Prints the figures; asserts nothing but the proofs' own correctness.

    python benchmarks/bench_scale.py                      # 10,000,000 entries (5-7 minutes here)
    python benchmarks/bench_scale.py --entries 1000000 --at 1000000    # 1M, proofs at 1M only
    python benchmarks/bench_scale.py --entries 20000 --samples 50    # smoke run

The log lives in a database of its own (``rlhf_bench_scale`` on $RLHF_AUDIT_TEST_PG's server),
created at the start and dropped at the end, on an error and on Ctrl-C or SIGTERM. Entries are
typical audit events (233 bytes canonical, as in bench_ledger.py), canonicalised and appended in
batches of 1,000 with the log's own integrator running, as a server runs it.

Each segment's line also gives CPU time per entry, of this process (including about 3.6 µs of
generating the JSON lines, which the wall rate leaves out) and of the PostgreSQL backends serving
the database: the machine's other jobs inflate wall rates far more than CPU time.

Proof figures are taken at 10k, 1M and 10M entries (those the run reaches) in the same run, so
their ratios compare like with like on this shared machine. "Cold" means the log's tile cache is
emptied before each call (every tile comes from PostgreSQL); PostgreSQL's buffers and the OS
page cache are left as they are (dropping them needs root and would disturb others' runs).
The lookup by leaf hash is timed before and after an ANALYZE: this server runs with autovacuum
off, and without statistics PostgreSQL plans the one-row lookup as a parallel query.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ledger import PG_ADMIN, SIGNER, appends, event_lines  # noqa: E402

from app.core.database import Database  # noqa: E402
from ledger.canonical import canonical_event  # noqa: E402
from ledger.log import Log  # noqa: E402
from ledger.merkle import inclusion_ranges, range_nodes  # noqa: E402
from ledger.storage import Store  # noqa: E402
from ledger.tiles import TILE_WIDTH  # noqa: E402

DB_NAME = "rlhf_bench_scale"
MILESTONES = (10_000, 1_000_000, 10_000_000)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def admin_sql(sql: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        cur = c.execute(sql)
        return list(cur.fetchall()) if cur.description else []


def create_db() -> str:
    admin_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{DB_NAME}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + DB_NAME


def drop_db() -> None:
    admin_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def db_sql(url: str, sql: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        cur = c.execute(sql)
        return list(cur.fetchall()) if cur.description else []


def sizes(url: str, n: int) -> None:
    """pg_database_size and each table's heap, indexes and TOAST, with bytes per entry."""
    (db,) = db_sql(url, "SELECT pg_database_size(current_database())")[0]
    rows = db_sql(url, """
        SELECT c.relname, pg_relation_size(c.oid), pg_indexes_size(c.oid),
               COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0),
               pg_total_relation_size(c.oid)
        FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
        WHERE s.nspname = 'public' AND c.relkind = 'r' ORDER BY 5 DESC LIMIT 6""")
    mb = 1 / 2**20
    print(f"  database {int(db) * mb:,.0f} MiB = {int(db) / n:,.0f} bytes/entry")  # type: ignore[call-overload]
    for name, heap, idx, toast, total in rows:
        print(f"    {name:12s} total {int(total) * mb:8,.1f} MiB ({int(total) / n:6.1f} B/entry): "  # type: ignore[call-overload]
              f"heap {int(heap) * mb:,.1f}, indexes {int(idx) * mb:,.1f}, TOAST {int(toast) * mb:,.1f}")  # type: ignore[call-overload]


def backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend serving this database (this machine)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for (pid,) in db_sql(url, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                              "AND pid <> pg_backend_pid()"):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(pid)] = (int(fields[11]) + int(fields[12])) / tick  # type: ignore[call-overload]
    return out


def leaf_hash(i: int) -> bytes:
    return hashlib.sha256(b"\x00" + canonical_event(event_lines(1, i)[0])).digest()


def stats(xs: list[float]) -> str:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    return f"median {statistics.median(xs) * 1e6:7.0f} µs, p99 {p99 * 1e6:7.0f} µs"


async def timed(calls: list[Callable[[], Awaitable[object]]], before: Callable[[], None] | None = None
                ) -> list[float]:
    out = []
    for call in calls:
        if before is not None:
            before()
        t0 = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t0)
    return out


async def measure(log: Log, n: int, samples: int, url: str) -> dict[str, float]:
    """Proof, lookup and tile-read latencies at tree size ``n`` (the tree is exactly n)."""
    rng = random.Random(n)
    clear = log._cache.clear
    medians: dict[str, float] = {}
    print(f"-- at {n:,} entries ({now()}, {load()})", flush=True)

    idx = [rng.randrange(n) for _ in range(samples)]
    proof = await log.inclusion_proof(idx[0], n)
    proof.verify(leaf_hash(idx[0]), (await log.tree_head()).root_hash)  # raises if wrong
    tiles = len({(h // 8, ((k << (h % 8)) >> 8)) for a, b in inclusion_ranges(idx[0], n)
                 for h, k in range_nodes(a, b)})
    cold = await timed([lambda i=i: log.inclusion_proof(i, n) for i in idx], clear)
    hot = idx[:200]
    for i in hot:
        await log.inclusion_proof(i, n)
    warm = await timed([lambda i=i: log.inclusion_proof(i, n) for i in rng.choices(hot, k=samples)])
    print(f"  inclusion proof ({len(proof.audit_path)} hashes, {tiles} tiles): cold {stats(cold)}; "
          f"warm {stats(warm)}")
    medians["inclusion_cold"], medians["inclusion_warm"] = statistics.median(cold), statistics.median(warm)

    if n > 1:
        firsts = [rng.randrange(1, n) for _ in range(samples)]
        root_n = (await log.tree_head()).root_hash
        cp = await log.consistency_proof(firsts[0], n)
        old_root = await _root_at(log, firsts[0])
        cp.verify(old_root, root_n)
        cold = await timed([lambda m=m: log.consistency_proof(m, n) for m in firsts], clear)
        hot = firsts[:200]
        for m in hot:
            await log.consistency_proof(m, n)
        warm = await timed([lambda m=m: log.consistency_proof(m, n) for m in rng.choices(hot, k=samples)])
        print(f"  consistency proof (m random, {len(cp.hashes)} hashes): cold {stats(cold)}; "
              f"warm {stats(warm)}")
        medians["consistency_cold"] = statistics.median(cold)
        medians["consistency_warm"] = statistics.median(warm)

    picked = [rng.randrange(n) for _ in range(samples)]
    hashes = [leaf_hash(i) for i in picked]
    t0 = time.perf_counter()
    assert await log.find(hashes[0]) == [picked[0]]  # the first lookup catches the index up
    print(f"  first lookup by leaf hash, catching the leaf-hash index up to {n:,}: "
          f"{time.perf_counter() - t0:.2f} s")
    look = await timed([lambda h=h: log.find(h) for h in hashes])
    (analyzed,) = db_sql(url, "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL "
                              "FROM pg_stat_user_tables WHERE relname = 'leaf_index'")[0]
    print(f"  lookup by leaf hash, statistics {'from an earlier ANALYZE' if analyzed else 'never gathered'}"
          f": {stats(look)}")
    medians["lookup_before_analyze"] = statistics.median(look)
    t0 = time.perf_counter()
    db_sql(url, "ANALYZE entry_bundles, leaf_index, tiles")
    print(f"  ANALYZE entry_bundles, leaf_index, tiles: {time.perf_counter() - t0:.1f} s")
    look = await timed([lambda h=h: log.find(h) for h in hashes])
    print(f"  lookup by leaf hash (leaf_index join level-0 tiles), after ANALYZE: {stats(look)}")
    by_hash = await timed([lambda h=h: log.inclusion_proof_by_hash(h, n) for h in hashes], clear)
    print(f"  inclusion proof by leaf hash, tile cache cold: {stats(by_hash)}")
    medians["lookup"] = statistics.median(look)

    full = n // TILE_WIDTH
    if full:
        tiles0 = [rng.randrange(full) for _ in range(samples)]
        cold = await timed([lambda t=t: log.tile(0, t) for t in tiles0], clear)
        warm_set = tiles0[:200]
        for t in warm_set:
            await log.tile(0, t)
        warm = await timed([lambda t=t: log.tile(0, t) for t in rng.choices(warm_set, k=samples)])
        print(f"  full level-0 tile (8 KiB): from PostgreSQL {stats(cold)}; "
              f"from the tile cache {stats(warm)}")
        bundles = await timed([lambda t=t: log.entry_bundle(t) for t in tiles0[: max(1, samples // 4)]])
        print(f"  full entry bundle (256 entries, ~60 KiB): {stats(bundles)}")
        medians["tile_cold"] = statistics.median(cold)
    sizes(url, n)
    sys.stdout.flush()
    return medians


async def _root_at(log: Log, size: int) -> bytes:
    """The root of the tree's first ``size`` leaves, from the tiles (as a verifier would)."""
    path = await log._range_hashes([(0, size)])
    return path[0]


async def run(url: str, n: int, batch: int, samples: int, segment: int, at: tuple[int, ...]) -> None:
    store = Store(url)
    await Database(store.engine).migrate()
    log = Log(store, SIGNER, interval=0.5)
    await log.start()
    marks = sorted({m for m in at if m <= n} | {n})
    results: dict[int, dict[str, float]] = {}
    wal0 = db_sql(url, "SELECT pg_current_wal_lsn()")[0][0]
    active = 0.0  # seconds appending and integrating, measurement pauses left out
    seg_start_active, seg_start_pos = 0.0, 0
    seg_cpu, seg_pg = time.process_time(), backend_cpu(url)
    cpu_per_entry: list[float] = []
    segs: list[float] = []
    pos = 0
    last = None
    try:
        while pos < n:
            stop = min(n, pos + 100_000, (pos // segment + 1) * segment,
                       *[m for m in marks if m > pos])
            lines = event_lines(stop - pos, pos)  # the senders' work, not timed
            t0 = time.perf_counter()
            last = await appends(log, lines, batch)
            active += time.perf_counter() - t0
            pos = stop
            if pos in marks:
                t0 = time.perf_counter()
                await log.wait_for(last.leaf_index, timeout=1800)
                active += time.perf_counter() - t0
            if pos % segment == 0 or pos == n:
                done = pos - seg_start_pos
                rate = done / (active - seg_start_active)
                segs.append(rate)
                tree = (await store.tree_head())[0]
                # CPU per entry: what the machine's other jobs do not inflate (much), unlike rates
                pg_now = backend_cpu(url)
                py_us = (time.process_time() - seg_cpu) / done * 1e6
                pg_us = sum(c - seg_pg.get(pid, 0.0) for pid, c in pg_now.items()) / done * 1e6
                cpu_per_entry.append(py_us + pg_us)
                print(f"entries {seg_start_pos:>11,}..{pos:<11,} {rate:9,.0f} entries/s; CPU/entry "
                      f"{py_us:5.1f} µs Python + {pg_us:5.1f} µs PostgreSQL backends "
                      f"(integrated {tree:,}; {now()}, {load()})", flush=True)
                seg_start_active, seg_start_pos = active, pos
                seg_cpu, seg_pg = time.process_time(), backend_cpu(url)
            if pos in marks:
                cpu0, pg0 = time.process_time(), backend_cpu(url)
                results[pos] = await measure(log, pos, samples, url)
                # leave the measuring out of the segment's CPU
                seg_cpu += time.process_time() - cpu0
                pg1 = backend_cpu(url)
                seg_pg = {pid: seg_pg.get(pid, 0.0) + c - pg0.get(pid, 0.0)
                          for pid, c in pg1.items()}
        wal1 = db_sql(url, "SELECT pg_current_wal_lsn()")[0][0]
        (wal,) = db_sql(url, f"SELECT pg_wal_lsn_diff('{wal1}', '{wal0}')")[0]
        (cps,) = db_sql(url, "SELECT count(*) FROM checkpoints")[0]
        print(f"== {n:,} entries appended and integrated in {active:,.0f} s of appending: "
              f"{n / active:,.0f} entries/s end to end; {cps:,} checkpoints")
        if len(segs) > 2:
            print(f"segment rates: first {segs[0]:,.0f}/s, last {segs[-1]:,.0f}/s, "
                  f"last/first {segs[-1] / segs[0]:.2f}, min {min(segs):,.0f}, max {max(segs):,.0f}")
            print(f"CPU per entry (Python + backends): first {cpu_per_entry[0]:.1f} µs, "
                  f"last {cpu_per_entry[-1]:.1f} µs, last/first {cpu_per_entry[-1] / cpu_per_entry[0]:.2f}")
        print(f"WAL written while building (whole cluster, others' tests included): "
              f"{float(wal) / 2**20:,.0f} MiB = {float(wal) / n:,.0f} bytes/entry")  # type: ignore[arg-type]
        base = results[marks[0]]
        for m in marks[1:]:
            r = results[m]
            print(f"ratio {m:,} / {marks[0]:,} entries: " + ", ".join(
                f"{k} {r[k] / base[k]:.2f}" for k in r if k in base and base[k] > 0))
    finally:
        await log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="entries per append call")
    parser.add_argument("--samples", type=int, default=1000, help="calls per latency figure")
    parser.add_argument("--segment", type=int, default=0,
                        help="entries per reported append-rate segment (default entries/10)")
    parser.add_argument("--at", default=",".join(map(str, MILESTONES)),
                        help="tree sizes to measure proofs at (and always at --entries)")
    args = parser.parse_args()
    at = tuple(int(x) for x in args.at.split(",") if x)
    segment = args.segment or max(1, args.entries // 10)
    need = args.entries * 2000  # about 1 KB/entry on disk and as much WAL, with margin
    data = "/var/lib/postgresql" if Path("/var/lib/postgresql").exists() else "/"
    free = shutil.disk_usage(data).free
    print(f"start {now()}, {load()}, {os.cpu_count()} CPUs; {free / 2**30:,.0f} GiB free under {data}")
    if free < need:
        sys.exit(f"needs about {need / 2**30:.0f} GiB free for {args.entries:,} entries")

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    url = create_db()
    try:
        asyncio.run(run(url, args.entries, args.batch, args.samples, segment, at))
    finally:
        drop_db()
        print(f"end {now()}, {load()}; database {DB_NAME} dropped", flush=True)


if __name__ == "__main__":
    main()

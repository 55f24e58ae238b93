"""What the SQLite append path must cost per entry, and what a different design could reach
(issue #2: "at least half the rate of a bare INSERT of the same entry bytes"). Prints figures;
changes nothing in the product and asserts nothing.

    python benchmarks/bench_write_floor.py                # floor, then the prototype (~3 min)
    python benchmarks/bench_write_floor.py --floor-only
    python benchmarks/bench_write_floor.py --reps 5

Every storage figure is 100,000 of the benchmark's events (bench_ledger.event_lines) in
transactions of 1,000 (BEGIN IMMEDIATE ... COMMIT), WAL, synchronous=FULL, on a fresh copy of
the ledger's real schema (alembic), through raw ``sqlite3``: only the storage work is timed, its
inputs (canonical bytes, leaf hashes, sorted index rows, bundle blobs, tile rows, signed notes)
are built beforehand. Figures are µs per entry (wall; CPU in brackets, process time of all
threads) and "x a" = cost / cost of (a) in the same run; repetitions are interleaved so that the
machine's noise falls on all of them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ledger import SIGNER, bare_insert_raw, event_lines  # noqa: E402

from ledger._internal.store import Store, _leaf_index_rows, _sqlite_publish, _sqlite_sequence  # noqa: E402
from ledger._internal.tree import edge_coords, extend, inner_levels, root_from_edge, tile_levels  # noqa: E402
from ledger.canonical import canonical_event  # noqa: E402
from ledger.checkpoint import Checkpoint  # noqa: E402
from ledger.merkle import fold_level  # noqa: E402
from ledger.note import sign_note  # noqa: E402

N = 100_000
BATCH = 1000
BUNDLE = 256
_sha256 = hashlib.sha256
AT = "2026-11-25 14:32:00.000000"

# The bundle layout: C2SP entry bundles (2-byte big-endian length + entry, 256 per bundle), one
# row per bundle; the partial last bundle is rewritten whole as later batches fill it.
BUNDLE_DDL = "CREATE TABLE entry_bundles (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)"
BUNDLE_UPSERT = ("INSERT INTO entry_bundles (idx, data) VALUES (?, ?) "
                 "ON CONFLICT (idx) DO UPDATE SET data = excluded.data")
# The leaf-hash index rows of a batch in one statement, sorted by SQLite itself: ?1 is the
# batch's leaf hashes concatenated (what the tile is made of anyway), ?2 the first index, ?3 the
# count. One sqlite3_step, so one GIL release for the whole batch instead of one per row.
INDEX_SQL = ("WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?3) "
             "INSERT INTO leaf_index (hash_prefix, idx) "
             "SELECT substr(?1, i * 32 + 1, 8), ?2 + i FROM s ORDER BY 1, 2")
SEQ_SQL = "UPDATE log_sequence SET next_index = next_index + ? WHERE id = 1 RETURNING next_index"


def load() -> tuple[float, float, float]:
    return os.getloadavg()


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def template_db(tmp: str) -> str:
    """The ledger's own schema (alembic head) plus the bundle table, once; copied per run."""
    path = f"{tmp}/template.db"

    async def go() -> None:
        store = Store(f"sqlite+aiosqlite:///{path}")
        await store.migrate()
        await store.close()

    asyncio.run(go())
    conn = sqlite3.connect(path)
    conn.execute(BUNDLE_DDL)
    conn.execute("PRAGMA journal_mode=DELETE")  # one file to copy
    conn.commit()
    conn.close()
    return path


class Data:
    """Every input the storage runs need, built once (outside the timings)."""

    def __init__(self) -> None:
        self.lines = event_lines(N)
        self.entries = [canonical_event(x) for x in self.lines]
        self.hashes = [_sha256(b"\x00" + e).digest() for e in self.entries]
        self.starts = list(range(0, N, BATCH))
        self.index_rows = [_leaf_index_rows(k, self.hashes[k : k + BATCH]) for k in self.starts]
        self.hash_blobs = [b"".join(self.hashes[k : k + BATCH]) for k in self.starts]
        framed = [len(e).to_bytes(2, "big") + e for e in self.entries]
        self.bundles = [bundle_writes(framed, k, BATCH) for k in self.starts]
        self.tiles, self.notes, self.roots = integration_inputs(self.hashes)
        self.bytes_per_entry = sum(map(len, self.entries)) / N


def bundle_writes(framed: Sequence[bytes], k: int, n: int) -> list[tuple[int, bytes]]:
    """The bundle rows a batch [k, k+n) writes: the partial bundle it extends, whole, and any new."""
    out = []
    for b in range(k // BUNDLE, (k + n - 1) // BUNDLE + 1):
        out.append((b, b"".join(framed[b * BUNDLE : min((b + 1) * BUNDLE, k + n)])))
    return out


def integrate_batch(size: int, edge: dict[tuple[int, int], bytes], hs: Sequence[bytes]) -> tuple[
        int, dict[tuple[int, int], bytes], list[tuple[int, int, bytes, bytes | None]], bytes]:
    """What Log._integrate_batch computes for one batch: tiles (with inner levels), root."""
    new_size, writes, completed = extend(size, edge, hs)
    new_edge = {k: writes.get(k, edge.get(k, b"")) for k in edge_coords(new_size)}
    root = root_from_edge(new_size, new_edge)
    edge_lv = {k: tile_levels(new_edge[k]) for k in edge_coords(new_size) if k not in completed}
    inner = {key: inner_levels(levels) for key, levels in (completed | edge_lv).items()}
    rows = [(lv, ix, h, inner.get((lv, ix))) for (lv, ix), h in writes.items()]
    return new_size, new_edge, rows, root


def integration_inputs(hashes: list[bytes]) -> tuple[list[list[tuple[int, int, bytes, bytes | None]]],
                                                     list[bytes], list[bytes]]:
    size, edge = 0, {}
    tiles, notes, roots = [], [], []
    for k in range(0, N, BATCH):
        size, edge, rows, root = integrate_batch(size, edge, hashes[k : k + BATCH])
        tiles.append(rows)
        roots.append(root)
        notes.append(sign_note(Checkpoint(SIGNER.name, size, root).body(), [SIGNER]))
    return tiles, notes, roots


# -- storage runs ------------------------------------------------------------------------------


def run_txns(path: str, body: Callable[[sqlite3.Connection, int], None],
             batches: int = N // BATCH) -> tuple[float, float]:
    """(wall, cpu) seconds for ``batches`` transactions of ``body(conn, batch number)``."""
    conn = connect(path)
    w0, c0 = time.perf_counter(), time.process_time()
    for b in range(batches):
        conn.execute("BEGIN IMMEDIATE")
        body(conn, b)
        conn.execute("COMMIT")
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    conn.close()
    return wall, cpu


def storage_variants(d: Data) -> dict[str, Callable[[sqlite3.Connection, int], None]]:
    def entries_rows(conn: sqlite3.Connection, b: int) -> None:  # the ledger's own sequencing call
        _sqlite_sequence(conn, d.entries[b * BATCH : (b + 1) * BATCH])

    def index_rows(conn: sqlite3.Connection, b: int) -> None:  # as _sqlite_publish inserts them
        conn.executemany("INSERT INTO leaf_index (hash_prefix, idx) VALUES (?, ?)", d.index_rows[b])

    def index_sql(conn: sqlite3.Connection, b: int) -> None:
        conn.execute(INDEX_SQL, (d.hash_blobs[b], b * BATCH, BATCH))

    def bundles(conn: sqlite3.Connection, b: int) -> None:
        conn.execute(SEQ_SQL, (BATCH,)).fetchone()
        conn.executemany(BUNDLE_UPSERT, d.bundles[b])

    def tiles_cp(conn: sqlite3.Connection, b: int) -> None:  # the ledger's publish, no index rows
        assert _sqlite_publish(conn, b * BATCH, (b + 1) * BATCH, d.roots[b], d.notes[b], AT,
                               d.tiles[b], [])

    def publish(conn: sqlite3.Connection, b: int) -> None:  # the ledger's publish, whole
        assert _sqlite_publish(conn, b * BATCH, (b + 1) * BATCH, d.roots[b], d.notes[b], AT,
                               d.tiles[b], d.index_rows[b])

    def current(conn: sqlite3.Connection, b: int) -> None:
        entries_rows(conn, b)
        publish(conn, b)

    def bundle_all(conn: sqlite3.Connection, b: int) -> None:
        bundles(conn, b)
        index_sql(conn, b)
        tiles_cp(conn, b)

    def index_every(m: int) -> Callable[[sqlite3.Connection, int], None]:
        # Index rows written once per m entries (as an integrator that runs less often would),
        # in the transaction of the batch that completes them: one INSERT..SELECT.
        def body(conn: sqlite3.Connection, b: int) -> None:
            end = (b + 1) * BATCH
            if end % m == 0 or end == N:
                start = (end - 1) // m * m
                conn.execute(INDEX_SQL, (b"".join(d.hashes[start:end]), start, end - start))
        return body

    every64k = index_every(64000)
    return {
        "b1 entries rows (ledger's _sqlite_sequence)": entries_rows,
        "b2 leaf-index rows, sorted, executemany": index_rows,
        "b3 leaf-index rows, one INSERT..SELECT": index_sql,
        "b3' leaf-index rows once per 8,000 entries": index_every(8000),
        "b3\" leaf-index rows once per 64,000 entries": index_every(64000),
        "b4 entries rows + leaf-index rows": lambda c, b: (entries_rows(c, b), index_rows(c, b)),
        "c1 bundles of 256 (partial rewritten)": bundles,
        "c2 bundles + leaf-index rows (executemany)": lambda c, b: (bundles(c, b), index_rows(c, b)),
        "c3 bundles + leaf-index rows (one statement)": lambda c, b: (bundles(c, b), index_sql(c, b)),
        "d1 tiles + tree row + checkpoint row": tiles_cp,
        "d2 ledger's publish (d1 + leaf-index rows)": publish,
        "S1 current, fused: b1 + d2 in one txn": current,
        "S2 bundle, fused: c3 + d1 in one txn": bundle_all,
        "S3 bundle, fused, index per 64,000: c1+d1+b3\"": lambda c, b: (bundles(c, b), tiles_cp(c, b),
                                                                      every64k(c, b)),
        "S4 current rows, fused, index per 64,000: b1+d1+b3\"": lambda c, b: (
            entries_rows(c, b), tiles_cp(c, b), every64k(c, b)),
    }


def measure_storage(d: Data, tmp: str, template: str, reps: int) -> dict[str, list[tuple[float, float]]]:
    variants = storage_variants(d)
    out: dict[str, list[tuple[float, float]]] = {"a  bare INSERT (bench_ledger.bare_insert_raw)": []}
    out.update({name: [] for name in variants})
    for rep in range(reps):
        for name in out:
            path = f"{tmp}/run.db"
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
            shutil.copy(template, path)
            if name.startswith("a "):
                c0 = time.process_time()
                wall = bare_insert_raw(path, d.entries, BATCH)
                out[name].append((wall, time.process_time() - c0))
            else:
                out[name].append(run_txns(path, variants[name]))
        print(f"  storage repetition {rep + 1}/{reps} done, load {load()[0]:.2f}", flush=True)
    return out


# -- pure Python -------------------------------------------------------------------------------


def best(fn: Callable[[], object], reps: int) -> float:
    """Best of ``reps`` wall seconds (these are CPU-bound: the best is the least disturbed)."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def inner_nodes(hashes: list[bytes]) -> int:
    """Every inner node of the perfect subtrees over ``hashes``: about one 65-byte SHA-256 a leaf."""
    level, count = hashes, 0
    while len(level) > 1:
        level = fold_level(level[: len(level) & ~1])
        count += len(level)
    return count


def integration_hashing(d: Data) -> None:
    size, edge = 0, {}
    for k in d.starts:
        size, edge, _, root = integrate_batch(size, edge, d.hashes[k : k + BATCH])


def measure_python(d: Data, reps: int) -> dict[str, float]:
    objs = [orjson.loads(x) for x in d.lines]
    sort = orjson.OPT_SORT_KEYS
    framed = [len(e).to_bytes(2, "big") + e for e in d.entries]
    body = Checkpoint(SIGNER.name, N, d.roots[-1]).body()
    loads, dumps = orjson.loads, orjson.dumps
    figures = {
        "orjson.loads of the JSON line": lambda: [loads(x) for x in d.lines],
        "orjson.dumps(SORT_KEYS) of the parsed event": lambda: [dumps(o, option=sort) for o in objs],
        "orjson loads + dumps (a compiled JCS's likely cost)":
            lambda: [dumps(loads(x), option=sort) for x in d.lines],
        "canonical_event (current RFC 8785)": lambda: [canonical_event(x) for x in d.lines],
        "leaf hash, SHA-256(0x00 || entry)": lambda: [_sha256(b"\x00" + e).digest() for e in d.entries],
        "inner nodes only, SHA-256 of 65 bytes": lambda: inner_nodes(d.hashes),
        "integration hashing per 1,000 (extend, edge levels, root)": lambda: integration_hashing(d),
        "leaf-index rows sorted (_leaf_index_rows)":
            lambda: [_leaf_index_rows(k, d.hashes[k : k + BATCH]) for k in d.starts],
        "hashes joined per batch (index SQL / tile input)":
            lambda: [b"".join(d.hashes[k : k + BATCH]) for k in d.starts],
        "bundle framing (length prefix + join, partial rejoined)":
            lambda: [bundle_writes([len(e).to_bytes(2, "big") + e for e in d.entries[k : k + BATCH]],
                                   0, BATCH) for k in d.starts],
        "bundle join only (framed beforehand)": lambda: [bundle_writes(framed, k, BATCH) for k in d.starts],
        "checkpoint signature, one per 1,000": lambda: [sign_note(body, [SIGNER]) for _ in d.starts],
    }
    return {name: best(fn, reps) * 1e6 / N for name, fn in figures.items()}


# -- report ------------------------------------------------------------------------------------


def report_storage(runs: dict[str, list[tuple[float, float]]]) -> float:
    a_name = next(iter(runs))
    a_med = statistics.median(w for w, _ in runs[a_name]) * 1e6 / N
    print(f"\n(a)-(d) storage, µs per entry: median of {len(runs[a_name])} [min-max] (CPU median) x a")
    for name, rs in runs.items():
        walls = [w * 1e6 / N for w, _ in rs]
        cpus = [c * 1e6 / N for _, c in rs]
        med = statistics.median(walls)
        print(f"  {name:<48} {med:6.2f} [{min(walls):5.2f}-{max(walls):5.2f}] "
              f"(CPU {statistics.median(cpus):5.2f})  {med / a_med:5.2f} x a")
    return a_med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--floor-only", action="store_true")
    args = parser.parse_args()
    print(f"start {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, load average {load()}, "
          f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        template = template_db(tmp)
        d = Data()
        print(f"{N:,} events, {d.bytes_per_entry:.0f} canonical bytes each on average")
        runs = measure_storage(d, tmp, template, args.reps)
        a_us = report_storage(runs)
        py = measure_python(d, max(args.reps, 3))
        print(f"\n(e) pure Python, µs per entry (best of {max(args.reps, 3)}), x a")
        for name, us in py.items():
            print(f"  {name:<58} {us:6.2f}  {us / a_us:5.2f} x a")
        if not args.floor_only:
            from bench_write_prototype import run_prototype

            run_prototype(d, tmp, template, a_us, args.reps)
    print(f"\nend {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, load average {load()}")


if __name__ == "__main__":
    main()

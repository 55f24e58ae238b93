"""A prototype of the SQLite append path in the "bundle" design, end to end, timed against the
bare INSERT (issue #2). Run through ``bench_write_floor.py`` (which builds the inputs and
measures the baseline in the same run); not part of the product.

The design, per batch of 1,000 JSON lines, in one transaction (sequencing and integration fused:
one fsync, one checkpoint per batch):

* canonicalise each line (``ledger.canonical.canonical_event``; or, to bound what a compiled
  encoder would give, orjson loads+dumps as a stand-in, or nothing: entries canonical already);
* leaf hashes; the tiles extended (``ledger._internal.tree.extend``, edge tiles with their inner
  levels, as the integrator stores them), the root, a signed checkpoint note;
* entries stored as C2SP entry bundles, 256 per row (the partial last one rewritten);
* tiles upserted, the tree row updated conditionally, the checkpoint row inserted (the ledger's
  own ``_sqlite_publish`` with no index rows);
* the leaf-hash index written once per 64,000 entries (and at the end) by one INSERT..SELECT over
  the concatenated leaf hashes; a lookup would scan the un-indexed tail's level-0 tiles.

Three ways to run the storage half: ``serial`` (one thread), ``thread`` (the transaction of batch
k in a writer thread while the main thread prepares batch k+1; few statements per transaction,
so few GIL hand-offs; switch interval lowered to 0.1 ms) and ``process`` (the same in a spawned
writer process that owns the connection; batches go over a pipe).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from bench_write_floor import (
    AT,
    BATCH,
    BUNDLE,
    BUNDLE_UPSERT,
    INDEX_SQL,
    SEQ_SQL,
    SIGNER,
    Data,
    N,
    bare_insert_raw,
    connect,
    integrate_batch,
    load,
)

from ledger._internal.store import _sqlite_publish
from ledger.canonical import canonical_event
from ledger.checkpoint import Checkpoint
from ledger.note import sign_note

INDEX_EVERY = 64_000
_sha256 = hashlib.sha256
_SORT = orjson.OPT_SORT_KEYS

# What one transaction writes: first index, bundle rows, tile rows, root, note, index flush.
Work = tuple[int, list[tuple[int, bytes]], list[Any], bytes, bytes, tuple[bytes, int, int] | None]


def _orjson_stand_in(line: bytes) -> bytes:
    return orjson.dumps(orjson.loads(line), option=_SORT)


CANONICALISERS: dict[str, Callable[[bytes], bytes] | None] = {
    "canonical_event": canonical_event,
    "orjson stand-in": _orjson_stand_in,
    "free (pre-canonicalised)": None,
}


def write(conn: sqlite3.Connection, work: Work) -> None:
    """One batch's transaction."""
    first, bundles, tiles, root, note, index = work
    n = BATCH
    conn.execute("BEGIN IMMEDIATE")
    (nxt,) = conn.execute(SEQ_SQL, (n,)).fetchone()
    if nxt - n != first:
        raise RuntimeError(f"sequence at {nxt - n}, expected {first}")
    conn.executemany(BUNDLE_UPSERT, bundles)
    if not _sqlite_publish(conn, first, first + n, root, note, AT, tiles, []):
        raise RuntimeError("lost the tree row")
    if index is not None:
        conn.execute(INDEX_SQL, index)
    conn.execute("COMMIT")


class Preparer:
    """The CPU half: canonicalise, hash, frame bundles, extend the tiles, sign."""

    def __init__(self, canon: Callable[[bytes], bytes] | None) -> None:
        self.canon = canon
        self.size = 0
        self.edge: dict[tuple[int, int], bytes] = {}
        self.tail: list[bytes] = []  # framed entries of the partial last bundle
        self.unindexed: list[bytes] = []
        self.indexed = 0

    def batch(self, lines: Sequence[bytes], pre: Sequence[bytes]) -> Work:
        entries = pre if self.canon is None else [self.canon(x) for x in lines]
        hashes = [_sha256(b"\x00" + e).digest() for e in entries]
        first = self.size
        bundles = []
        framed = self.tail + [len(e).to_bytes(2, "big") + e for e in entries]
        b0 = first // BUNDLE
        for j in range(0, len(framed), BUNDLE):
            bundles.append((b0 + j // BUNDLE, b"".join(framed[j : j + BUNDLE])))
        cut = len(framed) - len(framed) % BUNDLE
        self.tail = framed[cut:]
        self.size, self.edge, tiles, root = integrate_batch(first, self.edge, hashes)
        note = sign_note(Checkpoint(SIGNER.name, self.size, root).body(), [SIGNER])
        self.unindexed += hashes
        index = None
        if self.size % INDEX_EVERY == 0 or self.size == N:
            index = (b"".join(self.unindexed), self.indexed, len(self.unindexed))
            self.indexed, self.unindexed = self.size, []
        return first, bundles, tiles, root, note, index


def _writer_process(path: str, inbox: Any) -> None:
    conn = connect(path)
    inbox.send(True)  # ready
    while True:
        work = inbox.recv()
        if work is None:
            break
        write(conn, work)
        inbox.send(True)
    conn.close()
    inbox.send(True)


def run_mode(d: Data, path: str, canon: Callable[[bytes], bytes] | None, mode: str) -> tuple[float, float]:
    """(wall, CPU of this process) seconds to append all N lines in batches of BATCH."""
    prep = Preparer(canon)
    starts = d.starts
    if mode == "process":
        # spawn, not fork: a forked child would share this process's pages, and every refcount
        # the parent then touches would cost a copy-on-write fault (a writer started with the
        # server would not have that). Started and ready before the clock starts.
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_writer_process, args=(path, child))
        proc.start()
        parent.recv()
    else:
        conn = connect(path)
        pool = ThreadPoolExecutor(1) if mode == "thread" else None
    w0, c0 = time.perf_counter(), time.process_time()
    pending: Future[None] | bool | None = None
    for k in starts:
        work = prep.batch(d.lines[k : k + BATCH], d.entries[k : k + BATCH])
        if mode == "serial":
            write(conn, work)
        elif mode == "thread":
            if isinstance(pending, Future):
                pending.result()
            pending = pool.submit(write, conn, work)  # type: ignore[union-attr]
        else:
            if pending:
                parent.recv()
            parent.send(work)
            pending = True
    if mode == "thread" and isinstance(pending, Future):
        pending.result()
    elif mode == "process":
        if pending:
            parent.recv()
        parent.send(None)
        parent.recv()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    if mode == "process":
        proc.join()
    else:
        conn.close()
        if pool is not None:
            pool.shutdown()
    return wall, cpu


def check(d: Data, path: str, exact: bool) -> None:
    """The prototype's database holds what the ledger's would: entries, root, index. (The orjson
    stand-in is not RFC 8785 for every float, e.g. 0.0, so its bytes and root differ.)"""
    conn = sqlite3.connect(path)
    size, root = conn.execute("SELECT size, root_hash FROM log_tree").fetchone()
    assert size == N and (root == d.roots[-1] or not exact), "wrong tree"
    blob = b"".join(r[0] for r in conn.execute("SELECT data FROM entry_bundles ORDER BY idx"))
    out, pos = [], 0
    while pos < len(blob):
        n = int.from_bytes(blob[pos : pos + 2], "big")
        out.append(blob[pos + 2 : pos + 2 + n])
        pos += 2 + n
    (count,) = conn.execute("SELECT COUNT(*) FROM leaf_index").fetchone()
    assert count == N, f"{count} index rows"
    probe = d.hashes[12345]
    rows = conn.execute("SELECT idx FROM leaf_index WHERE hash_prefix = ?", (probe[:8],)).fetchall()
    assert (12345,) in rows or not exact, "index lookup"
    conn.close()
    assert len(out) == N, f"{len(out)} entries"
    assert out == d.entries or not exact, "entries"


def fresh(tmp: str, template: str) -> str:
    path = f"{tmp}/proto.db"
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    shutil.copy(template, path)
    return path


def run_prototype(d: Data, tmp: str, template: str, a_floor_us: float, reps: int) -> None:
    sys.setswitchinterval(1e-4)
    modes = ("serial", "thread", "process")
    configs = [(c, m) for c in CANONICALISERS for m in modes]
    if d.entries[:1000] != [canonical_event(x) for x in d.lines[:1000]]:
        raise RuntimeError("inputs")
    results: dict[str, list[tuple[float, float]]] = {"a": []}
    print(f"\n== prototype (bundle design), {N:,} lines in batches of {BATCH:,}; "
          f"load {load()}")
    for rep in range(reps):
        c0 = time.process_time()
        results["a"].append((bare_insert_raw(fresh(tmp, template), d.entries, BATCH),
                             time.process_time() - c0))
        for canon, mode in configs:
            path = fresh(tmp, template)
            results.setdefault(f"{canon} / {mode}", []).append(
                run_mode(d, path, CANONICALISERS[canon], mode))
            check(d, path, exact=CANONICALISERS[canon] is not _orjson_stand_in)
        print(f"  prototype repetition {rep + 1}/{reps} done, load {load()[0]:.2f}", flush=True)
    a = [w * 1e6 / N for w, _ in results["a"]]
    print(f"(a) in these repetitions: {', '.join(f'{x:.2f}' for x in a)} µs/entry "
          f"(floor section: {a_floor_us:.2f})")
    print("µs per entry end to end per repetition; ratio = rate / rate of (a) of the same "
          "repetition (the issue's ratio, target >= 0.5); main process CPU")
    for name, rs in results.items():
        if name == "a":
            continue
        us = [w * 1e6 / N for w, _ in rs]
        ratios = [ai / ui for ai, ui in zip(a, us, strict=True)]
        cpu = statistics.median(c * 1e6 / N for _, c in rs)
        print(f"  {name:<38} {' '.join(f'{u:5.2f}' for u in us)}   ratio "
              f"{' '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})"
              f"   CPU {cpu:.2f}")
    print(f"  (pid {os.getpid()}; switch interval {sys.getswitchinterval() * 1e3:.1f} ms)")

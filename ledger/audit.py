"""The self-audit: recompute the whole tree from stored entries and check everything stored.

It trusts nothing in the database: every entry's leaf hash, every tile, every checkpoint's
root, signature and timestamps, the consistency chain between checkpoints, the sequence and
tree rows and the leaf index. Each problem is reported with where it is, and the audit goes on
to report the rest.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any
from dataclasses import dataclass, field

from cryptography import x509

from ._internal.store import Store
from ._internal.tree import HASH, hash_entries, inner_levels, root_from_edge, tile_levels
from .checkpoint import Checkpoint
from .errors import LedgerError, VerificationError
from .log import Log
from .note import Verifier, open_note
from .tiles import TILE_HEIGHT, TILE_WIDTH
from .timestamp_verify import verify_timestamp

__all__ = ["AuditReport", "audit_log"]

_sha256 = hashlib.sha256


@dataclass
class AuditReport:
    tree_size: int = 0
    sequenced: int = 0
    entries_checked: int = 0
    tiles_checked: int = 0
    checkpoints_checked: int = 0
    timestamps_checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _TileRebuilder:
    """Rebuilds tiles level by level from a stream of leaf hashes, comparing stored ones."""

    def __init__(self, report: AuditReport, max_problems: int) -> None:
        self.levels: list[list[bytes]] = []
        self.report = report
        self.max_problems = max_problems
        # (level, index, hashes, inner levels for full tiles) still to compare with storage
        self.completed: list[tuple[int, int, bytes, bytes | None]] = []

    def push_many(
        self, level: int, hashes: list[bytes], start: int, known: dict[int, bytes] | None = None
    ) -> None:
        """Add hashes at ``level`` from position ``start``; ``known`` has the inner levels of
        level-0 tiles already computed elsewhere (by the process pool)."""
        while len(self.levels) <= level:
            self.levels.append([])
        buf = self.levels[level]
        pos = 0
        index = (start + pos) >> TILE_HEIGHT
        while pos < len(hashes):
            take = min(TILE_WIDTH - len(buf), len(hashes) - pos)
            buf.extend(hashes[pos : pos + take])
            pos += take
            if len(buf) == TILE_WIDTH:
                index = (start + pos - 1) >> TILE_HEIGHT
                data = b"".join(buf)
                inner = known.get(index) if known is not None and level == 0 else None
                if inner is None:
                    inner = inner_levels(tile_levels(data))
                self.completed.append((level, index, data, inner))
                root = inner[-HASH:]
                buf.clear()
                self.push_many(level + 1, [root], index)

    def edge(self, size: int) -> dict[tuple[int, int], bytes]:
        out = {}
        for level, buf in enumerate(self.levels):
            if buf:
                out[(level, (size >> (TILE_HEIGHT * level)) >> TILE_HEIGHT)] = b"".join(buf)
        return out


async def audit_log(
    log: Log,
    *,
    log_key: Verifier | None = None,
    tsa_roots: Sequence[x509.Certificate] = (),
    required_tsas: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
    max_problems: int = 50,
    workers: int | None = None,
) -> AuditReport:
    """Check the stored log end to end. ``log_key`` defaults to the log's own key."""
    store: Store = log.store
    report = AuditReport()
    verifier = log_key or log.signer.verifier
    say = progress or (lambda _msg: None)

    def problem(msg: str) -> None:
        if len(report.problems) < max_problems:
            report.problems.append(msg)
        elif len(report.problems) == max_problems:
            report.problems.append("... more problems not shown")

    report.tree_size, tree_root = await store.tree_head()
    report.sequenced = await store.sequenced_size()
    if report.sequenced < report.tree_size:
        problem(f"sequence counter {report.sequenced} is behind the tree size {report.tree_size}")
    extra = await store.entries_after(report.sequenced)
    if extra:
        problem(f"{extra} entry rows sit beyond the sequence counter {report.sequenced}")

    checkpoints = [c async for c in store.scan_checkpoints()]
    sizes = [c[0] for c in checkpoints]
    roots: dict[int, bytes] = {}
    if 0 in sizes:
        roots[0] = _sha256(b"").digest()
    targets = sorted(s for s in sizes if 0 < s <= report.tree_size)
    beyond = [s for s in sizes if s > report.tree_size]
    for s in beyond:
        problem(f"checkpoint {s} is beyond the tree size {report.tree_size}")

    say(f"recomputing the tree over {report.tree_size} entries")
    rebuild = _TileRebuilder(report, max_problems)
    expected = 0
    t_iter = iter(targets)
    next_target = next(t_iter, None)
    async for start, (blob, known) in _hashed_chunks(store, report.sequenced, workers):
        if start is None:
            problem(f"entry {blob!r} is missing (rows deleted or renumbered)")
            return await _finish(report, say)
        assert start == expected
        hashes = [blob[i : i + HASH] for i in range(0, len(blob), HASH)]
        chunk = hashes
        report.entries_checked += len(chunk)
        # Only the integrated prefix is in the tree; stop feeding the rebuild at its size.
        usable = max(0, min(len(hashes), report.tree_size - expected))
        pos = 0
        while next_target is not None and next_target <= expected + usable:
            cut = next_target - expected
            rebuild.push_many(0, hashes[pos:cut], expected + pos, known)
            pos = cut
            roots[next_target] = root_from_edge(next_target, rebuild.edge(next_target))
            next_target = next(t_iter, None)
        rebuild.push_many(0, hashes[pos:usable], expected + pos, known)
        expected += len(chunk)
        await _compare_tiles(store, rebuild, report, problem)
    if expected < report.sequenced:
        problem(f"entries {expected}..{report.sequenced - 1} are missing")
    # The partial tiles at the edge of the tree must match too.
    edge = rebuild.edge(report.tree_size)
    rebuild.completed.extend((lv, ix, data, None) for (lv, ix), data in edge.items())
    await _compare_tiles(store, rebuild, report, problem)

    root = root_from_edge(report.tree_size, edge)
    if root != tree_root:
        problem(f"the tree row's root does not match the root recomputed over {report.tree_size} entries")
    leaf_rows = await store.leaf_index_count()
    if leaf_rows != report.tree_size:
        problem(f"the leaf-hash index has {leaf_rows} rows for {report.tree_size} entries")

    say(f"checking {len(checkpoints)} checkpoints")
    stamps = await store.all_timestamps()
    previous: tuple[int, bytes] | None = None
    for size, stored_root, note in checkpoints:
        report.checkpoints_checked += 1
        try:
            opened = open_note(note, [verifier])
            cp = Checkpoint.parse(opened.text)
        except VerificationError as e:
            problem(f"checkpoint {size}: {e}")
            continue
        if cp.origin != log.origin or cp.size != size:
            problem(f"checkpoint {size}: its note says origin {cp.origin!r}, size {cp.size}")
        expected_root = roots.get(size)
        if expected_root is None:
            continue
        if cp.root_hash != expected_root or stored_root != expected_root:
            problem(f"checkpoint {size}: root does not match the entries (tree rewritten?)")
            continue
        if previous is not None and previous[0] > 0:
            try:
                proof = await log.consistency_proof(previous[0], size)
                proof.verify(previous[1], expected_root)
            except LedgerError as e:
                problem(f"checkpoints {previous[0]} -> {size}: consistency proof fails: {e}")
        previous = (size, expected_root)
        await _check_timestamps(size, note, stamps.get(size, {}), tsa_roots, required_tsas,
                                report, problem)
    if checkpoints and checkpoints[-1][0] != report.tree_size:
        problem(f"the newest checkpoint ({checkpoints[-1][0]}) is not the tree size {report.tree_size}")
    return await _finish(report, say)


PARALLEL_FROM = 200_000  # entries; below this a process pool costs more than it saves


async def _hashed_chunks(
    store: Store, end: int, workers: int | None
) -> AsyncIterator[tuple[int | None, tuple[Any, dict[int, bytes]]]]:
    """(start, (leaf hashes blob, inner levels of full tiles)) per chunk of entries, in order.

    Leaf and tile hashing is pure Python hashlib (about 2.4 µs a leaf, all under the GIL), so
    large logs are hashed by a pool of processes while this one reads the next chunks. The
    pool forks (rather than spawns) so that callers need no ``__main__`` guard; the children
    only run ``hash_entries``.
    A gap in the indices yields (None, (the first missing index, {})) and stops.
    """
    if workers is None:  # automatic: a pool only where it pays
        n = (os.cpu_count() or 1) if end >= PARALLEL_FROM else 1
    else:
        n = workers
    pool = None
    if n > 1:
        pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("fork"))
    loop = asyncio.get_running_loop()
    pending: deque[tuple[int, asyncio.Future[tuple[bytes, dict[int, bytes]]]]] = deque()
    expected = 0
    try:
        async for rows in store.scan_entries(0, end):
            if rows and (rows[0][0] != expected or rows[-1][0] != expected + len(rows) - 1):
                present = {i for i, _ in rows}
                missing = next(i for i in range(expected, expected + len(rows) + 1)
                               if i not in present)
                while pending:
                    start, fut = pending.popleft()
                    yield start, await fut
                yield None, (missing, {})
                return
            datas = [d for _, d in rows]
            if pool is None:
                yield expected, hash_entries(expected, datas)
            else:
                pending.append((expected, loop.run_in_executor(pool, hash_entries, expected, datas)))
                if len(pending) > n:
                    start, fut = pending.popleft()
                    yield start, await fut
            expected += len(rows)
        while pending:
            start, fut = pending.popleft()
            yield start, await fut
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


async def _compare_tiles(store: Store, rebuild: _TileRebuilder, report: AuditReport,
                         problem: Callable[[str], None]) -> None:
    if not rebuild.completed:
        return
    stored = await store.read_tile_rows((lv, ix) for lv, ix, _, _ in rebuild.completed)
    for level, index, data, inner in rebuild.completed:
        report.tiles_checked += 1
        have, have_inner = stored.get((level, index), (None, None))
        if have is None:
            problem(f"tile {level}/{index} is missing")
        elif inner is not None and have_inner is not None and have_inner != inner and have == data:
            problem(f"tile {level}/{index}: its stored inner levels differ from its hashes")
        elif have[: len(data)] != data:
            first = next(i for i in range(0, len(data), HASH) if have[i : i + HASH] != data[i : i + HASH])
            pos = first // HASH
            where = f" (entry {index * 256 + pos})" if level == 0 else ""
            problem(f"tile {level}/{index}: hash {pos}{where} differs from the tree recomputed "
                    "from the entries")
    rebuild.completed.clear()


async def _check_timestamps(size: int, note: bytes, stamps: dict[str, bytes],
                            roots: Sequence[x509.Certificate], required: Sequence[str],
                            report: AuditReport, problem: Callable[[str], None]) -> None:
    for tsa in required:
        if tsa not in stamps:
            problem(f"checkpoint {size}: no timestamp from {tsa} yet")
    for tsa, response in stamps.items():
        report.timestamps_checked += 1
        try:
            verify_timestamp(response, note, roots=list(roots))
        except VerificationError as e:
            problem(f"checkpoint {size}: timestamp from {tsa} does not verify: {e}")


async def _finish(report: AuditReport, say: Callable[[str], None]) -> AuditReport:
    say("done")
    return report

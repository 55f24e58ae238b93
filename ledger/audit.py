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
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from ._internal.store import Store
from ._internal.tree import HASH, hash_entries, inner_levels, root_from_edge, tile_levels
from .checkpoint import Checkpoint
from .errors import LedgerError, StorageError, VerificationError
from .key_history import KeyHistory
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
    kept_checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # time spent per phase

    @property
    def ok(self) -> bool:
        return not self.problems


class _TileRebuilder:
    """Rebuilds tiles level by level from a stream of leaf hashes, comparing stored ones."""

    def __init__(self, report: AuditReport, max_problems: int) -> None:
        self.levels: list[list[bytes]] = []
        self.report = report
        self.max_problems = max_problems
        # (level, index, hashes, inner levels) still to compare with storage
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
    key_history: KeyHistory | None = None,
    kept_checkpoints: Sequence[bytes] = (),
) -> AuditReport:
    """Check the stored log end to end.

    Each checkpoint is checked against the key valid for its size: ``key_history``, else the
    single ``log_key``, else the log's own history. ``kept_checkpoints`` are signed notes
    someone kept (an auditor, an old bundle): the stored tree must still hold each of them, so
    a database restored from before one of them, or rewritten since, fails.
    ``workers``: processes hashing leaves (None: one per core, for logs large enough).
    """
    history = key_history or (KeyHistory.single(log_key) if log_key else log.key_history)
    audit = _Audit(log, max_problems, progress or (lambda _msg: None))
    report = audit.report
    checkpoints = [c async for c in log.store.scan_checkpoints()]
    await audit.check_rows()
    kept = audit.open_kept(kept_checkpoints, history)
    started = time.perf_counter()
    audit.say(f"recomputing the tree over {report.tree_size} entries")
    targets = sorted({size for size, _, _ in checkpoints} | {cp.size for cp in kept})
    roots = await audit.recompute_tree(targets, workers)
    report.seconds["recompute tree"] = time.perf_counter() - started
    if roots is None:  # rows are missing: nothing further can be recomputed
        return report
    started = time.perf_counter()
    audit.say(f"checking {len(checkpoints)} checkpoints")
    await audit.check_checkpoints(checkpoints, roots, history, tsa_roots, required_tsas)
    audit.check_kept(kept, roots)
    report.seconds["checkpoints"] = time.perf_counter() - started
    audit.say("done")
    return report


class _Audit:
    """The state of one self-audit: the report, and the problems found so far."""

    def __init__(self, log: Log, max_problems: int, say: Callable[[str], None]) -> None:
        self.log = log
        self.store: Store = log.store
        self.report = AuditReport()
        self.max_problems = max_problems
        self.say = say
        self.tree_root = b""

    def problem(self, msg: str) -> None:
        problems = self.report.problems
        if len(problems) < self.max_problems:
            problems.append(msg)
        elif len(problems) == self.max_problems:
            problems.append("... more problems not shown")

    async def check_rows(self) -> None:
        """The sequence and tree rows agree with each other and with the entry rows."""
        report = self.report
        report.tree_size, self.tree_root = await self.store.tree_head()
        report.sequenced = await self.store.sequenced_size()
        if report.sequenced < report.tree_size:
            self.problem(f"sequence counter {report.sequenced} is behind the tree size "
                         f"{report.tree_size}")
        extra = await self.store.entries_after(report.sequenced)
        if extra:
            self.problem(f"{extra} entry rows sit beyond the sequence counter {report.sequenced}")

    def open_kept(self, notes: Sequence[bytes], history: KeyHistory) -> list[Checkpoint]:
        """The kept checkpoints that are genuine notes of this log; the rest are problems."""
        kept = []
        for number, note in enumerate(notes, start=1):
            try:
                cp = Checkpoint.parse(open_note(note, history.verifiers()).text)
            except VerificationError as e:
                self.problem(f"kept checkpoint {number}: not a checkpoint signed by this log's keys: {e}")
                continue
            if cp.origin != self.log.origin:
                self.problem(f"kept checkpoint {number}: it is of log {cp.origin!r}")
            elif cp.size > self.report.tree_size:
                self.problem(f"kept checkpoint {number} (size {cp.size}) is beyond the stored tree "
                             f"({self.report.tree_size}): the database is older than it (restored "
                             "from an earlier backup?) or was rolled back")
            else:
                kept.append(cp)
        return kept

    def check_kept(self, kept: list[Checkpoint], roots: dict[int, bytes]) -> None:
        for cp in kept:
            self.report.kept_checked += 1
            if roots.get(cp.size) != cp.root_hash:
                self.problem(f"kept checkpoint of size {cp.size}: the stored tree at that size has "
                             "another root: the log was rewritten since it was signed")

    async def recompute_tree(self, sizes: list[int], workers: int | None) -> dict[int, bytes] | None:
        """Rebuild every tile from the entries, compare them, and return the root at each of
        ``sizes`` (None when entries are missing)."""
        report, store = self.report, self.store
        roots: dict[int, bytes] = {0: _sha256(b"").digest()} if 0 in sizes else {}
        for size in sizes:
            if size > report.tree_size:
                self.problem(f"checkpoint {size} is beyond the tree size {report.tree_size}")
        targets = iter([s for s in sizes if 0 < s <= report.tree_size])
        next_target = next(targets, None)
        rebuild = _TileRebuilder(report, self.max_problems)
        expected = 0
        async for start, (blob, known) in _hashed_chunks(store, report.sequenced, workers):
            if start is None:
                self.problem(blob)
                return None
            hashes = [blob[i : i + HASH] for i in range(0, len(blob), HASH)]
            report.entries_checked += len(hashes)
            # Only the integrated prefix is in the tree; stop feeding the rebuild at its size.
            usable = max(0, min(len(hashes), report.tree_size - expected))
            pos = 0
            while next_target is not None and next_target <= expected + usable:
                cut = next_target - expected
                rebuild.push_many(0, hashes[pos:cut], expected + pos, known)
                pos = cut
                roots[next_target] = root_from_edge(next_target, rebuild.edge(next_target))
                next_target = next(targets, None)
            rebuild.push_many(0, hashes[pos:usable], expected + pos, known)
            expected += len(hashes)
            await _compare_tiles(store, rebuild, report, self.problem)
        if expected < report.sequenced:
            self.problem(f"entries {expected}..{report.sequenced - 1} are missing")
        # The partial tiles at the edge of the tree must match too.
        edge = rebuild.edge(report.tree_size)
        rebuild.completed.extend((lv, ix, data, inner_levels(tile_levels(data)))
                                 for (lv, ix), data in edge.items())
        await _compare_tiles(store, rebuild, report, self.problem)
        if root_from_edge(report.tree_size, edge) != self.tree_root:
            self.problem("the tree row's root does not match the root recomputed over "
                         f"{report.tree_size} entries")
        indexed = await store.leaf_index_size()
        leaf_rows = await store.leaf_index_count()
        if indexed > report.tree_size:
            self.problem(f"the leaf-hash index says it covers {indexed} entries, beyond the tree "
                         f"size {report.tree_size}")
        elif leaf_rows != indexed:
            self.problem(f"the leaf-hash index has {leaf_rows} rows for the {indexed} entries it covers")
        return roots

    def open_checkpoint(self, size: int, note: bytes, history: KeyHistory) -> Checkpoint | None:
        """The checkpoint in ``note`` if its signatures are good; every key valid at its size
        must have signed (at a key's first size, the key before it too)."""
        try:
            opened = open_note(note, history.verifiers())
            cp = Checkpoint.parse(opened.text)
        except VerificationError as e:
            self.problem(f"checkpoint {size}: {e}")
            return None
        signed = {(s.name, s.key_id) for s in opened.verified}
        for key in history.required(size):
            if (key.name, key.key_id) not in signed:
                self.problem(f"checkpoint {size}: not signed by key {key.key_id.hex()}, the log key "
                             "for that size in the key history")
        return cp

    async def check_checkpoints(
        self,
        checkpoints: list[tuple[int, bytes, bytes]],
        roots: dict[int, bytes],
        history: KeyHistory,
        tsa_roots: Sequence[x509.Certificate],
        required_tsas: Sequence[str],
    ) -> None:
        """Signatures (by the keys valid at its size), origin, size and root of each checkpoint,
        the consistency proof from the one before, and its timestamps."""
        report, log = self.report, self.log
        stamps = await self.store.all_timestamps()
        published = {size for size, _, _ in checkpoints}
        for size in history.transitions():
            if size not in published:
                self.problem(f"the key history says a new key signs from size {size}, where no "
                             "checkpoint was published (key history edited?)")
        previous: tuple[int, bytes] | None = None
        for size, stored_root, note in checkpoints:
            report.checkpoints_checked += 1
            cp = self.open_checkpoint(size, note, history)
            if cp is None:
                continue
            if cp.origin != log.origin or cp.size != size:
                self.problem(f"checkpoint {size}: its note says origin {cp.origin!r}, size {cp.size}")
            expected_root = roots.get(size)
            if expected_root is None:
                continue
            if cp.root_hash != expected_root or stored_root != expected_root:
                self.problem(f"checkpoint {size}: root does not match the entries (tree rewritten?)")
                continue
            if previous is not None and previous[0] > 0:
                try:
                    proof = await log.consistency_proof(previous[0], size)
                    proof.verify(previous[1], expected_root)
                except LedgerError as e:
                    self.problem(f"checkpoints {previous[0]} -> {size}: consistency proof fails: {e}")
            previous = (size, expected_root)
            await _check_timestamps(size, note, stamps.get(size, {}), tsa_roots, required_tsas,
                                    report, self.problem)
        if checkpoints and checkpoints[-1][0] != report.tree_size:
            self.problem(f"the newest checkpoint ({checkpoints[-1][0]}) is not the tree size "
                         f"{report.tree_size}")


PARALLEL_FROM = 200_000  # entries; below this a process pool costs more than it saves


async def _hashed_chunks(
    store: Store, end: int, workers: int | None
) -> AsyncIterator[tuple[int | None, tuple[Any, dict[int, bytes]]]]:
    """(start, (leaf hashes blob, inner levels of full tiles)) per chunk of entries, in order.

    Leaf and tile hashing is pure Python hashlib (about 2.4 µs a leaf, all under the GIL), so
    large logs are hashed by a pool of processes while this one reads the next chunks. The
    pool forks (rather than spawns) so that callers need no ``__main__`` guard; the children
    only run ``hash_entries``.
    A gap in the indices, or a row whose framing is broken, yields (None, (what is wrong, {}))
    and stops.
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
        async for rows, fault in _entry_chunks(store, end):
            if fault is not None:
                while pending:
                    start, fut = pending.popleft()
                    yield start, await fut
                yield None, (fault, {})
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


async def _entry_chunks(store: Store, end: int) -> AsyncIterator[tuple[list[tuple[int, bytes]], str | None]]:
    """The stored entries [0, end) in chunks, each with what is wrong with it (then the last)."""
    expected = 0
    try:
        async for rows in store.scan_entries(0, end):
            fault = _gap(rows, expected)
            yield rows, fault
            if fault is not None:
                return
            expected += len(rows)
    except StorageError as e:  # a corrupt row: what the ledger reads cannot be trusted
        yield [], str(e)


def _gap(rows: list[tuple[int, bytes]], expected: int) -> str | None:
    """What is wrong when ``rows`` are not the entries from ``expected`` on, one by one."""
    if not rows or (rows[0][0] == expected and rows[-1][0] == expected + len(rows) - 1):
        return None
    present = {i for i, _ in rows}
    missing = next(i for i in range(expected, expected + len(rows) + 1) if i not in present)
    return f"entry {missing} is missing (rows deleted or renumbered)"


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

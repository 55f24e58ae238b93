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


SHOWN_AT = 10  # locations listed in a summarised finding
REASONS_PER_KIND = 10  # distinct findings of one kind listed before the rest are counted together


@dataclass
class Finding:
    """One problem, or many of one kind and cause (a TSA whose stamps all fail) summarised.

    ``kind`` is a stable name scripts can match (printed in brackets); ``text`` the first
    occurrence in full; ``summary`` what is said instead once there are several, ``{n}``
    standing for ``count``; ``at`` the first few places (checkpoint sizes, entries, tiles).
    """

    kind: str
    text: str
    summary: str = ""
    label: str = ""
    count: int = 1
    at: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.count == 1:
            return f"{self.text} [{self.kind}]"
        first = ""
        if self.at:
            more = ", ..." if self.count > len(self.at) else ""
            first = f"; first {self.label + ' ' if self.label else ''}{', '.join(self.at)}{more}"
        # (replace, not format: the texts quote error messages, braces and all)
        summary = (self.summary or "{n} problems like this: " + self.text).replace("{n}", str(self.count))
        return f"{summary}{first} [{self.kind}]"


@dataclass
class AuditReport:
    tree_size: int = 0
    sequenced: int = 0
    entries_checked: int = 0
    tiles_checked: int = 0
    checkpoints_checked: int = 0
    timestamps_checked: int = 0
    kept_checked: int = 0
    leaf_index_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # time spent per phase

    @property
    def problems(self) -> list[str]:
        """Each finding as one line (kinds summarised, so every distinct one is there)."""
        return [str(f) for f in self.findings]

    @property
    def ok(self) -> bool:
        return not self.findings


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
    max_problems: int = REASONS_PER_KIND,
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
    ``max_problems``: distinct findings of one kind listed before the rest of that kind are
    counted together (every kind is always listed; repeats of one cause are summarised).
    """
    history = key_history or (KeyHistory.single(log_key) if log_key else log.key_history)
    audit = _Audit(log, max_problems, progress or (lambda _msg: None))
    report = audit.report
    checkpoints = [c async for c in log.store.scan_checkpoints()]
    if not await audit.check_rows():
        return report  # no tree row: nothing to recompute against
    kept = audit.open_kept(kept_checkpoints, history)
    started = time.perf_counter()
    leaf_index = await audit.read_leaf_index()
    report.seconds["read leaf index"] = time.perf_counter() - started
    started = time.perf_counter()
    audit.say(f"recomputing the tree over {report.tree_size} entries")
    targets = sorted({size for size, _, _ in checkpoints} | {cp.size for cp in kept})
    roots = await audit.recompute_tree(targets, workers, leaf_index)
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


@dataclass
class _LeafIndex:
    """The leaf-hash index as stored, laid out by entry: ``prefixes[8i:8i+8]`` is the prefix of
    the row for entry i, ``rows[i]`` how many rows name entry i (0, 1, or more when edited)."""

    covers: int
    prefixes: bytearray
    rows: bytearray


class _Audit:
    """The state of one self-audit: the report, and the findings so far."""

    def __init__(self, log: Log, max_problems: int, say: Callable[[str], None]) -> None:
        self.log = log
        self.store: Store = log.store
        self.report = AuditReport()
        self.max_problems = max(1, max_problems)
        self.say = say
        self.tree_root = b""
        self.stored_end = 0
        self.leaf_index_covers: int | None = None
        self._groups: dict[tuple[str, str], Finding] = {}
        self._per_kind: dict[str, int] = {}

    def problem(self, kind: str, text: str, *, group: str | None = None, at: object = None,
                summary: str = "", label: str = "") -> None:
        """Record a finding of ``kind``. Findings with the same ``group`` (a cause: a TSA and
        its error) are summarised as one, listing the first places ``at``; beyond
        ``max_problems`` distinct ones of a kind, the rest of that kind are counted together."""
        key = (kind, text if group is None else group)
        found = self._groups.get(key)
        if found is None and self._per_kind.get(kind, 0) >= self.max_problems:
            key = (kind, "\0more")
            found = self._groups.get(key)
            if found is None:
                found = Finding(kind, text, summary=f"{{n}} more {kind} findings, the first: {text}",
                                count=0)
                self._groups[key] = found
                self.report.findings.append(found)
            found.count += 1
            return
        if found is None:
            found = Finding(kind, text, summary=summary, label=label, count=0)
            self._groups[key] = found
            self._per_kind[kind] = self._per_kind.get(kind, 0) + 1
            self.report.findings.append(found)
        found.count += 1
        if at is not None and len(found.at) < SHOWN_AT:
            found.at.append(str(at))

    async def check_rows(self) -> bool:
        """The one-row tables agree with each other and with the entry rows (False: no tree row)."""
        report = self.report
        rows = await self.store.counters()
        self.stored_end = rows["entries_end"]
        if rows["tree_size"] is None:
            self.problem("tree-row", "the tree row (table log_tree) is missing: the tree size and "
                         "root are unknown")
            return False
        report.tree_size, self.tree_root = rows["tree_size"], rows["tree_root"]
        if rows["sequenced"] is None:
            self.problem("sequence", "the sequence row (table log_sequence) is missing: appends "
                         "cannot be given indices")
            report.sequenced = max(report.tree_size, self.stored_end)
        else:
            report.sequenced = rows["sequenced"]
        if report.sequenced < report.tree_size:
            self.problem("sequence", f"the sequence counter {report.sequenced} is behind the tree "
                         f"size {report.tree_size}: new appends would reuse integrated indices")
        if rows["sequenced"] is not None:
            extra = await self.store.entries_after(report.sequenced)
            if extra:
                self.problem("entries-beyond-sequence", f"{extra} entry rows sit beyond the sequence "
                             f"counter {report.sequenced}")
        self.leaf_index_covers = rows["leaf_index"]
        if rows["leaf_index"] is None:
            self.problem("leaf-index", "the leaf-hash index's state row (table leaf_index_state) "
                         "is missing: run `rlhf-audit reindex`")
        return True

    def open_kept(self, notes: Sequence[bytes], history: KeyHistory) -> list[Checkpoint]:
        """The kept checkpoints that are genuine notes of this log; the rest are problems."""
        kept = []
        for number, note in enumerate(notes, start=1):
            try:
                cp = Checkpoint.parse(open_note(note, history.verifiers()).text)
            except VerificationError as e:
                self.problem("kept-checkpoint", f"kept checkpoint {number}: not a checkpoint signed "
                             f"by this log's keys: {e}")
                continue
            if cp.origin != self.log.origin:
                self.problem("kept-checkpoint", f"kept checkpoint {number}: it is of log {cp.origin!r}")
            elif cp.size > self.report.tree_size:
                self.problem("kept-checkpoint", f"kept checkpoint {number} (size {cp.size}) is beyond "
                             f"the stored tree ({self.report.tree_size}): the database is older than "
                             "it (restored from an earlier backup?) or was rolled back")
            else:
                kept.append(cp)
        return kept

    def check_kept(self, kept: list[Checkpoint], roots: dict[int, bytes]) -> None:
        for cp in kept:
            self.report.kept_checked += 1
            if roots.get(cp.size) != cp.root_hash:
                self.problem("kept-checkpoint", f"kept checkpoint of size {cp.size}: the stored tree "
                             "at that size has another root: the log was rewritten since it was signed")

    async def read_leaf_index(self) -> _LeafIndex | None:
        """The stored leaf-hash index laid out by entry (8 bytes and a counter an entry), for
        comparing with the leaf hashes as they are recomputed; None when it cannot be checked."""
        covers = self.leaf_index_covers
        if covers is None:
            return None
        tree_size = self.report.tree_size
        if covers > tree_size or covers < 0:
            self.problem("leaf-index", f"the leaf-hash index says it covers {covers} entries, beyond "
                         f"the tree size {tree_size}")
            covers = max(0, min(covers, tree_size))
        index = _LeafIndex(covers, bytearray(8 * covers), bytearray(covers))
        prefixes, counts = index.prefixes, index.rows
        self.say(f"reading the leaf-hash index ({covers} entries)")
        beyond: list[int] = []
        async for rows in self.store.scan_leaf_index():
            for prefix, i in rows:
                if 0 <= i < covers:
                    prefixes[8 * i : 8 * i + 8] = prefix
                    if counts[i] < 255:
                        counts[i] += 1
                else:
                    beyond.append(i)
        if beyond:  # rows a concurrent index_leaves() added meanwhile are no problem
            now = min(await self.store.leaf_index_size(), tree_size)
            for i in sorted(i for i in beyond if not covers <= i < now):
                self._leaf_index_problem(f"a row for entry {i}, beyond the {covers} entries it covers")
        self.report.leaf_index_checked = covers
        return index

    def _leaf_index_problem(self, what: str) -> None:
        self.problem("leaf-index", f"the leaf-hash index is wrong: {what} (lookups by hash miss "
                     "or mislead there; `rlhf-audit reindex` rebuilds it)", group="rows",
                     summary="the leaf-hash index is wrong at {n} places (lookups by hash miss or "
                     "mislead there; `rlhf-audit reindex` rebuilds it)", at=what)

    def compare_leaf_index(self, index: _LeafIndex, start: int, blob: bytes) -> None:
        """Compare the stored index rows of entries [start, start + len(blob) / 32) with their
        recomputed leaf hashes ``blob``: one bytes comparison when they agree."""
        end = min(start + len(blob) // HASH, index.covers)
        if end <= start:
            return
        want = b"".join([blob[k : k + 8] for k in range((end - start) * HASH)[::HASH]])
        rows = index.rows[start:end]
        if index.prefixes[8 * start : 8 * end] == want and rows.count(1) == end - start:
            return
        for i in range(start, end):
            n = index.rows[i]
            if n == 0:
                self._leaf_index_problem(f"entry {i} has no row")
            elif n > 1:
                self._leaf_index_problem(f"entry {i} has {n} rows")
            elif index.prefixes[8 * i : 8 * i + 8] != want[8 * (i - start) : 8 * (i - start) + 8]:
                self._leaf_index_problem(f"entry {i}'s row holds another leaf hash")

    async def recompute_tree(self, sizes: list[int], workers: int | None,
                             leaf_index: _LeafIndex | None = None) -> dict[int, bytes] | None:
        """Rebuild every tile from the entries, compare them (and the leaf-hash index), and
        return the root at each of ``sizes`` (None when entries are missing)."""
        report, store = self.report, self.store
        roots: dict[int, bytes] = {0: _sha256(b"").digest()} if 0 in sizes else {}
        for size in sizes:
            if size > report.tree_size:
                self.problem("checkpoint-beyond-tree", f"checkpoint {size} is beyond the tree size "
                             f"{report.tree_size}", group="beyond", at=size, label="sizes",
                             summary=f"{{n}} checkpoints are beyond the tree size {report.tree_size}")
        targets = iter([s for s in sizes if 0 < s <= report.tree_size])
        next_target = next(targets, None)
        rebuild = _TileRebuilder(report, self.max_problems)
        # Read what is stored, not what a counter claims: a counter edited far ahead would
        # otherwise have the scan walk an empty range for ever.
        end = min(max(report.tree_size, report.sequenced), self.stored_end)
        expected = 0
        async for start, (blob, known) in _hashed_chunks(store, end, workers):
            if start is None:
                self.problem("entries-missing" if "missing" in blob else "entry-row-corrupt", blob)
                return None
            hashes = [blob[i : i + HASH] for i in range(0, len(blob), HASH)]
            report.entries_checked += len(hashes)
            if leaf_index is not None:
                self.compare_leaf_index(leaf_index, start, blob)
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
            self.problem("entries-missing", f"entries {expected}..{report.sequenced - 1} are missing"
                         + (" (the sequence counter is ahead of the stored entries)"
                            if expected == self.stored_end else ""))
        if expected < report.tree_size:
            self.problem("entries-missing", f"the tree row says {report.tree_size} entries are "
                         f"integrated, but only {expected} are stored")
            return None
        # The partial tiles at the edge of the tree must match too.
        edge = rebuild.edge(report.tree_size)
        rebuild.completed.extend((lv, ix, data, inner_levels(tile_levels(data)))
                                 for (lv, ix), data in edge.items())
        await _compare_tiles(store, rebuild, report, self.problem)
        if root_from_edge(report.tree_size, edge) != self.tree_root:
            self.problem("tree-row", "the tree row's root does not match the root recomputed over "
                         f"{report.tree_size} entries")
        return roots

    def open_checkpoint(self, size: int, note: bytes, history: KeyHistory) -> Checkpoint | None:
        """The checkpoint in ``note`` if its signatures are good; every key valid at its size
        must have signed (at a key's first size, the key before it too)."""
        try:
            opened = open_note(note, history.verifiers())
            cp = Checkpoint.parse(opened.text)
        except VerificationError as e:
            self.problem("checkpoint-signature", f"checkpoint {size}: {e}", group=str(e), at=size,
                         label="sizes", summary=f"{{n}} checkpoints fail: {e}")
            return None
        signed = {(s.name, s.key_id) for s in opened.verified}
        for key in history.required(size):
            if (key.name, key.key_id) not in signed:
                self.problem("checkpoint-key", f"checkpoint {size}: not signed by key "
                             f"{key.key_id.hex()}, the log key for that size in the key history",
                             group=key.key_id.hex(), at=size, label="sizes",
                             summary=f"{{n}} checkpoints are not signed by key {key.key_id.hex()}, "
                             "the log key for their sizes in the key history")
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
                self.problem("key-history", f"the key history says a new key signs from size {size}, "
                             "where no checkpoint was published (key history edited?)")
        # A timestamp row outlives a deleted checkpoint row: the gap it leaves is named.
        for size in sorted(set(stamps) - published):
            self.problem("checkpoint-missing", f"checkpoint {size}: its checkpoint row is missing, "
                         f"but timestamps from {', '.join(sorted(stamps[size]))} for it are stored "
                         "(checkpoint deleted?)", group="orphan", at=size, label="sizes",
                         summary="{n} checkpoints are missing whose timestamps are stored "
                         "(checkpoints deleted?)")
        previous: tuple[int, bytes] | None = None
        for size, stored_root, note in checkpoints:
            report.checkpoints_checked += 1
            cp = self.open_checkpoint(size, note, history)
            if cp is None:
                continue
            if cp.origin != log.origin or cp.size != size:
                self.problem("checkpoint-note", f"checkpoint {size}: its note says origin "
                             f"{cp.origin!r}, size {cp.size}")
            expected_root = roots.get(size)
            if expected_root is None:
                continue
            if cp.root_hash != expected_root or stored_root != expected_root:
                self.problem("checkpoint-root", f"checkpoint {size}: root does not match the entries "
                             "(tree rewritten?)", group="root", at=size, label="sizes",
                             summary="{n} checkpoints' roots do not match the entries (tree rewritten?)")
                continue
            if previous is not None and previous[0] > 0:
                try:
                    proof = await log.consistency_proof(previous[0], size)
                    proof.verify(previous[1], expected_root)
                except LedgerError as e:
                    self.problem("checkpoint-consistency", f"checkpoints {previous[0]} -> {size}: "
                                 f"consistency proof fails: {e}", group=str(e), at=size, label="sizes",
                                 summary=f"consistency proofs fail into {{n}} checkpoints: {e}")
            previous = (size, expected_root)
            await _check_timestamps(size, note, stamps.get(size, {}), tsa_roots, required_tsas,
                                    report, self.problem)
        if checkpoints and checkpoints[-1][0] != report.tree_size:
            self.problem("checkpoint-missing", f"the newest checkpoint ({checkpoints[-1][0]}) is not "
                         f"the tree size {report.tree_size}")


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
                         problem: Callable[..., None]) -> None:
    if not rebuild.completed:
        return
    stored = await store.read_tile_rows((lv, ix) for lv, ix, _, _ in rebuild.completed)
    for level, index, data, inner in rebuild.completed:
        report.tiles_checked += 1
        have, have_inner = stored.get((level, index), (None, None))
        where = f"{level}/{index}"
        if have is None:
            problem("tile-missing", f"tile {where} is missing", group=str(level), at=where,
                    label="tiles", summary=f"{{n}} tiles of level {level} are missing")
        elif have[: len(data)] != data:
            first = next(i for i in range(0, len(data), HASH) if have[i : i + HASH] != data[i : i + HASH])
            pos = first // HASH
            entry = f" (entry {index * 256 + pos})" if level == 0 else ""
            problem("tile-differs", f"tile {where}: hash {pos}{entry} differs from the tree recomputed "
                    "from the entries", group=str(level), at=where, label="tiles",
                    summary=f"{{n}} tiles of level {level} differ from the tree recomputed from the "
                    "entries")
        elif len(have) > len(data) and (len(data) == TILE_WIDTH * HASH or len(have) % HASH):
            # longer than the tree makes it: extra bytes (or hashes beyond a full tile)
            problem("tile-differs", f"tile {where} holds {len(have)} bytes, not {len(data)}",
                    group=f"{level} size", at=where, label="tiles",
                    summary=f"{{n}} tiles of level {level} are longer than the tree makes them")
        elif inner is not None and have_inner is not None and have_inner != inner:
            problem("tile-inner-differs", f"tile {where}: its stored inner levels differ from its "
                    "hashes", group=str(level), at=where, label="tiles",
                    summary=f"{{n}} tiles of level {level} hold inner levels that differ from their "
                    "hashes")
    rebuild.completed.clear()


async def _check_timestamps(size: int, note: bytes, stamps: dict[str, bytes],
                            roots: Sequence[x509.Certificate], required: Sequence[str],
                            report: AuditReport, problem: Callable[..., None]) -> None:
    for tsa in required:
        if tsa not in stamps:
            problem("timestamp-missing", f"checkpoint {size}: no timestamp from {tsa} yet", group=tsa,
                    at=size, label="sizes", summary=f"{{n}} checkpoints have no timestamp from {tsa} "
                    "yet (`rlhf-audit integrate --once` fetches them)")
    for tsa, response in stamps.items():
        report.timestamps_checked += 1
        try:
            verify_timestamp(response, note, roots=list(roots))
        except VerificationError as e:
            problem("timestamp-invalid", f"checkpoint {size}: timestamp from {tsa} does not verify: {e}",
                    group=f"{tsa}\0{e}", at=size, label="sizes",
                    summary=f"timestamps from {tsa} do not verify at {{n}} checkpoints: {e}")

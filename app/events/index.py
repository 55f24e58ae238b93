"""The event index: find log entries by kind, run, dataset, model, actor, annotator and time,
and by the commitments they carry.

The log itself only answers "entry i" and "the entry with this leaf hash". Auditors, the
compliance engine and the portal ask "every ``run.*`` event of run X", "what did this
pseudonym do last week", "which entry carries this commitment". The index is a derived table
(see ``app.events.index_schema``): it can always be rebuilt from the entries, so it is kept
outside the ledger and filled by :meth:`EventIndex.catch_up`, which any number of processes may
run at once against one database. A watermark row says how far the index is complete; each
batch is written in one transaction that first locks that row, writes only the rows above the
watermark it then sees and raises the watermark to the batch's end: so no duplicates and no
gaps (SQLite's inserts also say ``ON CONFLICT DO NOTHING``, for good measure).

An ``oversight.decision`` is indexed by the run, model, dataset version or annotator its
``target`` names (changing what is extracted means existing indexes need ``rlhf-audit reindex``).

Indexing never fails on an entry: one that is not a JSON object, or lacks the envelope of
``app.events.recording``, is indexed with kind ``""`` and no fields. A value that a database index
cannot hold (over 200 characters, a NUL, a number beyond 64 bits) is left unindexed, and a
query for such a value finds nothing.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from ledger.audit import SHOWN_AT, Finding
from ledger.errors import StorageError
from ledger.log import Log

from ..core.background import every
from ..core.database import Database
from .index_schema import FIELDS, event_commitments, event_index, event_index_state

__all__ = ["MAX_VALUE", "EventIndex", "IndexedEvent", "commitments_of", "index_row", "kept_indexed"]

MAX_VALUE = 200  # longest indexed string (a B-tree key must stay small)
PAGE = 8192  # entries read, parsed and written per catch-up transaction
_SQLITE_ROWS = 3000  # rows per multi-row INSERT on SQLite (9 columns: under its 32,766 variables)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_INT64 = 1 << 63
_log = logging.getLogger("app.events.index")

Row = tuple[int, str, str | None, str | None, int | None, str | None, str | None, str | None, int | None]


@dataclass(frozen=True)
class IndexedEvent:
    """One log entry as the index returns it."""

    index: int  # leaf index on the log
    kind: str  # "" for an entry without the envelope
    at: datetime | None  # the envelope's "at", UTC
    event: dict[str, Any]  # the parsed JSON ({} for an entry that is not a JSON object)
    data: bytes  # the canonical entry bytes


# -- turning an entry into a row ------------------------------------------------------------


def _text(v: object) -> str | None:
    if isinstance(v, str) and len(v) <= MAX_VALUE and "\x00" not in v:
        return v
    return None


def _int(v: object) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool) and -_INT64 <= v < _INT64:
        return v
    return None


def _micros(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - _EPOCH) // _US


_MIN_US, _MAX_US = _micros(datetime.min), _micros(datetime.max)


def _at(v: object) -> int | None:
    """Microseconds since the epoch of an RFC 3339 time; None for anything else."""
    if not isinstance(v, str) or len(v) > 64:
        return None
    try:
        micros = _micros(datetime.fromisoformat(v))
    except (ValueError, OverflowError):
        return None
    # 9999-12-31T23:59:59-14:00 parses, but is no datetime in UTC
    return micros if _MIN_US <= micros <= _MAX_US else None


def _digest(v: object) -> bytes | None:
    # (ledger.events.Commitment) base64 of 32 bytes is always 44 characters
    if type(v) is not str or len(v) != 51 or not v.startswith("sha256:"):
        return None
    try:  # what Commitment.parse accepts, at a sixth of its cost
        digest = binascii.a2b_base64(v[7:], strict_mode=True)
    except ValueError:  # binascii.Error, or a non-ASCII character
        return None
    return digest if len(digest) == 32 else None


def commitments_of(event: object) -> set[bytes]:
    """32-byte digests of every ``sha256:<base64>`` commitment anywhere in ``event``.

    Under a key ``commitment`` or ``*_commitment``, or in a list under ``commitments``, at any
    depth (walked with a stack: entries may nest deeper than Python's recursion limit).
    """
    found: set[bytes] = set()
    stack = [event]
    while stack:
        node = stack.pop()
        if type(node) is list:
            stack.extend(x for x in node if type(x) is dict or type(x) is list)
            continue
        if type(node) is not dict:
            continue
        for key, value in node.items():
            t = type(value)
            if t is str:
                if key == "commitment" or key.endswith("_commitment"):
                    d = _digest(value)
                    if d is not None:
                        found.add(d)
            elif t is dict:
                stack.append(value)
            elif t is list:
                if key == "commitments":
                    found.update(d for d in map(_digest, value) if d is not None)
                stack.append(value)
    return found


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def index_row(idx: int, data: bytes) -> tuple[Row, set[bytes]]:
    """The index row and the commitment digests of entry ``idx``; never raises on content."""
    doc = _parse(data)
    if doc is None:
        return (idx, "", None, None, None, None, None, None, None), set()
    g = doc.get
    kind = _text(g("kind")) or ""
    # An oversight decision names what it is about in ``target`` (a run, a model and its run, a
    # dataset version, an annotator): indexed as that run, model, ... so "every event of run X"
    # holds its halts, resumes and approvals. A field at the top level, if any, comes first.
    target = g("target") if kind == "oversight.decision" else None
    t = target.get if type(target) is dict else (lambda _k: None)
    row: Row = (idx, kind, _text(g("run")) or _text(t("run")), _text(g("dataset")) or _text(t("dataset")),
                _int(g("dataset_version")) if _int(g("dataset_version")) is not None
                else _int(t("dataset_version")),
                _text(g("model")) or _text(t("model")), _text(g("actor")),
                _text(g("annotator")) or _text(t("annotator")), _at(g("at")))
    # The substring test skips the walk for the (many) events that carry no commitment.
    return row, (commitments_of(doc) if b"commitment" in data else set())


def _rows(entries: list[tuple[int, bytes]]) -> tuple[list[Row], list[tuple[bytes, int]]]:
    """Index rows and (digest, idx) pairs of a page of entries."""
    rows: list[Row] = []
    digests: list[tuple[bytes, int]] = []
    for idx, data in entries:
        row, found = index_row(idx, data)
        rows.append(row)
        digests.extend((d, idx) for d in sorted(found))
    return rows, digests


def _when(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def _matchable(value: str) -> bool:
    """Whether ``value`` could be in the index at all (and is safe to send to the database)."""
    if _text(value) is None:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a percent-decoded query string
        return False
    return True


class _IndexDiff:
    """How the stored index differs from the entries: the lines to report, and the rows and
    commitments a repair rewrites (``bad_rows``: idx -> the right row, None to delete)."""

    def __init__(self) -> None:
        self.watermark = 0
        self.covers = 0
        self.bad_rows: dict[int, Row | None] = {}
        self.derived_commitments: set[tuple[bytes, int]] = set()
        self.missing_commitments: set[tuple[bytes, int]] = set()
        self.extra_commitments: set[tuple[bytes, int]] = set()
        self.lines: list[str] = []

    def problem(self, line: str) -> None:
        self.lines.append(line)

    def wrong(self, idx: int, row: Row | None, line: str) -> None:
        self.bad_rows[idx] = row
        self.problem(line)

    @property
    def findings(self) -> list[Finding]:
        """One finding of kind ``event-index``: each event named, summarised beyond a few."""
        if not self.lines:
            return []
        return [Finding("event-index", self.lines[0], count=len(self.lines), at=self.lines[:SHOWN_AT],
                        summary="the event index is wrong at {n} places (queries miss or mislead "
                                "there; `rlhf-audit reindex` repairs it)")]


# -- the index ------------------------------------------------------------------------------


class EventIndex:
    """Queries over the entries of ``log``, from tables in ``db`` (the app's database, which the
    log shares): entries are read through the log's public reads, never its storage."""

    def __init__(self, db: Database, log: Log, *, page: int = PAGE) -> None:
        self.db = db  # the index's tables
        self.log = log  # the entries, through its public reads
        self.page = page  # entries per catch-up transaction
        self._pg = db.dialect == "postgresql"
        self._size = 0  # indexed size as this instance last saw it (never more than the truth)
        self._lock = asyncio.Lock()

    # -- indexing -------------------------------------------------------------------------

    async def catch_up(self) -> int:
        """Index every sequenced entry not yet indexed; return the indexed size.

        Cheap when nothing is new (one read of the log's sequence). Safe to run from several
        tasks and processes at once.
        """
        async with self._lock:
            size = await self.log.sequenced_size()
            if size <= self._size:
                return self._size
            async with self.db.connect("reading the event index") as conn:
                mark = (await conn.execute(sa.select(event_index_state.c.size))).scalar_one()
            self._size = max(self._size, int(mark))
            if self._size >= size:
                return self._size
            await self._index_range(self._size, size)
        return self._size

    async def _index_range(self, start: int, end: int) -> None:
        """Index [start, end) page by page, as a pipeline: the store reads page k+2 ahead
        (``scan_entries``) while page k+1 is parsed here and page k is written by the database."""
        writing: asyncio.Task[int] | None = None
        expected = start
        try:
            async for chunk in self.log.scan_entries(start, end, self.page):
                entries = [(int(i), bytes(d)) for i, d in chunk]
                if not entries or entries[0][0] != expected or entries[-1][0] - expected != len(entries) - 1:
                    _log.warning("entries from %d are sequenced but unreadable; indexing stops there",
                                 expected)
                    break
                expected += len(entries)
                rows, digests = _rows(entries)
                if writing is not None:
                    self._size = await writing
                writing = asyncio.create_task(self._write(rows, digests, expected))
            if writing is not None:
                self._size = await writing
                writing = None
        finally:
            if writing is not None:  # cancelled or failed: the write in flight goes too
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):  # its error is not ours
                    await writing

    async def _write(self, rows: list[Row], digests: list[tuple[bytes, int]], end: int) -> int:
        """Write one page's rows (ending at ``end``) and raise the watermark to ``end``.

        The transaction first takes the watermark row's lock (a no-op UPDATE: PostgreSQL's row
        lock, SQLite's write lock), so indexers queue here and each one sees where the last
        one stopped: it writes only the rows above that, which nobody else can be writing.
        """
        st = event_index_state.c
        async with self.db.transaction("indexing events") as conn:
            mark = int((await conn.execute(
                sa.update(event_index_state).where(st.id == 1).values(size=st.size)
                .returning(st.size))).scalar_one())
            if mark >= end:
                return mark  # another indexer got here first
            if mark < end - len(rows):  # the watermark never shrinks; indexing past a hole would hide it
                raise StorageError(f"the event index watermark is {mark}, below this batch's start")
            rows = [r for r in rows if r[0] >= mark]
            digests = [d for d in digests if d[1] >= mark]
            if self._pg:
                await self._insert_pg(conn, rows, digests)
            else:
                await self._insert_sqlite(conn, rows, digests)
            await conn.execute(sa.update(event_index_state).where(st.id == 1).values(size=end))
        return end

    @staticmethod
    async def _insert_pg(conn: Any, rows: list[Row], digests: list[tuple[bytes, int]]) -> None:
        """COPY (binary): several times faster than any INSERT; the lock above rules out conflicts."""
        raw = (await conn.get_raw_connection()).driver_connection
        columns = f"event_index (idx, {', '.join(FIELDS)})"
        async with raw.cursor() as cur:
            async with cur.copy(f"COPY {columns} FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "text", "text", "text", "int8", "text", "text", "text", "int8"])
                for row in rows:
                    await copy.write_row(row)
            if digests:
                sql = "COPY event_commitments (digest, idx) FROM STDIN (FORMAT BINARY)"
                async with cur.copy(sql) as copy:
                    copy.set_types(["bytea", "int8"])
                    for pair in digests:
                        await copy.write_row(pair)

    @staticmethod
    async def _insert_sqlite(conn: Any, rows: list[Row], digests: list[tuple[bytes, int]]) -> None:
        async def insert(target: str, width: int, values: Sequence[tuple[Any, ...]]) -> None:
            per = _SQLITE_ROWS * 9 // width
            group = "(" + ", ".join(["?"] * width) + ")"
            for k in range(0, len(values), per):
                part = values[k : k + per]
                sql = f"INSERT INTO {target} VALUES {', '.join([group] * len(part))} ON CONFLICT DO NOTHING"
                await conn.exec_driver_sql(sql, tuple(x for v in part for x in v))

        await insert(f"event_index (idx, {', '.join(FIELDS)})", 9, rows)
        if digests:
            await insert("event_commitments (digest, idx)", 2, digests)

    # -- checking and repairing ------------------------------------------------------------

    async def check(self, *, full: bool = True) -> list[str]:
        """What is wrong with the index, as `verify` lines (each kind summarised): [] when it
        holds exactly what re-deriving it from the entries gives, below its watermark.

        Without ``full``, only what is cheap on any log: the watermark against the log, and
        the row count against the watermark (a deleted or added row). ``full`` re-derives
        every row and commitment from the entries (parsing each, like catching up from
        nothing) and compares them: a changed row too, naming each event.
        """
        return [str(f) for f in (await self._diff(full)).findings]

    async def repair(self) -> int:
        """Make the index what the entries say, in one short transaction: only the rows and
        commitments the full check finds wrong are rewritten (indexers may run meanwhile: they
        write only above the watermark). Returns how many rows it changed."""
        diff = await self._diff(full=True)
        st, ec = event_index_state.c, event_commitments.c
        async with self.db.transaction("repairing the event index") as conn:
            mark = (await conn.execute(sa.update(event_index_state).where(st.id == 1)
                                       .values(size=sa.func.min(st.size, diff.covers) if not self._pg
                                               else sa.func.least(st.size, diff.covers))
                                       .returning(st.size))).scalar_one_or_none()
            if mark is None:  # the state row itself was deleted: start again from nothing
                await conn.execute(event_index.delete())
                await conn.execute(event_commitments.delete())
                await conn.execute(event_index_state.insert().values(id=1, size=0))
                self._size = 0
                changed = 1
            else:
                bad = sorted(diff.bad_rows)
                for k in range(0, len(bad), 500):
                    await conn.execute(event_index.delete().where(event_index.c.idx.in_(bad[k : k + 500])))
                rows = [r for r in (diff.bad_rows[i] for i in bad) if r is not None]
                if rows:
                    await conn.execute(event_index.insert(), [dict(zip(("idx", *FIELDS), r, strict=True))
                                                              for r in rows])
                for digest, idx in diff.extra_commitments:
                    await conn.execute(event_commitments.delete().where(ec.digest == digest, ec.idx == idx))
                if diff.missing_commitments:
                    await conn.execute(event_commitments.insert(), [
                        {"digest": d, "idx": i} for d, i in sorted(diff.missing_commitments)])
                self._size = min(self._size, int(mark))
                changed = len(bad) + len(diff.extra_commitments) + len(diff.missing_commitments)
                changed += int(mark) != diff.watermark
        await self.catch_up()
        return changed

    async def _diff(self, full: bool) -> _IndexDiff:
        st = event_index_state.c
        diff = _IndexDiff()
        sequenced = await self.log.sequenced_size()
        async with self.db.connect("checking the event index") as conn:
            mark = (await conn.execute(sa.select(st.size).where(st.id == 1))).scalar_one_or_none()
            if mark is None:
                diff.problem("the event index's watermark row (table event_index_state) is missing: "
                             "catching up fails")
                return diff
        diff.watermark = int(mark)
        diff.covers = covers = min(int(mark), sequenced)
        if mark > sequenced:
            diff.problem(f"the event index says it covers {mark} entries, but the log has {sequenced}")
        c = event_index.c
        if full:
            await self._compare_rows(diff, covers)
        else:
            async with self.db.connect("checking the event index") as conn:
                count = (await conn.execute(sa.select(sa.func.count()).where(c.idx >= 0, c.idx < covers))
                         ).scalar_one()
            if count != covers:  # name the first holes (a walk of the primary key, only now)
                e, after = event_index.alias("e"), event_index.alias("after")
                next_missing = ~sa.exists().where(after.c.idx == e.c.idx + 1)
                async with self.db.connect("checking the event index") as conn:
                    holes = [int(i) for i in (await conn.execute(
                        sa.select(e.c.idx + 1).where(e.c.idx >= 0, e.c.idx + 1 < covers, next_missing)
                        .order_by(e.c.idx).limit(SHOWN_AT))).scalars()]
                    if covers and (await conn.execute(sa.select(c.idx).where(c.idx == 0))).first() is None:
                        holes.insert(0, 0)
                for idx in holes:
                    diff.problem(f"event {idx}: no index row (queries never find it)")
                diff.problem(f"the event index holds {count} rows for the {covers} entries it covers "
                             "(`rlhf-audit verify --derived` compares every row)")
        # Rows beyond: above the watermark as it is now (an indexer may have moved it meanwhile).
        async with self.db.connect("checking the event index") as conn:
            now = (await conn.execute(sa.select(st.size).where(st.id == 1))).scalar_one_or_none()
            above = covers if mark > sequenced or now is None else max(covers, int(now))
            extra = (await conn.execute(sa.select(c.idx).where((c.idx < 0) | (c.idx >= above))
                                        .order_by(c.idx).limit(1000))).scalars().all()
        for idx in extra:
            diff.wrong(int(idx), None, f"event {idx}: an index row beyond the {covers} entries it covers")
        if full:
            await self._compare_commitments(diff, covers)
        return diff

    async def _compare_rows(self, diff: _IndexDiff, covers: int) -> None:
        """Walk the stored rows and the entries [0, covers) side by side, in order of idx."""
        stored = self._stored_rows(covers)
        nxt = await anext(stored, None)
        async for chunk in self.log.scan_entries(0, covers, self.page):
            derived, digests = _rows([(int(i), bytes(d)) for i, d in chunk])
            diff.derived_commitments.update(digests)
            for row in derived:
                while nxt is not None and nxt[0] < row[0]:  # a row for an entry that is not there
                    diff.wrong(nxt[0], None, f"event {nxt[0]}: an index row for an entry the log does not "
                               "hold")
                    nxt = await anext(stored, None)
                if nxt is None or nxt[0] != row[0]:
                    diff.wrong(row[0], row, f"event {row[0]}: no index row (queries never find it)")
                    continue
                if tuple(nxt) != row:
                    fields = [f for f, a, b in zip(FIELDS, nxt[1:], row[1:], strict=True) if a != b]
                    diff.wrong(row[0], row, f"event {row[0]}: its index row differs from the entry in "
                               f"{', '.join(fields)}")
                nxt = await anext(stored, None)
        await stored.aclose()

    async def _compare_commitments(self, diff: _IndexDiff, covers: int) -> None:
        ec = event_commitments.c
        async with self.db.connect("checking the event index") as conn:
            # (those above a watermark beyond the log are all wrong; otherwise above it an
            # indexer may be writing now)
            query = sa.select(ec.digest, ec.idx)
            if covers == diff.watermark:
                query = query.where(ec.idx < covers)
            held = {(bytes(d), int(i)) for d, i in await conn.execute(query)}
        for digest, idx in sorted((d, i) for d, i in diff.derived_commitments if (d, i) not in held):
            diff.missing_commitments.add((digest, idx))
            diff.problem(f"event {idx}: commitment {digest.hex()[:16]}… is not indexed (the lookup by "
                         "commitment misses it)")
        for digest, idx in sorted(held - diff.derived_commitments):
            diff.extra_commitments.add((digest, idx))
            diff.problem(f"event {idx}: commitment {digest.hex()[:16]}… is indexed, but the entry does "
                         "not carry it")

    async def _stored_rows(self, covers: int) -> AsyncGenerator[Row, None]:
        """The stored index rows of entries [0, covers) in order of idx, a page at a time."""
        c = event_index.c
        cols = [c.idx, *(c[f] for f in FIELDS)]
        after = -1
        while True:
            async with self.db.connect("checking the event index") as conn:
                page = (await conn.execute(sa.select(*cols).where(c.idx > after, c.idx < covers)
                                           .order_by(c.idx).limit(self.page))).all()
            for r in page:
                yield tuple(None if v is None else (int(v) if k in (0, 4, 8) else str(v))
                            for k, v in enumerate(r))  # type: ignore[misc]
            if len(page) < self.page:
                return
            after = int(page[-1][0])

    # -- reading --------------------------------------------------------------------------

    async def first(self, kind: str, **fields: Any) -> IndexedEvent | None:
        """The first event of ``kind`` whose body has all of ``fields`` (e.g. a key event naming
        one key): the kind's events read page by page, for kinds the log holds few of."""
        after = None
        while True:
            page = await self.query(kind=kind, after=after, limit=100)
            for e in page:
                if all(e.event.get(k) == v for k, v in fields.items()):
                    return e
            if len(page) < 100:
                return None
            after = page[-1].index

    async def query(
        self, *, kind: str | Sequence[str] | None = None, run: str | None = None,
        dataset: str | None = None, dataset_version: int | None = None, model: str | None = None,
        actor: str | None = None, annotator: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
        after: int | None = None, limit: int = 100, descending: bool = False,
    ) -> list[IndexedEvent]:
        """Events matching every given filter, in log order (newest first with ``descending``).

        ``since`` is inclusive and ``until`` exclusive (naive datetimes are taken as UTC);
        ``after`` is a cursor: the leaf index of the last event of the previous page (with
        ``descending``, results are below it). At most ``limit`` events.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        c = event_index.c
        where: list[sa.ColumnElement[bool]] = []
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            kinds = [k for k in kinds if k == "" or _matchable(k)]
            if not kinds:
                return []
            where.append(c.kind == kinds[0] if len(kinds) == 1 else c.kind.in_(kinds))
        for column, value in ((c.run, run), (c.dataset, dataset), (c.model, model), (c.actor, actor),
                              (c.annotator, annotator)):
            if value is not None:
                if not _matchable(value):
                    return []
                where.append(column == value)
        if dataset_version is not None:
            if _int(dataset_version) is None:
                return []
            where.append(c.dataset_version == dataset_version)
        if since is not None:
            where.append(c.at >= _micros(since))
        if until is not None:
            where.append(c.at < _micros(until))
        if after is not None:
            where.append(c.idx < after if descending else c.idx > after)
        stmt = (sa.select(c.idx, c.kind, c.at).where(*where)
                .order_by(c.idx.desc() if descending else c.idx).limit(limit))
        await self.catch_up()
        async with self.db.connect("querying the event index") as conn:
            found = (await conn.execute(stmt)).all()
        return await self._events([(int(i), str(k), None if t is None else int(t)) for i, k, t in found])

    async def _events(self, found: list[tuple[int, str, int | None]]) -> list[IndexedEvent]:
        data = await self.log.entries_at([i for i, _, _ in found])
        out = []
        for idx, kind, at in found:
            raw = data.get(idx)
            if raw is None:  # entries are never deleted; this would be a damaged database
                raise StorageError(f"entry {idx} is indexed but missing from the log")
            out.append(IndexedEvent(idx, kind, _when(at), _parse(raw) or {}, raw))
        return out

    async def by_commitment(self, commitment: bytes) -> list[int]:
        """Leaf indices of the entries carrying this 32-byte commitment digest, lowest first."""
        if len(commitment) != 32:
            raise ValueError("a commitment digest is 32 bytes")
        await self.catch_up()
        ec = event_commitments.c
        stmt = sa.select(ec.idx).where(ec.digest == commitment).order_by(ec.idx)
        async with self.db.connect("looking up a commitment") as conn:
            return [int(i) for (i,) in await conn.execute(stmt)]

    async def get(self, index: int) -> IndexedEvent | None:
        """Entry ``index`` as an indexed event; None when the log has no such entry."""
        if not 0 <= index < _INT64:
            return None
        await self.catch_up()
        c = event_index.c
        async with self.db.connect("reading the event index") as conn:
            row = (await conn.execute(sa.select(c.idx, c.kind, c.at).where(c.idx == index))).first()
        if row is None:
            return None
        return (await self._events([(int(row[0]), str(row[1]), None if row[2] is None else int(row[2]))]))[0]


@contextlib.asynccontextmanager
async def kept_indexed(db: Database, log: Log, interval: float = 0.5) -> AsyncIterator[EventIndex]:
    """An :class:`EventIndex` over ``log`` (its tables in ``db``), caught up every ``interval``
    seconds while the block runs; on exit the catch-up in progress finishes first
    (``app.core.background.every``)."""
    index = EventIndex(db, log)
    async with every(interval, index.catch_up, name="event index catch-up"):
        yield index

"""Storage seam of the ledger: SQLAlchemy async over SQLite (aiosqlite) or PostgreSQL (psycopg).

Everything dialect-specific lives here. The hot paths skip SQLAlchemy's per-row and per-call
work, which would cost more than the ledger's own: on SQLite, the two write transactions
(sequencing, publishing) run as one call each in :class:`SQLiteWriter`'s thread and the
latency-bound reads run inline (``_hot_read``); on PostgreSQL, entries go in by binary COPY and
the rest through the driver's ``executemany``/``fetchall`` (``exec_driver_sql``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..errors import ConfigError, StorageError
from ..merkle import leaf_hashes
from ..tiles import TILE_WIDTH, frame_entries, unframe_entries
from . import schema as s
from .sqlite_writer import SQLiteWriter


def async_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite:///`` URLs; pick the async drivers."""
    for plain, driver in (
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url

def private_sqlite_files(database: str) -> None:
    """Keep a SQLite database owner-only: it holds the accounts' password and token hashes.

    SQLite creates a database 0644 (less the umask) and gives its -wal and -shm files the
    database file's mode, so creating the file 0600 first (an empty file is an empty database)
    covers all three. An existing database's files lose group and other access, where they are
    ours to change (another user's database is left as it is, to fail or be read as it allows).
    """
    if not database or database.startswith("file:"):
        return
    path = Path(database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return  # e.g. no such directory: SQLite says so when it connects
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            st = file.stat()
            if st.st_uid == os.geteuid() and st.st_mode & 0o077:
                file.chmod(stat.S_IMODE(st.st_mode) & 0o700)


@contextlib.asynccontextmanager
async def translate_errors(what: str) -> AsyncIterator[None]:
    """Turn database failures into StorageError, naming what was being done."""
    try:
        yield
    except DBAPIError as e:
        raise StorageError(f"database error while {what}: {e.orig}") from e
    except SQLAlchemyError as e:
        raise StorageError(f"database error while {what}: {e}") from e
    except OSError as e:
        raise StorageError(f"cannot reach the database while {what}: {e}") from e

def _hash_prefix(h: bytes) -> bytes:
    return h[:8]


def entry_runs(first: int, entries: Sequence[bytes]) -> list[tuple[int, bytes]]:
    """The ``entry_bundles`` rows of entries [first, first + n): one per bundle they touch."""
    out = []
    j, n = 0, len(entries)
    while j < n:
        k = min(n, j + TILE_WIDTH - (first + j) % TILE_WIDTH)
        out.append((first + j, frame_entries(entries[j:k])))
        j = k
    return out


def _unframed(first: int, data: bytes) -> list[bytes]:
    try:
        return unframe_entries(data)
    except ValueError as e:
        raise StorageError(f"the entry row at index {first} is corrupt: {e}") from None


def _entries_in(rows: Iterable[Any], start: int, end: int) -> list[tuple[int, bytes]]:
    """(index, bytes) of the entries in [start, end) held by ``rows`` of (first index, data)."""
    out: list[tuple[int, bytes]] = []
    for first, data in rows:
        first = int(first)
        entries = _unframed(first, bytes(data))
        lo, hi = max(start - first, 0), min(end - first, len(entries))
        if lo < hi:
            out += zip(range(first + lo, first + hi), entries[lo:hi], strict=True)
    return out


# Leaf-hash index rows in one statement, sorted by the database itself: one sqlite3_step, so
# the writer thread holds no GIL while the rows go in (an executemany takes it back for every
# row, from the appending event loop). ?1 is the leaf hashes concatenated, ?2 the first
# index, ?3 the count.
_SQLITE_INDEX = (
    "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?3) "
    "INSERT INTO leaf_index (hash_prefix, idx) "
    "SELECT substr(?1, i * 32 + 1, 8), ?2 + i FROM s ORDER BY 1, 2")
# The same rows put in key order beforehand (ledger/_merkle.c: 0.2 µs a row, against 0.55 for
# the database's sorter), fed by json_each: ?1 is their prefixes, ?2 a JSON array of indices.
_SQLITE_INDEX_SORTED = ("INSERT INTO leaf_index (hash_prefix, idx) "
                        "SELECT substr(?1, key * 8 + 1, 8), value FROM json_each(?2)")
_sorted_index_rows: Callable[[bytes, int], tuple[bytes, str]] | None
try:
    from .._merkle import leaf_index_rows as _sorted_index_rows
except ImportError:  # not built: the database sorts
    _sorted_index_rows = None
_JSON_EACH = sqlite3.sqlite_version_info >= (3, 38)  # JSON functions built in by default since 3.38
_PG_INDEX = (
    "INSERT INTO leaf_index (hash_prefix, idx) "
    "SELECT substring(%(h)s::bytea from i * 32 + 1 for 8), %(first)s::bigint + i "
    "FROM generate_series(0, %(n)s::int - 1) AS i ORDER BY 1, 2")


def _sqlite_sequence(conn: sqlite3.Connection, entries: Sequence[bytes]) -> int:
    n = len(entries)
    (next_index,) = conn.execute(
        "UPDATE log_sequence SET next_index = next_index + ? WHERE id = 1 RETURNING next_index",
        (n,)).fetchone()
    first = int(next_index) - n
    conn.executemany("INSERT INTO entry_bundles (idx, data) VALUES (?, ?)", entry_runs(first, entries))
    return first


def _sqlite_publish(
    conn: sqlite3.Connection, old_size: int, size: int, root: bytes, note: bytes, at: str,
    tile_rows: list[tuple[int, int, bytes, bytes | None]],
) -> bool:
    # The conditional update decides between concurrent integrators: one wins, others retry.
    won = conn.execute("UPDATE log_tree SET size = ?, root_hash = ? WHERE id = 1 AND size = ? "
                       "RETURNING size", (size, root, old_size)).fetchone()
    if won is None:
        return False
    conn.executemany(
        "INSERT INTO tiles (level, idx, hashes, inner_levels) VALUES (?, ?, ?, ?) ON CONFLICT "
        "(level, idx) DO UPDATE SET hashes = excluded.hashes, inner_levels = excluded.inner_levels",
        tile_rows)
    conn.execute("INSERT INTO checkpoints (size, root_hash, note, published_at) VALUES (?, ?, ?, ?)",
                 (size, root, note, at))
    return True


def _sqlite_index(conn: sqlite3.Connection, start: int, hashes: bytes,
                  rows: tuple[bytes, str] | None) -> bool:
    n = len(hashes) // 32
    won = conn.execute("UPDATE leaf_index_state SET size = ? WHERE id = 1 AND size = ? RETURNING size",
                       (start + n, start)).fetchone()
    if won is None:
        return False
    if rows is not None:
        conn.execute(_SQLITE_INDEX_SORTED, rows)
    else:
        conn.execute(_SQLITE_INDEX, (hashes, start, n))
    return True


# The leaf-hash index rebuilt from the level-0 tiles: a row per hash of each, below the tree size.
_SQLITE_REINDEX = (
    "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < 256) "
    "INSERT INTO leaf_index (hash_prefix, idx) "
    "SELECT substr(t.hashes, s.i * 32 + 1, 8), t.idx * 256 + s.i FROM tiles t JOIN s "
    "ON s.i * 32 < length(t.hashes) WHERE t.level = 0 AND t.idx * 256 + s.i < ? ORDER BY 1, 2")
_PG_REINDEX = (
    "INSERT INTO leaf_index (hash_prefix, idx) "
    "SELECT substring(t.hashes from i * 32 + 1 for 8), t.idx * 256 + i "
    "FROM tiles t CROSS JOIN generate_series(0, 255) AS i "
    "WHERE t.level = 0 AND i * 32 < length(t.hashes) AND t.idx * 256 + i < %(size)s ORDER BY 1, 2")

# (an upsert: a state row deleted by hand comes back)
_SET_INDEX_STATE = ("INSERT INTO leaf_index_state (id, size) VALUES (1, %s) "
                    "ON CONFLICT (id) DO UPDATE SET size = excluded.size")


def _check_reindexed(done: int, size: int) -> None:
    if done != size:  # raising rolls the transaction back: the old index stays
        raise StorageError(f"the level-0 tiles hold {done} of the {size} leaf hashes: the leaf-hash "
                           "index cannot be rebuilt until they are there (run `rlhf-audit verify`)")


def _sqlite_rebuild_index(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT size FROM log_tree WHERE id = 1").fetchone()
    if row is None:
        raise StorageError("the tree row is missing: run `rlhf-audit verify`")
    size = int(row[0])
    conn.execute("DELETE FROM leaf_index")
    conn.execute(_SQLITE_REINDEX, (size,))
    (done,) = conn.execute("SELECT changes()").fetchone()  # (rowcount is -1 for a WITH statement)
    _check_reindexed(done, size)
    conn.execute(_SET_INDEX_STATE.replace("%s", "?"), (size,))
    return size


_SYNCHRONOUS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def open_engine(url: str, *, sqlite_synchronous: str = "FULL") -> AsyncEngine:
    """An engine configured as the ledger needs it (SQLite: WAL, explicit BEGIN, owner-only files).

    Whoever opens it owns it (disposes it); a :class:`Store` built over it shares it."""
    aurl = async_url(url)
    try:
        # A server answers many requests at once: keep enough pooled connections that
        # bursts do not churn overflow connections (each aiosqlite one is a new thread).
        parsed = make_url(aurl)
        if parsed.get_backend_name() == "sqlite" and (
                not parsed.database or parsed.database == ":memory:"
                or parsed.database.startswith("file::memory:")):
            raise ConfigError("an in-memory SQLite database cannot hold a log (the ledger reads "
                              "and writes on several connections): give a file, sqlite:///path")
        engine = create_async_engine(aurl, pool_pre_ping=False, pool_size=16, max_overflow=16)
    except (SQLAlchemyError, ImportError, ValueError, TypeError) as e:
        raise ConfigError(f"unusable database URL {url!r}: {e}") from e
    if engine.dialect.name not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {engine.dialect.name!r}: use SQLite or PostgreSQL")
    if engine.dialect.name == "sqlite":
        synchronous = sqlite_synchronous.upper()
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigError("sqlite synchronous must be FULL, NORMAL or EXTRA")
        private_sqlite_files(engine.url.database or "")  # before anything connects
        _configure_sqlite(engine, synchronous)
        _SYNCHRONOUS[engine.sync_engine] = synchronous
    return engine


def _configure_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Transactions are begun explicitly below, so pysqlite must not begin its own.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


class Store:
    """The ledger's database. One per process; safe to share between tasks."""

    def __init__(self, database: AsyncEngine | str, *, sqlite_synchronous: str = "FULL") -> None:
        """Over an engine from :func:`open_engine` (shared: the caller disposes it), or over a URL
        (the Store opens and owns its engine)."""
        self._owns_engine = isinstance(database, str)
        self.engine: AsyncEngine = (open_engine(database, sqlite_synchronous=sqlite_synchronous)
                                    if isinstance(database, str) else database)
        self.url = self.engine.url.render_as_string(hide_password=False)
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigError(f"unsupported database {self.dialect!r}: use SQLite or PostgreSQL")
        self._ph = "?" if self.dialect == "sqlite" else "%s"
        # SQLite has one writer at a time; queueing writers here wakes them as soon as the
        # lock is free, where SQLite's busy handler would sleep and poll.
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        # the dialect's own INSERT (ON CONFLICT); imported here: PostgreSQL's costs a SQLite CLI 40 ms
        self._insert: Callable[[Any], Any]
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            self._insert = sqlite_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            self._insert = postgresql_insert
        self._hot: sqlite3.Connection | None = None  # SQLite: inline latency-bound reads
        self._writer: SQLiteWriter | None = None
        if self.dialect == "sqlite":
            synchronous = _SYNCHRONOUS.get(self.engine.sync_engine)
            if synchronous is None:
                raise ConfigError("a SQLite engine for the ledger must come from ledger.storage.open_engine "
                                  "(WAL, explicit transactions)")
            self._writer = SQLiteWriter(self.engine.url.database or "", synchronous)
            # Checkpoint times written exactly as SQLAlchemy writes (and later reads) them.
            stamp = s.checkpoints.c.published_at.type.dialect_impl(self.engine.dialect)
            self._sqlite_time: Callable[[datetime], Any] = (
                stamp.bind_processor(self.engine.dialect) or (lambda at: at))

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
        if self._hot is not None:
            self._hot.close()
            self._hot = None
        if self._owns_engine:
            await self.engine.dispose()

    async def _hot_read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """One query for the read paths whose latency matters (proofs, entries, tiles).

        SQLite: run inline, on a read-only connection of this thread. These are primary-key
        reads of a few rows (tens of µs); handing them to a driver thread costs more, and under
        load far more: the thread must win the GIL back from the event loop (measured on the
        tile route at 16 clients: p90 18 ms, a third of the throughput of cached tiles). A WAL
        reader does not wait for writers, so it never blocks the loop; should it ever meet a
        lock (WAL recovery), the read is retried in a thread. PostgreSQL goes through the pool.
        """
        if self.dialect != "sqlite":
            async with self.engine.connect() as conn:
                return list((await conn.exec_driver_sql(sql, tuple(params))).fetchall())
        try:
            if self._hot is None:
                self._hot = self._reader(busy_ms=0)
            return self._hot.execute(sql, tuple(params)).fetchall()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise StorageError(f"database error while reading: {e}") from e
        except sqlite3.Error as e:
            raise StorageError(f"database error while reading: {e}") from e
        return await asyncio.to_thread(self._read_waiting, sql, tuple(params))

    def _reader(self, busy_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(self.engine.url.database or "", isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        conn.execute("PRAGMA query_only=1")
        # Pages read through a memory map, not copied by read() calls: a cold 16 KiB tile row
        # spans five pages (1M-entry cold proof 207 -> 173 µs). Address space, not memory.
        conn.execute("PRAGMA mmap_size=1073741824")
        return conn

    def _read_waiting(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        conn = self._reader(busy_ms=60_000)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise StorageError(f"database error while reading: {e}") from e
        finally:
            conn.close()

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
        else:
            async with self._write_lock:
                yield

    # -- schema -------------------------------------------------------------------------

    async def check_schema(self) -> None:
        """Fail clearly when the database was never initialised."""
        async with translate_errors("reading the schema"), self.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(c.dialect.get_table_names(c)))
        if "log_tree" not in names:
            raise ConfigError("the database holds no log: run `rlhf-audit init` first")

    # -- sequencing ---------------------------------------------------------------------

    async def sequence(self, entries: Sequence[bytes]) -> int:
        """Durably store entries; return the index of the first.

        The counter update takes the sequence row's lock (PostgreSQL) or the write lock
        (SQLite) first, so concurrent appenders queue and indices are gap-free.
        """
        n = len(entries)
        if self._writer is not None:
            async with self._writing():
                return await self._writer.run("appending entries", _sqlite_sequence, entries)
        async with self._writing(), translate_errors("appending entries"), self.engine.begin() as conn:
            result = await conn.execute(
                update(s.log_sequence)
                .where(s.log_sequence.c.id == 1)
                .values(next_index=s.log_sequence.c.next_index + n)
                .returning(s.log_sequence.c.next_index)
            )
            first = int(result.scalar_one()) - n
            await self._copy_entries(conn, first, entries)
        return first

    @staticmethod
    async def _copy_entries(conn: AsyncConnection, first: int, entries: Sequence[bytes]) -> None:
        """PostgreSQL: binary COPY, cheaper per row than any INSERT (the sequence row's lock,
        taken just before, rules out conflicting indices)."""
        raw: Any = (await conn.get_raw_connection()).driver_connection
        sql = "COPY entry_bundles (idx, data) FROM STDIN (FORMAT BINARY)"
        async with raw.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(["int8", "bytea"])
            for row in entry_runs(first, entries):
                await copy.write_row(row)

    async def sequenced_size(self) -> int:
        async with translate_errors("reading the sequence"), self.engine.connect() as conn:
            return int(
                (await conn.execute(select(s.log_sequence.c.next_index))).scalar_one()
            )

    # -- integration --------------------------------------------------------------------

    async def integration_view(
        self, edge_coords: Callable[[int], list[tuple[int, int]]], max_batch: int
    ) -> IntegrationView:
        """The tree size, its edge tiles and how far entries are sequenced, read without locks."""
        async with translate_errors("reading the tree"), self.engine.connect() as conn:
            size = int((await conn.execute(select(s.log_tree.c.size))).scalar_one())
            end = int((await conn.execute(select(s.log_sequence.c.next_index))).scalar_one())
        # Read apart from the two numbers above: a concurrent integration shows up as a lost
        # conditional publish, never as a wrong tree.
        rows = await self.read_tile_rows(edge_coords(size)) if size else {}
        edge = {key: hashes for key, (hashes, _) in rows.items()}
        return IntegrationView(size, min(end, size + max_batch), edge)

    async def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes of the committed entries [start, end), recomputed from their bytes."""
        ph = self._ph
        async with translate_errors("reading entries"), self.engine.connect() as conn:
            result = await conn.exec_driver_sql(
                f"SELECT idx, data FROM entry_bundles WHERE idx >= {ph} AND idx < {ph} ORDER BY idx",
                (start - start % TILE_WIDTH, end),
            )
            rows = _entries_in(result.fetchall(), start, end)
        if len(rows) != end - start or (rows and (rows[0][0] != start or rows[-1][0] != end - 1)):
            raise StorageError(
                f"entries {start}..{end - 1} are sequenced but {end - start - len(rows)} are missing"
            )
        return leaf_hashes([r[1] for r in rows])

    async def publish(
        self,
        old_size: int,
        size: int,
        root: bytes,
        note: bytes,
        at: datetime,
        tiles: dict[tuple[int, int], bytes],
        inner: dict[tuple[int, int], bytes],
    ) -> bool:
        """Extend the tree from ``old_size`` if it is still that size; False if someone won."""
        if self._writer is not None:
            tile_rows = [(lv, ix, h, inner.get((lv, ix))) for (lv, ix), h in tiles.items()]
            async with self._writing():
                return await self._writer.run(
                    "integrating", _sqlite_publish, old_size, size, root, note,
                    self._sqlite_time(at), tile_rows)
        async with self._writing(), translate_errors("integrating"), self.engine.begin() as conn:
            # The conditional update takes the tree row's lock: one integrator at a time.
            won = (
                await conn.execute(
                    update(s.log_tree)
                    .where(s.log_tree.c.id == 1, s.log_tree.c.size == old_size)
                    .values(size=size, root_hash=root)
                    .returning(s.log_tree.c.size)
                )
            ).first()
            if won is None:
                return False
            if tiles:
                stmt = self._insert(s.tiles)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[s.tiles.c.level, s.tiles.c.idx],
                    set_={"hashes": stmt.excluded.hashes, "inner_levels": stmt.excluded.inner_levels},
                )
                await conn.execute(stmt, [
                    {"level": lv, "idx": ix, "hashes": h, "inner_levels": inner.get((lv, ix))}
                    for (lv, ix), h in tiles.items()
                ])
            await conn.execute(
                s.checkpoints.insert().values(size=size, root_hash=root, note=note, published_at=at)
            )
        return True

    # -- reads --------------------------------------------------------------------------

    async def tree_head(self) -> tuple[int, bytes]:
        async with translate_errors("reading the tree head"):
            rows = await self._hot_read("SELECT size, root_hash FROM log_tree WHERE id = 1", ())
        return int(rows[0][0]), bytes(rows[0][1])

    async def read_tile_rows(
        self, coords: Iterable[tuple[int, int]]
    ) -> dict[tuple[int, int], tuple[bytes, bytes | None]]:
        """(hashes, inner levels or None) of each tile: what proofs read, in one query."""
        wanted = sorted(set(coords))
        if not wanted:
            return {}
        ph = self._ph
        where = " OR ".join([f"(level = {ph} AND idx = {ph})"] * len(wanted))
        params = [x for key in wanted for x in key]
        async with translate_errors("reading tiles"):
            rows = await self._hot_read(
                f"SELECT level, idx, hashes, inner_levels FROM tiles WHERE {where}", params)
        return {(int(lv), int(ix)): (bytes(h), None if inn is None else bytes(inn))
                for lv, ix, h, inn in rows}

    async def _entry_rows(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """(index, bytes) of the stored entries in [start, end), in order (missing ones left out)."""
        ph = self._ph
        async with translate_errors("reading entries"):
            rows = await self._hot_read(
                f"SELECT idx, data FROM entry_bundles WHERE idx >= {ph} AND idx < {ph} ORDER BY idx",
                (start - start % TILE_WIDTH, end))
        return _entries_in(rows, start, end)

    async def read_entries(self, start: int, end: int) -> list[bytes]:
        """Entry bytes for indices [start, end), in order (missing rows are skipped)."""
        return [e for _, e in await self._entry_rows(start, end)]

    async def read_entries_at(self, indices: Sequence[int]) -> dict[int, bytes]:
        """Entry bytes by index for scattered indices (query results); absent ones are left out.

        Each wanted entry's bundle is read whole (its rows start within it), 200 bundles a query.
        """
        wanted = set(indices)
        bundles = sorted({i // TILE_WIDTH for i in wanted})
        ph = self._ph
        out: dict[int, bytes] = {}
        for k in range(0, len(bundles), 200):
            part = bundles[k : k + 200]
            where = " OR ".join([f"(idx >= {ph} AND idx < {ph})"] * len(part))
            params = [x for b in part for x in (b * TILE_WIDTH, (b + 1) * TILE_WIDTH)]
            async with translate_errors("reading entries"):
                rows = await self._hot_read(f"SELECT idx, data FROM entry_bundles WHERE {where}", params)
            for first, data in rows:
                first = int(first)
                for i, entry in enumerate(_unframed(first, bytes(data)), first):
                    if i in wanted:
                        out[i] = entry
        return out

    async def scan_entries(
        self, start: int, end: int, chunk: int = 16384
    ) -> AsyncIterator[list[tuple[int, bytes]]]:
        """(index, entry bytes) for [start, end) in chunks of about ``chunk`` entries (whole
        rows: a chunk ends where a row does), for the self-audit and the event index.

        The next chunk is read while the caller works on this one. A row whose framing is
        broken raises StorageError naming it.
        """
        chunk = max(TILE_WIDTH, chunk - chunk % TILE_WIDTH)  # whole bundles, so whole rows
        sql = "SELECT idx, data FROM entry_bundles WHERE idx >= {0} AND idx < {0} ORDER BY idx"
        sql = sql.format(self._ph)

        async def fetch(lo: int) -> list[Any]:
            hi = min(lo + chunk, end)
            async with translate_errors("reading entries"):
                rows = await self._hot_read(sql, (lo - lo % TILE_WIDTH, hi))
            return _entries_in(rows, lo, hi)

        pos = start
        pending = asyncio.ensure_future(fetch(pos)) if pos < end else None
        while pending is not None:
            rows = await pending
            pos += chunk
            pending = asyncio.ensure_future(fetch(pos)) if pos < end else None
            yield rows

    async def entries_after(self, index: int) -> int:
        """How many entries are stored at or beyond ``index`` (ones the tree must not have)."""
        async with translate_errors("reading entries"), self.engine.connect() as conn:
            rows = (await conn.exec_driver_sql(
                f"SELECT idx, data FROM entry_bundles WHERE idx >= {self._ph}",
                (index - index % TILE_WIDTH,))).fetchall()
        return len(_entries_in(rows, index, 1 << 62))

    async def scan_tiles(self, level: int) -> AsyncIterator[tuple[int, bytes]]:
        t = s.tiles.c
        async with translate_errors("reading tiles"), self.engine.connect() as conn:
            result = await conn.stream(
                select(t.idx, t.hashes).where(t.level == level).order_by(t.idx)
            )
            async for idx, hashes in result:
                yield int(idx), bytes(hashes)

    async def tile_levels(self) -> list[int]:
        async with translate_errors("reading tiles"), self.engine.connect() as conn:
            rows = await conn.execute(select(s.tiles.c.level).distinct())
            return sorted(int(r[0]) for r in rows)

    async def find_leaf(self, leaf_hash: bytes) -> list[int]:
        """Indices of integrated entries with this leaf hash, lowest first.

        The prefix narrows to (almost always) one row; the full hash, in its level-0 tile,
        decides, compared in the database so that only the index comes back (PostgreSQL then
        reads the 32 bytes from the tile's TOAST chunks, not the whole tile).
        """
        ph = self._ph
        # (psycopg's placeholders start with %; PostgreSQL's substring wants an int position)
        at = (f"(li.idx % {TILE_WIDTH}) * 32 + 1" if self.dialect == "sqlite"
              else f"((li.idx %% {TILE_WIDTH}) * 32 + 1)::int")
        substr = "substr" if self.dialect == "sqlite" else "substring"
        async with translate_errors("looking up a leaf hash"):
            rows = await self._hot_read(
                f"SELECT li.idx FROM leaf_index li JOIN tiles t "
                f"ON t.level = 0 AND t.idx = li.idx / {TILE_WIDTH} "
                f"WHERE li.hash_prefix = {ph} "
                f"AND {substr}(t.hashes, {at}, 32) = {ph} ORDER BY li.idx",
                (_hash_prefix(leaf_hash), leaf_hash))
        return [int(r[0]) for r in rows]

    async def leaf_index_size(self) -> int:
        """How many entries, from index 0, the leaf-hash index covers."""
        async with translate_errors("reading the leaf index"):
            rows = await self._hot_read("SELECT size FROM leaf_index_state WHERE id = 1", ())
        return int(rows[0][0])

    async def level0_hashes(self, start: int, end: int) -> bytes:
        """The leaf hashes of integrated entries [start, end), concatenated, from their tiles."""
        ph = self._ph
        first, last = start // TILE_WIDTH, (end - 1) // TILE_WIDTH
        async with translate_errors("reading tiles"):
            rows = await self._hot_read(
                f"SELECT idx, hashes FROM tiles WHERE level = 0 AND idx >= {ph} AND idx <= {ph} "
                "ORDER BY idx", (first, last))
        if [int(r[0]) for r in rows] != list(range(first, last + 1)):
            raise StorageError(f"level-0 tiles {first}..{last} are not all there: run `rlhf-audit verify`")
        skip = (start - first * TILE_WIDTH) * 32
        out = b"".join(bytes(r[1]) for r in rows)[skip : skip + (end - start) * 32]
        if len(out) != (end - start) * 32:
            raise StorageError(f"level-0 tile {last} is short: run `rlhf-audit verify`")
        return out

    async def extend_leaf_index(self, start: int, hashes: bytes) -> bool:
        """Index the leaf hashes of entries from ``start`` on if the index still ends there."""
        if self._writer is not None:
            rows = (_sorted_index_rows(hashes, start)
                    if _sorted_index_rows is not None and _JSON_EACH else None)
            async with self._writing():
                return await self._writer.run("indexing leaf hashes", _sqlite_index, start, hashes, rows)
        n = len(hashes) // 32
        async with translate_errors("indexing leaf hashes"), self.engine.begin() as conn:
            won = (await conn.exec_driver_sql(
                "UPDATE leaf_index_state SET size = %s WHERE id = 1 AND size = %s RETURNING size",
                (start + n, start))).first()
            if won is None:
                return False
            await conn.exec_driver_sql(_PG_INDEX, {"h": hashes, "first": start, "n": n})
        return True

    async def rebuild_leaf_index(self) -> int:
        """Replace the leaf-hash index with one built from the level-0 tiles (which ``verify``
        checks against the entries), up to the tree size, in one transaction: lookups see the
        old index or the new one. Returns the size it covers."""
        if self._writer is not None:
            async with self._writing():
                return await self._writer.run("rebuilding the leaf-hash index", _sqlite_rebuild_index)
        async with translate_errors("rebuilding the leaf-hash index"), self.engine.begin() as conn:
            # The state row's lock first: concurrent index_leaves() calls wait, then find the
            # size changed under them and re-read it.
            await conn.exec_driver_sql("UPDATE leaf_index_state SET size = size WHERE id = 1")
            size = int((await conn.exec_driver_sql("SELECT size FROM log_tree WHERE id = 1")).scalar_one())
            await conn.exec_driver_sql("DELETE FROM leaf_index")
            done = (await conn.exec_driver_sql(_PG_REINDEX, {"size": size})).rowcount
            _check_reindexed(done, size)
            await conn.exec_driver_sql(_SET_INDEX_STATE, (size,))
        return size

    async def scan_leaf_index(self, batch: int = 65536) -> AsyncIterator[list[tuple[bytes, int]]]:
        """Every leaf-hash index row (prefix, index), in key order, a batch at a time."""
        sql = "SELECT hash_prefix, idx FROM leaf_index"
        if self.dialect == "sqlite":
            reader = self._reader(busy_ms=60_000)
            try:
                cur = reader.execute(sql)
                while rows := await asyncio.to_thread(cur.fetchmany, batch):
                    yield rows
            except sqlite3.Error as e:
                raise StorageError(f"database error while reading the leaf index: {e}") from e
            finally:
                reader.close()
            return
        async with translate_errors("reading the leaf index"), self.engine.connect() as conn:
            result = await conn.stream(text(sql))
            async for part in result.partitions(batch):
                yield [(bytes(p), int(i)) for p, i in part]

    async def counters(self) -> dict[str, Any]:
        """The one-row tables as stored, for the self-audit: ``sequenced``, ``tree_size``,
        ``tree_root``, ``leaf_index`` (None where the row is missing, as a hand edit can leave
        it) and ``entries_end``, one past the last stored entry."""
        out: dict[str, Any] = {}
        async with translate_errors("reading the log's rows"), self.engine.connect() as conn:
            async def one(sql: str) -> Any:
                return (await conn.exec_driver_sql(sql)).first()

            seq = await one("SELECT next_index FROM log_sequence WHERE id = 1")
            tree = await one("SELECT size, root_hash FROM log_tree WHERE id = 1")
            index = await one("SELECT size FROM leaf_index_state WHERE id = 1")
            last = await one("SELECT idx, data FROM entry_bundles ORDER BY idx DESC LIMIT 1")
        out["sequenced"] = None if seq is None else int(seq[0])
        out["tree_size"], out["tree_root"] = (None, None) if tree is None else (int(tree[0]), bytes(tree[1]))
        out["leaf_index"] = None if index is None else int(index[0])
        end = 0
        if last is not None:
            try:
                end = int(last[0]) + len(_unframed(int(last[0]), bytes(last[1])))
            except StorageError:  # the scan of the entries names the corrupt row
                end = int(last[0]) + 1
        out["entries_end"] = end
        return out

    async def leaf_index_count(self) -> int:
        async with translate_errors("reading the leaf index"), self.engine.connect() as conn:
            return int(
                (await conn.exec_driver_sql("SELECT COUNT(*) FROM leaf_index")).scalar_one()
            )

    # -- checkpoints and timestamps -----------------------------------------------------

    async def checkpoint(self, size: int | None = None) -> tuple[int, bytes, bytes, datetime] | None:
        """(size, root, signed note, published at) of one checkpoint, the newest by default."""
        c = s.checkpoints.c
        query = select(c.size, c.root_hash, c.note, c.published_at)
        query = (
            query.order_by(c.size.desc()).limit(1) if size is None else query.where(c.size == size)
        )
        async with translate_errors("reading a checkpoint"), self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return int(row[0]), bytes(row[1]), bytes(row[2]), row[3]

    async def first_checkpoint_over(self, size: int) -> tuple[int, bytes, bytes, datetime] | None:
        """The smallest checkpoint of at least ``size`` entries (as :meth:`checkpoint`), or None."""
        c = s.checkpoints.c
        query = (select(c.size, c.root_hash, c.note, c.published_at).where(c.size >= size)
                 .order_by(c.size).limit(1))
        async with translate_errors("reading a checkpoint"), self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return int(row[0]), bytes(row[1]), bytes(row[2]), row[3]

    async def checkpoint_times(self, upto: int | None = None) -> list[tuple[int, datetime]]:
        """(size, published at) of each checkpoint of at most ``upto`` entries, smallest first."""
        c = s.checkpoints.c
        query = select(c.size, c.published_at).order_by(c.size)
        if upto is not None:
            query = query.where(c.size <= upto)
        async with translate_errors("reading checkpoints"), self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(int(size), at) for size, at in rows]

    async def scan_checkpoints(self) -> AsyncIterator[tuple[int, bytes, bytes]]:
        c = s.checkpoints.c
        async with translate_errors("reading checkpoints"), self.engine.connect() as conn:
            result = await conn.stream(select(c.size, c.root_hash, c.note).order_by(c.size))
            async for size, root, note in result:
                yield int(size), bytes(root), bytes(note)

    async def checkpoint_count(self) -> int:
        async with translate_errors("reading checkpoints"), self.engine.connect() as conn:
            return int(
                (await conn.exec_driver_sql("SELECT COUNT(*) FROM checkpoints")).scalar_one()
            )

    async def timestamps(self, size: int) -> dict[str, bytes]:
        t = s.timestamps.c
        async with translate_errors("reading timestamps"), self.engine.connect() as conn:
            rows = await conn.execute(select(t.tsa, t.response).where(t.size == size))
            return {str(tsa): bytes(r) for tsa, r in rows}

    async def all_timestamps(self) -> dict[int, dict[str, bytes]]:
        t = s.timestamps.c
        out: dict[int, dict[str, bytes]] = {}
        async with translate_errors("reading timestamps"), self.engine.connect() as conn:
            result = await conn.stream(select(t.size, t.tsa, t.response))
            async for size, tsa, resp in result:
                out.setdefault(int(size), {})[str(tsa)] = bytes(resp)
        return out

    async def untimestamped(self, tsa: str, limit: int = 100) -> list[tuple[int, bytes]]:
        """Checkpoints (size, note) that have no timestamp from ``tsa``, oldest first."""
        c, t = s.checkpoints.c, s.timestamps.c
        stamped = select(t.size).where(t.tsa == tsa)
        async with translate_errors("reading timestamps"), self.engine.connect() as conn:
            rows = await conn.execute(
                select(c.size, c.note).where(c.size.not_in(stamped)).order_by(c.size).limit(limit)
            )
            return [(int(sz), bytes(n)) for sz, n in rows]

    async def save_timestamp(self, size: int, tsa: str, response: bytes, gen_time: datetime) -> None:
        f = s.timestamp_failures.c
        async with self._writing(), translate_errors("storing a timestamp"), self.engine.begin() as conn:
            await conn.execute(
                self._insert(s.timestamps)
                .values(size=size, tsa=tsa, response=response, gen_time=gen_time)
                .on_conflict_do_nothing()
            )
            await conn.execute(
                s.timestamp_failures.delete().where(f.size == size, f.tsa == tsa)
            )

    async def record_timestamp_failure(
        self, size: int, tsa: str, error: str, at: datetime
    ) -> None:
        f = s.timestamp_failures.c
        stmt = self._insert(s.timestamp_failures).values(
            size=size, tsa=tsa, attempts=1, last_error=error[:2000], last_attempt_at=at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[f.size, f.tsa],
            set_={"attempts": f.attempts + 1, "last_error": stmt.excluded.last_error,
                  "last_attempt_at": stmt.excluded.last_attempt_at},
        )
        async with self._writing(), translate_errors("recording a TSA failure"), self.engine.begin() as conn:
            await conn.execute(stmt)

    async def timestamp_failures(self) -> list[tuple[int, str, int, str, datetime]]:
        f = s.timestamp_failures.c
        async with translate_errors("reading TSA failures"), self.engine.connect() as conn:
            rows = await conn.execute(
                select(f.size, f.tsa, f.attempts, f.last_error, f.last_attempt_at).order_by(f.size)
            )
            return [(int(a), str(b), int(c), str(d), e) for a, b, c, d, e in rows]

@dataclass(frozen=True)
class IntegrationView:
    """What an integrator starts from: the tree size, the end of the sequence, the edge tiles."""

    size: int
    end: int
    edge: dict[tuple[int, int], bytes]


__all__ = ["IntegrationView", "Store", "async_url", "translate_errors"]


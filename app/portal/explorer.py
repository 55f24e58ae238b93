"""The log explorer: find entries, read their canonical bytes, check their proofs in the browser.

Search runs on the event index (``app.state.event_index``: kind, run, model, dataset, actor,
time, cursor paging; an oversight decision is found by the run, model or dataset it targets,
and its row shows the action and the target); a leaf hash or an index goes straight to the log.
The entry page carries everything ``static/verify.js`` needs to recompute the leaf hash and the
root from the audit path with WebCrypto and compare it with the signed checkpoint: the server is
not trusted to say "verified". Everything here is a plain GET form and links, so it works
without JavaScript (``static/copy.js`` only adds copy buttons to the hashes).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import sqlalchemy as sa
from litestar import Controller, get
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from ledger.errors import LedgerError, NotFound
from ledger.merkle import leaf_hash
from ledger.proofs import b64

from ..core.params import PathIndex, QueryIndex
from ..core.problems import client_detail
from .web import Req, db_of, log_of, page, signed_in

__all__ = ["ExplorerController", "Found", "event_index", "parse_hash"]

PAGE = 50
KINDS = 200  # at most this many kinds in the picker (any client may append kinds of its own)
# The distinct kinds by walking the (kind, idx) index: one probe per kind, not a scan of the log.
_KINDS_SQL = sa.text(
    "WITH RECURSIVE k(kind, n) AS ("
    " SELECT MIN(kind), 1 FROM event_index"
    " UNION ALL"
    " SELECT (SELECT MIN(e.kind) FROM event_index e WHERE e.kind > k.kind), n + 1"
    f" FROM k WHERE k.kind IS NOT NULL AND n < {KINDS})"
    " SELECT kind FROM k WHERE kind IS NOT NULL")
_HEX = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")
Text = Annotated[str | None, QueryParameter(required=False)]


@dataclass(frozen=True)
class Found:
    """One row of the results table."""

    index: int
    kind: str
    at: str
    actor: str
    run: str | None
    dataset: str | None
    leaf_hash: str
    action: str = ""  # an oversight decision's action (halt, resume, approve_release, ...)
    target: str = ""  # what the entry is about: "run r", "model m · run r", "dataset d v2", ...
    target_run: str | None = None  # the run it names, for a link to that run's entries


def _s(v: object) -> str | None:
    return v if isinstance(v, str) and v else None


def _about(doc: dict[str, Any]) -> tuple[str, str, str | None]:
    """The action, the target as text, and the run named, of an entry: an oversight decision's
    ``target``, otherwise the entry's own model, run and dataset (or annotator, when it names
    none of those)."""
    decision = doc.get("kind") == "oversight.decision"
    about = doc.get("target") if decision else doc
    if not isinstance(about, dict):
        about = {}
    parts = [f"{name} {about[name]}" for name in ("model", "run") if _s(about.get(name))]
    if _s(about.get("dataset")):
        version = about.get("dataset_version")
        parts.append(f"dataset {about['dataset']}" + (f" v{version}" if type(version) is int else ""))
    if not parts and _s(about.get("annotator")):
        parts.append(f"annotator {about['annotator']}")
    action = doc.get("action") if decision else None
    return (action if isinstance(action, str) else "", " · ".join(parts), _s(about.get("run")))


def _found(index: int, kind: str, doc: dict[str, Any], entry: bytes) -> Found:
    action, target, run = _about(doc)
    return Found(index, kind, str(doc.get("at", "")), str(doc.get("actor", "")), doc.get("run"),
                 doc.get("dataset"), b64(leaf_hash(entry)), action, target, run)


def parse_hash(text: str) -> bytes | None:
    """A 32-byte hash from hex (``sha256:`` optional) or standard base64; None if it is neither."""
    text = text.strip()
    m = _HEX.fullmatch(text)
    if m:
        return bytes.fromhex(m.group(1))
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def _decode(entry: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(entry)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _row(index: int, entry: bytes) -> Found:
    doc = _decode(entry)
    return _found(index, str(doc.get("kind", "?")), doc, entry)


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be a date and time like 2026-11-25T10:30 (UTC)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


async def kinds_present(request: Req) -> list[str]:
    """The kinds the event index holds (``""``, an entry without the envelope, left out), sorted."""
    async with db_of(request).connect("listing the kinds of events") as conn:
        return [str(k) for (k,) in await conn.execute(_KINDS_SQL) if k]


def event_index(request: Req) -> Any:
    """The server's event index (``app.state.event_index``), created over the log if not set up."""
    state = request.app.state
    index = getattr(state, "event_index", None)
    if index is None:
        from app.events.index import EventIndex

        index = state.event_index = EventIndex(db_of(request), log_of(request))
    return index


async def _search(request: Req, filters: dict[str, Any], after: int | None) -> tuple[list[Found], int | None]:
    """One page of matching entries, newest first, and the cursor of the next (older) page."""
    found = await event_index(request).query(**filters, after=after, limit=PAGE + 1, descending=True)
    rows = [_found(e.index, e.kind or "?", e.event, e.data) for e in found[:PAGE]]
    return rows, (rows[-1].index if len(found) > PAGE else None)


class ExplorerController(Controller):
    path = "/explorer"
    guards = [signed_in]

    @get("/")
    async def search(  # noqa: PLR0913 (one GET form, one parameter per field)
        self, request: Req, q: Text = None, kind: Text = None, run: Text = None, model: Text = None,
        dataset: Text = None, actor: Text = None, since: Text = None, until: Text = None,
        after: QueryIndex = None,
    ) -> Template | Redirect:
        """Search form and results; ``q`` (a leaf hash or index) jumps to the entry."""
        form = {"q": q or "", "kind": kind or "", "run": run or "", "model": model or "",
                "dataset": dataset or "", "actor": actor or "", "since": since or "", "until": until or ""}
        log = log_of(request)
        error = None
        rows: list[Found] = []
        cursor: int | None = None
        try:
            if q and q.strip():
                if q.strip().isdigit():
                    return Redirect(f"/explorer/entries/{int(q.strip())}", status_code=303)
                digest = parse_hash(q)
                if digest is None:
                    raise ValueError("the search text is neither a leaf index nor a SHA-256 hash "
                                     "(64 hex digits or 44 characters of base64)")
                found = await log.find(digest)
                if len(found) == 1:
                    return Redirect(f"/explorer/entries/{found[0]}", status_code=303)
                indices: list[int] = found
                if not found:
                    error = ("no integrated entry has that leaf hash "
                             "(a new entry appears once it is checkpointed)")
            else:
                filters: dict[str, Any] = {k: v.strip() for k, v in form.items()
                                           if k in ("kind", "run", "model", "dataset", "actor") and v.strip()}
                times = {"since": _time(since, "since"), "until": _time(until, "until")}
                filters.update({k: v for k, v in times.items() if v is not None})
                rows, cursor = await _search(request, filters, after)
                indices = []
            for i in indices:
                rows.append(_row(i, await log.entry(i)))
        except (ValueError, LookupError, TypeError) as e:
            error = str(e)
        except LedgerError as e:
            error = client_detail(e)
        query = urlencode({k: v for k, v in form.items() if v and k != "q"}, errors="replace")
        next_url = None if cursor is None else f"/explorer?{query}&after={cursor}".replace("?&", "?")
        kinds = await kinds_present(request)
        if form["kind"].strip() and form["kind"].strip() not in kinds:
            kinds = sorted([*kinds, form["kind"].strip()])  # keep what was asked for selectable
        return page(request, "explorer.html", form=form, rows=rows, cursor=cursor, error=error,
                    next_url=next_url, filtered=any(form.values()), kinds=kinds)

    @get("/entries/{index:int}")
    async def entry(self, request: Req, index: PathIndex) -> Template:
        """An entry, its canonical bytes, its inclusion proof and the checkpoint it is proven against."""
        return page(request, "entry.html", **await entry_context(request, index))

    @get("/entries/{index:int}/proof")
    async def proof_partial(self, request: Req, index: PathIndex) -> Template:
        """The proof section alone, polled by htmx until the entry is checkpointed."""
        return page(request, "partials/proof.html", **await entry_context(request, index))


async def entry_context(request: Req, index: int) -> dict[str, Any]:
    log = log_of(request)
    entry = await log.entry(index)  # NotFound -> 404 page
    doc = _decode(entry)
    ctx: dict[str, Any] = {
        "index": index, "doc": doc, "kind": doc.get("kind", "?"),
        "raw": entry.decode("utf-8", "replace"), "entry_b64": b64(entry),
        "pretty": json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) if doc else entry.hex(),
        "leaf_hash_b64": b64(leaf_hash(entry)), "leaf_hash_hex": leaf_hash(entry).hex(),
        "proof": None, "checkpoint": None,
    }
    cp = await log.latest_checkpoint()
    if cp is not None and index < cp.size:
        try:
            proof = await log.inclusion_proof(index, cp.size)
        except NotFound:
            return ctx
        ctx["proof"] = {"leaf_index": index, "tree_size": cp.size,
                        "audit_path": [b64(h) for h in proof.audit_path]}
        ctx["checkpoint"] = {"size": cp.size, "note": cp.note.decode(), "root": b64(cp.checkpoint.root_hash),
                             "published_at": cp.published_at}
        try:
            await log.timestamp(cp.size)
            ctx["timestamped"] = True
        except NotFound:
            ctx["timestamped"] = False
    return ctx

"""Compliance reports generated from the log alone, as JSON, HTML (Jinja2) and PDF (fpdf2).

:func:`build_report` pins the report to one published checkpoint (its tree size), resolves the
scope (a model release, a run, a dataset version, a time range or the whole log), evaluates the
regulation pack at that size and assembles the sections: the Annex IV draft, the Art. 12 log
summary with its completeness statement, the Art. 14 oversight register, the Art. 10
datasheets, the DP budget statement, the retention attestation, the Art. 73 evidence freezes
and the rule results. Every statement carries the leaf indices behind it and their proof URLs
(``/log/v1/proof/<i>``).

The three formats render one data tree. :func:`render_report` renders one, archives it in the
object store when given one (``reports/...``, write-once on a locked bucket) and records
``report.generated`` {scope, format, sha256, tree_size, object_key}: the document's hash on the
log, so the archived copy can be checked against it (``rlhf-audit verify``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import orjson

from ledger.errors import NotFound
from ledger.log import Log

from ..core.database import Database
from ..core.errors import Invalid
from ..core.settings import Settings
from ..events.recording import SYSTEM, Actor, record, utc_now
from ..objects import ObjectStore
from .config import ComplianceConfig
from .engine import evaluate
from .pack import Pack
from .rules import DEFAULT_PACK
from .scope import ReportScope, ScopeError
from .sections import (
    annex_iv,
    art73_incidents,
    datasheets,
    dp_statement,
    gather,
    log_summary,
    obligations,
    oversight_register,
    retention,
    select,
    statement,
)

__all__ = ["FORMATS", "MEDIA_TYPES", "REPORT_FORMAT", "Report", "ReportScope", "ScopeError", "build_report",
           "render_report"]

REPORT_FORMAT = "rlhf-audit-trail/compliance-report@1"
FORMATS = ("html", "pdf", "json")
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "json": "application/json"}
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "reports"
NOT_COVERED = [
    "Art. 9 risk management system, Art. 17 quality management procedures and Art. 72 post-market "
    "monitoring are only shown as the operator records them (doc.recorded, Annex IV points 5 and 9), "
    "not checked.",
    "Art. 73 serious incidents: tracked is the evidence freeze (incident.frozen: the scope's evidence "
    "bundle archived, the stored artefacts it names under legal hold, halts taken first where asked; "
    "the Art. 73 section). Not tracked: the notification deadlines to the authorities (Art. 73(2)-(4)), the "
    "report to the market surveillance authority itself, and the investigation that follows.",
    "Art. 26(2) assignment and competence of overseers is not recorded.",
    "Documentation events (doc.recorded) are the operator's statements: the report shows and hashes "
    "them, and the rules check that they exist and what they cover, not that they are true.",
    "Retention is checked as configured and as the oldest entry's presence; legal holds appear only as "
    "incident freezes record them.",
]


def _num(v: Any) -> Any:
    return "not recorded" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    return env


@dataclass(frozen=True)
class Report:
    """One report's data, renderable in each format."""

    data: dict[str, Any]
    scope: ReportScope
    tree_size: int

    def json_bytes(self) -> bytes:
        return orjson.dumps(self.data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"

    def html_bytes(self) -> bytes:
        return _templates().get_template("report.html").render(r=self.data).encode()

    def pdf_bytes(self) -> bytes:
        from .pdf import render_pdf

        return render_pdf(self.data)

    def render(self, fmt: str) -> bytes:
        if fmt not in FORMATS:
            raise Invalid(f"the report format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        return {"html": self.html_bytes, "pdf": self.pdf_bytes, "json": self.json_bytes}[fmt]()


async def _recorded_check(index: Any, tree_size: int) -> dict[str, Any] | None:
    found = await index.query(kind="compliance.checked", descending=True, limit=1, after=tree_size)
    if not found:
        return None
    e = found[0]
    return {"leaf_index": e.index, "proof": f"/log/v1/proof/{e.index}", "at": e.event.get("at"),
            "pack": e.event.get("pack"), "pack_version": e.event.get("pack_version"),
            "results": e.event.get("results", [])}


async def build_report(
    db: Database, log: Log, index: Any, scope: Any, *, tree_size: int | None = None,
    pack: Pack = DEFAULT_PACK, settings: Settings | None = None, config: ComplianceConfig | None = None,
) -> Report:
    """The report for ``scope`` (a :class:`ReportScope`, its JSON, or any object with ``to_json()``)
    over the log at ``tree_size`` (default: the newest published checkpoint), its rules evaluated
    under ``config`` or the one the caller's ``settings`` make."""
    if index is None:
        from ..events.index import EventIndex

        index = EventIndex(db, log)
    scope = ReportScope.parse(scope)
    checkpoint = await log.checkpoint(tree_size) if tree_size else await log.latest_checkpoint()
    if checkpoint is None:
        raise NotFound("the log has published no checkpoint yet: a report cites entries by their proofs, "
                       "so wait for the first integration")
    size = checkpoint.size
    results, ctx = await evaluate(db, log, index, pack=pack, settings=settings, config=config,
                                tree_size=size)
    sel = await select(ctx, scope)
    facts = await gather(ctx, sel)
    in_scope = len({e.index for events in facts.values() for e in events})
    recorded = await _recorded_check(index, size)
    failing = [r for r in results if r.status == "fail"]
    data = {
        "format": REPORT_FORMAT,
        "title": f"Compliance report: {scope.describe()}",
        "generated_at": utc_now(),
        "scope": scope.to_json(),
        "scope_description": scope.describe(),
        "log": {"origin": log.origin, "tree_size": size, "root": checkpoint.checkpoint.root_hash.hex(),
                "checkpoint": checkpoint.note.decode(errors="replace"),
                "checkpoint_url": f"/log/v1/checkpoints/{size}",
                "timestamp_url": f"/log/v1/checkpoints/{size}/timestamp"},
        "pack": {"id": pack.id, "name": pack.name, "version": pack.version, "description": pack.description},
        "rules": {
            "evaluated_at_tree_size": size,
            "results": [{**r.to_json(), "title": r.title, "proofs": [f"/log/v1/proof/{i}" for i in r.entries]}
                        for r in results],
            "recorded_check": recorded,
            "statements": [statement(
                f"{len(results) - len(failing)} of {len(results)} rules of {pack.id} do not fail over the "
                f"whole log at tree size {size}" + (f"; failing: {', '.join(r.rule for r in failing)}"
                                                    if failing else "") + ".",
                [recorded["leaf_index"]] if recorded else [])],
        },
        "obligations": obligations(pack, results),
        "annex_iv": annex_iv(facts),
        "art12_log": await log_summary(ctx, facts, in_scope),
        "art14_oversight": oversight_register(facts),
        "art10_datasheets": datasheets(facts),
        "dp_budget": await dp_statement(ctx, sel),
        "retention": await retention(ctx, facts),
        "art73_incidents": art73_incidents(facts),
        "not_covered": NOT_COVERED,
    }
    return Report(data, scope, size)


async def render_report(log: Log, report: Report, fmt: str, actor: Actor = SYSTEM, *,
                        objects: ObjectStore | None = None) -> bytes:
    """The document in ``fmt``; archived in ``objects`` if given; ``report.generated`` with its SHA-256."""
    document = report.render(fmt)
    digest = hashlib.sha256(document).hexdigest()
    archived: dict[str, str] = {}
    if objects is not None:
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", report.scope.describe())[:80].strip("-.") or "report"
        key = f"reports/{label}-{report.tree_size}-{digest[:16]}.{fmt}"
        archived["object_key"] = (await asyncio.to_thread(objects.put_bytes, key, document)).key
    await record(log, "report.generated", actor, scope=report.scope.to_json(), format=fmt,
                 sha256="sha256:" + digest, tree_size=report.tree_size, **archived)
    return document

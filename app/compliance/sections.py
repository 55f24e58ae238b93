"""The sections of a compliance report, each built from log entries and citing them.

Every statement is ``{"text": ..., "entries": [leaf indices], "proofs": ["/log/v1/proof/<i>"]}``:
an auditor can fetch the inclusion proof of each entry behind it. Where the log holds nothing for
a required point the statement says "Not recorded on the log" rather than leaving it out.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.errors import NotFound

from .config import MIN_RETENTION_DAYS
from .documentation import KIND as DOC_KIND
from .documentation import describe, valid
from .pack import CheckContext, body, by_run, describe_segments, segment_entries, segments
from .rules.eu_ai_act import datasheet_gaps, log_audit, oldest_entry
from .rules.gdpr import privacy_ledger
from .scope import ReportScope, ScopeError

__all__ = ["NOT_RECORDED", "Facts", "Selection", "annex_iv", "art73_incidents", "datasheets", "dp_statement",
           "gather", "obligations",
           "log_summary", "oversight_register", "retention", "select", "statement"]

NOT_RECORDED = "Not recorded on the log."
LOG_WIDE = ("compliance.checked", "privacy.erased")  # about the whole log, in every scope
INTERVENTIONS = ("halt", "rollback", "reject_dataset", "reject_annotator", "veto_release")
KINDS = ("job.submitted", "job.refused", "run.started", "run.privacy", "run.checkpoint", "run.halted",
         "run.completed", "run.failed", "oversight.decision", "model.released", "dataset.version",
         "dataset.datasheet", "dataset.budget_set", "privacy.erased", "compliance.checked",
         "report.generated", "bundle.created", "config.changed", "incident.frozen", DOC_KIND)


def statement(text: str, entries: Iterable[int] = ()) -> dict[str, Any]:
    ids = sorted({int(i) for i in entries})
    return {"text": text, "entries": ids, "proofs": [f"/log/v1/proof/{i}" for i in ids]}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "not recorded" if value is None else str(value)


# -- what is in scope ----------------------------------------------------------------------------


@dataclass
class Selection:
    """The runs, models and dataset versions a scope covers (``everything`` for all/time)."""

    scope: ReportScope
    everything: bool = False
    runs: set[Any] = field(default_factory=set)
    models: set[Any] = field(default_factory=set)
    datasets: set[tuple[Any, Any]] = field(default_factory=set)  # (dataset, version or None)
    window: tuple[datetime, datetime] | None = None

    def _dataset(self, name: Any, version: Any) -> bool:
        return any(d == name and (v is None or version is None or v == version) for d, v in self.datasets)

    def _target(self, target: Any) -> bool:
        if not isinstance(target, dict):
            return False
        return (target.get("run") in self.runs or target.get("model") in self.models
                or (target.get("dataset") is not None
                    and self._dataset(target.get("dataset"), target.get("dataset_version"))))

    def in_window(self, e: Any) -> bool:
        return self.window is None or (e.at is not None and self.window[0] <= e.at < self.window[1])

    def keeps(self, e: Any) -> bool:
        if not self.in_window(e):
            return False
        if self.everything:
            return True
        b = body(e)
        if e.kind == DOC_KIND and all(b.get(k) is None for k in ("run", "model", "dataset")):
            return True  # documentation of the whole system belongs to every scope
        if e.kind == "oversight.decision":
            return self._target(b.get("target"))
        if e.kind == "incident.frozen":  # its scope names what was frozen (a bundle's scope)
            frozen = b.get("scope") if isinstance(b.get("scope"), dict) else {}
            return self._target({**frozen, "dataset_version": frozen.get("version")})
        if b.get("run") is not None:
            return b["run"] in self.runs
        if b.get("model") is not None:
            return b["model"] in self.models
        if b.get("dataset") is not None:
            return self._dataset(b["dataset"], b.get("dataset_version"))
        return False


async def _runs_of(ctx: CheckContext, sel: Selection, runs: Iterable[Any]) -> None:
    for run in runs:
        sel.runs.add(run)
        for e in await ctx.events(kind="run.started", run=run):
            sel.datasets.add((body(e).get("dataset"), body(e).get("dataset_version")))
        for e in await ctx.events(kind=["run.completed", "model.released"], run=run):
            sel.models.add(body(e).get("model"))


async def select(ctx: CheckContext, scope: ReportScope) -> Selection:
    """Resolve ``scope`` against the log; a scope naming nothing on the log is NotFound."""
    sel = Selection(scope)
    if scope.kind in ("all", "time"):
        sel.everything = True
        sel.window = scope.bounds() if scope.kind == "time" else None
        return sel
    if scope.kind == "model":
        hits = await ctx.events(kind=["run.completed", "model.released"], model=scope.model)
        if not hits:
            raise NotFound(f"no run produced or released model {scope.model!r} on this log")
        sel.models.add(scope.model)
        await _runs_of(ctx, sel, {body(e).get("run") for e in hits})
    elif scope.kind == "run":
        if not await ctx.events(run=scope.run):
            raise NotFound(f"run {scope.run!r} has no events on this log")
        await _runs_of(ctx, sel, [scope.run])
    else:
        if not await ctx.events(dataset=scope.dataset):
            raise NotFound(f"dataset {scope.dataset!r} has no events on this log")
        sel.datasets.add((scope.dataset, scope.version))
        started = await ctx.events(kind="run.started", dataset=scope.dataset)
        await _runs_of(ctx, sel, [body(e).get("run") for e in started
                                  if scope.version in (None, body(e).get("dataset_version"))])
    return sel


Facts = dict[str, list[Any]]


async def gather(ctx: CheckContext, sel: Selection) -> Facts:
    """The scope's events by kind (dataset records and metrics batches are summarised elsewhere)."""
    facts: Facts = {}
    for kind in KINDS:
        keep = sel.in_window if kind in LOG_WIDE else sel.keeps
        facts[kind] = [e for e in await ctx.events(kind=kind) if keep(e)]
    last_metrics = []
    for run in sorted({body(e).get("run") for e in facts["run.started"]}, key=str):
        found = await ctx.index.query(kind="run.metrics", run=run, descending=True, limit=1,
                                      after=ctx.tree_size)
        last_metrics += found
    facts["run.metrics"] = last_metrics
    return facts


def _idx(events: Iterable[Any]) -> list[int]:
    return [e.index for e in events]


# -- Annex IV ------------------------------------------------------------------------------------


def _documented(facts: Facts, point: str, label: str, *topics: str) -> list[dict[str, Any]]:
    """The operator's documentation events (``doc.recorded``) for one Annex IV point, each cited; or
    the gap, naming the point and the topic that would fill it."""
    found = [e for e in facts.get(DOC_KIND, []) if valid(body(e)) and body(e).get("topic") in topics]
    if not found:
        return [statement(f"{point} {label}: {NOT_RECORDED[:-1]} (no doc.recorded event with topic "
                          f"{' or '.join(topics)}).")]
    return [statement(f"{point} {label}: {describe(e)}", [e.index]) for e in found]


def _general(facts: Facts) -> list[dict[str, Any]]:
    out = [statement(f"Model {body(e).get('model')} was released from run {body(e).get('run')} "
                     f"(weights root {body(e).get('root')}) under approval {body(e).get('approval')}.",
                     [e.index]) for e in facts["model.released"]]
    runs = by_run(facts["run.started"])
    for e in facts["run.completed"]:
        segs = segments(runs.get(body(e).get("run"), []))
        more = describe_segments(segs)
        out.append(statement(f"Run {body(e).get('run')} produced model {body(e).get('model')} after "
                             f"{body(e).get('steps')} steps" + (f" {more}" if more else "") + ".",
                             [e.index, *(segment_entries(segs) if more else [])]))
    return ((out or [statement("No model in this scope was completed or released.")])
            + _documented(facts, "1(a)", "Intended purpose, provider and version", "intended_purpose")
            + _documented(facts, "1(b)-(g)", "Description of the system, its interaction with other hardware "
                          "and software, and its user interface", "system_description")
            + _documented(facts, "1(h)", "Instructions for use", "instructions_for_use"))


def _development(facts: Facts) -> list[dict[str, Any]]:
    out = []
    for e in facts["job.submitted"]:
        b = body(e)
        out.append(statement(f"Run {b.get('run')}: method {b.get('job_kind')} on {b.get('dataset')} "
                             f"v{b.get('dataset_version')}, job specification sha256 {b.get('spec_sha256')}, "
                             f"planned ε {_fmt(b.get('planned_epsilon'))}.", [e.index]))
    for starts in by_run(facts["run.started"]).values():
        b = body(starts[0])  # the first segment names the pre-trained model; later ones resume
        base = b.get("base_model") if isinstance(b.get("base_model"), dict) else {}
        libs = b.get("libraries") if isinstance(b.get("libraries"), dict) else {}
        files = base.get("files")
        count = len(files) if isinstance(files, dict | list) else "an unrecorded number of"
        segs = segments(starts)
        more = describe_segments(segs)
        resumed = "; ".join(f"segment {g['segment']} resumed from checkpoint root "
                            f"{_fmt(g['checkpoint_root'])}" for g in segs[1:])
        out.append(statement(
            f"Run {b.get('run')}: pre-trained base model with root {_fmt(base.get('root'))} ({count} files); "
            f"code version {_fmt(b.get('code_version'))}; "
            f"configuration sha256 {_fmt(b.get('config_sha256'))}; "
            f"libraries {', '.join(f'{k} {v}' for k, v in sorted(libs.items())) or 'not recorded'}"
            + (f"; trained {more}; {resumed}" if more else "") + ".",
            segment_entries(segs)))
    for e in facts["dataset.version"]:
        b = body(e)
        out.append(statement(f"Training data: {b.get('dataset')} v{b.get('dataset_version')} with "
                             f"{_fmt(b.get('records'))} preference records from {_fmt(b.get('annotators'))} "
                             f"pseudonymous annotators (Merkle root {_fmt(b.get('root'))}); datasheet in "
                             "the Art. 10 section.", [e.index]))
    if not out:
        out.append(statement("Methods, base models and training data: " + NOT_RECORDED))
    return (out
            + _documented(facts, "2(b)", "Design specifications, key design choices and their rationale",
                          "design_choices")
            + _documented(facts, "2(c)", "System architecture and computational resources", "architecture")
            + _documented(facts, "2(f)", "Pre-determined changes", "changes")
            + _documented(facts, "2(g)", "Validation and testing procedures, metrics and reports",
                          "validation")
            + _documented(facts, "2(h)", "Cybersecurity measures", "cybersecurity"))


def _monitoring(facts: Facts) -> list[dict[str, Any]]:
    decisions = facts["oversight.decision"]
    out = [statement(f"{len(decisions)} human-oversight decisions are recorded in scope (register in the "
                     "Art. 14 section).", _idx(decisions))]
    for starts in by_run(facts["run.started"]).values():
        b = body(starts[-1])
        dp = b.get("dp") if isinstance(b.get("dp"), dict) else {}
        segs = segments(starts)
        more = describe_segments(segs)
        more = f" It trained {more}." if more else ""
        if dp.get("enabled"):
            text = (f"Run {b.get('run')} trained with DP-SGD: target ε {_fmt(dp.get('target_epsilon'))}, "
                    f"δ {_fmt(dp.get('delta'))}, unit of privacy {_fmt(dp.get('unit'))}, "
                    f"accountant {_fmt(dp.get('accountant'))}.{more} {b.get('notice') or ''}")
            out.append(statement(text.strip(), segment_entries(segs)))
        else:
            out.append(statement(f"Run {b.get('run')} trained without differential privacy.{more}",
                                 segment_entries(segs)))
    out += [statement(f"Run {body(e).get('run')} failed at step {body(e).get('step')}: "
                      f"{body(e).get('error')}", [e.index]) for e in facts["run.failed"]]
    return out


def _metrics(facts: Facts) -> list[dict[str, Any]]:
    out = []
    for e in facts["run.metrics"]:
        steps = body(e).get("steps")
        last = steps[-1] if isinstance(steps, list) and steps and isinstance(steps[-1], dict) else {}
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(last.items()))
        out.append(statement(f"Run {body(e).get('run')}: last recorded training metrics: {shown or 'none'}.",
                             [e.index]))
    return ((out or [statement("Training metrics: " + NOT_RECORDED)])
            + _documented(facts, "4", "Appropriateness of the performance metrics", "metrics_rationale"))


def _lifecycle(facts: Facts) -> list[dict[str, Any]]:
    out = []
    by_run = Counter(body(e).get("run") for e in facts["run.checkpoint"])
    for run, n in sorted(by_run.items(), key=lambda kv: str(kv[0])):
        cps = [e for e in facts["run.checkpoint"] if body(e).get("run") == run]
        steps = [st for st in (body(e).get("step") for e in cps) if isinstance(st, int)]  # global steps
        span = f" (steps {min(steps)} to {max(steps)})" if steps else ""
        out.append(statement(f"Run {run} saved {n} training checkpoints{span}.", _idx(cps)))
    changes = [e for e in facts["oversight.decision"]
               if body(e).get("action") in ("halt", "resume", "rollback", "approve_release", "veto_release")]
    changes += facts["model.released"]
    for e in sorted(changes, key=lambda e: e.index):
        b = body(e)
        what = b.get("action") or "release"
        out.append(statement(f"{b.get('at')}: {what} of {_target(b.get('target') or b)}.", [e.index]))
    return out or [statement("Changes through the lifecycle: " + NOT_RECORDED)]


def _post_market(facts: Facts) -> list[dict[str, Any]]:
    checks = facts["compliance.checked"]
    return (_documented(facts, "9", "Post-market monitoring plan (Art. 72(3))", "post_market_monitoring")
            + [statement(f"{len(checks)} automated compliance checks of the log are recorded.",
                         _idx(checks))])


def annex_iv(facts: Facts) -> list[dict[str, Any]]:
    """Annex IV sections 1-9, as far as the log records them."""
    sections = [
        ("General description of the AI system", _general(facts)),
        ("Elements of the AI system and the process for its development", _development(facts)),
        ("Monitoring, functioning and control of the AI system", _monitoring(facts)),
        ("Appropriateness of the performance metrics", _metrics(facts)),
        ("Risk management system (Art. 9)",
         _documented(facts, "5", "The risk management system", "risk_management") + [statement(
             "The DP budgets and the oversight register below are risk controls the log itself records.")]),
        ("Relevant changes through the lifecycle", _lifecycle(facts)),
        ("Harmonised standards applied",
         _documented(facts, "7", "Harmonised standards or other specifications applied", "standards")
         + [statement("The record itself follows RFC 6962 (Merkle tree log), C2SP signed checkpoints and "
                      "tiles, RFC 3161 timestamps and RFC 8785 canonical JSON.")]),
        ("EU declaration of conformity (Art. 47)",
         _documented(facts, "8", "The EU declaration of conformity", "declaration_of_conformity")),
        ("Post-market monitoring (Art. 72)", _post_market(facts)),
    ]
    return [{"number": i, "title": title, "statements": st} for i, (title, st) in enumerate(sections, 1)]


# -- Art. 12: the log ------------------------------------------------------------------------------


async def log_summary(ctx: CheckContext, facts: Facts, in_scope: int) -> dict[str, Any]:
    """Sizes, checkpoints, consistency and timestamps: the completeness statement."""
    audit = await log_audit(ctx)
    size = ctx.tree_size
    figures = {"tree_size": size, "integrated_at_audit": audit.tree_size,
               "sequenced_at_audit": audit.sequenced,
               "entries_in_scope": in_scope, "checkpoints": audit.checkpoints_checked,
               "consistency_proofs_verified": max(0, audit.checkpoints_checked - 1) if audit.ok else None,
               "timestamps_verified": audit.timestamps_checked, "tiles_checked": audit.tiles_checked,
               "problems": list(audit.problems)}
    if audit.ok:
        text = (f"Complete: every integrated entry of the log was re-hashed from storage "
                f"with no gap; all {audit.checkpoints_checked} published checkpoints carry a valid "
                f"signature and the root recomputed from the entries; each is consistent with the one before "
                f"({figures['consistency_proofs_verified']} consistency proofs verified); "
                f"{audit.timestamps_checked} RFC 3161 timestamps verify. This report covers entries 0 to "
                f"{size - 1} (tree size {size}).")
    else:
        text = "NOT complete: the self-audit found problems: " + "; ".join(audit.problems[:10])
    kinds = Counter(e.kind for events in facts.values() for e in events)
    return {"figures": figures, "events_by_kind": dict(sorted(kinds.items())),
            "statements": [statement(text, [0, size - 1] if size else [])]}


# -- Art. 14: oversight ------------------------------------------------------------------------------


def _target(target: Any) -> str:
    if not isinstance(target, dict):
        return "unknown target"
    if target.get("model"):
        return f"model {target['model']}" + (f" (run {target['run']})" if target.get("run") else "")
    if target.get("run"):
        return f"run {target['run']}"
    if target.get("dataset"):
        return f"dataset {target['dataset']} v{target.get('dataset_version')}"
    if target.get("annotator"):
        return f"annotator {target['annotator']}"
    return "unknown target"


def _row(e: Any) -> dict[str, Any]:
    b = body(e)
    action = b.get("action") if e.kind == "oversight.decision" else "release"
    return {"index": e.index, "proof": f"/log/v1/proof/{e.index}", "at": b.get("at"), "action": action,
            "target": _target(b.get("target") if e.kind == "oversight.decision" else b),
            "who": b.get("actor"), "role": b.get("role"),
            "why": b.get("justification") if e.kind == "oversight.decision" else
            f"released under approval {b.get('approval')}",
            "decision_id": b.get("decision_id") or b.get("approval"), "halted_by": b.get("halted_by"),
            "to_checkpoint": b.get("to_checkpoint")}


def _halt_statistics(decisions: list[Any]) -> dict[str, Any]:
    halts = {body(e).get("decision_id"): e for e in decisions if body(e).get("action") == "halt"}
    waits, four_eyes = [], 0
    for e in decisions:
        b = body(e)
        halt = halts.get(b.get("halted_by")) if b.get("action") == "resume" else None
        if halt is not None:
            if e.at is not None and halt.at is not None:
                waits.append((e.at - halt.at).total_seconds())
            four_eyes += body(halt).get("actor") != b.get("actor")
    resumed = {body(e).get("halted_by") for e in decisions if body(e).get("action") == "resume"}
    return {"halts": len(halts), "halts_unresolved": len(set(halts) - resumed),
            "median_halt_seconds": statistics.median(waits) if waits else None,
            "resumes_by_another_overseer": four_eyes}


def oversight_register(facts: Facts) -> dict[str, Any]:
    """Every decision and release: who (pseudonym, role), why, when; and intervention statistics."""
    decisions = facts["oversight.decision"]
    rows = [_row(e) for e in sorted(decisions + facts["model.released"], key=lambda e: e.index)]
    by_action = Counter(body(e).get("action") for e in decisions)
    stats = {"decisions": len(decisions),
             "by_action": dict(sorted(by_action.items(), key=lambda kv: str(kv[0]))),
             "overseers": len({body(e).get("actor") for e in decisions}),
             "releases": len(facts["model.released"]),
             "interventions": sum(n for a, n in by_action.items() if a in INTERVENTIONS),
             **_halt_statistics(decisions)}
    text = (f"{stats['decisions']} oversight decisions by {stats['overseers']} overseer pseudonyms: "
            + (", ".join(f"{n} {a}" for a, n in stats["by_action"].items()) or "none")
            + f"; {stats['halts_unresolved']} halt(s) unresolved; {stats['releases']} release(s).")
    return {"rows": rows, "statistics": stats, "statements": [statement(text, _idx(decisions))] + (
        [] if decisions else [statement("Oversight decisions in this scope: " + NOT_RECORDED)]) + [
        statement("Assignment of overseers and their competence (Art. 26(2)): " + NOT_RECORDED)]}


# -- Art. 10: datasheets --------------------------------------------------------------------------------


def datasheets(facts: Facts) -> list[dict[str, Any]]:
    versions = {(body(e).get("dataset"), body(e).get("dataset_version")): e for e in facts["dataset.version"]}
    sheets = {(body(e).get("dataset"), body(e).get("dataset_version")): e for e in facts["dataset.datasheet"]}
    out = []
    for key in sorted(set(versions) | set(sheets), key=lambda k: (str(k[0]), str(k[1]))):
        v, s = versions.get(key), sheets.get(key)
        sheet = body(s).get("datasheet") if s is not None else None
        sheet = sheet if isinstance(sheet, dict) else {}
        vb = body(v) if v is not None else {}
        records = (vb.get("first_record"), vb.get("last_record"))
        gaps = datasheet_gaps(sheet) if s is not None else ["the whole datasheet"]
        text = (f"{key[0]} v{key[1]}: " + ("datasheet recorded" if s is not None else "no datasheet recorded")
                + (f"; not stated: {', '.join(gaps)}" if gaps
                   else "; origin, collection process and purpose stated")
                + (f"; records are entries {records[0]} to {records[1]}" if records[0] is not None else ""))
        out.append({
            "dataset": key[0], "dataset_version": key[1], "datasheet": sheet,
            "version": {k: vb.get(k) for k in ("records", "annotators", "root", "source_sha256",
                                               "first_record", "last_record")},
            "entries": [e.index for e in (v, s) if e is not None],
            "statements": [statement(text, [e.index for e in (v, s) if e is not None])],
        })
    return out


# -- DP budget --------------------------------------------------------------------------------------------


async def dp_statement(ctx: CheckContext, sel: Selection) -> dict[str, Any]:
    ledger = await privacy_ledger(ctx)
    runs = [r for r in ledger["runs"] if sel.everything or r["run"] in sel.runs]
    names = {r["dataset"] for r in runs} | ({d for d, _ in sel.datasets} if not sel.everything else set())
    datasets = [d for d in ledger["datasets"].values() if sel.everything or d["dataset"] in names]
    out = []
    for r in runs:
        more = describe_segments(r["segments"])
        out.append(statement(
            f"Run {r['run']} on {r['dataset']} v{r['dataset_version']}"
            + (f", trained {more}" if more else "") + ": "
            + (f"ε = {_fmt(r['epsilon'])} ({r['source']}), δ = {_fmt(r['delta'])}, unit of privacy "
               f"{_fmt(r['unit'])}, accountant {_fmt(r['accountant'])}, noise multiplier "
               f"{_fmt(r['noise_multiplier'])}, max grad norm {_fmt(r['max_grad_norm'])}."
               if r["dp_enabled"] else "trained without differential privacy."), r["entries"]))
    for d in datasets:
        total = d["epsilon_total"]
        left = f", {total - d['epsilon_spent']:.6g} left" if total is not None else ""
        out.append(statement(
            f"Dataset {d['dataset']}: ε spent {d['epsilon_spent']:.6g} by {len(d['runs'])} run(s) of a "
            f"budget ε = {_fmt(total)}, δ = {_fmt(d['delta'])}{left}.", d["entries"]))
    if not out:
        out.append(statement("Differential privacy in this scope: " + NOT_RECORDED))
    notice = ("The guarantee covers the trained model's weights with respect to one preference pair (the "
              "unit of privacy); metrics and checkpoints logged during training are outside it.")
    return {"unit": "preference pair", "runs": [{k: v for k, v in r.items()} for r in runs],
            "datasets": datasets, "statements": out + [statement(notice)]}


# -- Art. 73: incidents ------------------------------------------------------------------------------


def _scope_words(scope: Any) -> str:
    try:
        return ReportScope.parse(scope).describe()
    except ScopeError:
        return "an unreadable scope"


def art73_incidents(facts: Facts) -> dict[str, Any]:
    """The evidence freezes in scope (``incident.frozen``): what the product does for Art. 73.
    The notification deadlines and the report to the authority are not on the log; "not covered"
    says so."""
    out = []
    for e in facts["incident.frozen"]:
        b = body(e)
        halted = b.get("halted") if isinstance(b.get("halted"), list) else []
        out.append(statement(
            f"{b.get('at')}: incident {b.get('incident')} froze the evidence of "
            f"{_scope_words(b.get('scope'))} ({_fmt(b.get('reason'))}): bundle {_fmt(b.get('object_key'))} "
            f"(sha256 {_fmt(b.get('sha256'))}) of {_fmt(b.get('entries'))} entries against tree size "
            f"{_fmt(b.get('tree_size'))}; {_fmt(b.get('held'))} stored artefact(s) put under legal hold "
            f"(root {_fmt(b.get('held_root'))}), {_fmt(b.get('missing'))} missing, "
            f"{_fmt(b.get('changed'))} changed"
            + (f"; halted first: {', '.join(str(h) for h in halted)}" if halted else "") + ".", [e.index]))
    if not out:
        out.append(statement("No incident was frozen in this scope (no incident.frozen entry)."))
    rows = [{"index": e.index, "proof": f"/log/v1/proof/{e.index}",
             **{k: body(e).get(k) for k in ("incident", "at", "reason", "scope", "held", "object_key")}}
            for e in facts["incident.frozen"]]
    return {"incidents": rows, "statements": out}


# -- Art. 19: retention ------------------------------------------------------------------------------------


async def retention(ctx: CheckContext, facts: Facts) -> dict[str, Any]:
    days = ctx.config.retention_days
    first = await oldest_entry(ctx)
    out = [statement(f"Configured log retention: {days:g} days (Art. 19(1) requires at least six months, "
                     f"{MIN_RETENTION_DAYS} days; Art. 18 keeps technical documentation ten years).")]
    if first is not None:
        when = first.get("at", "at an unknown time")
        audit = await log_audit(ctx)
        gaps = ("the self-audit found every index present" if audit.ok
                else "the self-audit reports problems (Art. 12 section)")
        out.append(statement(f"The oldest entry (index 0, recorded {when}) is still present; the log is "
                             f"append-only and {gaps}.", [0]))
    erased = facts["privacy.erased"]
    out.append(statement(f"{len(erased)} GDPR erasure(s) destroyed off-log records and keys; the log "
                         "entries and their proofs stay intact (crypto-shredding).", _idx(erased)))
    return {"retention_days": days, "minimum_days": MIN_RETENTION_DAYS, "statements": out}


# -- the pack's obligations ----------------------------------------------------------------------------


def obligations(pack: Any, results: Iterable[Any]) -> dict[str, Any]:
    """Each obligation of the pack (``packs/eu.toml``): its article, the legal text version the pack
    follows, the date it applies from, and what covers it with those rules' results in this report."""
    status = {r.rule: r.status for r in results}
    rows, out = [], []
    for o in pack.obligations:
        covered = {c: status.get(c.removeprefix("rule:"), "missing") if c.startswith("rule:") else "section"
                   for c in o.covered_by}
        rows.append({**o.to_json(), "results": {c.removeprefix("rule:"): v for c, v in covered.items()
                                                if v != "section"}})
        note = f" ({o.date_note})" if o.date_note else ""
        cover = ", ".join(c.removeprefix("rule:") + f" {v.replace('_', ' ')}" if v != "section"
                          else "report section " + c.removeprefix("section:") for c, v in covered.items())
        out.append(statement(f"{o.article} of {o.regulation}, {o.title}: applies from "
                             f"{o.applies_from.isoformat()}{note}; text followed: {o.text_version}; "
                             f"covered by {cover}."))
    return {"rows": rows, "statements": out}

"""Rules for Regulation (EU) 2024/1689 (the AI Act): Art. 10, 12, 14 and 19 as the log shows them.

Each rule reads the log and says pass, fail or not applicable, with the leaf indices of the
entries behind the verdict. What the log cannot show (risk management, post-market monitoring,
serious incidents) is not pretended here; docs/compliance.md lists it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ledger.audit import AuditReport, audit_log
from ledger.errors import LedgerError
from ledger.timestamp_verify import parse_timestamp

from ..config import MIN_RETENTION_DAYS
from ..pack import CheckContext, Outcome, Rule, body, by_run, failed, not_applicable, passed

__all__ = [
    "EU_AI_ACT",
    "checkpoint_times",
    "datasheet_gaps",
    "log_audit",
    "oldest_entry",
    "oversight_state",
]

SHOWN = 5  # how many offenders a summary names


def _some(items: Sequence[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _aware(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


# -- Art. 10: data governance -----------------------------------------------------------------


REQUIRED_SHEET = ("origin", "collection_process", "purpose")  # app.datasets.datasheet.REQUIRED


def datasheet_gaps(sheet: Any) -> list[str]:
    """The required datasheet fields a ``dataset.datasheet`` leaves empty or 'not stated'."""
    if not isinstance(sheet, dict):
        return list(REQUIRED_SHEET)
    return [f for f in REQUIRED_SHEET
            if not isinstance(sheet.get(f), str) or sheet[f].strip().lower() in ("", "not stated")]


async def _datasheets(ctx: CheckContext) -> Outcome:
    runs = by_run(await ctx.events(kind="run.started"))  # a resumed run is one run
    if not runs:
        return not_applicable("no training run has started on this log")
    sheets: dict[tuple[Any, Any], Any] = {}
    for e in await ctx.events(kind="dataset.datasheet"):
        d = body(e)
        sheets[(d.get("dataset"), d.get("dataset_version"))] = e  # the latest datasheet stands
    problems: list[str] = []
    bad: list[int] = []
    backing: list[int] = []
    for starts in runs.values():
        d = body(starts[-1])
        started = [r.index for r in starts]
        at = ("entry " if len(started) == 1 else "entries ") + ", ".join(str(i) for i in started)
        version = f"{d.get('dataset')} v{d.get('dataset_version')}"
        sheet = sheets.get((d.get("dataset"), d.get("dataset_version")))
        gaps = datasheet_gaps(body(sheet).get("datasheet")) if sheet is not None else []
        if sheet is None:
            problems.append(f"{d.get('run')} ({at}) used {version}, which has no datasheet")
            bad += started
        elif gaps:
            problems.append(f"{d.get('run')} ({at}) used {version}, whose datasheet (entry "
                            f"{sheet.index}) does not state {', '.join(gaps)}")
            bad += [*started, sheet.index]
        else:
            backing += [*started, sheet.index]
    if problems:
        return failed(f"{len(problems)} of {len(runs)} training runs used a dataset version without a "
                      f"complete datasheet: {'; '.join(problems[:SHOWN])}", bad)
    return passed(f"all {len(runs)} training runs used dataset versions whose datasheet states origin, "
                  "collection process and purpose", backing)


# -- Art. 12: record-keeping -------------------------------------------------------------------


async def log_audit(ctx: CheckContext) -> AuditReport:
    """The ledger's self-audit of the stored log, run once per check (rules and report share it)."""
    report = ctx.memo.get("audit")
    if report is not None:
        return report
    for _ in range(3):
        # On a live log the integrator may publish while the audit reads (it lists checkpoints,
        # then reads the tree head): a problem seen while the tree moved is checked again.
        before = (await ctx.log.tree_head()).size
        report = await audit_log(ctx.log, tsa_roots=ctx.config.tsa_roots)
        after = (await ctx.log.tree_head()).size
        if report.ok or before == after:
            break
    ctx.memo["audit"] = report
    return report


async def _log_integrity(ctx: CheckContext) -> Outcome:
    report = await log_audit(ctx)
    if report.tree_size == 0:
        return not_applicable("the log has no integrated entries yet")
    what = (f"{report.entries_checked} entries, {report.tiles_checked} tiles, "
            f"{report.checkpoints_checked} checkpoints and {report.timestamps_checked} timestamps")
    if report.problems:
        return failed(f"the self-audit over {what} found {len(report.problems)} problem(s): "
                      + "; ".join(report.problems[:SHOWN]))
    return passed(f"the self-audit recomputed the tree over {what}: no gaps, every checkpoint's "
                  "signature and root match, each is consistent with the one before, every "
                  "timestamp verifies", [min(report.tree_size, ctx.tree_size) - 1])


async def checkpoint_times(ctx: CheckContext) -> list[tuple[int, datetime, list[datetime]]]:
    """(size, published at, timestamp times) of every checkpoint up to the context's tree size."""
    cached = ctx.memo.get("checkpoint_times")
    if cached is not None:
        return list(cached)
    rows = await ctx.log.checkpoint_times(ctx.tree_size)
    stamps = await ctx.log.all_timestamps()
    out = []
    for size, published in rows:
        times = []
        for response in stamps.get(int(size), {}).values():
            try:
                times.append(_aware(parse_timestamp(response).gen_time))
            except LedgerError:
                continue  # unreadable: counts as missing here; the self-audit names it
        out.append((int(size), _aware(published), times))
    ctx.memo["checkpoint_times"] = out
    return out


async def _timestamped(ctx: CheckContext) -> Outcome:
    checkpoints = await checkpoint_times(ctx)
    if not checkpoints:
        return not_applicable("the log has published no checkpoint yet")
    tolerance = timedelta(seconds=ctx.config.timestamp_tolerance_s)
    missing, late, pending, backing = [], [], 0, []
    for size, published, times in checkpoints:
        if not times:
            if ctx.now - published <= tolerance:
                pending += 1
            else:
                missing.append(size)
        elif min(times) - published > tolerance:
            late.append(size)
        if size:
            backing.append(size - 1)
    tol = f"{ctx.config.timestamp_tolerance_s:g} s"
    if missing or late:
        parts = []
        if missing:
            parts.append(f"{len(missing)} checkpoint(s) without an RFC 3161 timestamp after {tol}: sizes "
                         + _some([str(s) for s in missing]))
        if late:
            parts.append(f"{len(late)} checkpoint(s) timestamped more than {tol} after publication: sizes "
                         + _some([str(s) for s in late]))
        return failed("; ".join(parts), [s - 1 for s in missing + late if s])
    note = f" ({pending} published less than {tol} ago still waiting)" if pending else ""
    return passed(f"all {len(checkpoints) - pending} published checkpoints carry an RFC 3161 timestamp "
                  f"within {tol} of publication{note}", backing[-1:])


# -- Art. 14: human oversight ------------------------------------------------------------------


def _targets(decision: dict[str, Any], model: Any, run: Any) -> bool:
    target = decision.get("target") or {}
    if not isinstance(target, dict):
        return False
    by_model = model is not None and target.get("model") == model
    return by_model or (run is not None and target.get("run") == run)


async def oversight_state(ctx: CheckContext) -> dict[str, Any]:
    """Decisions by id, and the halts on each run that no resume has answered."""
    decisions = await ctx.events(kind="oversight.decision")
    resumed = {body(d).get("halted_by") for d in decisions if body(d).get("action") == "resume"}
    open_halts: dict[Any, list[Any]] = {}
    for d in decisions:
        b = body(d)
        if b.get("action") == "halt" and b.get("decision_id") not in resumed:
            target = b.get("target") or {}
            open_halts.setdefault(target.get("run") if isinstance(target, dict) else None, []).append(d)
    return {"decisions": decisions, "open_halts": open_halts}


def _release_problem(rel: Any, decisions: list[Any],
                     open_halts: dict[Any, list[Any]]) -> tuple[str, list[int]]:
    """Why one release breaks Art. 14 ('' if it does not), and the entries that show it."""
    r = body(rel)
    model, run = r.get("model"), r.get("run")
    approvals = [d for d in decisions if d.index < rel.index and body(d).get("action") == "approve_release"
                 and (_targets(body(d), model, run) or body(d).get("decision_id") == r.get("approval"))]
    if not approvals:
        return f"{model} (entry {rel.index}) was released without an approve_release decision", [rel.index]
    last = approvals[-1]
    vetoes = [d for d in decisions if d.index > last.index and body(d).get("action") == "veto_release"
              and _targets(body(d), model, run)]
    if vetoes:
        return (f"{model} was vetoed (entry {vetoes[0].index}) after its approval (entry {last.index})",
                [rel.index, vetoes[0].index])
    halts = open_halts.get(run, []) if run is not None else []
    if halts:
        return (f"{model}'s run {run} has a halt that was never resumed (entry {halts[0].index})",
                [rel.index, halts[0].index])
    return "", [rel.index, last.index]


async def _release_oversight(ctx: CheckContext) -> Outcome:
    releases = await ctx.events(kind="model.released")
    if not releases:
        return not_applicable("no model has been released")
    state = await oversight_state(ctx)
    problems, bad, backing = [], [], []
    for rel in releases:
        problem, entries = _release_problem(rel, state["decisions"], state["open_halts"])
        if problem:
            problems.append(problem)
            bad += entries
        else:
            backing += entries
    if problems:
        return failed(f"{len(problems)} of {len(releases)} releases lack valid human approval: "
                      + "; ".join(problems[:SHOWN]), bad)
    return passed(f"all {len(releases)} released models were approved by an overseer, not vetoed "
                  "afterwards, and their runs have no unresolved halt", backing)


# -- Art. 19: retention ------------------------------------------------------------------------


async def oldest_entry(ctx: CheckContext) -> dict[str, Any] | None:
    """Entry 0 as an event (``None`` on an empty log): the start of the retained record."""
    if ctx.tree_size == 0:
        return None
    try:
        event = orjson.loads(await ctx.log.entry(0))
    except orjson.JSONDecodeError:
        return {}
    return event if isinstance(event, dict) else {}


def _parse_at(value: Any) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


async def _retention(ctx: CheckContext) -> Outcome:
    days = ctx.config.retention_days
    if days < MIN_RETENTION_DAYS:
        return failed(f"the configured log retention is {days:g} days, shorter than the six months "
                      f"({MIN_RETENTION_DAYS} days) Art. 19(1) requires")
    try:
        first = await oldest_entry(ctx)
    except LedgerError as e:
        return failed(f"the oldest entry (index 0) cannot be read: {e}")
    if first is None:
        return not_applicable("the log is empty")
    at = _parse_at(first.get("at"))
    since = f"recorded {first['at']}, {(ctx.now - at).days} days ago" if at else "recorded at an unknown time"
    return passed(f"the oldest entry (index 0, {since}) is still present and the configured retention is "
                  f"{days:g} days (at least {MIN_RETENTION_DAYS})", [0])


EU_AI_ACT: tuple[Rule, ...] = (
    Rule("ai-act.art10.datasheet", "EU AI Act Art. 10(2)-(3)",
         "Every training run used a dataset version with a datasheet", _datasheets),
    Rule("ai-act.art12.log-integrity", "EU AI Act Art. 12(1)",
         "The log is complete and consistent across all checkpoints", _log_integrity),
    Rule("ai-act.art12.timestamps", "EU AI Act Art. 12(1)-(2)",
         "Every published checkpoint carries an RFC 3161 timestamp", _timestamped),
    Rule("ai-act.art14.release-approval", "EU AI Act Art. 14(4)(d)-(e)",
         "Every released model was approved by a human overseer, not vetoed, and its run is not halted",
         _release_oversight),
    Rule("ai-act.art19.retention", "EU AI Act Art. 19(1), 26(6)",
         "Logs are retained at least six months", _retention),
)

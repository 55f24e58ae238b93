"""Rules for Regulation (EU) 2024/1689 (the AI Act): Art. 10, 12, 13, 14, 15, 19 and 53 as the log shows them.

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
from ..documentation import covering, documents
from ..pack import CheckContext, Outcome, Rule, body, by_run, failed, not_applicable, passed

__all__ = [
    "EU_AI_ACT",
    "checkpoint_times",
    "datasheet_gaps",
    "gpai_runs",
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
    what = (f"every entry, {report.tiles_checked} tiles, "
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


# -- Art. 10(5): special categories of personal data --------------------------------------------


def special_categories(sheet: Any) -> list[str]:
    """The special categories of personal data (GDPR Art. 9(1)) a datasheet declares, if any."""
    declared = sheet.get("special_categories") if isinstance(sheet, dict) else None
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, list):
        return []
    return [str(c) for c in declared
            if str(c).strip() and str(c).strip().lower() not in ("none", "not stated")]


async def _special_categories(ctx: CheckContext) -> Outcome:
    sheets: dict[tuple[Any, Any], Any] = {}
    for e in await ctx.events(kind="dataset.datasheet"):
        sheets[(body(e).get("dataset"), body(e).get("dataset_version"))] = e  # the latest stands
    declaring = {k: e for k, e in sheets.items() if special_categories(body(e).get("datasheet"))}
    if not declaring:
        return not_applicable("no datasheet declares special categories of personal data "
                              "(special_categories), so Art. 10(5) does not apply")
    reasons = await documents(ctx, "special_categories")
    runs = by_run(await ctx.events(kind="run.started"))
    problems, bad, backing = [], [], []
    for (ds, version), sheet in sorted(declaring.items(), key=lambda kv: kv[1].index):
        why = covering(reasons, dataset=ds, system_wide=False)
        on_it = [s for s in runs.values() if (body(s[-1]).get("dataset"), body(s[-1]).get("dataset_version"))
                 == (ds, version)]
        no_dp = [s for s in on_it if not (body(s[-1]).get("dp") or {}).get("enabled")]
        found = []
        if not why:
            found.append("no special_categories documentation event states why they are strictly necessary "
                         "for bias detection and the safeguards (Art. 10(5)(a), (f))")
        if no_dp:
            found.append(f"run(s) {', '.join(str(body(s[-1]).get('run')) for s in no_dp)} trained on it "
                         "without differential privacy (Art. 10(5)(b): state-of-the-art privacy-preserving "
                         "measures)")
        entries = [sheet.index, *(d.index for d in why), *(s[-1].index for s in (no_dp if found else on_it))]
        if found:
            problems.append(f"{ds} v{version} (datasheet entry {sheet.index}): " + "; ".join(found))
            bad += entries
        else:
            backing += entries
    if problems:
        return failed(f"{len(problems)} of {len(declaring)} dataset versions with special categories of "
                      "personal data lack the Art. 10(5) conditions: " + "; ".join(problems[:SHOWN]), bad)
    return passed(f"the {len(declaring)} dataset version(s) declaring special categories each have a "
                  "recorded justification, and every run on them used differential privacy", backing)


# -- Art. 13: transparency and instructions for use ---------------------------------------------

ART13_TOPICS = ("intended_purpose", "instructions_for_use")


def _documented(releases: list[Any], docs: list[Any], topics: tuple[str, ...], *,
                system_wide: bool = True) -> tuple[list[str], list[int], list[int]]:
    """Per release: which ``topics`` no documentation event covering its model or run records."""
    problems: list[str] = []
    bad: list[int] = []
    backing: list[int] = []
    for rel in releases:
        model, run = body(rel).get("model"), body(rel).get("run")
        cover = covering(docs, model=model, run=run, system_wide=system_wide)
        have = {body(d).get("topic") for d in cover}
        missing = [t for t in topics if t not in have]
        if missing:
            problems.append(f"{model} (entry {rel.index}) has no {' or '.join(missing)} documentation event")
            bad.append(rel.index)
        else:
            backing += [rel.index, *(d.index for d in cover)]
    return problems, bad, backing


async def _instructions(ctx: CheckContext) -> Outcome:
    releases = await ctx.events(kind="model.released")
    if not releases:
        return not_applicable("no model has been released: Art. 13 concerns a system placed on the market "
                              "or put into service")
    problems, bad, backing = _documented(releases, await documents(ctx, *ART13_TOPICS), ART13_TOPICS)
    if problems:
        return failed(f"{len(problems)} of {len(releases)} releases lack recorded transparency information: "
                      + "; ".join(problems[:SHOWN]), bad)
    return passed(f"all {len(releases)} released models have an intended purpose and instructions for use "
                  "recorded (doc.recorded), for the model, its run or the whole system", backing)


# -- Art. 15: accuracy, robustness, cybersecurity ------------------------------------------------


def _metrics(doc: Any) -> dict[str, float]:
    m = body(doc).get("metrics")
    if not isinstance(m, dict):
        return {}
    return {str(k): v for k, v in m.items() if isinstance(v, int | float) and not isinstance(v, bool)}


async def _accuracy(ctx: CheckContext) -> Outcome:
    releases = await ctx.events(kind="model.released")
    if not releases:
        return not_applicable("no model has been released")
    validations = [d for d in await documents(ctx, "validation") if _metrics(d)]
    # accuracy is a property of one model: a validation must name the model or its run
    problems, bad, backing = _documented(releases, validations, ("validation",), system_wide=False)
    if problems:
        return failed(f"{len(problems)} of {len(releases)} releases have no evaluation metrics on the log "
                      "(a validation doc.recorded naming the model or run, with metrics): "
                      + "; ".join(problems[:SHOWN]), bad)
    return passed(f"all {len(releases)} released models have a validation record with declared accuracy "
                  "metrics (Art. 15(3)) naming the model or its run", backing)


async def _cybersecurity(ctx: CheckContext) -> Outcome:
    releases = await ctx.events(kind="model.released")
    if not releases:
        return not_applicable("no model has been released")
    problems, bad, backing = _documented(releases, await documents(ctx, "cybersecurity"), ("cybersecurity",))
    report = await log_audit(ctx)
    if report.problems:
        problems.append(f"the log's self-audit found {len(report.problems)} problem(s), so its record "
                        "cannot be relied on to resist tampering (Art. 15(5))")
    elif report.checkpoints_checked == 0:
        problems.append("no signed checkpoint has been verified yet")
    if problems:
        return failed("; ".join(problems[:SHOWN]), bad)
    return passed(f"cybersecurity measures are recorded for all {len(releases)} released models, and the "
                  f"record resists tampering: {report.checkpoints_checked} signed checkpoints verified, "
                  f"{report.entries_checked} entries re-hashed with no problem (network and host measures "
                  "such as TLS are not visible on the log)", backing)


# -- Art. 53: general-purpose AI models ----------------------------------------------------------

GPAI_TOPICS = ("gpai_technical_documentation", "gpai_downstream_information", "copyright_policy",
               "training_content_summary")


async def gpai_runs(ctx: CheckContext) -> dict[Any, list[int]]:
    """The runs whose base model is declared general-purpose, with the entries that declare it: the
    run's spec (``base_model_general_purpose``), its ``run.started`` ``base_model.general_purpose``,
    or a ``gpai_base_model`` documentation event (``general_purpose``: true) for the run, its model
    or the whole system."""
    out: dict[Any, list[int]] = {}
    for e in await ctx.events(kind="job.submitted"):
        spec = body(e).get("spec")
        if isinstance(spec, dict) and spec.get("base_model_general_purpose") is True:
            out.setdefault(body(e).get("run"), []).append(e.index)
    models: dict[Any, Any] = {}
    for e in await ctx.events(kind=["run.completed", "model.released"]):
        models[body(e).get("run")] = body(e).get("model")
    declared = [d for d in await documents(ctx, "gpai_base_model") if body(d).get("general_purpose") is True]
    for run, starts in by_run(await ctx.events(kind="run.started")).items():
        base = body(starts[0]).get("base_model")
        if isinstance(base, dict) and base.get("general_purpose") is True:
            out.setdefault(run, []).append(starts[0].index)
        for d in covering(declared, model=models.get(run), run=run):
            out.setdefault(run, []).append(d.index)
    return out


async def _gpai(ctx: CheckContext) -> Outcome:
    runs = await gpai_runs(ctx)
    releases = [r for r in await ctx.events(kind="model.released") if body(r).get("run") in runs]
    if not releases:
        return not_applicable("no released model was fine-tuned from a base model declared general-purpose "
                              "(spec base_model_general_purpose, base_model.general_purpose or a "
                              "gpai_base_model "
                              "documentation event)")
    problems, bad, backing = _documented(releases, await documents(ctx, *GPAI_TOPICS), GPAI_TOPICS)
    bad += [i for r in releases if r.index in bad for i in runs[body(r).get("run")]]
    backing += [i for r in releases if r.index not in bad for i in runs[body(r).get("run")]]
    if problems:
        return failed(f"{len(problems)} of {len(releases)} releases of fine-tuned general-purpose "
                      "models lack the Art. 53 documentation: " + "; ".join(problems[:SHOWN]), bad)
    return passed(f"all {len(releases)} releases of fine-tuned general-purpose models have technical "
                  "documentation (Annex XI), downstream information (Annex XII), a copyright policy and a "
                  "training content summary recorded", backing)


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
    Rule("ai-act.art10-5.special-categories", "EU AI Act Art. 10(5)(a), (b), (f)",
         "Special categories of personal data are processed for bias detection only with the recorded "
         "justification and privacy-preserving measures", _special_categories),
    Rule("ai-act.art13.instructions", "EU AI Act Art. 13(1)-(3)",
         "Every released model has its intended purpose and instructions for use recorded", _instructions),
    Rule("ai-act.art15.accuracy", "EU AI Act Art. 15(1), (3)",
         "Every released model has evaluation metrics recorded", _accuracy),
    Rule("ai-act.art15.cybersecurity", "EU AI Act Art. 15(4)-(5)",
         "Cybersecurity measures are recorded and the record itself is tamper-evident", _cybersecurity),
    Rule("ai-act.art53.gpai", "EU AI Act Art. 53(1)(a)-(d), Annex XI, XII",
         "A fine-tuned general-purpose model is released with its Art. 53 documentation", _gpai),
)

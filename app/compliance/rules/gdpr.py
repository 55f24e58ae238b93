"""Rules for the GDPR (Regulation (EU) 2016/679) as the log shows them: DP budgets, no personal data,
lawful basis (Art. 6), erasure (Art. 17), records of processing (Art. 30), security (Art. 32), DPIA (Art. 35).

The privacy accounting (:func:`privacy_ledger`) is shared with the report's DP budget
statement, so the rule and the statement can never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..documentation import LAWFUL_BASES, covering, documents
from ..pack import (
    CheckContext,
    Outcome,
    Rule,
    body,
    by_run,
    failed,
    not_applicable,
    passed,
    segment_entries,
    segments,
)
from .eu_ai_act import log_audit

__all__ = ["GDPR", "personal_data", "privacy_ledger"]

SHOWN = 5
EPS_SLACK = 1e-9  # float sums of per-run epsilons (each run counted once, however many segments)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _run_spend(starts: list[Any], completed: Any | None, privacy: Any | None) -> dict[str, Any]:
    """One run's privacy as the log states it, over all its segments: ε is cumulative on every
    entry, so the run's ε is run.completed's, else the run.privacy of the highest step, never a sum."""
    s = body(starts[-1])  # a resumed segment repeats the run's configuration
    dp = s.get("dp") if isinstance(s.get("dp"), dict) else {}
    segs = segments(starts)
    entries = segment_entries(segs)
    epsilon = delta = None
    accountant = dp.get("accountant")
    source = "none recorded yet"
    if privacy is not None:
        p = body(privacy)
        epsilon, delta = _float(p.get("epsilon")), _float(p.get("delta"))
        accountant = p.get("accountant") or accountant
        source = f"run.privacy at step {p.get('step')}"
        entries.append(privacy.index)
    if completed is not None and _float(body(completed).get("epsilon")) is not None:
        epsilon = _float(body(completed).get("epsilon"))
        source = "run.completed"
        entries.append(completed.index)
    return {
        "run": s.get("run"), "dataset": s.get("dataset"), "dataset_version": s.get("dataset_version"),
        "dp_enabled": bool(dp.get("enabled")), "unit": dp.get("unit"), "epsilon": epsilon,
        "delta": delta if delta is not None else _float(dp.get("delta")), "accountant": accountant,
        "target_epsilon": _float(dp.get("target_epsilon")), "noise_multiplier": dp.get("noise_multiplier"),
        "max_grad_norm": dp.get("max_grad_norm"), "source": source,
        "completed": completed is not None, "segments": segs, "entries": entries,
    }


async def privacy_ledger(ctx: CheckContext) -> dict[str, Any]:
    """Per run and per dataset: ε spent, δ, the budget set, and what exceeds it.

    Returns ``{"runs": [...], "datasets": {dataset: {...}}}``; each item carries its entries.
    """
    cached = ctx.memo.get("privacy")
    if cached is not None:
        return dict(cached)
    budgets: dict[Any, Any] = {}
    for e in await ctx.events(kind="dataset.budget_set"):
        budgets[body(e).get("dataset")] = e  # the latest setting stands
    completed = {body(e).get("run"): e for e in await ctx.events(kind="run.completed")}
    last_privacy: dict[Any, Any] = {}
    for e in await ctx.events(kind="run.privacy"):
        run, step = body(e).get("run"), body(e).get("step") or 0
        prev = last_privacy.get(run)
        if prev is None or (body(prev).get("step") or 0) <= step:  # a tie: the later entry
            last_privacy[run] = e
    runs = [_run_spend(starts, completed.get(run), last_privacy.get(run))
            for run, starts in by_run(await ctx.events(kind="run.started")).items()]
    datasets: dict[Any, dict[str, Any]] = {}
    for ds in {r["dataset"] for r in runs} | set(budgets):
        budget = body(budgets[ds]) if ds in budgets else {}
        on_it = [r for r in runs if r["dataset"] == ds]
        spent = sum(r["epsilon"] or 0.0 for r in on_it)
        datasets[ds] = {
            "dataset": ds, "epsilon_total": _float(budget.get("epsilon_total")),
            "delta": _float(budget.get("delta")), "epsilon_spent": spent,
            "runs": [r["run"] for r in on_it],
            "entries": ([budgets[ds].index] if ds in budgets else [])
            + [i for r in on_it for i in r["entries"]],
        }
    out = {"runs": runs, "datasets": datasets}
    ctx.memo["privacy"] = out
    return dict(out)


def _budget_problems(ds: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    name, total, delta = ds["dataset"], ds["epsilon_total"], ds["delta"]
    on_it = [r for r in runs if r["dataset"] == name]
    problems = [f"run {r['run']} trained on {name} without differential privacy" for r in on_it
                if not r["dp_enabled"]]
    if on_it and total is None:
        problems.append(f"{name} was trained on but has no privacy budget (dataset.budget_set)")
    elif total is not None and ds["epsilon_spent"] > total + EPS_SLACK:
        problems.append(f"{name}: runs spent ε = {ds['epsilon_spent']:.4g}, over its budget ε = {total:g}")
    if delta is not None:
        problems += [f"run {r['run']} on {name} used δ = {r['delta']:g} > the budget's δ = {delta:g}"
                     for r in on_it if r["delta"] is not None and r["delta"] > delta]
    return problems


async def _dp_budget(ctx: CheckContext) -> Outcome:
    ledger = await privacy_ledger(ctx)
    datasets, runs = ledger["datasets"], ledger["runs"]
    if not runs:
        return not_applicable("no training run has used a dataset")
    problems: list[str] = []
    bad: list[int] = []
    backing: list[int] = []
    for ds in datasets.values():
        found = _budget_problems(ds, runs)
        problems += found
        (bad if found else backing).extend(ds["entries"])
    if problems:
        return failed(f"{len(problems)} privacy budget problem(s): " + "; ".join(problems[:SHOWN]), bad)
    spent = ", ".join(f"{d['dataset']} ε {d['epsilon_spent']:.4g} of {d['epsilon_total']:g}"
                      for d in datasets.values() if d["runs"])
    return passed(f"every run used DP-SGD within its dataset's budget: {spent}", backing)


# -- no personal data on the log ----------------------------------------------------------------

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# international (+CC ...) numbers, or national ones with a trunk 0 and grouped digits
PHONE = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,6}(?!\w)"
                   r"|(?<![\w.-])\(?0\d{1,4}\)?[ /-]\d{3,8}(?:[ -]\d{2,5}){0,2}(?![\w.-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
PERSONAL_KEYS = frozenset({
    "name", "email", "e_mail", "mail", "annotator_name", "full_name", "first_name", "last_name",
    "surname", "given_name", "phone", "telephone", "address", "username", "user_name",
})
PSEUDONYM_KEYS = frozenset({"annotator", "actor", "subject"})
ROLE_ACTORS = frozenset({"system", "worker"})
_NO_DIGITS = str.maketrans("", "", "0123456789")


def _iban_valid(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    digits = "".join(str(int(ch, 36)) for ch in s[4:] + s[:4])
    return int(digits) % 97 == 1


def _phone(text: str) -> bool:
    for m in PHONE.finditer(text):
        digits = sum(ch.isdigit() for ch in m.group())
        if 8 <= digits <= 15:
            return True
    return False


def _opaque(text: str) -> bool:
    """Hashes, commitments, pseudonyms, roots: long tokens without spaces are not read as text."""
    return text.startswith(("sha256:", "pseud:")) or (len(text) >= 40 and " " not in text)


def _string_findings(text: str) -> Iterator[str]:
    if "@" in text and EMAIL.search(text):
        yield "an e-mail address"
    if _opaque(text):
        return
    digits = len(text) - len(text.translate(_NO_DIGITS))
    if digits >= 2 and len(text) >= 15 and any(_iban_valid(m.group()) for m in IBAN.finditer(text)):
        yield "an IBAN"
    if digits >= 8 and _phone(text):
        yield "a phone number"


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, what was found) for each piece of personal data in an event."""
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "@" in key and EMAIL.search(key):
                yield sub, "an e-mail address as a key"
            low = str(key).lower()
            if low in PERSONAL_KEYS and isinstance(item, str) and item.strip():
                yield sub, f"a {low!r} field"
                continue
            if low in PSEUDONYM_KEYS and isinstance(item, str) and not (
                    item.startswith("pseud:") or (low == "actor" and item in ROLE_ACTORS)):
                yield sub, "an identity that is not a pseud: pseudonym"
                continue
            yield from _walk(item, sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
    elif isinstance(value, str):
        for what in _string_findings(value):
            yield path or "(the entry)", what


# A cheap test over an entry's canonical bytes: only entries that could hold any of the above are
# parsed and walked (most entries, dataset records above all, are hashes and numbers).
_CHEAP = (re.compile(rb"@|\+\d"), re.compile(rb"0\d{1,4}\)?[ /-]\d{3}"),
          re.compile(rb"[A-Z]{2}\d\d[ A-Z0-9]{11}"),
          re.compile(rb'"(?:annotator|actor|subject)":(?!"pseud:|"system"|"worker")'))
_KEY = re.compile(rb'"(?:' + "|".join(sorted(PERSONAL_KEYS)).encode() + rb')":')


def candidate(data: bytes) -> bool:
    """Whether an entry's canonical bytes could hold personal data at all (then it is walked)."""
    return any(r.search(data) for r in _CHEAP) or bool(_KEY.search(data.lower()))


async def personal_data(ctx: CheckContext) -> list[tuple[int, str, str]]:
    """(leaf index, field, what) for every suspected piece of personal data on the log (one scan per
    check: Art. 5 and Art. 32 share it)."""
    cached = ctx.memo.get("personal_data")
    if cached is not None:
        return list(cached)
    found: list[tuple[int, str, str]] = []
    async for page in ctx.pages():
        for e in page:
            if candidate(e.data):
                found += [(e.index, path, what) for path, what in _walk(body(e), "")]
    ctx.memo["personal_data"] = found
    return list(found)


async def _no_personal_data(ctx: CheckContext) -> Outcome:
    if ctx.tree_size == 0:
        return not_applicable("the log is empty")
    found = await personal_data(ctx)
    if found:
        by_entry: dict[int, list[str]] = {}
        for i, path, what in found:
            by_entry.setdefault(i, []).append(f"{path}: {what}")
        shown = [f"entry {i} ({', '.join(items)})" for i, items in by_entry.items()]
        more = f" and {len(shown) - 2 * SHOWN} more entries" if len(shown) > 2 * SHOWN else ""
        return failed(f"{len(found)} suspected piece(s) of personal data in {len(by_entry)} entries: "
                      + ", ".join(shown[: 2 * SHOWN]) + more, list(by_entry))
    return passed(f"no e-mail address, phone number, IBAN, name field or non-pseudonymous identity in the "
                  f"{ctx.tree_size} entries of the log")


# -- Art. 6: lawful basis per dataset ---------------------------------------------------------------

_BASIS_POINT = re.compile(r"6\s*\(1\)\s*\(([a-f])\)")


def lawful_basis(value: Any) -> str | None:
    """A stated lawful basis as one of Art. 6(1)(a)-(f) (``consent`` ... ``legitimate_interests``), or None
    for anything else (empty, 'not stated', free text that names no basis)."""
    if not isinstance(value, str):
        return None
    low = value.strip().lower()
    point = _BASIS_POINT.search(low)
    if point:
        return LAWFUL_BASES["abcdef".index(point[1])]
    word = re.sub(r"[\s-]+", "_", low)
    return word if word in LAWFUL_BASES else None


async def _versions(ctx: CheckContext) -> tuple[dict[tuple[Any, Any], Any], dict[tuple[Any, Any], Any]]:
    """Dataset versions and their (latest) datasheets, by (dataset, version)."""
    versions = {(body(e).get("dataset"), body(e).get("dataset_version")): e
                for e in await ctx.events(kind="dataset.version")}
    sheets = {(body(e).get("dataset"), body(e).get("dataset_version")): e
              for e in await ctx.events(kind="dataset.datasheet")}
    return versions, sheets


def _sheet(e: Any) -> dict[str, Any]:
    sheet = body(e).get("datasheet") if e is not None else None
    return sheet if isinstance(sheet, dict) else {}


async def _lawful_basis(ctx: CheckContext) -> Outcome:
    versions, sheets = await _versions(ctx)
    if not versions:
        return not_applicable("no dataset (personal data of annotators) has been imported")
    docs = [d for d in await documents(ctx, "lawful_basis") if lawful_basis(body(d).get("basis"))]
    problems, bad, backing = [], [], []
    for (ds, version), v in sorted(versions.items(), key=lambda kv: kv[1].index):
        sheet = sheets.get((ds, version))
        stated = lawful_basis(_sheet(sheet).get("lawful_basis"))
        recorded = [d for d in covering(docs, dataset=ds, system_wide=False)
                    if body(d).get("dataset_version") in (None, version)]
        if stated and sheet is not None:
            backing += [v.index, sheet.index]
        elif recorded:
            backing += [v.index, recorded[-1].index]
        else:
            problems.append(f"{ds} v{version} (entry {v.index})")
            bad += [v.index] + ([sheet.index] if sheet is not None else [])
    if problems:
        return failed(f"{len(problems)} of {len(versions)} dataset versions have no lawful basis "
                      "(Art. 6(1)(a)-(f)) stated in their datasheet (lawful_basis) or a lawful_basis "
                      "documentation event: " + ", ".join(problems[:SHOWN]), bad)
    return passed(f"all {len(versions)} dataset versions state a lawful basis under Art. 6(1)", backing)


# -- Art. 17: erasure honoured -------------------------------------------------------------------


async def _erasure(ctx: CheckContext) -> Outcome:
    erasures = await ctx.events(kind="privacy.erased")
    if not erasures:
        return not_applicable("no erasure request has been carried out (no privacy.erased)")
    versions, _ = await _versions(ctx)
    # what each erased subject had in each version: its dataset.record entries, counted per version
    held: dict[Any, dict[tuple[Any, Any], int]] = {}
    for er in erasures:
        who = body(er).get("annotator")
        if isinstance(who, str) and who not in held:
            per: dict[tuple[Any, Any], int] = {}
            for rec in await ctx.events(kind="dataset.record", annotator=who):
                key = (body(rec).get("dataset"), body(rec).get("dataset_version"))
                per[key] = per.get(key, 0) + 1
            held[who] = per
    problems, bad, backing = [], [], []
    for er in erasures:
        b = body(er)
        if not isinstance(b.get("legal_basis"), str) or not b["legal_basis"].strip():
            problems.append(f"erasure entry {er.index} records no legal basis")
            bad.append(er.index)
        else:
            backing.append(er.index)
    for run, starts in by_run(await ctx.events(kind="run.started")).items():
        first = starts[0]
        s = body(first)
        key = (s.get("dataset"), s.get("dataset_version"))
        before = [er for er in erasures
                  if er.index < first.index and held.get(body(er).get("annotator"), {}).get(key)]
        if not before:
            continue
        erased = sum(held[body(er).get("annotator")][key] for er in before)
        version = versions.get(key)
        records = body(version).get("records") if version is not None else None
        pairs = (s.get("dp") or {}).get("pairs") if isinstance(s.get("dp"), dict) else None
        cited = [first.index, *(er.index for er in before)] + ([version.index] if version is not None else [])
        if not isinstance(records, int) or not isinstance(pairs, int) or isinstance(pairs, bool):
            problems.append(f"run {run} (entry {first.index}) started after the erasure of {erased} of its "
                            "records but records no pair count, so the log cannot show they were left out")
            bad += cited
        elif pairs > records - erased:
            problems.append(f"run {run} (entry {first.index}) trained on {pairs} pairs of {key[0]} "
                            f"v{key[1]}, "
                            f"more than the {records - erased} left after {erased} were erased")
            bad += cited
        else:
            backing += cited
    if problems:
        return failed(f"{len(problems)} erasure problem(s): " + "; ".join(problems[:SHOWN]), bad)
    return passed(f"{len(erasures)} erasure(s) carried out with a legal basis; every later run on a "
                  "version that held erased records trained on no more pairs than were left", backing)


# -- Art. 30: records of processing ----------------------------------------------------------------


async def _records_of_processing(ctx: CheckContext) -> Outcome:
    """Art. 30(1): each processing of annotators' data is on the log (imports as ``dataset.version``
    with what was processed, training as ``run.started`` naming a recorded version, erasures), each
    with who and when, and states its purpose: the datasheet's, else the system's intended purpose."""
    versions, sheets = await _versions(ctx)
    if not versions:
        return not_applicable("no dataset (personal data of annotators) has been imported")
    purposes = await documents(ctx, "intended_purpose")
    problems, bad, backing = [], [], []
    for (ds, version), v in sorted(versions.items(), key=lambda kv: kv[1].index):
        sheet = sheets.get((ds, version))
        stated = _sheet(sheet).get("purpose")
        purpose = covering(purposes, dataset=ds)
        if isinstance(stated, str) and stated.strip().lower() not in ("", "not stated"):
            backing += [v.index, sheet.index]
        elif purpose:
            backing += [v.index, purpose[-1].index]
        else:
            problems.append(f"{ds} v{version} (entry {v.index}) states no purpose (datasheet purpose or an "
                            "intended_purpose documentation event)")
            bad.append(v.index)
    runs = by_run(await ctx.events(kind="run.started"))
    for run, starts in runs.items():
        s = body(starts[0])
        if (s.get("dataset"), s.get("dataset_version")) not in versions:
            problems.append(f"run {run} (entry {starts[0].index}) trained on {s.get('dataset')} "
                            f"v{s.get('dataset_version')}, whose import is not on the log")
            bad.append(starts[0].index)
    if problems:
        return failed(f"{len(problems)} processing record problem(s): " + "; ".join(problems[:SHOWN]), bad)
    erased = len(await ctx.events(kind="privacy.erased"))
    return passed(f"the log is the record of processing: {len(versions)} dataset version(s) imported with "
                  f"their purpose, {len(runs)} training run(s) on recorded versions and {erased} erasure(s), "
                  "each with who (pseudonym, role) and when; the controller's identity and contact are kept "
                  "off the log", backing)


# -- Art. 32: security of processing ---------------------------------------------------------------


async def _security(ctx: CheckContext) -> Outcome:
    if not await ctx.events(kind="dataset.version"):
        return not_applicable("no personal data (annotators' records) has been imported")
    problems, bad, backing = [], [], []
    report = await log_audit(ctx)
    if report.problems or report.checkpoints_checked == 0:
        problems.append("the self-audit could not show the record's integrity (Art. 32(1)(b)): "
                        + ("; ".join(report.problems[:2]) or "no signed checkpoint verified yet"))
    identities = [(i, path) for i, path, what in await personal_data(ctx) if "pseudonym" in what]
    if identities:
        problems.append(f"{len(identities)} identities on the log are not pseudonyms (Art. 32(1)(a)): "
                        + ", ".join(f"entry {i} {path}" for i, path in identities[:SHOWN]))
        bad += [i for i, _ in identities]
    measures = await documents(ctx, "cybersecurity")
    if not measures:
        problems.append("no cybersecurity documentation event describes the technical and organisational "
                        "measures (Art. 32(1))")
    else:
        backing.append(measures[-1].index)
    if problems:
        return failed("; ".join(problems), bad)
    return passed(f"identities are pseudonymised, the record's integrity verifies "
                  f"({report.checkpoints_checked} "
                  "signed checkpoints) and the security measures are recorded; transport security (TLS), "
                  "access control and encryption at rest are not visible on the log", backing)


# -- Art. 35: data protection impact assessment --------------------------------------------------------


async def _dpia(ctx: CheckContext) -> Outcome:
    runs = by_run(await ctx.events(kind="run.started"))
    if not runs:
        return not_applicable("no personal data has been processed for training yet")
    first: dict[Any, Any] = {}
    for starts in runs.values():
        ds = body(starts[0]).get("dataset")
        if ds not in first or starts[0].index < first[ds].index:
            first[ds] = starts[0]
    assessments = await documents(ctx, "dpia")
    problems, bad, backing = [], [], []
    for ds, start in sorted(first.items(), key=lambda kv: kv[1].index):
        cover = covering(assessments, dataset=ds)
        prior = [d for d in cover if d.index < start.index]
        if prior:
            backing += [prior[-1].index, start.index]
        elif cover:
            problems.append(f"the DPIA for {ds} (entry {cover[0].index}) was recorded after training on "
                            f"it began (entry {start.index}); Art. 35(1) asks for it prior to the processing")
            bad += [cover[0].index, start.index]
        else:
            problems.append(f"{ds} was trained on (entry {start.index}) without a recorded DPIA")
            bad.append(start.index)
    if problems:
        return failed("; ".join(problems[:SHOWN]), bad)
    return passed(f"a DPIA was recorded before training began on each of the {len(first)} dataset(s)",
                  backing)


GDPR: tuple[Rule, ...] = (
    Rule("gdpr.art25.dp-budget", "GDPR Art. 5(1)(c), 25(1)",
         "Differential-privacy budgets per dataset were respected", _dp_budget),
    Rule("gdpr.art5.no-personal-data", "GDPR Art. 5(1)(c), 25(2)",
         "No personal data sits on the log (data minimisation, pseudonyms only)", _no_personal_data),
    Rule("gdpr.art6.lawful-basis", "GDPR Art. 6(1)",
         "Every dataset version states its lawful basis", _lawful_basis),
    Rule("gdpr.art17.erasure", "GDPR Art. 17(1)",
         "Erasures carry a legal basis and later runs left the erased records out", _erasure),
    Rule("gdpr.art30.records", "GDPR Art. 30(1)",
         "Every processing of annotators' data is on the log with its purpose", _records_of_processing),
    Rule("gdpr.art32.security", "GDPR Art. 32(1)(a)-(b)",
         "Pseudonymisation, an intact record and documented security measures", _security),
    Rule("gdpr.art35.dpia", "GDPR Art. 35(1), (7)",
         "A DPIA was recorded before training on each dataset began", _dpia),
)

"""Rules for the GDPR (Regulation (EU) 2016/679) as the log shows them: DP budgets, no personal data.

The privacy accounting (:func:`privacy_ledger`) is shared with the report's DP budget
statement, so the rule and the statement can never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

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
    """(leaf index, field, what) for every suspected piece of personal data on the log."""
    found: list[tuple[int, str, str]] = []
    async for page in ctx.pages():
        for e in page:
            if candidate(e.data):
                found += [(e.index, path, what) for path, what in _walk(body(e), "")]
    return found


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


GDPR: tuple[Rule, ...] = (
    Rule("gdpr.art25.dp-budget", "GDPR Art. 25(1); EU AI Act Art. 10(5)",
         "Differential-privacy budgets per dataset were respected", _dp_budget),
    Rule("gdpr.art5.no-personal-data", "GDPR Art. 5(1)(c), 25(2)",
         "No personal data sits on the log (data minimisation, pseudonyms only)", _no_personal_data),
)

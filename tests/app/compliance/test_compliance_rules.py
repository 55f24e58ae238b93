"""The regulation pack's rules on a realistic log, each passing and failing, on SQLite and PostgreSQL.

The log is written event by event as docs/events.md describes (tests/support/compliance_log.py); each
failing case appends (or, for Art. 12, tampers with) exactly what breaks the rule and checks
that the result names the entries behind it.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from app.compliance import DEFAULT_PACK, ComplianceConfig, Outcome, Pack, Rule, evaluate, run_checks
from app.compliance.config import ENV_RETENTION
from app.compliance.schedule import checks_every, compliance_check
from app.core.database import Database
from app.core.errors import Misconfigured
from app.core.settings import Settings
from app.events.index import EventIndex
from app.events.recording import event
from ledger.log import Log
from tests.support.compliance_log import (
    ALICE,
    BOB,
    DS,
    WORKER,
    build_log,
    dataset_events,
    decision,
    run_events,
)
from tests.support.entry_rows import set_entry


async def _config(db: Database, log: Log, **changes: object) -> ComplianceConfig:
    base = await ComplianceConfig.load(db, log, Settings.load())
    return ComplianceConfig(**{**base.__dict__, **changes})  # type: ignore[arg-type]


async def _results(db: Database, log: Log, **config: object) -> dict[str, object]:
    results, _ = await evaluate(db, log, EventIndex(db, log), config=await _config(db, log, **config))
    return {r.rule: r for r in results}


async def _append(log: Log, events: list[dict[str, object]]) -> list[int]:
    return [e.leaf_index for e in await log.append(events)]


async def test_compliant_log_passes_every_rule_and_records_one_event(db: Database, log: Log) -> None:
    built = await build_log(log)
    index = EventIndex(db, log)
    run = await run_checks(db, log, index, actor=BOB, config=await _config(db, log))
    # what the compliant log does not do is not applicable: no special categories, no erasure, no
    # general-purpose base model; everything else passes
    idle = {"ai-act.art10-5.special-categories", "gdpr.art17.erasure", "ai-act.art53.gpai"}
    assert {r.rule: r.status for r in run.results} == {
        r.id: "not_applicable" if r.id in idle else "pass" for r in DEFAULT_PACK.rules}, run.to_json()
    by_rule = {r.rule: r for r in run.results}
    # every result cites the entries behind it
    art14 = by_rule["ai-act.art14.release-approval"]
    assert {built.at["approve"], built.at["release"]} <= set(art14.entries)
    assert built.at["budget"] in by_rule["gdpr.art25.dp-budget"].entries
    assert by_rule["ai-act.art19.retention"].entries == (0,)
    assert "EU AI Act Art. 14" in art14.article
    # exactly one compliance.checked event, with the envelope and the results of docs/events.md
    checked = await index.query(kind="compliance.checked")
    assert [e.index for e in checked] == [run.leaf_index]
    ev = checked[0].event
    assert ev["actor"] == BOB.pseudonym and ev["role"] == "overseer"
    assert (ev["pack"], ev["pack_version"]) == ("eu-ai-act-2024-1689+gdpr", "2026.12")
    assert ev["tree_size"] == run.tree_size == built.size
    assert ev["results"] == [r.to_json() for r in run.results]
    assert DEFAULT_PACK.id == "eu-ai-act-2024-1689+gdpr@2026.12"


async def test_an_empty_log_has_nothing_to_check(db: Database, log: Log) -> None:
    results = await _results(db, log)
    assert {r.status for r in results.values()} == {"not_applicable"}


async def test_art10_run_without_datasheet_or_with_an_empty_one_fails(db: Database, log: Log) -> None:
    await build_log(log)
    await _append(log, dataset_events("ds_unsheeted", 1, datasheet=False))
    (bad_run,) = [
        i
        for i in await _append(log, run_events("run_nosheet", "ds_unsheeted", 1, "model_x", eps=[0.5]))
        if (await log.entry(i)).find(b'"run.started"') >= 0
    ]
    results = await _results(db, log)
    art10 = results["ai-act.art10.datasheet"]
    assert art10.status == "fail"
    assert "run_nosheet" in art10.summary and "no datasheet" in art10.summary
    assert art10.entries == (bad_run,)
    # a datasheet that states nothing (what the importer writes without a datasheet file) fails too
    sheet = event(
        "dataset.datasheet",
        ALICE,
        dataset="ds_unsheeted",
        dataset_version=1,
        datasheet={"origin": "not stated", "collection_process": "not stated", "purpose": "not stated"},
    )
    (sheet_at,) = await _append(log, [sheet])
    art10 = (await _results(db, log))["ai-act.art10.datasheet"]
    assert art10.status == "fail" and "does not state origin" in art10.summary
    assert set(art10.entries) == {bad_run, sheet_at}


async def test_art14_release_needs_approval_no_veto_and_no_open_halt(db: Database, log: Log) -> None:
    await build_log(log)
    expected = {}
    for case, problem in (("no_approval", "without an approve_release"), ("vetoed", "vetoed"),
                          ("halted", "never resumed")):
        run, model = f"run_{case}", f"model_{case}"
        target = {"model": model, "run": run}
        events = run_events(run, DS, 1, model, eps=[0.1])
        if case != "no_approval":
            events.append(decision(ALICE, "approve_release", target, f"dec_app_{case}"))
        if case == "vetoed":
            events.append(decision(BOB, "veto_release", target, f"dec_veto_{case}"))
        if case == "halted":
            events.append(decision(BOB, "halt", {"run": run}, f"dec_halt_{case}"))
        events.append(event("model.released", ALICE, model=model, run=run, root="sha256:00",
                            approval=None if case == "no_approval" else f"dec_app_{case}"))
        indices = await _append(log, events)
        expected[case] = (problem, indices[-1], None if case == "no_approval" else indices[-2])
    art14 = (await _results(db, log))["ai-act.art14.release-approval"]
    assert art14.status == "fail" and "3 of 4 releases" in art14.summary, art14
    for case, (problem, release, cause) in expected.items():
        assert problem in art14.summary and f"model_{case}" in art14.summary
        assert release in art14.entries  # the release itself
        if cause is not None:
            assert cause in art14.entries  # the veto or the halt


async def test_art14_a_resumed_halt_does_not_block_a_release(db: Database, log: Log) -> None:
    built = await build_log(log)  # run_bbbb was halted by Alice and resumed by Bob
    target = {"model": "model_b", "run": "run_bbbb"}
    await _append(
        log,
        [
            decision(ALICE, "approve_release", target, "dec_app_b"),
            event(
                "model.released",
                ALICE,
                model="model_b",
                run="run_bbbb",
                approval="dec_app_b",
                root="sha256:00",
            ),
        ],
    )
    art14 = (await _results(db, log))["ai-act.art14.release-approval"]
    assert art14.status == "pass", art14
    assert built.at["halt"] not in art14.entries


async def test_dp_budget_overspend_non_dp_run_and_delta_fail(db: Database, log: Log) -> None:
    built = await build_log(log)  # 2.9 + 3.0 of 8.0 spent
    assert (await _results(db, log))["gdpr.art25.dp-budget"].status == "pass"
    over = await _append(log, run_events("run_cccc", DS, 1, "model_c", eps=[1.0, 2.5]))
    res = (await _results(db, log))["gdpr.art25.dp-budget"]
    assert res.status == "fail" and "over its budget" in res.summary and "8.4" in res.summary
    assert built.at["budget"] in res.entries and over[-1] in res.entries  # budget and the completion
    # a run still running counts its last run.privacy; a run without DP on the dataset fails as well
    await _append(log, run_events("run_nodp", DS, 1, "model_n", eps=[], dp=False, complete=False))
    res = (await _results(db, log))["gdpr.art25.dp-budget"]
    assert "run_nodp trained on ds_helpful_prefs without differential privacy" in res.summary


async def test_dp_budget_missing_budget_and_delta_above_budget(db: Database, log: Log) -> None:
    await _append(log, dataset_events("ds_nobudget", 1))
    await _append(log, run_events("run_dddd", "ds_nobudget", 1, "model_d", eps=[1.0]))
    res = (await _results(db, log))["gdpr.art25.dp-budget"]
    assert res.status == "fail" and "no privacy budget" in res.summary
    await _append(
        log, [event("dataset.budget_set", ALICE, dataset="ds_nobudget", epsilon_total=5.0, delta=1e-7)]
    )
    res = (await _results(db, log))["gdpr.art25.dp-budget"]
    assert res.status == "fail" and "δ = 1e-05 > the budget's δ = 1e-07" in res.summary


PERSONAL = [
    ("justification", "halting: contact alice.smith@example.org for details", "an e-mail address"),
    ("justification", "call me on +49 30 1234 5678 before resuming", "a phone number"),
    ("justification", "refund to DE89 3704 0044 0532 0130 00", "an IBAN"),
    ("annotator_name", "Alice Smith", "'annotator_name' field"),
    ("annotator", "alice", "not a pseud: pseudonym"),
]


async def test_personal_data_on_the_log_fails(db: Database, log: Log) -> None:
    await build_log(log)
    assert (await _results(db, log))["gdpr.art5.no-personal-data"].status == "pass"
    target = {"annotator": "pseud:" + "ab" * 16}
    bad = await _append(log, [decision(ALICE, "reject_annotator", target, f"dec_rej{i}", **{field: value})
                              for i, (field, value, _) in enumerate(PERSONAL)])
    res = (await _results(db, log))["gdpr.art5.no-personal-data"]
    assert res.status == "fail" and res.entries == tuple(bad)
    assert f"in {len(PERSONAL)} entries" in res.summary
    for i, (_, value, what) in zip(bad, PERSONAL, strict=True):
        assert f"entry {i} (" in res.summary and what in res.summary
        assert value not in res.summary  # the finding itself must not copy personal data onto the log


async def test_no_false_positives_on_hashes_times_and_numbers(db: Database, log: Log) -> None:
    await build_log(log)
    await _append(
        log,
        [
            event(
                "run.metrics",
                WORKER,
                run="run_aaaa",
                steps=[
                    {
                        "step": 123456789,
                        "loss": 0.123456789,
                        "lr": 5e-06,
                        "at": "2026-11-25T10:31:00.123Z",
                        "note": "epoch 3 of 10, 2026-11-25, 127.0.0.1, v2.13.0, batch 1024 x 4096",
                    }
                ],
            )
        ],
    )
    assert (await _results(db, log))["gdpr.art5.no-personal-data"].status == "pass"


async def test_untimestamped_checkpoint_fails_after_the_tolerance(db: Database, log: Log) -> None:
    await build_log(log)
    (late,) = await _append(log, [event("run.metrics", WORKER, run="run_aaaa", steps=[{"step": 30}])])
    cp = await log.integrate()  # published, not timestamped
    assert cp is not None and cp.size == late + 1
    results = await _results(db, log)  # within the 1 h tolerance: waiting, not failing
    assert results["ai-act.art12.timestamps"].status == "pass"
    assert "still waiting" in results["ai-act.art12.timestamps"].summary
    res = (await _results(db, log, timestamp_tolerance_s=0.0))["ai-act.art12.timestamps"]
    assert res.status == "fail" and f"without an RFC 3161 timestamp after 0 s: sizes {cp.size}" in res.summary
    assert cp.size - 1 in res.entries
    await log.timestamp_pending(force=True)  # stamped now, within a minute of publication
    res = (await _results(db, log, timestamp_tolerance_s=600.0))["ai-act.art12.timestamps"]
    assert res.status == "pass" and "still waiting" not in res.summary


async def test_art12_tampered_entry_fails_the_log_integrity_rule(db: Database, log: Log) -> None:
    await build_log(log)
    assert (await _results(db, log))["ai-act.art12.log-integrity"].status == "pass"
    await set_entry(log, 5, orjson.dumps({"kind": "dataset.record", "forged": True}))
    res = (await _results(db, log))["ai-act.art12.log-integrity"]
    assert res.status == "fail" and "entry 5" in res.summary, res.summary


async def test_art19_retention_setting(db: Database, log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    await build_log(log)
    res = (await _results(db, log, retention_days=30))["ai-act.art19.retention"]
    assert res.status == "fail" and "30 days" in res.summary
    monkeypatch.setenv(ENV_RETENTION, "200")
    config = await ComplianceConfig.load(db, log, Settings.load())
    assert config.retention_days == 200
    results, _ = await evaluate(db, log, EventIndex(db, log), config=config)
    assert {r.rule: r.status for r in results}["ai-act.art19.retention"] == "pass"
    monkeypatch.setenv(ENV_RETENTION, "half a year")
    with pytest.raises(Misconfigured, match="RLHF_AUDIT_RETENTION_DAYS"):
        await ComplianceConfig.load(db, log, Settings.load())


async def test_a_broken_rule_fails_instead_of_crashing_and_packs_compose(db: Database, log: Log) -> None:
    async def broken(ctx: object) -> Outcome:
        raise RuntimeError("boom")

    async def fine(ctx: object) -> Outcome:
        return Outcome("pass", "ok", (0,))

    pack = Pack(
        "test-pack",
        "1",
        (Rule("t.broken", "Art. 0", "broken", broken), Rule("t.fine", "Art. 1", "fine", fine)),
    )
    await build_log(log)
    run = await run_checks(db, log, EventIndex(db, log), pack=pack, config=await _config(db, log))
    assert [(r.rule, r.status) for r in run.results] == [("t.broken", "fail"), ("t.fine", "pass")]
    assert "RuntimeError: boom" in run.results[0].summary
    checked = orjson.loads(await log.entry(run.leaf_index or 0))
    assert checked["pack"] == "test-pack" and checked["kind"] == "compliance.checked"


async def test_scheduled_checks_arq_job_and_loop(db: Database, log: Log) -> None:
    await build_log(log)
    index = EventIndex(db, log)
    ctx = {"db": db, "log": log, "event_index": index, "settings": Settings.load()}  # the worker's
    summary = await compliance_check(ctx)
    assert summary["ok"] is True and summary["counts"]["fail"] == 0

    class State:
        pass

    state = State()
    state.db, state.log, state.event_index = db, log, index  # type: ignore[attr-defined]
    state.app_settings = Settings.load()  # type: ignore[attr-defined]
    async with checks_every(state, 0.05):
        for _ in range(200):
            if len(await index.query(kind="compliance.checked")) >= 3:
                break
            await asyncio.sleep(0.05)
    checked = await index.query(kind="compliance.checked")
    assert len(checked) >= 3 and {e.event["actor"] for e in checked} == {"system"}

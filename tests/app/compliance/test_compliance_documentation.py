"""The rules fed by the operator's documentation events (``doc.recorded``) and the GDPR rules beyond
Art. 5/25: AI Act Art. 10(5), 13, 15, 53 and GDPR Art. 6, 17, 30, 32, 35, each failing and passing on
the log as written (tests/support/compliance_log.py), citing the entries behind the verdict."""

from __future__ import annotations

from typing import Any

from app.compliance import DEFAULT_PACK, ComplianceConfig, evaluate
from app.core.database import Database
from app.core.settings import Settings
from app.events.index import EventIndex
from app.events.recording import event
from ledger.canonical import encode_event
from ledger.log import Log
from tests.support.compliance_log import (
    ALICE,
    BOB,
    DS,
    OPERATOR,
    build_log,
    dataset_events,
    decision,
    doc,
    pseud,
    run_events,
    settle,
)


async def _results(db: Database, log: Log) -> dict[str, Any]:
    config = await ComplianceConfig.load(db, log, Settings.load())
    results, _ = await evaluate(db, log, EventIndex(db, log), config=config)
    return {r.rule: r for r in results}


async def _append(log: Log, events: list[dict[str, Any]]) -> list[int]:
    return [e.leaf_index for e in await log.append(events)]


def _released(run: str = "run_x", model: str = "model_x") -> list[dict[str, Any]]:
    """A DP run on DS v1, approved and released: no documentation at all."""
    return (run_events(run, DS, 1, model, eps=[1.0])
            + [decision(BOB, "approve_release", {"model": model, "run": run}, f"dec_{run}"),
               event("model.released", ALICE, model=model, run=run, approval=f"dec_{run}",
                     root="sha256:" + "00" * 32)])


async def _bare(log: Log) -> dict[str, int]:
    """A log with a dataset, a budget and one released model, and no documentation event."""
    at = await _append(log, dataset_events(DS, 1) + [
        event("dataset.budget_set", ALICE, dataset=DS, epsilon_total=8.0, delta=1e-5)])
    rel = await _append(log, _released())
    await settle(log)
    return {"version": at[6], "sheet": at[7], "started": rel[1], "release": rel[-1]}


def test_documentation_is_an_event_outsiders_may_record() -> None:
    # POST /api/v1/events and `rlhf-audit append` encode with submitted=True: doc.* is not reserved
    data = encode_event({"kind": "doc.recorded", "topic": "dpia", "uri": "https://example.org/dpia.pdf",
                         "sha256": "sha256:" + "ab" * 32}, submitted=True)
    assert b'"doc.recorded"' in data


async def test_art13_release_needs_intended_purpose_and_instructions(db: Database, log: Log) -> None:
    at = await _bare(log)
    art13 = (await _results(db, log))["ai-act.art13.instructions"]
    assert art13.status == "fail" and art13.entries == (at["release"],)
    assert "model_x" in art13.summary and "intended_purpose or instructions_for_use" in art13.summary
    purpose, link_only = await _append(log, [
        doc("intended_purpose", "Answers customer questions", model="model_x"),
        doc("instructions_for_use", "", uri="https://example.org/ifu.pdf")])  # a link without its hash
    art13 = (await _results(db, log))["ai-act.art13.instructions"]
    assert art13.status == "fail" and "no instructions_for_use" in art13.summary
    (ifu,) = await _append(log, [doc("instructions_for_use", "", uri="https://example.org/ifu.pdf",
                                     sha256="sha256:" + "cd" * 32)])
    art13 = (await _results(db, log))["ai-act.art13.instructions"]
    assert art13.status == "pass" and set(art13.entries) == {at["release"], purpose, ifu}
    assert link_only not in art13.entries
    # another model's documentation covers nothing here
    await _append(log, _released("run_y", "model_y"))
    art13 = (await _results(db, log))["ai-act.art13.instructions"]
    assert art13.status == "fail" and "model_y" in art13.summary and "model_x" not in art13.summary


async def test_art15_accuracy_needs_metrics_naming_the_model(db: Database, log: Log) -> None:
    at = await _bare(log)
    results = await _results(db, log)
    assert results["ai-act.art15.accuracy"].status == "fail"
    assert results["ai-act.art15.cybersecurity"].status == "fail"
    assert "no cybersecurity" in results["ai-act.art15.cybersecurity"].summary
    await _append(log, [doc("validation", "held-out evaluation", run="run_x"),  # no metrics
                        doc("validation", "whole system", metrics={"accuracy": 0.9})])  # names no model
    assert (await _results(db, log))["ai-act.art15.accuracy"].status == "fail"
    (good,) = await _append(log, [doc("validation", "held-out preference pairs", model="model_x",
                                      metrics={"preference_accuracy": 0.74, "reward_margin": 0.31})])
    (sec,) = await _append(log, [doc("cybersecurity", "signed checkpoints; TLS; encrypted records")])
    await settle(log)
    results = await _results(db, log)
    assert results["ai-act.art15.accuracy"].status == "pass"
    assert set(results["ai-act.art15.accuracy"].entries) == {at["release"], good}
    cyber = results["ai-act.art15.cybersecurity"]
    assert cyber.status == "pass" and sec in cyber.entries and "signed checkpoints verified" in cyber.summary


async def test_art10_5_applies_only_where_special_categories_are_declared(db: Database, log: Log) -> None:
    assert "10(5)" not in DEFAULT_PACK.rule("gdpr.art25.dp-budget").article  # type: ignore[union-attr]
    await build_log(log)
    rule = "ai-act.art10-5.special-categories"
    assert (await _results(db, log))[rule].status == "not_applicable"
    sheet = dataset_events(DS, 1)[-1]
    sheet["datasheet"]["special_categories"] = ["ethnic origin (for bias detection)"]
    (declared,) = await _append(log, [sheet])
    res = (await _results(db, log))[rule]
    assert res.status == "fail" and declared in res.entries and "strictly necessary" in res.summary
    (why,) = await _append(log, [doc("special_categories", "bias audit of the reward model", dataset=DS)])
    res = (await _results(db, log))[rule]
    assert res.status == "pass" and {declared, why} <= set(res.entries)
    started = await _append(log, run_events("run_nodp", DS, 1, "model_n", eps=[], dp=False))
    res = (await _results(db, log))[rule]
    assert res.status == "fail" and "run_nodp" in res.summary and started[1] in res.entries


async def test_gdpr_art6_lawful_basis_per_dataset_version(db: Database, log: Log) -> None:
    built = await build_log(log)
    res = (await _results(db, log))["gdpr.art6.lawful-basis"]
    assert res.status == "pass" and built.at["ds_v1"] in res.entries  # the datasheet states consent
    v2 = dataset_events(DS, 2)
    del v2[-1]["datasheet"]["lawful_basis"]
    at = await _append(log, v2)
    res = (await _results(db, log))["gdpr.art6.lawful-basis"]
    assert res.status == "fail" and f"{DS} v2 (entry {at[6]})" in res.summary
    await _append(log, [doc("lawful_basis", "we think it is fine", dataset=DS, basis="because")])
    assert (await _results(db, log))["gdpr.art6.lawful-basis"].status == "fail"
    (basis,) = await _append(log, [doc("lawful_basis", "balancing test of 2026-11", dataset=DS,
                                       dataset_version=2, basis="Art. 6(1)(f)")])
    res = (await _results(db, log))["gdpr.art6.lawful-basis"]
    assert res.status == "pass" and basis in res.entries


async def test_gdpr_art17_erasure_honoured_by_later_runs(db: Database, log: Log) -> None:
    await build_log(log)
    assert (await _results(db, log))["gdpr.art17.erasure"].status == "not_applicable"
    subject = pseud(f"annotator:{DS}:0")  # two of the six records of DS v1
    (erased,) = await _append(log, [event("privacy.erased", OPERATOR, annotator=subject, records=2,
                                          legal_basis="GDPR Art. 17(1)(b): consent withdrawn",
                                          request_ref="req-1")])
    res = (await _results(db, log))["gdpr.art17.erasure"]
    assert res.status == "pass" and res.entries == (erased,)

    def later(run: str, pairs: int | None) -> list[dict[str, Any]]:
        events = run_events(run, DS, 1, f"model_{run}", eps=[0.1])
        if pairs is not None:
            events[1]["dp"]["pairs"] = pairs
        return events

    ok = await _append(log, later("run_after", 4))
    res = (await _results(db, log))["gdpr.art17.erasure"]
    assert res.status == "pass" and {erased, ok[1]} <= set(res.entries)
    bad = await _append(log, later("run_toomany", 6))
    res = (await _results(db, log))["gdpr.art17.erasure"]
    assert res.status == "fail" and "run_toomany" in res.summary and "more than the 4 left" in res.summary
    assert bad[1] in res.entries and ok[1] not in res.entries
    unknown = await _append(log, later("run_nocount", None))
    res = (await _results(db, log))["gdpr.art17.erasure"]
    assert "run_nocount" in res.summary and "no pair count" in res.summary and unknown[1] in res.entries


async def test_gdpr_art17_erasure_without_legal_basis_fails(db: Database, log: Log) -> None:
    (erased,) = await _append(log, [event("privacy.erased", OPERATOR, annotator=pseud("x"), records=0,
                                          legal_basis=" ")])
    res = (await _results(db, log))["gdpr.art17.erasure"]
    assert res.status == "fail" and res.entries == (erased,) and "no legal basis" in res.summary


async def test_gdpr_art30_records_of_processing(db: Database, log: Log) -> None:
    assert (await _results(db, log))["gdpr.art30.records"].status == "not_applicable"
    at = await _append(log, dataset_events("ds_plain", 1, datasheet=False))
    res = (await _results(db, log))["gdpr.art30.records"]
    assert res.status == "fail" and res.entries == (at[-1],) and "states no purpose" in res.summary
    (purpose,) = await _append(log, [doc("intended_purpose", "reward modelling for support answers")])
    res = (await _results(db, log))["gdpr.art30.records"]
    assert res.status == "pass" and set(res.entries) == {at[-1], purpose}
    ghost = await _append(log, run_events("run_ghost", "ds_never_imported", 1, "model_g", eps=[0.1]))
    res = (await _results(db, log))["gdpr.art30.records"]
    assert res.status == "fail" and "import is not on the log" in res.summary and ghost[1] in res.entries


async def test_gdpr_art32_security_of_processing(db: Database, log: Log) -> None:
    await _bare(log)
    res = (await _results(db, log))["gdpr.art32.security"]
    assert res.status == "fail" and "no cybersecurity documentation" in res.summary
    (measures,) = await _append(log, [doc("cybersecurity", "records encrypted per subject; signed log")])
    await settle(log)
    res = (await _results(db, log))["gdpr.art32.security"]
    assert res.status == "pass" and measures in res.entries and "TLS" in res.summary
    (named,) = await _append(log, [decision(ALICE, "reject_annotator", {"annotator": "alice"}, "dec_r")])
    res = (await _results(db, log))["gdpr.art32.security"]
    assert res.status == "fail" and named in res.entries and "not pseudonyms" in res.summary


async def test_gdpr_art35_dpia_before_training(db: Database, log: Log) -> None:
    at = await _bare(log)
    res = (await _results(db, log))["gdpr.art35.dpia"]
    assert res.status == "fail" and res.entries == (at["started"],)
    assert "without a recorded DPIA" in res.summary
    (late,) = await _append(log, [doc("dpia", "assessed after the fact", dataset=DS)])
    res = (await _results(db, log))["gdpr.art35.dpia"]
    assert res.status == "fail" and "after training on it began" in res.summary and late in res.entries


async def test_gdpr_art35_passes_on_the_compliant_log(db: Database, log: Log) -> None:
    built = await build_log(log)
    res = (await _results(db, log))["gdpr.art35.dpia"]
    assert res.status == "pass" and built.at["docs"] - 3 in res.entries  # the DPIA, first of the docs


async def test_art53_applies_to_a_declared_general_purpose_base_model(db: Database, log: Log) -> None:
    built = await build_log(log)
    assert (await _results(db, log))["ai-act.art53.gpai"].status == "not_applicable"
    (declared,) = await _append(log, [doc("gpai_base_model", "the base model is a GPAI model",
                                          run="run_aaaa", general_purpose=True)])
    res = (await _results(db, log))["ai-act.art53.gpai"]
    assert res.status == "fail" and "model_a" in res.summary and "gpai_technical_documentation" in res.summary
    assert {built.at["release"], declared} <= set(res.entries)
    await _append(log, [doc(topic, f"{topic} of model_a", model="model_a") for topic in (
        "gpai_technical_documentation", "gpai_downstream_information", "copyright_policy",
        "training_content_summary")])
    res = (await _results(db, log))["ai-act.art53.gpai"]
    assert res.status == "pass" and declared in res.entries


async def test_art53_declared_in_the_run_itself(db: Database, log: Log) -> None:
    await _append(log, dataset_events(DS, 1))
    events = _released()
    events[1]["base_model"]["general_purpose"] = True
    at = await _append(log, events)
    res = (await _results(db, log))["ai-act.art53.gpai"]
    assert res.status == "fail" and {at[1], at[-1]} <= set(res.entries)

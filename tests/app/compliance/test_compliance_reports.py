"""Compliance reports from the log alone: every section, its backing leaf indices, the three formats,
and the ``report.generated`` event, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pypdf import PdfReader

from app.compliance import run_checks
from app.compliance.reports import Report, ReportScope, ScopeError, build_report, render_report
from app.core.database import Database
from app.core.settings import Settings
from app.events.index import EventIndex
from ledger.errors import NotFound
from ledger.log import Log
from tests.support.compliance_log import ALICE, BOB, build_log, decision, settle


async def _report(db: Database, log: Log, scope: object) -> tuple[Report, dict]:  # type: ignore[type-arg]
    report = await build_report(db, log, EventIndex(db, log), scope, settings=Settings.load())
    return report, orjson.loads(report.json_bytes())


def _cited(data: object) -> set[int]:
    """Every leaf index any statement or row of the report cites."""
    out: set[int] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "entries" and isinstance(value, list):
                out |= {int(i) for i in value}
            elif key == "index" and isinstance(value, int):
                out.add(value)
            else:
                out |= _cited(value)
    elif isinstance(data, list):
        for item in data:
            out |= _cited(item)
    return out


async def test_model_release_report_has_every_section_backed_by_entries(db: Database, log: Log) -> None:
    built = await build_log(log)
    check = await run_checks(db, log, EventIndex(db, log), settings=Settings.load())
    size = await settle(log)
    report, data = await _report(db, log, {"kind": "release", "model": "model_a"})
    assert report.tree_size == size == data["log"]["tree_size"]
    assert report.scope == ReportScope("model", model="model_a")
    assert data["scope"] == {"kind": "model", "model": "model_a"}
    # rule results, with the recorded check cited
    rules = data["rules"]
    assert {r["status"] for r in rules["results"]} == {"pass", "not_applicable"}
    assert rules["recorded_check"]["leaf_index"] == check.leaf_index
    assert rules["statements"][0]["entries"] == [check.leaf_index]
    # Annex IV: nine numbered sections, "not recorded" where the log has nothing
    annex = data["annex_iv"]
    assert [s["number"] for s in annex] == list(range(1, 10))
    general = " ".join(st["text"] for st in annex[0]["statements"])
    assert "model_a was released from run run_aaaa" in general and "Not recorded on the log" in general
    assert built.at["release"] in annex[0]["statements"][0]["entries"]
    assert any("Not recorded on the log" in st["text"] for st in annex[7]["statements"])  # declaration
    # the operator's documentation events fill their points, cited; each gap names its point and topic
    texts = {st["text"].split(":")[0]: st for s in annex for st in s["statements"]}
    purpose = texts["1(a) Intended purpose, provider and version"]
    assert "helpful-assistant policy" in purpose["text"] and purpose["entries"] == [built.at["docs"] - 2]
    assert "operator role" in purpose["text"]
    assert texts["1(h) Instructions for use"]["entries"] == [built.at["docs"] - 1]
    assert texts["2(h) Cybersecurity measures"]["entries"] == [built.at["docs"]]
    validation = texts["2(g) Validation and testing procedures, metrics and reports"]
    assert validation["entries"] == [built.at["validation"]]
    assert "preference_accuracy 0.71" in validation["text"]
    for point, topic in (("1(b)-(g)", "system_description"), ("2(b)", "design_choices"),
                         ("2(c)", "architecture"), ("2(f)", "changes"), ("4", "metrics_rationale"),
                         ("5", "risk_management"), ("7", "standards"), ("8", "declaration_of_conformity"),
                         ("9", "post_market_monitoring")):
        (gap,) = [st for key, st in texts.items() if key.startswith(point + " ")]
        assert f"Not recorded on the log (no doc.recorded event with topic {topic})" in gap["text"], point
        assert gap["entries"] == []
    # the pack's obligations: article, legal text version and application date, with what covers them
    rows = {o["id"]: o for o in data["obligations"]["rows"]}
    assert rows["ai-act.art13"]["applies_from"] == "2027-12-02"
    assert "2026/1744" in rows["ai-act.art13"]["text_version"]
    assert rows["ai-act.art53"]["applies_from"] == "2025-08-02"
    assert rows["gdpr.art17"]["results"] == {"gdpr.art17.erasure": "not_applicable"}
    assert len(data["obligations"]["statements"]) == len(rows)
    development = " ".join(st["text"] for st in annex[1]["statements"])
    assert "method dpo" in development and "torch 2.13.0" in development and "base model" in development
    # Art. 12: completeness over the whole log, citing its first and last entries
    art12 = data["art12_log"]
    assert art12["statements"][0]["text"].startswith("Complete:")
    assert art12["statements"][0]["entries"] == [0, size - 1]
    assert art12["figures"]["tree_size"] == size and art12["figures"]["problems"] == []
    assert art12["figures"]["checkpoints"] >= 2 and art12["figures"]["consistency_proofs_verified"] >= 1
    # Art. 14: the approval and the release of model_a, with who, role, why and when; not run_bbbb's halt
    rows = data["art14_oversight"]["rows"]
    assert [(r["index"], r["action"]) for r in rows] == [(built.at["approve"], "approve_release"),
                                                          (built.at["release"], "release")]
    approval = rows[0]
    assert approval["who"] == BOB.pseudonym and approval["role"] == "overseer"
    assert approval["why"].startswith("approve_release: reviewed") and approval["at"].endswith("Z")
    assert approval["proof"] == f"/log/v1/proof/{built.at['approve']}"
    # Art. 10 datasheet, DP statement (ε, δ, unit, accountant) and retention
    (sheet,) = data["art10_datasheets"]
    assert sheet["dataset"] == "ds_helpful_prefs" and sheet["datasheet"]["guideline_version"] == "guide-v3"
    assert sheet["version"]["first_record"] == 6 and len(sheet["entries"]) == 2
    dp = data["dp_budget"]
    assert dp["unit"] == "preference pair" and [r["run"] for r in dp["runs"]] == ["run_aaaa"]
    run_a = dp["runs"][0]
    assert (run_a["epsilon"], run_a["delta"], run_a["accountant"]) == (2.9, 1e-5, "prv")
    texts = " ".join(st["text"] for st in dp["statements"])
    assert "ε = 2.9" in texts and "budget ε = 8" in texts and "5.9" in texts
    assert built.at["budget"] in _cited(dp["statements"])
    assert any(st["entries"] == [0] for st in data["retention"]["statements"])
    assert data["retention"]["retention_days"] == 3650
    # every statement links its entries to their proofs; everything cited is inside the tree
    cited = _cited(data)
    assert cited and max(cited) < size
    for st in annex[0]["statements"]:
        assert st["proofs"] == [f"/log/v1/proof/{i}" for i in st["entries"]]


async def test_run_report_has_the_halt_register_and_statistics(db: Database, log: Log) -> None:
    built = await build_log(log)
    _, data = await _report(db, log, {"run": "run_bbbb"})
    reg = data["art14_oversight"]
    assert [(r["index"], r["action"]) for r in reg["rows"]] == [(built.at["halt"], "halt"),
                                                                 (built.at["resume"], "resume")]
    halt, resume = reg["rows"]
    assert halt["who"] == ALICE.pseudonym and resume["who"] == BOB.pseudonym
    assert resume["halted_by"] == "dec_halt1"
    stats = reg["statistics"]
    assert stats["halts"] == 1 and stats["halts_unresolved"] == 0
    assert stats["resumes_by_another_overseer"] == 1
    assert stats["median_halt_seconds"] is not None and stats["median_halt_seconds"] >= 0
    assert stats["interventions"] == 1 and stats["by_action"] == {"halt": 1, "resume": 1}
    assert [r["run"] for r in data["dp_budget"]["runs"]] == ["run_bbbb"]


async def test_time_range_dataset_and_whole_log_scopes(db: Database, log: Log) -> None:
    built = await build_log(log)
    now = datetime.now(UTC)
    _, everything = await _report(db, log, None)
    assert everything["scope"] == {"kind": "all"}
    assert len(everything["art14_oversight"]["rows"]) == 4  # halt, resume, approval, release
    since, until = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    _, window = await _report(db, log, {"since": since, "until": until})
    assert window["scope"]["kind"] == "time"
    assert len(window["art14_oversight"]["rows"]) == 4
    _, past = await _report(db, log, {"kind": "range", "since": "2020-01-01T00:00:00Z",
                                  "until": "2020-02-01T00:00:00Z"})
    assert past["art14_oversight"]["rows"] == [] and past["art10_datasheets"] == []
    assert any("Not recorded" in st["text"] for st in past["art14_oversight"]["statements"])
    _, ds = await _report(db, log, {"kind": "dataset", "dataset": "ds_helpful_prefs", "version": 1})
    assert {r["run"] for r in ds["dp_budget"]["runs"]} == {"run_aaaa", "run_bbbb"}
    assert built.at["ds_v1"] in ds["art10_datasheets"][0]["entries"]


async def test_bad_scopes(db: Database, log: Log) -> None:
    await build_log(log)
    with pytest.raises(NotFound, match="model_nope"):
        await build_report(db, log, EventIndex(db, log), {"model": "model_nope"}, settings=Settings())
    with pytest.raises(NotFound, match="run_nope"):
        await build_report(db, log, EventIndex(db, log), {"kind": "run", "run": "run_nope"},
                           settings=Settings())
    for bad, words in [({"kind": "planet"}, "scope kind"), ({"kind": "run"}, "needs a non-empty 'run'"),
                       ({"since": "yesterday", "until": "2026-01-01T00:00:00Z"}, "RFC 3339"),
                       ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "earlier"),
                       ({"run": "x", "colour": "red"}, "unknown scope field"), ([1], "JSON object")]:
        with pytest.raises(ScopeError, match=words):
            ReportScope.parse(bad)


async def test_three_formats_and_the_report_generated_event(db: Database, log: Log) -> None:
    built = await build_log(log)
    await log.append([decision(ALICE, "halt", {"run": "run_aaaa"}, "dec_x",
                               justification="<script>alert(1)</script> reviewed the loss spike")])
    await settle(log)
    report, data = await _report(db, log, {"model": "model_a"})
    index = EventIndex(db, log)
    for fmt in ("json", "html", "pdf"):
        document = await render_report(log, report, fmt, BOB)
        (generated,) = await index.query(kind="report.generated", descending=True, limit=1)
        ev = generated.event
        assert ev["format"] == fmt and ev["tree_size"] == report.tree_size
        assert ev["sha256"] == "sha256:" + hashlib.sha256(document).hexdigest()
        assert ev["scope"] == {"kind": "model", "model": "model_a"} and ev["actor"] == BOB.pseudonym
    html = report.html_bytes().decode()
    assert html.startswith("<!doctype html>") and '<html lang="en">' in html
    for heading in ("Rule results", "Annex IV technical documentation", "Art. 12 record-keeping",
                    "Art. 14 human oversight register", "Art. 10 data governance",
                    "Differential-privacy budget", "Art. 19 retention attestation", "does not cover"):
        assert heading in html
    assert f'href="/log/v1/proof/{built.at["release"]}"' in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "run_aaaa" in html and "halt" in html  # the new halt is on model_a's run: in the register
    # the obligations table: article, application date, legal text, and the covering rules' results
    assert 'id="obligations"' in html and '<time datetime="2027-12-02">' in html
    assert "<code>rule:gdpr.art35.dpia</code> (pass)" in html and "Regulation (EU) 2026/1744" in html
    pdf = report.pdf_bytes()
    assert pdf.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for words in ("Annex IV technical documentation", "Art. 14 human oversight register", "epsilon = 2.9",
                  "Obligations, articles and application dates", "applies from 2025-08-02",
                  f"#{built.at['release']}", "Art. 19 retention attestation", data["log"]["origin"]):
        assert words in text, words
    assert orjson.loads(report.json_bytes()) == data
    assert report.json_bytes() == report.json_bytes()  # stable: sorted keys


async def test_report_shows_failing_rules(db: Database, log: Log) -> None:
    await build_log(log)
    (bad,) = await log.append([decision(ALICE, "halt", {"run": "run_aaaa"}, "dec_y",
                                        justification="spoke to bob@example.com about it")])
    await settle(log)
    _, data = await _report(db, log, {"model": "model_a"})
    results = {r["rule"]: r for r in data["rules"]["results"]}
    pd = results["gdpr.art5.no-personal-data"]
    assert pd["status"] == "fail" and pd["entries"] == [bad.leaf_index]
    assert pd["proofs"] == [f"/log/v1/proof/{bad.leaf_index}"]
    art14 = results["ai-act.art14.release-approval"]
    assert art14["status"] == "fail" and "never resumed" in art14["summary"]
    assert "failing: " in data["rules"]["statements"][0]["text"]

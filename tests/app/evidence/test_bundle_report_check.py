"""The ``report`` check: both verifiers recompute from the bundle's proven entries what report.json
states (each run's ε, δ and unit, the oversight register, approvals before release, dataset roots,
one tree size), so a report edited and re-signed with the operator's own evidence key fails."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.database import Database
from app.core.settings import Settings
from app.events.index import EventIndex
from app.events.recording import event
from app.evidence.builder import build_bundle, record_evidence_key
from app.evidence.scope import Scope
from app.evidence.verify import verify_bundle
from ledger._internal.local_tsa import LocalTSA
from ledger.log import Log
from tests.app.evidence.test_bundle_incidents import frozen_event
from tests.app.evidence.test_bundle_tamper import forge, rezip
from tests.support.evidence import OVERSEER, WORKER, Pins, members, pins, standalone, write_story

Files = dict[str, bytes]
Bundles = tuple[dict[str, bytes], Pins, Ed25519PrivateKey]


async def _resumed_run(log: Log) -> None:
    """run_r on ds_helpful: halted at step 100 (ε 0.5 so far), resumed as a second segment, completed
    at step 200 with the run's cumulative ε 0.9 (a sum over the segments would say 1.4)."""
    dp = {"enabled": True, "unit": "preference_pair", "accountant": "rdp", "delta": 1e-6}
    started = dict(run="run_r", config_sha256="sha256:" + "c" * 64, libraries={"trl": "1.16"},
                   code_version="abc123", dataset="ds_helpful", dataset_version=1, dataset_root="AAAA", dp=dp)

    def privacy(step: int, eps: float) -> dict[str, Any]:
        return event("run.privacy", WORKER, run="run_r", step=step, epsilon=eps, delta=1e-6, accountant="rdp")

    await log.append([event("run.started", WORKER, **started), privacy(50, 0.3), privacy(100, 0.5),
                      event("oversight.decision", OVERSEER, action="halt", target={"run": "run_r"},
                            justification="drift", decision_id="dec_r1"),
                      event("run.halted", WORKER, run="run_r", step=100)])
    await log.integrate()
    await log.append([event("oversight.decision", OVERSEER, action="resume", target={"run": "run_r"},
                            justification="fixed", decision_id="dec_r2", halted_by="dec_r1"),
                      event("run.started", WORKER, **started, segment=2, resumed_from={"step": 100}),
                      privacy(150, 0.7),
                      event("run.completed", WORKER, run="run_r", model="model_r", steps=200, epsilon=0.9,
                            files={"model.safetensors": "sha256:" + "d" * 64}, root="DDDD")])
    await log.integrate()
    await log.timestamp_pending(force=True)


@pytest.fixture
async def bundles(db: Database, log: Log, local_tsa: LocalTSA, tmp_path: Path) -> Bundles:
    key = Ed25519PrivateKey.generate()
    await record_evidence_key(log, EventIndex(db, log), key)
    await write_story(log)
    await _resumed_run(log)
    await log.append([frozen_event("inc_1", {"kind": "run", "run": "run_a"})])
    await log.integrate()
    await log.timestamp_pending(force=True)
    out = {}
    for scope in (Scope("run", run="run_a"), Scope("run", run="run_r"), Scope("model", model="model_a"),
                  Scope("dataset", dataset="ds_helpful", version=1)):
        built = await build_bundle(db, log, scope, evidence_key=key, record_event=False,
                                   settings=Settings.load())
        out[scope.label()] = built.data
    return out, pins(tmp_path, log, local_tsa, key), key


def _check(report: Any, name: str) -> str:
    return {c.name: c.detail for c in report.checks}.get(name, f"no {name} check")


async def test_honest_reports_recompute(bundles: Bundles, tmp_path: Path) -> None:
    """Including a halted-and-resumed run: its ε is run.completed's, not a sum over the segments."""
    data, p, _ = bundles
    for label, bundle in data.items():
        report = verify_bundle(bundle, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
        assert report.ok, (label, report.text())
        assert "recomputed from the entries" in _check(report, "report"), label
        proc = standalone(tmp_path, bundle, *p.files)
        assert proc.returncode == 0, (label, proc.stdout, proc.stderr)
        assert "OK    report" in proc.stdout
    runs = json.loads(members(data["run-run_r"])["report.json"])["dp_budget"]["runs"]
    assert [(r["run"], r["epsilon"], len(r["segments"])) for r in runs] == [("run_r", 0.9, 2)]


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Files], None]:
    def apply(files: Files) -> None:
        report = json.loads(files["report.json"])
        change(report)
        files["report.json"] = json.dumps(report, indent=2, sort_keys=True).encode() + b"\n"
    return apply


def _runs(r: dict[str, Any]) -> dict[str, Any]:
    return {run["run"]: run for run in r["dp_budget"]["runs"]}


def _rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    return r["art14_oversight"]["rows"]


def _drop_halt(r: dict[str, Any]) -> None:
    r["art14_oversight"]["rows"] = [row for row in _rows(r) if row["action"] != "halt"]


def _halt(r: dict[str, Any]) -> dict[str, Any]:
    return next(row for row in _rows(r) if row["action"] == "halt")


def _release(r: dict[str, Any]) -> dict[str, Any]:
    return next(row for row in _rows(r) if row["action"] == "release")


def _art12(r: dict[str, Any]) -> None:
    s = r["art12_log"]["statements"][0]
    s["text"] = s["text"].replace(f"(tree size {r['log']['tree_size']})", "(tree size 85)")


# (bundle, what is edited, the edit, the field the failure names)
CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("run-run_r", "ε summed over segments", lambda r: _runs(r)["run_r"].update(epsilon=1.4),
     "dp_budget.runs[run_r].epsilon"),
    ("run-run_a", "ε", lambda r: _runs(r)["run_a"].update(epsilon=1.0), "dp_budget.runs[run_a].epsilon"),
    ("run-run_a", "δ", lambda r: _runs(r)["run_a"].update(delta=1e-9), "dp_budget.runs[run_a].delta"),
    ("run-run_a", "unit", lambda r: _runs(r)["run_a"].update(unit="example"), "dp_budget.runs[run_a].unit"),
    ("run-run_a", "run left out", lambda r: r["dp_budget"].update(runs=[]), "dp_budget.runs leaves out"),
    ("run-run_a", "decision dropped", _drop_halt, "art14_oversight.rows leaves out"),
    ("run-run_r", "decision's actor", lambda r: _halt(r).update(who="pseud:" + "f" * 32), ".who"),
    ("run-run_r", "decision's action", lambda r: _halt(r).update(action="resume"), ".action"),
    ("model-model_a", "release's approval", lambda r: _release(r).update(decision_id="dec_1"),
     ".decision_id"),
    ("run-run_a", "decision count", lambda r: r["art14_oversight"]["statistics"].update(decisions=1),
     "art14_oversight.statistics.decisions"),
    ("dataset-ds_helpful-v1", "dataset root",
     lambda r: r["art10_datasheets"][0]["version"].update(root="ZZZZ"), "version.root"),
    ("run-run_a", "tree size", lambda r: r["log"].update(tree_size=85), "log.tree_size"),
    ("run-run_a", "tree size in prose", _art12, "art12_log.statements[0].text"),
    ("run-run_a", "checkpoint root", lambda r: r["log"].update(root="00" * 32), "log.root"),
    ("run-run_a", "incident", lambda r: r["art73_incidents"]["incidents"][0].update(incident="inc_9"),
     "].incident"),
    ("run-run_a", "malformed register", lambda r: r["art14_oversight"].update(rows=[1]),
     "art14_oversight.rows is not an object"),
]


async def test_an_edited_report_resigned_with_the_evidence_key_fails(bundles: Bundles,
                                                                    tmp_path: Path) -> None:
    data, p, key = bundles
    for label, what, change, field in CASES:
        files = members(data[label])
        _edit(change)(files)
        forged = rezip(forge(files, key))  # the operator's own key: the attestation still verifies
        report = verify_bundle(forged, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
        assert report.failed == ["report"], (what, report.text())
        assert field in _check(report, "report"), (what, report.text())
        proc = standalone(tmp_path, forged, *p.files)
        assert proc.returncode == 1, (what, proc.stdout, proc.stderr)
        line = next(x for x in proc.stdout.splitlines() if x.startswith("FAIL  report"))
        assert field in line, (what, proc.stdout)


async def test_a_release_without_the_approval_it_names_fails(db: Database, log: Log, local_tsa: LocalTSA,
                                                             tmp_path: Path) -> None:
    """Approvals before release: the approval a release names precedes it, and no veto withdrew it."""
    key = Ed25519PrivateKey.generate()
    await record_evidence_key(log, EventIndex(db, log), key)
    await write_story(log)
    await log.append([
        event("oversight.decision", OVERSEER, action="veto_release", target={"model": "model_a"},
              justification="bias found", decision_id="dec_v"),
        event("model.released", OVERSEER, model="model_a", run="run_a", approval="dec_3", root="BBBB")])
    await log.integrate()
    await log.timestamp_pending(force=True)
    built = await build_bundle(db, log, Scope("model", model="model_a"), evidence_key=key, record_event=False,
                               settings=Settings.load())
    p = pins(tmp_path, log, local_tsa, key)
    report = verify_bundle(built.data, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
    assert report.failed == ["report"], report.text()
    assert "was withdrawn by veto_release" in _check(report, "report")
    proc = standalone(tmp_path, built.data, *p.files)
    assert proc.returncode == 1 and "withdrawn by veto_release" in proc.stdout, proc.stdout

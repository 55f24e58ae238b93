"""Art. 73: a run, model or dataset scope holds the ``incident.frozen`` entries whose frozen scope
touches it (its runs, the models they made, the dataset versions they used), each with its proof,
whether or not the report cites them."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.database import Database
from app.core.settings import Settings
from app.events.index import EventIndex
from app.events.recording import event
from app.evidence.builder import build_bundle, record_evidence_key
from app.evidence.scope import Scope, select
from app.evidence.verify import verify_bundle
from ledger._internal.local_tsa import LocalTSA
from ledger.log import Log
from tests.support.evidence import OVERSEER, members, pins, standalone, write_story


def frozen_event(incident: str, scope: dict[str, object]) -> dict[str, object]:
    return event("incident.frozen", OVERSEER, incident=incident, reason="harmful output reported",
                 scope=scope, object_key=f"incidents/{incident}/bundle.zip", sha256="sha256:" + "e" * 64,
                 entries=3, tree_size=10, held=0, held_root=None, missing=0, changed=0)


async def test_scopes_hold_the_incidents_that_touch_them(db: Database, log: Log, local_tsa: LocalTSA,
                                                         tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    index = EventIndex(db, log)
    await record_evidence_key(log, index, key)
    await write_story(log)
    appended = await log.append([
        frozen_event("inc_run_a", {"kind": "run", "run": "run_a"}),
        frozen_event("inc_model_a", {"kind": "model", "model": "model_a"}),
        frozen_event("inc_ds_helpful", {"kind": "dataset", "dataset": "ds_helpful", "version": 1}),
        frozen_event("inc_run_b", {"kind": "run", "run": "run_b"}),
        frozen_event("inc_time", {"kind": "time", "since": "2020-01-01T00:00:00Z",
                             "until": "2020-01-02T00:00:00Z"})])
    await log.integrate()
    await log.timestamp_pending(force=True)
    at = {name: s.leaf_index for name, s in
          zip(("run_a", "model_a", "ds_helpful", "run_b", "time"), appended, strict=True)}
    expect = {
        Scope("run", run="run_a"): {"run_a", "model_a", "ds_helpful"},
        Scope("model", model="model_a"): {"run_a", "model_a", "ds_helpful"},
        Scope("dataset", dataset="ds_helpful", version=1): {"ds_helpful"},
        Scope("dataset", dataset="ds_helpful"): {"ds_helpful"},
        Scope("run", run="run_b"): {"run_b"},
        Scope("dataset", dataset="ds_other"): set(),
    }
    size = (await log.latest_checkpoint()).size  # type: ignore[union-attr]
    p = pins(tmp_path, log, local_tsa, key)
    for scope, names in expect.items():
        selected = set(await select(log, scope, size, index)) & set(at.values())
        assert selected == {at[n] for n in names}, scope
    for scope in (Scope("run", run="run_a"), Scope("dataset", dataset="ds_helpful", version=1)):
        built = await build_bundle(db, log, scope, evidence_key=key, record_event=False,
                                   settings=Settings.load())
        files = members(built.data)
        for name in expect[scope]:
            assert f"entries/{at[name]}.json" in files and f"proofs/{at[name]}.tlog-proof" in files
        report = verify_bundle(built.data, log_key=p.log_vkey, tsa_roots=[p.tsa_root],
                               evidence_key=p.evidence)
        assert report.ok, report.text()
        assert standalone(tmp_path, built.data, *p.files).returncode == 0

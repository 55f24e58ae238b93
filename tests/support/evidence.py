"""A small but realistic log for evidence bundles, the auditor's pinned keys, and the bundle's own
verifier run alone."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.events.recording import Actor, event
from app.evidence.dsse import public_key_pem
from ledger._internal.local_tsa import LocalTSA
from ledger.log import Log
from tests.support.paths import ROOT

STANDALONE = ROOT / "app" / "evidence" / "standalone_verify.py"
OVERSEER = Actor("pseud:" + "a1" * 16, "overseer")
OPERATOR = Actor("pseud:" + "b2" * 16, "operator")
WORKER = Actor("worker", "system")


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _commitment(text: str) -> str:
    return "sha256:" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@dataclass
class Story:
    """A small but realistic log: who appended what, by name, with leaf indices."""

    at: dict[str, list[int]] = field(default_factory=dict)

    def of(self, *names: str) -> set[int]:
        return {i for n in names for i in self.at[n]}


async def _add(log: Log, story: Story, name: str, events: list[dict[str, Any]]) -> None:
    story.at[name] = [s.leaf_index for s in await log.append(events)]
    await log.integrate()  # several checkpoints: the bundle must pick the one covering its scope


def _dataset(ds: str, version: int, records: int) -> dict[str, list[dict[str, Any]]]:
    recs = [event("dataset.record", OPERATOR, dataset=ds, dataset_version=version, i=i,
                  commitment=_commitment(f"{ds}/{version}/{i}"), annotator="pseud:" + f"{i:032x}")
            for i in range(records)]
    return {
        f"{ds}.records": recs,
        f"{ds}.version": [event("dataset.version", OPERATOR, dataset=ds, dataset_version=version,
                                records=records, annotators=records, root="AAAA",
                                source_sha256=_sha(ds))],
        f"{ds}.datasheet": [event("dataset.datasheet", OPERATOR, dataset=ds, dataset_version=version,
                                  datasheet={"origin": "vendor", "collection_process": "pairwise",
                                             "purpose": "helpfulness", "annotator_count": records})],
        f"{ds}.budget": [event("dataset.budget_set", OPERATOR, dataset=ds, epsilon_total=8.0, delta=1e-6)],
    }


def _run(run: str, ds: str, model: str | None) -> list[dict[str, Any]]:
    events = [
        event("job.submitted", OPERATOR, run=run, job_kind="dpo", spec_sha256=_sha(run), spec={"lr": 1e-5},
              dataset=ds, dataset_version=1, planned_epsilon=3.0),
        event("run.started", WORKER, run=run, config_sha256=_sha(run + "cfg"), libraries={"trl": "1.16"},
              code_version="abc123", dataset=ds, dataset_version=1, dataset_root="AAAA",
              dp={"enabled": True, "unit": "preference_pair", "accountant": "rdp"}),
        *[event("run.metrics", WORKER, run=run, steps=[{"step": s, "loss": 1.0 / (s + 1)}])
          for s in range(3)],
        event("run.privacy", WORKER, run=run, step=3, epsilon=2.5, delta=1e-6, accountant="rdp"),
    ]
    if model:
        events.append(event("run.completed", WORKER, run=run, model=model, steps=3, epsilon=2.5,
                            files={"model.safetensors": _sha(model)}, root="BBBB"))
    return events


async def write_story(log: Log) -> Story:
    """Two datasets, two runs (one halted and resumed), a released model, unrelated noise."""
    story = Story()
    for ds, n in (("ds_helpful", 5), ("ds_other", 3)):
        for name, events in _dataset(ds, 1, n).items():
            await _add(log, story, name, events)
    await _add(log, story, "run_a", _run("run_a", "ds_helpful", "model_a"))
    await _add(log, story, "run_b", _run("run_b", "ds_other", None))
    await _add(log, story, "halt_a", [
        event("oversight.decision", OVERSEER, action="halt", target={"run": "run_a"},
              justification="loss spike", decision_id="dec_1"),
        event("oversight.decision", OVERSEER, action="halt", target={"run": "run_b"},
              justification="other run", decision_id="dec_2")])
    story.at["halt_b"] = [story.at["halt_a"].pop()]
    await _add(log, story, "approve_a", [
        event("oversight.decision", OVERSEER, action="approve_release", target={"model": "model_a"},
              justification="evaluations pass", decision_id="dec_3")])
    await _add(log, story, "release_a", [
        event("model.released", OVERSEER, model="model_a", run="run_a", approval="dec_3", root="BBBB")])
    await _add(log, story, "noise", [event("config.changed", OPERATOR, key="interval", to="0.5")])
    await log.timestamp_pending(force=True)
    return story


def members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        return {n: z.read(n) for n in z.namelist()}


# Importable in this venv (the project is installed editable) but off limits to verify.py.
_BLOCKED = ("ledger", "app", "trainers", "rfc3161_client", "asn1crypto", "nacl", "orjson")
_RUN_ALONE = ("import runpy, sys\n"
              f"for name in {_BLOCKED!r}:\n"
              "    sys.modules[name] = None  # any import of it now raises ImportError\n"
              "sys.argv = sys.argv[1:]\n"
              "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def standalone(tmp: Path, bundle: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    """The bundle's own verify.py, run alone: isolated mode (-I), a copy outside the repository, and
    our packages and the ledger's crypto libraries made unimportable, so only the standard library
    and `cryptography` are there for it."""
    work = tmp / "standalone"
    work.mkdir(exist_ok=True)
    (work / "bundle.zip").write_bytes(bundle)
    (work / "verify.py").write_bytes(STANDALONE.read_bytes())  # what every bundle ships (asserted below)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(work)
    return subprocess.run([sys.executable, "-I", "-c", _RUN_ALONE, str(work / "verify.py"),
                           str(work / "bundle.zip"), *args],
                          cwd=work, env=env, capture_output=True, text=True, timeout=60)


@dataclass
class Pins:
    """Keys an auditor got out of band, as the verifiers take them."""

    log_vkey: str
    tsa_root: bytes
    evidence: bytes
    files: list[str]


def pins(tmp: Path, log: Log, local_tsa: LocalTSA, key: Ed25519PrivateKey) -> Pins:
    from cryptography.hazmat.primitives import serialization

    root = local_tsa.root_certificate.public_bytes(serialization.Encoding.PEM)
    (tmp / "root.pem").write_bytes(root)
    (tmp / "evidence.pem").write_bytes(public_key_pem(key.public_key()))
    vkey = log.signer.verifier.vkey
    return Pins(vkey, root, public_key_pem(key.public_key()),
                ["--log-key", vkey, "--tsa-root", str(tmp / "root.pem"),
                 "--evidence-key", str(tmp / "evidence.pem")])

"""The audit callback in someone else's TRL script, its sinks, the directory hashes and the spec."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.paths import ROOT


class Collector:
    """A real HTTP server on 127.0.0.1 standing in for a remote audit server's events endpoint."""

    def __init__(self, status: int = 201) -> None:
        self.status, self.requests = status, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, self.headers["Authorization"], json.loads(body)))
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"detail": "the API token is invalid"}' if outer.status >= 300 else b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [e for _, _, body in self.requests for e in body["events"]]


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.server.shutdown()


def _reward_trainer(model: Path, pairs, out: Path, **extra):  # noqa: F811
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    data = Dataset.from_list([{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
                              for p in pairs])
    args = RewardConfig(output_dir=str(out), per_device_train_batch_size=8, max_steps=3, logging_steps=1,
                        save_strategy="steps", save_steps=2, report_to=[], bf16=False, use_cpu=True,
                        activation_checkpointing=False, disable_tqdm=True, **extra)
    return RewardTrainer(model=str(model), args=args, train_dataset=data)


def test_one_line_in_an_existing_trl_script(collector, monkeypatch, tiny_model, pairs, tmp_path):  # noqa: F811
    from trainers.callback import AuditCallback
    from trainers.hashing import hash_directory

    monkeypatch.setenv("RLHF_AUDIT_URL", collector.url)
    monkeypatch.setenv("RLHF_AUDIT_TOKEN", "rat_test")
    trainer = _reward_trainer(tiny_model, pairs, tmp_path / "out")
    audit = AuditCallback.from_env(run="run_script")
    trainer.add_callback(audit)  # the one line
    trainer.train()

    paths = {(path, auth) for path, auth, _ in collector.requests}
    assert paths == {("/api/v1/events", "Bearer rat_test")}
    events = collector.events()
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run.started" and kinds[-1] == "run.completed"
    assert all(e["run"] == "run_script" and e["actor"] == "worker" for e in events)
    assert events[0]["base_model"]["root"] == hash_directory(tiny_model)[1]
    assert "training_args" not in events[0] and events[0]["config_sha256"].startswith("sha256:")
    assert sorted({s["step"] for e in events if e["kind"] == "run.metrics" for s in e["steps"]}) == [1, 2, 3]
    checkpoints = [e for e in events if e["kind"] == "run.checkpoint"]
    assert [c["step"] for c in checkpoints] == [2, 3]
    # without train(), the run's end names the last checkpoint: the final weights
    last = hash_directory(tmp_path / "out" / "checkpoint-3")[1]
    assert events[-1]["root"] == checkpoints[-1]["root"] == last


def test_a_failing_sink_stops_training_with_a_clear_error(tiny_model, pairs, tmp_path):  # noqa: F811
    from trainers.callback import AuditCallback
    from trainers.sinks import AuditSinkError, HttpSink

    refusing = Collector(status=401)
    try:
        trainer = _reward_trainer(tiny_model, pairs, tmp_path / "out")
        audit = AuditCallback(HttpSink(refusing.url, "rat_bad"), run="run_refused", metrics_every=1)
        trainer.add_callback(audit)
        with pytest.raises(AuditSinkError, match="answered 401.*invalid") as failure, audit.guard():
            trainer.train()
        assert "run.failed could not be recorded" in "".join(getattr(failure.value, "__notes__", []))
        assert trainer.state.global_step == 0  # refused at run.started: no step was spent unaudited
    finally:
        refusing.server.shutdown()


async def test_log_sink_refuses_to_flush_on_its_own_loop(log):
    from trainers.callback import worker_envelope
    from trainers.sinks import AuditSinkError, LogSink

    def event(kind, **fields):
        return worker_envelope(kind, fields)

    sink = LogSink(log, asyncio.get_running_loop())
    with pytest.raises(AuditSinkError, match="asyncio.to_thread"):
        sink.flush()
    sink.emit([event("run.metrics", run="run_x", steps=[{"step": 1}])])
    await asyncio.to_thread(sink.flush)
    assert sink.sent == 1 and await log.sequenced_size() == 1
    too_big = event("run.metrics", run="run_x", steps=[{"step": 1, "x": "y" * 70000}])
    sink.emit([too_big])
    with pytest.raises(AuditSinkError, match="EntryError"):
        await asyncio.to_thread(sink.flush)
    with pytest.raises(AuditSinkError):
        sink.emit([event("run.metrics", run="run_x", steps=[])])


def test_the_worker_envelope_is_the_apps(monkeypatch):
    """A script's callback (no app) records the very envelope the app's worker records."""
    from app.events import recording
    from app.worker.runtime import WORKER, envelope
    from trainers import callback

    fields = {"run": "run_x", "step": 3, "files": None, "root": "sha256:" + "ab" * 32}
    ours = callback.worker_envelope("run.checkpoint", fields)
    monkeypatch.setattr(recording, "utc_now", lambda: ours["at"])
    apps = recording.event("run.checkpoint", WORKER, **fields)
    assert list(ours.items()) == list(apps.items()) == list(envelope("run.checkpoint", fields).items())
    assert "files" not in ours and ours["actor"] == "worker" and ours["role"] == "service"


@pytest.mark.parametrize("module", sorted(p.stem for p in (ROOT / "trainers").glob("[!_]*.py")))
def test_trainers_import_nothing_from_app(module):
    """``trainers`` is a leaf: importing any of its modules loads no ``app`` module."""
    code = (f"import sys, trainers.{module}; "
            "loaded = sorted(m for m in sys.modules if m == 'app' or m.startswith('app.')); "
            "assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_from_env_needs_url_and_token(monkeypatch):
    from trainers.callback import AuditCallback

    monkeypatch.delenv("RLHF_AUDIT_URL", raising=False)
    monkeypatch.setenv("RLHF_AUDIT_TOKEN", "rat_x")
    with pytest.raises(ValueError, match="RLHF_AUDIT_URL"):
        AuditCallback.from_env(run="run_x")


def test_directory_hashes_and_root(tmp_path):
    from ledger.merkle import leaf_hash, root_of
    from trainers.hashing import hash_directory

    (tmp_path / "sub").mkdir()
    (tmp_path / "b.bin").write_bytes(b"bee")
    (tmp_path / "sub" / "a.txt").write_bytes(b"ay")
    files, root = hash_directory(tmp_path)
    assert list(files) == ["b.bin", "sub/a.txt"]
    assert files["b.bin"] == "sha256:" + hashlib.sha256(b"bee").hexdigest()
    leaves = [leaf_hash(p.encode() + b"\0" + hashlib.sha256(c).digest()) for p, c in
              [("b.bin", b"bee"), ("sub/a.txt", b"ay")]]
    assert root == "sha256:" + root_of(leaves).hex()
    (tmp_path / "sub" / "a.txt").rename(tmp_path / "sub" / "c.txt")  # same bytes, other name
    assert hash_directory(tmp_path)[1] != root
    with pytest.raises(FileNotFoundError):
        hash_directory(tmp_path / "missing")


def test_spec_validation_and_planned_epsilon():
    from trainers.spec import JobSpecError, TrainingSpec, epsilon_after

    base = {"kind": "dpo", "base_model": "/models/m", "dataset": "ds_a", "learning_rate": 1e-4}
    spec = TrainingSpec.from_dict(base)
    assert TrainingSpec.from_dict(spec.to_dict()) == spec and spec.planned_epsilon(100) is None
    for bad, message in [({"kind": "ppo"}, "kind must be one of"),
                         ({"learning_rate": "fast"}, "learning_rate"),
                         ({"epochs": 0}, "epochs must be at least 1"), ({"colour": 1}, "unknown spec field"),
                         ({"dp": {"delta": 0.1}}, "exactly one of"),
                         ({"dp": {"noise_multiplier": 1, "accountant": "gdp2"}}, "dp.accountant"),
                         ({"dp": {"target_epsilon": -1}}, "target_epsilon must be greater than 0")]:
        with pytest.raises(JobSpecError, match=message):
            TrainingSpec.from_dict({**base, **bad})
    assert TrainingSpec.from_dict({**base, "dp": {"target_epsilon": 3}}).planned_epsilon(10) == 3.0
    sigma = TrainingSpec.from_dict({**base, "batch_size": 8, "dp": {"noise_multiplier": 1.0}})
    planned = sigma.planned_epsilon(64)  # 8 steps at q = 1/8
    assert planned == pytest.approx(epsilon_after(1.0, 0.125, 8, 1e-5)) and 2.5 < planned < 4
    assert epsilon_after(1.0, 0.125, 0, 1e-5) == 0.0


def test_spec_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, trainers.spec, trainers.hashing, trainers.sinks; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

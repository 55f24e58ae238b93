"""``rlhf-audit demo`` through the real console script on a fresh home: the log it leaves behind
holds the whole story, ``rlhf-audit verify`` accepts it, and a second run on the same home reuses
the model, dataset and accounts while its jobs go through ARQ on the real Redis.

Slow for a test (two tiny training runs per demo run), so both paths share one home.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from ledger.home import LogHome
from tests.support.paths import ROOT

REDIS_URL = "redis://127.0.0.1:6379"
CLI = [sys.executable, "-m", "app.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    return {**env, "RLHF_AUDIT_KEYS_DIR": str(tmp_path / "keys"), **extra}


def _cli(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--home", str(tmp_path / "home"), *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)


def _runs(out: str) -> dict[str, str]:
    """kind -> run id, from the demo's ``run:`` lines (each must say completed)."""
    found = dict(re.findall(r"^run: +(reward_model|dpo) (run_[0-9A-Z]{26}) completed", out, re.M))
    assert set(found) == {"reward_model", "dpo"}, out
    return found


def _events(home: Path) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        log = await LogHome.resolve(str(home)).open_log()
        try:
            size = (await log.tree_head()).size
            return [{**json.loads(await log.entry(i)), "_i": i} for i in range(size)]
        finally:
            await log.close()

    return asyncio.run(read())


def _check_run(events: list[dict[str, Any]], run: str) -> dict[str, Any]:
    mine = [e for e in events if e.get("run") == run]
    kinds = [e["kind"] for e in mine]
    assert kinds[0] == "job.submitted" and "run.started" in kinds, kinds
    assert [e for e in mine if e["kind"] == "run.checkpoint"], f"{run} stored no checkpoint: {kinds}"
    [done] = [e for e in mine if e["kind"] == "run.completed"]
    assert done["epsilon"] > 0  # both demo runs train under DP
    return done


def test_demo_fills_a_home_the_log_proves_and_reruns(tmp_path: Path) -> None:
    env = _env(tmp_path)
    first = _cli(tmp_path, "demo", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    runs = _runs(out)
    passwords = re.findall(r"^  demo-(?:admin|operator|overseer-\d|auditor) +\w+ +(\S+)$", out, re.M)
    assert len(passwords) == 5 and len(set(passwords)) == 5, out  # random, shown once
    assert "TOTP is not enrolled" in out and f"--home {tmp_path / 'home'} serve" in out

    events = _events(tmp_path / "home")
    [version] = [e for e in events if e["kind"] == "dataset.version"]
    assert (version["dataset"], version["dataset_version"]) == ("ds_demo-preferences", 1)
    assert version["records"] == 48
    assert version["annotators"] > 1
    assert any(e["kind"] == "dataset.datasheet" for e in events)
    assert any(e["kind"] == "dataset.budget_set" for e in events)
    assert not any("@" in json.dumps(e) for e in events)  # annotators' e-mail identities stay off the log
    reward = _check_run(events, runs["reward_model"])
    _check_run(events, runs["dpo"])
    [approval] = [e for e in events if e["kind"] == "oversight.decision"]
    assert approval["action"] == "approve_release" and approval["target"]["model"] == reward["model"]
    assert approval["actor"].startswith("pseud:")
    [release] = [e for e in events if e["kind"] == "model.released"]
    assert release["model"] == reward["model"] and release["approval"] == approval["decision_id"]
    [check] = [e for e in events if e["kind"] == "compliance.checked"]
    assert check["_i"] > release["_i"]
    failed = [r for r in check["results"] if r["status"] == "fail"]
    assert not failed, failed

    verified = _cli(tmp_path, "verify", env=env)
    assert verified.returncode == 0 and "OK: the log is intact" in verified.stdout, verified.stdout

    # again, on the same home, with the jobs on ARQ (an in-process worker over the real Redis)
    queue = "rlhf-audit:test-demo:" + secrets.token_hex(4)
    again = _cli(tmp_path, "demo", env={**env, "RLHF_AUDIT_REDIS_URL": REDIS_URL, "RLHF_AUDIT_QUEUE": queue})
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reusing the tiny model" in again.stdout and "(imported before)" in again.stdout
    assert again.stdout.count("(unchanged: created by an earlier demo run)") == 5
    assert "queued (ARQ on Redis)" in again.stdout
    second = _runs(again.stdout)
    assert set(second.values()).isdisjoint(runs.values())
    events = _events(tmp_path / "home")
    assert len([e for e in events if e["kind"] == "dataset.version"]) == 1
    assert len([e for e in events if e["kind"] == "account.created"]) == 5
    for run in second.values():
        _check_run(events, run)
    assert len([e for e in events if e["kind"] == "model.released"]) == 2
    verified = _cli(tmp_path, "verify", env=env)
    assert verified.returncode == 0, verified.stdout

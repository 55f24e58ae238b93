"""Several processes on one PostgreSQL database, and a SIGKILL in the middle of a batch."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.database import Database
from ledger._internal.store import Store
from ledger.audit import audit_log
from ledger.log import Log
from ledger.merkle import leaf_hash
from ledger.note import Signer
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow


def spawn(url: str, key_file: Path, worker: int, batches: int, size: int,
          integrate: bool = True) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.support.appender", url, str(key_file), str(worker),
            str(batches), str(size)] + (["--integrate"] if integrate else [])
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


async def test_four_processes_append_and_integrate_one_tree(pg_url: str, tmp_path: Path) -> None:
    signer = Signer.generate("concurrency.example/log")
    key_file = tmp_path / "log.key"
    key_file.write_text(signer.skey)
    store = Store(pg_url)
    await Database(store.engine).migrate()
    procs = [spawn(pg_url, key_file, w, batches=25, size=40) for w in range(4)]
    acked: dict[int, bytes] = {}
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        for line in out.splitlines():
            row = json.loads(line)
            for i, h in enumerate(row["hashes"]):
                assert row["first"] + i not in acked, "an index was handed out twice"
                acked[row["first"] + i] = base64.b64decode(h)
    assert sorted(acked) == list(range(4 * 25 * 40)), "indices are not gap-free"
    log = Log(store, signer)
    await log.integrate()
    for index, h in acked.items():
        assert leaf_hash(await log.entry(index)) == h
    # Every checkpoint any process published lies on one tree: the audit checks the roots of
    # all of them against the entries and the consistency proofs between consecutive ones.
    report = await audit_log(log)
    assert report.ok, report.problems
    assert report.checkpoints_checked > 4
    await log.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_sigkill_mid_batch_loses_no_acknowledged_entry(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    signer = Signer.generate("crash.example/log")
    key_file = tmp_path / "log.key"
    key_file.write_text(signer.skey)
    store = Store(url)
    await Database(store.engine).migrate()
    log = Log(store, signer)
    proc = spawn(url, key_file, 0, batches=100_000, size=500)
    acked: dict[int, bytes] = {}
    assert proc.stdout is not None
    # Let it append and integrate for a while, then kill it without warning.
    deadline = time.monotonic() + 60
    while len(acked) < 6000 and time.monotonic() < deadline:
        row = json.loads(proc.stdout.readline())
        acked.update({row["first"] + i: base64.b64decode(h) for i, h in enumerate(row["hashes"])})
    before_kill = await log.latest_checkpoint()
    time.sleep(0.05)  # mid-batch: it is always inside an append or an integration
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for line in proc.stdout.read().splitlines():  # acknowledgements written before the kill
        try:
            with_hashes = json.loads(line)
        except json.JSONDecodeError:  # the line the kill cut short was never acknowledged
            continue
        acked.update({with_hashes["first"] + i: base64.b64decode(h)
                      for i, h in enumerate(with_hashes["hashes"])})
    assert before_kill is not None and len(acked) >= 6000
    last_published = await log.latest_checkpoint()
    assert last_published is not None
    sequenced = await store.sequenced_size()
    assert sequenced >= max(acked) + 1
    for index, h in acked.items():
        assert leaf_hash(await log.entry(index)) == h, f"acknowledged entry {index} was lost"
    # The killed process may have integrated everything itself just before dying.
    after = await log.integrate() or await log.latest_checkpoint()
    assert after is not None and after.size == sequenced
    proof = await log.consistency_proof(last_published.size, after.size)
    proof.verify(last_published.checkpoint.root_hash, after.checkpoint.root_hash)
    report = await audit_log(log)
    assert report.ok, report.problems
    await log.close()

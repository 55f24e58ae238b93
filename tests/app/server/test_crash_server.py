"""``kill -9`` of the real server (``rlhf-audit serve``) while clients append over HTTP, a few
times on each back end: every acknowledged entry (a 201 naming its index) is there after the
restart, and the checkpoint a client held before the kill is consistent with the next one.

tests/ledger/test_concurrency.py kills an appending process that uses the ledger directly; this kills
the server between the clients and the database, mid-request.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import httpx
import pytest

from ledger.checkpoint import Checkpoint
from ledger.merkle import leaf_hash, verify_consistency
from ledger.note import Verifier, open_note
from tests.support.server_process import Server, clean_env, cli

pytestmark = pytest.mark.slow
KILLS = 3
CLIENTS = 4
BATCH = 20


class Appenders:
    """``CLIENTS`` threads appending batches until the server goes away; ``acked`` holds the
    leaf hash of every entry a 201 acknowledged, by index."""

    def __init__(self, base: str, token: str, acked: dict[int, bytes], round_: int) -> None:
        self.acked, self.lock = acked, threading.Lock()
        self.count = 0
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(base, token, round_, c), daemon=True)
                        for c in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def _run(self, base: str, token: str, round_: int, client_no: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for b in range(1_000_000):
                events = [{"kind": "crash.test", "round": round_, "client": client_no, "batch": b, "i": i}
                          for i in range(BATCH)]
                try:
                    r = client.post("/api/v1/events", json={"events": events})
                except httpx.TransportError:
                    return  # killed: this request was never acknowledged
                if r.status_code != 201:
                    self.errors.append(f"{r.status_code} {r.text[:300]}")
                    return
                with self.lock:
                    for e in r.json()["entries"]:
                        assert e["leaf_index"] not in self.acked, "an index was acknowledged twice"
                        self.acked[e["leaf_index"]] = base64.b64decode(e["leaf_hash"])
                    self.count += len(events)

    def wait_for(self, entries: int) -> None:
        """Until this round has ``entries`` more acknowledged (no clock: counted)."""
        while True:
            with self.lock:
                if self.count >= entries or self.errors:
                    break
            if not any(t.is_alive() for t in self.threads):
                break
            threading.Event().wait(0.02)
        assert not self.errors, self.errors

    def join(self) -> None:
        for t in self.threads:
            t.join(timeout=120)
        assert not self.errors, self.errors


def _checkpoint(client: httpx.Client, verifier: Verifier, at_least: int = 0) -> Checkpoint:
    """The newest signed checkpoint, once it covers ``at_least`` entries (the restarted server
    integrates what was sequenced before the kill)."""
    for _ in range(600):
        cp = Checkpoint.parse(open_note(client.get("/log/checkpoint").content, [verifier]).text)
        if cp.size >= at_least:
            return cp
        threading.Event().wait(0.1)
    raise AssertionError(f"no checkpoint of {at_least} entries after a minute")


def _check_after_restart(client: httpx.Client, verifier: Verifier, acked: dict[int, bytes],
                         held: Checkpoint) -> Checkpoint:
    new = _checkpoint(client, verifier, max(max(acked) + 1, held.size))
    proof = client.get("/log/v1/get-sth-consistency", params={"first": held.size, "second": new.size})
    assert proof.status_code == 200, proof.text
    verify_consistency(held.size, new.size, [base64.b64decode(h) for h in proof.json()["consistency"]],
                       held.root_hash, new.root_hash)
    found: dict[int, bytes] = {}
    for start in range(0, new.size, 1000):
        page = client.get("/log/v1/get-entries", params={"start": start, "end": start + 999})
        assert page.status_code == 200, page.text
        found.update({start + i: leaf_hash(base64.b64decode(e["leaf_input"]))
                      for i, e in enumerate(page.json()["entries"])})
    lost = [i for i, h in acked.items() if found.get(i) != h]
    assert not lost, f"{len(lost)} acknowledged entries lost or changed, e.g. {lost[:5]}"
    return new


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_the_server_under_concurrent_appends(backend: str, tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    env = clean_env() if backend == "sqlite" else clean_env(
        RLHF_AUDIT_DATABASE_URL=request.getfixturevalue("pg_url"))
    home = tmp_path / "home"
    cli(home, env, "init")
    cli(home, env, "users", "create", "svc", "--role", "service")
    token = cli(home, env, "tokens", "create", "svc", "--scope", "events:write").strip()
    server = Server(home, env)
    acked: dict[int, bytes] = {}
    held: Checkpoint | None = None
    try:
        for round_ in range(KILLS + 1):
            server.start()
            with httpx.Client(base_url=server.base, timeout=30) as client:
                verifier = Verifier.from_vkey(client.get("/log/v1/keys").json()["log_vkey"])
                if held is not None:
                    held = _check_after_restart(client, verifier, acked, held)
                if round_ == KILLS:
                    break
                appenders = Appenders(server.base, token, acked, round_)
                appenders.wait_for(400)
                held = _checkpoint(client, verifier)  # what a client keeps, mid-stream
                appenders.wait_for(800)  # and more in flight when the kill comes
                server.kill()
                appenders.join()
        assert held is not None and len(acked) >= KILLS * 800
    finally:
        server.stop()
    assert "Traceback" not in server.stderr()
    # a checkpoint the server published as it stopped may still wait for its timestamp, which the
    # next integrator gives it (as a restarted server would); then the whole log, checkpoints and
    # all, as an auditor checks it
    cli(home, env, "integrate", "--once")
    cli(home, env, "verify")  # exit status 0, or the cli helper shows what verify found

"""The public read API, checked the way an auditor would: with clients written from the specs
(C2SP tlog-tiles, tlog-proof, RFC 6962 JSON) and OpenSSL, against a real log on SQLite and on
PostgreSQL, and once as the real ``rlhf-audit serve`` process."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from ledger._internal.local_tsa import LocalTSA
from ledger.checkpoint import Checkpoint
from ledger.errors import ProofError
from ledger.log import Log
from ledger.merkle import leaf_hash, root_of, verify_consistency, verify_inclusion
from ledger.note import Verifier, open_note
from ledger.tlog_proof import parse_tlog_proof, verify_tlog_proof
from tests.support.asgi import serving

FIRST, SIZE = 100, 1100  # two checkpoints; four full level-0 tiles and a partial one


@pytest.fixture
async def api(log: Log) -> AsyncIterator[tuple[httpx.AsyncClient, list[bytes]]]:
    """A client over the app, and the entries of a log with checkpoints at FIRST and SIZE."""
    async with serving(log) as client:
        for lo, hi in ((0, FIRST), (FIRST, SIZE)):
            await log.append([{"kind": "test.event", "i": i} for i in range(lo, hi)])
            await log.wait_for(hi - 1)
        await log.timestamp_pending(force=True)
        yield client, await log.entries(0, SIZE)


def _checkpoint(note: bytes, verifier: Verifier) -> Checkpoint:
    return Checkpoint.parse(open_note(note, [verifier]).text)


async def _verifier(client: httpx.AsyncClient) -> Verifier:
    return Verifier.from_vkey((await client.get("/log/v1/keys")).json()["log_vkey"])


def _hashes(tile: bytes) -> list[bytes]:
    return [tile[i:i + 32] for i in range(0, len(tile), 32)]


def _bundle(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 2], "big")
        out.append(data[i + 2:i + 2 + n])
        i += 2 + n
    return out


async def test_tiles_rebuild_the_checkpoint_root(api, log: Log) -> None:  # type: ignore[no-untyped-def]
    client, entries = api
    r = await client.get("/log/checkpoint")
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    body = r.content.split(b"\n\n")[0] + b"\n"
    cp = Checkpoint.parse(body)
    assert cp == _checkpoint(r.content, await _verifier(client))
    assert (cp.origin, cp.size) == (log.origin, SIZE)

    full, width = divmod(cp.size, 256)  # tile paths as the spec spells them, by hand
    level0 = [f"tile/0/{n:03d}" for n in range(full)] + [f"tile/0/{full:03d}.p/{width}"]
    leaves: list[bytes] = []
    for path in level0:
        r = await client.get(f"/log/{path}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
        leaves += _hashes(r.content)
    assert root_of(leaves) == cp.root_hash
    level1 = (await client.get(f"/log/tile/1/000.p/{full}")).content
    assert _hashes(level1) == [root_of(leaves[256 * n:256 * (n + 1)]) for n in range(full)]

    bundled: list[bytes] = []
    for path in level0:
        bundled += _bundle((await client.get("/log/" + path.replace("tile/0/", "tile/entries/"))).content)
    assert bundled == entries and [leaf_hash(e) for e in bundled] == leaves


async def test_full_tiles_are_immutable_and_revalidate(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    r = await client.get("/log/tile/0/000")
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    etag = r.headers["etag"]
    again = await client.get("/log/tile/0/000", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert (await client.get("/log/tile/0/000", headers={"If-None-Match": '"other"'})).status_code == 200
    partial = await client.get(f"/log/tile/0/004.p/{SIZE % 256}")
    assert "immutable" not in partial.headers["cache-control"]


async def test_proofs_entries_and_lookup(api, log: Log, local_tsa: LocalTSA,  # type: ignore[no-untyped-def]
                                         tmp_path: Path) -> None:
    client, entries = api
    verifier = await _verifier(client)
    old = _checkpoint((await client.get(f"/log/v1/checkpoints/{FIRST}")).content, verifier)
    new = _checkpoint((await client.get(f"/log/v1/checkpoints/{SIZE}")).content, verifier)
    assert (old.size, new.size) == (FIRST, SIZE)

    h = leaf_hash(entries[700])
    r = (await client.get("/log/v1/get-proof-by-hash",
                          params={"hash": base64.b64encode(h).decode(), "tree_size": SIZE})).json()
    assert r["leaf_index"] == 700
    verify_inclusion(700, SIZE, h, [base64.b64decode(x) for x in r["audit_path"]], new.root_hash)

    r = (await client.get("/log/v1/get-sth-consistency", params={"first": FIRST, "second": SIZE})).json()
    verify_consistency(FIRST, SIZE, [base64.b64decode(x) for x in r["consistency"]],
                       old.root_hash, new.root_hash)

    page = (await client.get("/log/v1/get-entries", params={"start": 0, "end": SIZE + 50})).json()
    assert [base64.b64decode(e["leaf_input"]) for e in page["entries"]] == entries[:1000]
    tail = (await client.get("/log/v1/get-entries", params={"start": 1090, "end": 1094})).json()
    assert [base64.b64decode(e["leaf_input"]) for e in tail["entries"]] == entries[1090:1095]

    proof = await client.get("/log/v1/proof/42")
    assert proof.headers["content-type"] == "text/plain; charset=utf-8"
    assert proof.content.startswith(b"c2sp.org/tlog-proof@v1\nindex 42\n")
    assert verify_tlog_proof(proof.content, entries[42], verifier) == new
    with pytest.raises(ProofError):
        verify_tlog_proof(proof.content, entries[43], verifier)
    index, path, note = parse_tlog_proof(proof.content.replace(b"\nindex", b"\nextra AAEC\nindex", 1))
    assert (index, note) == (42, (await client.get("/log/checkpoint")).content) and path

    keys = (await client.get("/log/v1/keys")).json()
    assert keys["origin"] == log.origin and keys["log_vkey"] == log.signer.verifier.vkey
    root_pem = local_tsa.root_certificate.public_bytes(serialization.Encoding.PEM)
    assert root_pem.decode() in keys["tsa_certificates"]
    tsr = await client.get(f"/log/v1/checkpoints/{SIZE}/timestamp")
    assert tsr.headers["content-type"] == "application/timestamp-reply"
    (tmp_path / "cp").write_bytes((await client.get(f"/log/v1/checkpoints/{SIZE}")).content)
    (tmp_path / "cp.tsr").write_bytes(tsr.content)
    (tmp_path / "root.pem").write_bytes(root_pem)
    ossl = subprocess.run(["openssl", "ts", "-verify", "-data", str(tmp_path / "cp"), "-in",
                           str(tmp_path / "cp.tsr"), "-CAfile", str(tmp_path / "root.pem")],
                          capture_output=True, text=True)
    assert "Verification: OK" in ossl.stdout, ossl.stdout + ossl.stderr

    found = await client.get("/log/v1/lookup", params={"leaf_hash": base64.b64encode(h).decode()})
    assert found.json() == {"leaf_indices": [700]}
    absent = await client.get("/log/v1/lookup", params={"leaf_hash": base64.b64encode(b"\1" * 32).decode()})
    assert absent.json() == {"leaf_indices": []}
    assert (await client.get("/healthz")).json() == {"status": "ok"}


H32 = base64.b64encode(b"\0" * 32).decode()
BAD_REQUESTS = [
    "/log/tile/0/1", "/log/tile/0/0001", "/log/tile/0/x000/000", "/log/tile/0/000.p/256",
    "/log/tile/0/000.p/0", "/log/tile/0/000.p/07", "/log/tile/64/000", "/log/tile/-1/000",
    "/log/tile/0/x001//000", "/log/tile/0/%2e%2e/000", "/log/tile/abc",
    "/log/tile/0/999", "/log/tile/0/004", "/log/tile/entries/004", "/log/tile/entries/000.p/x",
    "/log/tile/2/000", "/log/tile/0/99999999999999999999999999",
    "/log/v1/get-proof-by-hash?hash=***&tree_size=5", "/log/v1/get-proof-by-hash?hash=AAAA&tree_size=5",
    f"/log/v1/get-proof-by-hash?hash={H32}&tree_size=5", f"/log/v1/get-proof-by-hash?hash={H32}",
    f"/log/v1/get-proof-by-hash?hash={H32}&tree_size=0", f"/log/v1/get-proof-by-hash?hash={H32}&tree_size=x",
    f"/log/v1/get-proof-by-hash?hash={H32}&tree_size=99999",
    f"/log/v1/get-proof-by-hash?hash={H32}&tree_size={2**70}",
    "/log/v1/get-sth-consistency?first=300&second=100", "/log/v1/get-sth-consistency?first=150&second=1100",
    "/log/v1/get-sth-consistency?first=0&second=1100", "/log/v1/get-sth-consistency?first=100&second=5000",
    "/log/v1/get-sth-consistency?first=a&second=1", "/log/v1/get-sth-consistency?first=1",
    "/log/v1/get-entries?start=5&end=4", "/log/v1/get-entries?start=-1&end=4",
    "/log/v1/get-entries?start=2000&end=2001",
    "/log/v1/get-entries?start=x&end=1", "/log/v1/get-entries?start=0&end=1.5",
    "/log/v1/proof/1100", "/log/v1/proof/-1", "/log/v1/proof/abc", f"/log/v1/proof/{2**64}",
    "/log/v1/checkpoints/7", "/log/v1/checkpoints/0", "/log/v1/checkpoints/x",
    "/log/v1/checkpoints/7/timestamp",
    f"/log/v1/checkpoints/{2**80}/timestamp", "/log/v1/lookup", "/log/v1/lookup?leaf_hash=%%%",
    "/log/v1/lookup?leaf_hash=AAAA", "/log/nothing", "/nothing",
]


async def test_bad_requests_are_4xx_problem_details(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    for url in BAD_REQUESTS:
        r = await client.get(url)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), url
        body = r.json()
        assert body["status"] == r.status_code and body["type"] == "about:blank", url
        assert body["title"] and body["detail"], url
    r = await client.get("/log/v1/get-entries?start=x&end=1")
    assert r.status_code == 400 and r.json()["errors"][0]["key"] == "start"
    assert (await client.post("/log/checkpoint")).status_code == 405


async def test_no_checkpoint_yet_is_404(log: Log) -> None:
    async with serving(log) as client:
        r = await client.get("/log/checkpoint")
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(url: str, until: float) -> httpx.Response:
    while True:
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return r
        except httpx.TransportError:
            pass
        if time.monotonic() > until:
            raise AssertionError(f"{url} did not answer 200 in time")
        time.sleep(0.2)


@pytest.mark.slow
def test_serve_runs_the_real_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    home, port = str(tmp_path / "home"), _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "--home", home, "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert _poll(f"{base}/healthz", time.monotonic() + 60).json() == {"status": "ok"}
        event = b'{"kind":"serve.test","n":1}\n'
        subprocess.run([sys.executable, "-m", "app.cli", "--home", home, "append"], input=event,
                       env=env, check=True, capture_output=True, timeout=120)
        verifier = Verifier.from_vkey(_poll(f"{base}/log/v1/keys", time.monotonic() + 10).json()["log_vkey"])
        note = _poll(f"{base}/log/checkpoint", time.monotonic() + 30).content
        assert _checkpoint(note, verifier).size == 1
        proof = _poll(f"{base}/log/v1/proof/0", time.monotonic() + 10).content
        entry = subprocess.run([sys.executable, "-m", "app.cli", "--home", home, "entry", "0"], env=env,
                               check=True, capture_output=True, timeout=120).stdout  # in the envelope
        assert json.loads(entry)["kind"] == "serve.test"
        verify_tlog_proof(proof, entry, verifier)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert b"Traceback" not in (server.stderr.read() if server.stderr else b"")

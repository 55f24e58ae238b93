"""``/log/v1/checkpoints/N/timestamp`` with more than one TSA: an independent stamp by preference
(the local TSA's own says little to an outsider), any TSA's on request, and a list of what exists.
The independent TSA is OpenSSL's (``openssl ts -reply`` over HTTP); the check is ``openssl ts
-verify``, which none of us wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest

from app.core.database import Database
from ledger._internal.local_tsa import LocalTSA
from ledger._internal.store import Store
from ledger.log import Log
from ledger.note import Signer
from ledger.timestamp_verify import parse_timestamp, verify_timestamp
from ledger.timestamping import HttpTSA, LocalTSAClient
from tests.support.asgi import serving
from tests.support.databases import pair
from tests.support.openssl_tsa import openssl_verify


@pytest.fixture
async def two_tsa_log(db: Database, store: Store, signer: Signer, local_tsa: LocalTSA,
                      openssl_tsa: tuple[str, Path]) -> AsyncIterator[Log]:
    """A log that lists the local TSA first, as the production setup did, then OpenSSL's."""
    tsas = [LocalTSAClient(local_tsa), HttpTSA(openssl_tsa[0])]
    log = pair(Log(store, signer, tsas=tsas, interval=0.05), db)
    yield log
    await log.close()


async def _stamped(log: Log) -> int:
    out = await log.append([{"kind": "test.event", "i": i} for i in range(3)])
    cp = await log.wait_for(out[-1].leaf_index)
    await log.timestamp_pending(force=True)
    assert len(await log.timestamp_responses(cp.size)) == 2
    return cp.size


async def test_the_independent_stamp_is_served_first(
    two_tsa_log: Log, local_tsa: LocalTSA, openssl_tsa: tuple[str, Path], tmp_path: Path
) -> None:
    url, ca = openssl_tsa
    local, external = (t.name for t in two_tsa_log.tsas)
    async with serving(two_tsa_log) as client:
        size = await _stamped(two_tsa_log)
        note = (await client.get(f"/log/v1/checkpoints/{size}")).content
        base = f"/log/v1/checkpoints/{size}/timestamp"

        served = await client.get(base)
        assert served.status_code == 200
        assert served.headers["content-type"] == "application/timestamp-reply"
        ok = openssl_verify(tmp_path, note, served.content, ca)
        assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr
        assert served.content == (await two_tsa_log.timestamp_responses(size))[external]

        # A client may pick a TSA: by its name, or ``local`` for the built-in one.
        for name in (local, "local"):
            picked = await client.get(base, params={"tsa": name})
            assert picked.status_code == 200, picked.text
            verify_timestamp(picked.content, note, roots=[local_tsa.root_certificate])
        picked = await client.get(f"{base}?tsa={quote(url, safe='')}")
        assert picked.content == served.content

        listed = await client.get(f"/log/v1/checkpoints/{size}/timestamps")
        assert listed.status_code == 200
        stamps = listed.json()["timestamps"]
        assert [(s["tsa"], s["local"]) for s in stamps] == [(external, False), (local, True)]
        for s in stamps:
            body = (await client.get(s["url"])).content
            assert s["gen_time"] == parse_timestamp(body).gen_time.isoformat()
        assert listed.json()["size"] == size


async def test_unknown_tsa_or_checkpoint_is_a_404_that_says_why(two_tsa_log: Log) -> None:
    async with serving(two_tsa_log) as client:
        size = await _stamped(two_tsa_log)
        r = await client.get(f"/log/v1/checkpoints/{size}/timestamp", params={"tsa": "https://nope.example/"})
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        detail = r.json()["detail"]
        assert "https://nope.example/" in detail and "local:" in detail and "http://127.0.0.1" in detail
        for path in (f"/log/v1/checkpoints/{size + 100}/timestamps",
                     f"/log/v1/checkpoints/{size + 100}/timestamp?tsa=local",
                     f"/log/v1/checkpoints/{2**70}/timestamps", "/log/v1/checkpoints/x/timestamps"):
            r = await client.get(path)
            assert 400 <= r.status_code < 500 and r.json()["detail"], path


async def test_a_log_with_only_the_local_tsa_serves_its_stamp(log: Log) -> None:
    async with serving(log) as client:
        out = await log.append([{"kind": "test.event"}])
        cp = await log.wait_for(out[-1].leaf_index)
        await log.timestamp_pending(force=True)
        r = await client.get(f"/log/v1/checkpoints/{cp.size}/timestamp")
        assert r.status_code == 200
        assert r.content == (await log.timestamp_responses(cp.size))[log.tsas[0].name]
        listed = (await client.get(f"/log/v1/checkpoints/{cp.size}/timestamps")).json()
        assert [s["local"] for s in listed["timestamps"]] == [True]


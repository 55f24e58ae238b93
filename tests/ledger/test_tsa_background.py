"""A TSA that accepts connections and never answers must hold up neither checkpoints, nor the
other TSAs' stamps, nor a CLI ``append``: timestamping runs beside integration, each TSA on its
own. Real parts only: an HTTP server that never replies, the local TSA, real databases and the
real CLI. The bounds here are generous and far below the hanging TSA's timeout, which is what the
defect was about (every checkpoint waited for it)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ledger._internal.local_tsa import LocalTSA
from ledger._internal.store import Store
from ledger.log import Log
from ledger.note import Signer
from ledger.timestamping import HttpTSA, LocalTSAClient
from tests.support.cli_run import cli, cli_env
from tests.support.openssl_tsa import Answer, serve

HANG = 6.0  # the hanging TSA's timeout: every bound below is well under it


@pytest.fixture
def hanging_tsa() -> Iterator[str]:
    """The URL of a TSA that takes the request and never answers (until the test ends)."""
    release = threading.Event()

    def hang(query: bytes) -> Answer:
        release.wait(60)
        return 503, b""

    with serve(hang) as url:
        try:
            yield url
        finally:
            release.set()


@pytest.fixture
async def stalled_log(store: Store, signer: Signer, local_tsa: LocalTSA,
                      hanging_tsa: str) -> AsyncIterator[Log]:
    """A log whose first TSA hangs and whose second is the local one."""
    log = Log(store, signer, tsas=[HttpTSA(hanging_tsa, timeout=HANG), LocalTSAClient(local_tsa)],
              interval=0.05)
    yield log
    await log.close()


async def _eventually(check, within: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_hanging_tsa_stalls_no_checkpoint_and_no_other_tsa(stalled_log: Log) -> None:
    log = stalled_log
    local = log.tsas[1].name
    await log.start()
    first = await log.append([{"kind": "test.a", "i": i} for i in range(3)])
    cp1 = await log.wait_for(first[-1].leaf_index, timeout=HANG / 2)
    # The stamper is now waiting on the hanging TSA for cp1; later entries get checkpoints anyway.
    for round_ in range(3):
        more = await log.append([{"kind": "test.b", "round": round_}])
        cp = await log.wait_for(more[-1].leaf_index, timeout=HANG / 2)
        assert cp.size == more[-1].leaf_index + 1
    # The local TSA, listed after the hanging one, stamps every checkpoint meanwhile.
    sizes = [size async for size, _, _ in log.store.scan_checkpoints()]
    assert len(sizes) >= 2 and sizes[0] == cp1.size

    async def all_locally_stamped() -> bool:
        return not await log.store.untimestamped(local, 1000)

    assert await _eventually(all_locally_stamped, HANG / 2)
    assert not any(g.tsa == local for g in await log.timestamp_gaps())
    # The hanging TSA's failure is recorded once its own timeout passes, and it stays a gap.

    async def failure_recorded() -> bool:
        return any(g.tsa != local and g.attempts >= 1 for g in await log.timestamp_gaps())

    assert await _eventually(failure_recorded, HANG * 2)
    gaps = [g for g in await log.timestamp_gaps() if g.tsa != local]
    assert {g.size for g in gaps} == set(sizes)
    assert any(f"did not answer within {HANG:g}s" in g.last_error for g in gaps)


async def test_stop_is_prompt_while_a_tsa_hangs(stalled_log: Log) -> None:
    await stalled_log.start()
    out = await stalled_log.append([{"kind": "test.a"}])
    await stalled_log.wait_for(out[-1].leaf_index, timeout=HANG / 2)
    await asyncio.sleep(0.3)  # a request to the hanging TSA is in flight
    started = time.monotonic()
    await stalled_log.stop()
    assert time.monotonic() - started < HANG / 2


async def test_timestamp_pending_waits_at_most_within(stalled_log: Log) -> None:
    """The one-shot call that ``append`` makes: the local stamp lands, the hanging TSA is given
    up at ``within`` and recorded as a gap (the background task retries it)."""
    out = await stalled_log.append([{"kind": "test.a"}])
    cp = await stalled_log.integrate()
    assert cp is not None and cp.size == out[-1].leaf_index + 1
    started = time.monotonic()
    gaps = await stalled_log.timestamp_pending(force=True, within=0.5)
    assert time.monotonic() - started < HANG / 2
    hanging, local = (t.name for t in stalled_log.tsas)
    assert set(await stalled_log.timestamp_responses(cp.size)) == {local}
    assert [(g.size, g.tsa, g.attempts) for g in gaps] == [(cp.size, hanging, 1)]
    assert "0.5" in gaps[0].last_error


@pytest.mark.slow
def test_cli_append_does_not_wait_for_a_hanging_tsa(tmp_path: Path, hanging_tsa: str) -> None:
    """``rlhf-audit append`` with a hanging TSA configured exits about as fast as without it
    (it took over ten seconds: the TSA's whole timeout), with the local stamp and a warning."""
    env = cli_env(tmp_path / "home")
    cli(env, "init", "--origin", "tsa.example/log")

    def timed_append(n: int, tsa_urls: str) -> tuple[float, str]:
        started = time.monotonic()
        proc = cli({**env, "RLHF_AUDIT_TSA_URLS": tsa_urls}, "append",
                   input=b'{"kind":"test.a","n":%d}\n' % n)
        return time.monotonic() - started, proc.stderr.decode()

    without, _ = timed_append(0, "local")
    with_hanging, warning = timed_append(1, f"{hanging_tsa},local")
    assert with_hanging < without + 6, (with_hanging, without)  # the TSA's timeout is 10 s
    assert "2 checkpoints up to 2 have no timestamp from http://127.0.0.1" in warning, warning
    assert "will retry" in warning and warning.count("warning:") == 1, warning
    stamp = cli(env, "timestamp", "--size", "2").stdout  # the local stamp arrived
    assert len(stamp) > 100

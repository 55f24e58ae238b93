"""Evidence bundle of 10,000 entries: build time, and offline verification time with both verifiers.

Targets (issue #5): builds in < 5 s, verifies in < 5 s with ``rlhf-audit verify-bundle``'s
verifier and with the standalone ``verify.py``. The log is a real SQLite log holding one training
run of 10,000 events among 2,000 others; the bundle is the run's scope (all proofs against one
checkpoint, a consistency proof to the newest). The standalone verifier runs as an auditor runs it:
a fresh ``python -I verify.py`` process, start-up included.

Besides wall time the build's CPU time (all threads) and its SQL statements are printed, with the
builder's own per-phase wall times: under CPU contention wall time grows with the run queue while
CPU time does not, so the ratio says how much of a slow build was waiting (docs/performance.md).

    python benchmarks/bench_bundle.py [--entries 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import event as sa_event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.database import Database  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.events.index import EventIndex  # noqa: E402
from app.events.recording import Actor, event  # noqa: E402
from app.evidence.builder import build_bundle, record_evidence_key  # noqa: E402
from app.evidence.dsse import public_key_pem  # noqa: E402
from app.evidence.scope import Scope  # noqa: E402
from app.evidence.verify import verify_bundle  # noqa: E402
from ledger._internal.local_tsa import LocalTSA  # noqa: E402
from ledger.log import Log  # noqa: E402
from ledger.note import Signer  # noqa: E402
from ledger.storage import Store  # noqa: E402
from ledger.timestamping import LocalTSAClient  # noqa: E402

WORKER = Actor("worker", "system")
STANDALONE = Path(__file__).resolve().parents[1] / "app" / "evidence" / "standalone_verify.py"


async def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    store = Store(f"sqlite+aiosqlite:///{tmp / 'ledger.db'}", sqlite_synchronous="NORMAL")
    db = Database(store.engine)
    await db.migrate()
    tsa = LocalTSA.create(tmp / "tsa")
    log = Log(store, Signer.generate("bench.example/log"), tsas=[LocalTSAClient(tsa)])
    other = [event("run.metrics", WORKER, run="run_other", steps=[{"step": i, "loss": 0.5}])
             for i in range(1000)]
    ours = [event("run.metrics", WORKER, run="run_bench", steps=[{"step": i, "epoch": i // 1000,
                                                                   "loss": 1.0 / (i + 1)}])
            for i in range(n)]
    key = Ed25519PrivateKey.generate()
    await record_evidence_key(log, EventIndex(db, log), key)  # on the log as when the home was set up
    await log.append(other)
    for k in range(0, n, 1000):
        await log.append(ours[k : k + 1000])
    await log.integrate()
    await log.append(other)  # a newer checkpoint: the bundle carries a consistency proof to it
    await log.integrate()
    await log.timestamp_pending(force=True)
    index = EventIndex(db, log)
    await index.catch_up()  # the server keeps the index warm; the bundle build only queries it

    statements = [0]

    def counted(*_: object) -> None:
        statements[0] += 1

    sa_event.listen(store.engine.sync_engine, "before_cursor_execute", counted)
    t0, cpu0 = time.perf_counter(), time.process_time()
    built = await build_bundle(db, log, Scope("run", run="run_bench"), evidence_key=key, index=index,
                               settings=Settings())
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    sa_event.remove(store.engine.sync_engine, "before_cursor_execute", counted)
    assert built.entries >= n, built.entries  # with the evidence key's entry and the report's citations

    t0 = time.perf_counter()
    root = tsa.root_certificate.public_bytes(Encoding.PEM)
    report = verify_bundle(built.data, log_key=log.signer.verifier.vkey, tsa_roots=[root],
                           evidence_key=public_key_pem(key.public_key()))
    ledger_s = time.perf_counter() - t0
    assert report.ok, report.text()

    (tmp / "bundle.zip").write_bytes(built.data)
    (tmp / "root.pem").write_bytes(root)
    (tmp / "evidence.pem").write_bytes(public_key_pem(key.public_key()))
    (tmp / "verify.py").write_bytes(STANDALONE.read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-I", str(tmp / "verify.py"), str(tmp / "bundle.zip"),
                           "--log-key", log.signer.verifier.vkey, "--tsa-root", str(tmp / "root.pem"),
                           "--evidence-key", str(tmp / "evidence.pem")],
                          cwd=tmp, env=env, capture_output=True, text=True)
    standalone_s = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    await log.close()

    print(f"bundle of {built.entries:,} entries (tree size {built.tree_size:,}, newest "
          f"{built.latest_tree_size:,}): {len(built.data):,} bytes")
    for what, seconds in (("build (select, proofs, report, zip, sign)", build_s),
                          ("verify, app.evidence.verify (rlhf-audit verify-bundle)", ledger_s),
                          ("verify, standalone verify.py (new process)", standalone_s)):
        print(f"{what:<52} {seconds:6.2f} s   target < 5 s: {'met' if seconds < 5 else 'NOT met'}")
    print("build phases (wall): " + ", ".join(f"{k} {v:.2f} s" for k, v in built.timings.items()))
    print(f"build: {build_cpu:.2f} s CPU (all threads) in {build_s:.2f} s wall "
          f"(ratio {build_s / build_cpu:.2f}); {statements[0]:,} SQL statements; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().entries))

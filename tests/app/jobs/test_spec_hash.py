"""``spec_sha256`` can be recomputed from the logged spec by anyone (issue 16): it is the SHA-256
of the spec's RFC 8785 bytes, checked here with an independent JCS implementation (``rfc8785``)
over the spec as ``job.submitted`` logs it, floats such as 1.0 and 5e-05 included."""

from __future__ import annotations

import hashlib
from pathlib import Path

import rfc8785

from app.core.database import Database
from app.core.keyring import Keyring
from app.jobs import submit
from app.jobs.queue import LocalQueue
from ledger.log import Log
from tests.support.jobs import ADMIN, dataset, events, spec


async def test_spec_sha256_is_recomputable_from_the_logged_spec(db: Database, log: Log,
                                                                tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    ds = await dataset(log, keyring, 8, budget=10.0)
    doc = spec(ds, learning_rate=5e-05, beta=1.0,
               dp={"target_epsilon": 2.0, "max_grad_norm": 1.0, "delta": 1e-06})
    job = await submit(db, log, keyring, LocalQueue(), doc, ADMIN)
    [submitted] = await events(log, job.run, "job.submitted")
    logged = submitted["spec"]
    assert logged["beta"] == 1 and logged["learning_rate"] == 5e-05  # as parsed back from the log
    recomputed = "sha256:" + hashlib.sha256(rfc8785.dumps(logged)).hexdigest()
    assert submitted["spec_sha256"] == recomputed

"""A separate appending process for the concurrency and crash tests.

    python -m tests.support.appender URL ORIGIN_KEY_FILE WORKER BATCHES BATCH_SIZE [--integrate]

Prints one JSON line per acknowledged batch: {"first": N, "count": M, "hashes": [...]} only
after ``append`` returned, i.e. after the batch is durable.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path

from ledger._internal.store import Store
from ledger.log import Log
from ledger.note import Signer


async def main() -> None:
    url, key_file, worker, batches, size = sys.argv[1:6]
    integrate = "--integrate" in sys.argv
    log = Log(Store(url), Signer.from_skey(Path(key_file).read_text()), interval=0.05)
    try:
        for b in range(int(batches)):
            events = [{"kind": "concurrency.test", "worker": int(worker), "batch": b, "i": i}
                      for i in range(int(size))]
            out = await log.append(events)
            print(json.dumps({"first": out[0].leaf_index, "count": len(out),
                              "hashes": [base64.b64encode(e.leaf_hash).decode() for e in out]}),
                  flush=True)
            if integrate and b % 3 == 0:
                await log.integrate()
    finally:
        await log.close()


if __name__ == "__main__":
    asyncio.run(main())

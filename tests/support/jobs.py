"""Shared parts of the training-job tests: a tiny model built once, datasets, specs, a worker ctx.

No stand-ins: the real datasets package, the real TRL/Opacus training on a ~150k-parameter Llama,
the real FileStore, the real Redis (ARQ) and the local worker.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from app.core.keyring import Keyring
from app.datasets import import_dataset, set_budget
from app.events.recording import Actor
from app.objects import FileStore
from app.worker.runtime import WorkerContext
from ledger.log import Log
from tests.support.databases import database_of

REDIS_URL = "redis://127.0.0.1:6379"
ADMIN = Actor("pseud:" + "a" * 32, "admin")
OVERSEER_A = Actor("pseud:" + "b" * 32, "overseer")
OVERSEER_B = Actor("pseud:" + "c" * 32, "overseer")
SHEET = {"origin": "synthetic test data", "collection_process": "generated", "purpose": "tests"}


@functools.cache
def tiny_model() -> Path:
    """A tokenizer and a random ~150k-parameter Llama, built once per test process."""
    from trainers.tiny import build_tiny_model

    return build_tiny_model(Path(tempfile.mkdtemp(prefix="tiny-model-")) / "base")


def jsonl(n: int, annotators: int = 3, seed: int = 0) -> bytes:
    from trainers.tiny import synthetic_pairs

    keep = ("prompt", "chosen", "rejected", "annotator")
    rows = [{k: r[k] for k in keep} for r in synthetic_pairs(n, annotators=annotators, seed=seed)]
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


async def dataset(log: Log, keyring: Keyring, n: int = 16, budget: float | None = None) -> str:
    name = "ds_test_" + secrets.token_hex(3)
    db = database_of(log)
    result = await import_dataset(db, log, keyring, name, jsonl(n), datasheet=SHEET, actor=ADMIN)
    if budget is not None:
        await set_budget(db, log, result.dataset, budget, 1e-5, ADMIN)
    return result.dataset


def spec(dataset: str, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": "reward_model", "base_model": str(tiny_model()), "dataset": dataset,
                           "learning_rate": 1e-3, "batch_size": 4, "max_steps": 4, "save_steps": 2,
                           "seed": 1, "max_length": 64}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


def worker_ctx(log: Log, keyring: Keyring, root: Path) -> WorkerContext:
    return {"db": database_of(log), "log": log, "keyring": keyring, "objects": FileStore(root / "objects"),
            "workdir": str(root)}


async def events(log: Log, run: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """Every event on the log (of ``run`` and ``kind`` when given), with its leaf index as ``_i``."""
    await log.integrate()
    size = await log.sequenced_size()
    out = []
    for i in range(size):
        e = json.loads(await log.entry(i))
        if (run is None or e.get("run") == run) and (kind is None or e.get("kind") == kind):
            out.append({**e, "_i": i})
    return out


async def arq_pool(queue: str) -> Any:
    from arq import create_pool
    from arq.connections import RedisSettings

    return await create_pool(RedisSettings.from_dsn(REDIS_URL), default_queue_name=queue)


@asynccontextmanager
async def arq_worker(ctx: WorkerContext, queue: str) -> AsyncIterator[Any]:
    """An in-process ARQ worker over the real Redis; ``run_once()`` drains the queue (burst)."""
    from arq.worker import Worker

    from app.worker.settings import WorkerSettings

    pool = await arq_pool(queue)

    class Handle:
        async def run_once(self) -> None:
            worker = Worker(functions=WorkerSettings.functions, redis_pool=pool, burst=True, poll_delay=0,
                            queue_name=queue, ctx=dict(ctx), allow_abort_jobs=True, handle_signals=False,
                            max_jobs=1)
            try:
                await worker.main()
            finally:
                await worker.close()

    try:
        yield Handle()
    finally:
        await pool.delete(queue)
        await pool.aclose()


async def wait_status(log: Log, run: str, statuses: tuple[str, ...], timeout: float = 60) -> Any:
    from app.jobs.service import get_job

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await get_job(database_of(log), run)
        if job.status in statuses:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {run} is {job.status}, not {statuses}, after {timeout} s")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def serving(log: Log, keyring: Keyring, queue: Any = None, home: Any = None) -> AsyncIterator[Any]:
    """The app (lifespan on this loop) with ``queue`` on its state, and an httpx client over ASGI;
    ``home``: the ``--home`` it serves (its ``config.toml`` gives the app's settings)."""
    import httpx

    from app.server.core import create_app

    from .asgi import lifespan_of

    app = create_app(home, db=database_of(log), log=log, keyring=keyring)
    app.state.queue = queue
    async with lifespan_of(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                   base_url="http://t") as client:
        yield client


async def token(log: Log, keyring: Keyring, name: str, role: str) -> dict[str, str]:
    """An account of ``role`` and the Authorization header of a token with all its role's scopes."""
    from app.accounts import create_account, create_token

    db = database_of(log)
    await create_account(db, log, name, role, None if role == "service" else "long enough password",
                         pseudonymizer=keyring.pseudonymizer)
    created = await create_token(db, log, name, ["read", "jobs:submit"] if role == "service" else None,
                                 pseudonymizer=keyring.pseudonymizer)
    return {"Authorization": f"Bearer {created.token}"}


def is_problem(r: Any, status: int, *words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    for w in words:
        assert w in body["detail"], body
    return body

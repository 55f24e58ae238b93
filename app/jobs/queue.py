"""Where submitted jobs wait: ARQ on Redis, or the local worker polling the jobs table.

With ``RLHF_AUDIT_REDIS_URL`` set, :class:`ArqQueue` enqueues ``run_training(run)`` for any number
of ``rlhf-audit worker`` processes (the ARQ job id is the run id, so a double submit runs once).
Without it, :class:`LocalQueue` enqueues nothing: the job row's ``queued`` status *is* the queue,
and the local worker that ``rlhf-audit serve`` starts claims rows from it. Either way a worker
claims a run with one conditional UPDATE, so no run trains twice.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..core.errors import Misconfigured
from ..core.settings import Settings

__all__ = ["DEFAULT_QUEUE", "ENV_QUEUE", "ENV_REDIS", "JOB_FUNCTION", "ArqQueue", "LocalQueue", "Queue",
           "queue_from_env"]

ENV_REDIS = "RLHF_AUDIT_REDIS_URL"
ENV_QUEUE = "RLHF_AUDIT_QUEUE"
DEFAULT_QUEUE = "rlhf-audit:jobs"
JOB_FUNCTION = "run_training"


@runtime_checkable  # a handler's declared dependency: Litestar checks what it is given
class Queue(Protocol):
    async def enqueue(self, run: str, job_id: str) -> None: ...
    async def abort(self, job_id: str) -> None: ...
    async def close(self) -> None: ...


class LocalQueue:
    """The jobs table is the queue; the local worker polls it."""

    async def enqueue(self, run: str, job_id: str) -> None:
        return None

    async def abort(self, job_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


class ArqQueue:
    """ARQ over Redis; the pool is opened on first use."""

    def __init__(self, url: str, queue_name: str = DEFAULT_QUEUE) -> None:
        self.url, self.queue_name = url, queue_name
        self._pool = None

    async def pool(self):  # type: ignore[no-untyped-def]
        from arq import create_pool
        from arq.connections import RedisSettings

        if self._pool is None:
            try:
                self._pool = await create_pool(RedisSettings.from_dsn(self.url),
                                               default_queue_name=self.queue_name)
            except (OSError, ConnectionError) as e:
                raise Misconfigured(f"cannot reach Redis at {self.url}: {e}") from e
        return self._pool

    async def enqueue(self, run: str, job_id: str) -> None:
        pool = await self.pool()
        await pool.enqueue_job(JOB_FUNCTION, run, _job_id=job_id, _queue_name=self.queue_name)

    async def abort(self, job_id: str) -> None:
        import asyncio
        import contextlib

        from arq.jobs import Job

        with contextlib.suppress(asyncio.TimeoutError):  # ask, do not wait: the worker acts on it
            await Job(job_id, await self.pool(), _queue_name=self.queue_name).abort(timeout=0.01)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


def queue_from_env(settings: Settings) -> Queue:
    """ARQ on ``settings.redis_url`` when set, else the local queue (``settings``: the caller's)."""
    if settings.redis_url:
        return ArqQueue(settings.redis_url, settings.queue or DEFAULT_QUEUE)
    return LocalQueue()

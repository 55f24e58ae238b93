"""Where a training run's audit events go: the log in this process, or the server over HTTP.

Training steps must not wait for the log, and the log must not lose a run's events. So a
sink buffers events and a writer thread of its own sends them, in order, in batches; the
first failure is kept and raised by :meth:`AuditSink.check` (which the callback calls at
every hook, so training stops with a clear error) and by :meth:`AuditSink.flush`.

* :class:`LogSink` appends to a :class:`ledger.log.Log` owned by an asyncio loop running in
  another thread (the worker runs training in a thread): ``asyncio.run_coroutine_threadsafe``.
* :class:`HttpSink` posts ``{"events": [...]}`` to ``POST /api/v1/events`` with a Bearer token
  (a token with the ``events:write`` scope), for a team's own script on another machine.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ledger.errors import LedgerError
from ledger.log import Log

__all__ = ["AuditSink", "AuditSinkError", "HttpSink", "LogSink", "MemorySink"]

MAX_BATCH = 500  # events per append / request (the API takes up to 1000)


class AuditSinkError(LedgerError):
    """Audit events could not be recorded; the run must stop rather than go on unaudited."""


class AuditSink:
    """Buffered, ordered, non-blocking delivery of events by a writer thread."""

    name = "sink"

    def __init__(self, *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._buffer: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._error: BaseException | None = None
        self.sent = 0
        self._thread: threading.Thread | None = None

    # -- the training thread's side ---------------------------------------------------------

    def emit(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Queue events (returns at once); raises if an earlier delivery failed."""
        self.check()
        with self._cond:
            if self._closed:
                raise AuditSinkError(f"the {self.name} is closed")
            self._buffer.extend(dict(e) for e in events)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"audit-{self.name}", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def check(self) -> None:
        """Raise :class:`AuditSinkError` if a delivery has failed."""
        if self._error is not None:
            raise AuditSinkError(f"audit events could not be recorded by the {self.name}: "
                                 f"{type(self._error).__name__}: {self._error}") from self._error

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued is delivered; raise if anything failed."""
        self._before_flush()
        deadline = timeout if timeout is not None else self.timeout
        with self._cond:
            done = self._cond.wait_for(
                lambda: (not self._buffer and not self._busy) or self._error is not None, timeout=deadline)
        self.check()
        if not done:
            raise AuditSinkError(f"the {self.name} did not deliver the run's audit events "
                                 f"within {deadline} s")

    def close(self) -> None:
        """Flush, then stop the writer thread."""
        try:
            self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._buffer or self._closed)
                if not self._buffer:
                    return
                batch, self._buffer = self._buffer[:MAX_BATCH], self._buffer[MAX_BATCH:]
                self._busy = True
            try:
                self._send(batch)
            except BaseException as e:  # noqa: BLE001 (kept, and raised in the training thread)
                with self._cond:
                    self._error = e
                    self._busy = False
                    self._buffer.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self.sent += len(batch)
                self._busy = False
                self._cond.notify_all()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _before_flush(self) -> None:
        pass


class LogSink(AuditSink):
    """Append to ``log``, which belongs to the asyncio ``loop`` running in another thread."""

    name = "log"

    def __init__(self, log: Log, loop: asyncio.AbstractEventLoop, *, timeout: float = 60.0) -> None:
        super().__init__(timeout=timeout)
        self.log = log
        self.loop = loop

    def _send(self, batch: list[dict[str, Any]]) -> None:
        future = asyncio.run_coroutine_threadsafe(self.log.append(batch), self.loop)
        future.result(timeout=self.timeout)

    def _before_flush(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self.loop:
            raise AuditSinkError("LogSink.flush() was called on the log's own event loop, which would "
                                 "wait forever: run training in a thread (asyncio.to_thread)")


class HttpSink(AuditSink):
    """Post batches to a server's ``/api/v1/events`` with ``Authorization: Bearer <token>``."""

    name = "HTTP sink"

    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        super().__init__(timeout=timeout)
        base = url.rstrip("/")
        self.url = base if base.endswith("/api/v1/events") else base + "/api/v1/events"
        self.token = token
        self._client: Any = None

    def _send(self, batch: list[dict[str, Any]]) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout,
                                        headers={"Authorization": f"Bearer {self.token}"})
        response = self._client.post(self.url, json={"events": batch})
        if response.status_code >= 300:
            detail = response.text[:300].strip()
            raise AuditSinkError(f"POST {self.url} answered {response.status_code}: {detail}")


class MemorySink(AuditSink):
    """Keeps events in a list (for scripts that want the events themselves, and for dry runs)."""

    name = "memory sink"

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def _send(self, batch: list[dict[str, Any]]) -> None:
        self.events.extend(batch)

"""A small synchronous client for the training API, for scripts and notebooks.

    from app.client import Client
    with Client("http://127.0.0.1:8000", token) as c:
        run = c.submit({"kind": "reward_model", "base_model": "/models/base", "dataset": "ds_x", ...})
        job = c.wait(run, timeout=600)

Errors::

    ClientError            any failure of a request (``status`` and the problem ``detail``; 0 when the
    │                      server could not be reached)
    ├── Refused            409: over the privacy budget, wrong state (``problem`` has the numbers)
    ├── Forbidden          401/403: no, bad or insufficient token, or the four-eyes rule
    └── NotFoundError      404: no such run or model
    WaitTimeout            ``wait`` ran out of time (the job goes on)
"""

from __future__ import annotations

import time
from typing import Any

import httpx

__all__ = ["Client", "ClientError", "Forbidden", "NotFoundError", "Refused", "WaitTimeout"]

FINAL = ("completed", "failed", "cancelled", "halted")


class ClientError(Exception):
    """A request failed; ``status`` is the HTTP status (0: no answer), ``problem`` the body."""

    def __init__(self, message: str, status: int = 0, problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}


class Refused(ClientError):
    """409: the server refused in the current state (budget, not running, not approved)."""


class Forbidden(ClientError):
    """401 or 403."""


class NotFoundError(ClientError):
    """404."""


class WaitTimeout(ClientError, TimeoutError):
    """The job did not finish in time."""


class Client:
    """``/api/v1/jobs`` and the halt decision, with a Bearer token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}"})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ClientError(f"{method} {path}: the server could not be reached: {e}") from e
        if response.status_code < 400:
            return response.json()
        try:
            problem = response.json()
            detail = problem.get("detail") or response.reason_phrase
        except ValueError:
            problem, detail = {}, response.text[:300] or response.reason_phrase
        message = f"{method} {path}: {response.status_code}: {detail}"
        cls = {409: Refused, 401: Forbidden, 403: Forbidden, 404: NotFoundError}.get(response.status_code,
                                                                                   ClientError)
        raise cls(message, response.status_code, problem)

    def submit(self, spec: dict[str, Any]) -> str:
        """Submit a job spec; returns the run id."""
        return str(self._call("POST", "/api/v1/jobs", json=spec)["run"])

    def status(self, run: str) -> dict[str, Any]:
        """The job row: ``status``, ``steps``, ``epsilon``, ``model``, ``checkpoints``..."""
        result: dict[str, Any] = self._call("GET", f"/api/v1/jobs/{run}")
        return result

    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else None
        jobs: list[dict[str, Any]] = self._call("GET", "/api/v1/jobs", params=params)["jobs"]
        return jobs

    def wait(self, run: str, timeout: float = 3600.0, poll: float = 1.0) -> dict[str, Any]:
        """Poll until the job completes, fails, is cancelled or halted; returns its last status."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.status(run)
            if job["status"] in FINAL:
                return job
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"job {run} is still {job['status']} after {timeout:g} s")
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def cancel(self, run: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/api/v1/jobs/{run}/cancel")
        return result

    def halt(self, run: str, why: str) -> dict[str, Any]:
        """Halt a run (the token's account must be an overseer or admin); returns the decision."""
        result: dict[str, Any] = self._call("POST", f"/api/v1/oversight/runs/{run}/halt",
                                            json={"justification": why})
        return result

"""Rate limits: failed sign-ins per account name and address and per account, and writes per caller.

Counted in this process's memory. Several server processes each count on their own: the
effective limit is the setting times the number of processes, which still stops guessing and
runaway scripts. The limits are run-time settings (``login_failures_per_minute``,
``write_requests_per_minute``).

Failed sign-ins are counted exactly over the last minute (:class:`SlidingWindowLog`: the limit
is at most 1,000, so keeping the times is cheap): a fixed window would let a guesser spend
twice the limit across a minute's boundary. :class:`LoginThrottle` holds two such counts: per
(account name, address), and per account name across all addresses, so a guesser who spreads
over many addresses is stopped too. Writes are counted in fixed one-minute windows
(:class:`WindowCounter`, O(1) per request, so the append path keeps its speed, at the price of
up to twice the limit across a boundary).

:class:`WriteThrottle` counts every POST/PUT/PATCH/DELETE (sign-in has its own counter) per
caller: the hash of the ``Authorization`` header (so nobody can spend another token's budget by
naming its public prefix), else the session cookie, else the client address. Over the limit is
a 429 problem detail with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque

from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["SAFE_METHODS", "LoginThrottle", "SlidingWindowLog", "WindowCounter", "WriteThrottle",
           "too_many"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
WINDOW = 60.0
_MAX_KEYS = 100_000


def too_many(what: str, retry_after: float) -> TooManyRequestsException:
    seconds = max(1, math.ceil(retry_after))
    return TooManyRequestsException(f"{what}; try again in {seconds} s",
                                    headers={"Retry-After": str(seconds)})


class _Counter:
    """What both counters offer: ``retry_after`` and ``add``, and ``hit`` made of the two."""

    def retry_after(self, key: str, limit: int, now: float | None = None) -> float | None:
        raise NotImplementedError

    def add(self, key: str, now: float | None = None) -> None:
        raise NotImplementedError

    def hit(self, key: str, limit: int, now: float | None = None) -> float | None:
        """Count one event unless over ``limit``: None when allowed, else the seconds to wait."""
        now = time.time() if now is None else now
        wait = self.retry_after(key, limit, now)
        if wait is None:
            self.add(key, now)
        return wait


class WindowCounter(_Counter):
    """Counts per key in one-minute windows."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._counts: dict[str, tuple[int, int]] = {}

    def _slot(self, now: float) -> int:
        return int(now // self.window)

    def retry_after(self, key: str, limit: int, now: float | None = None) -> float | None:
        """Seconds until ``key`` may go on, when it has reached ``limit`` in this window; else None."""
        now = time.time() if now is None else now
        slot, count = self._counts.get(key, (-1, 0))
        if slot == self._slot(now) and count >= limit:
            return (slot + 1) * self.window - now
        return None

    def add(self, key: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        current = self._slot(now)
        slot, count = self._counts.get(key, (current, 0))
        self._counts[key] = (current, count + 1 if slot == current else 1)
        if len(self._counts) > _MAX_KEYS:
            self._counts = {k: v for k, v in self._counts.items() if v[0] == current}

    def reset(self, key: str) -> None:
        self._counts.pop(key, None)


class SlidingWindowLog(_Counter):
    """Counts per key over the last ``window`` seconds exactly, keeping the times (at most
    ``cap`` per key, so limits up to ``cap`` are exact)."""

    def __init__(self, window: float = WINDOW, cap: int = 1000) -> None:
        self.window = window
        self.cap = cap
        self._times: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._times.get(key)
        if times is not None:
            while times and times[0] <= now - self.window:
                times.popleft()
            if not times:
                del self._times[key]
                return None
        return times

    def retry_after(self, key: str, limit: int, now: float | None = None) -> float | None:
        """Seconds until ``key`` may go on, when ``limit`` events fell in the last window; else None."""
        now = time.time() if now is None else now
        times = self._recent(key, now)
        if times is None or len(times) < limit:
            return None
        # the wait until enough of them are older than a window for one more to fit
        return times[len(times) - limit] + self.window - now

    def add(self, key: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        times = self._recent(key, now)
        if times is None:
            if len(self._times) >= _MAX_KEYS:  # drop keys with nothing left in the window
                for k in list(self._times):
                    self._recent(k, now)
            times = self._times[key] = deque(maxlen=self.cap)
        times.append(now)

    def reset(self, key: str) -> None:
        self._times.pop(key, None)


class LoginThrottle:
    """Failed sign-ins, counted per (account name, address) and per account name.

    The per-address limit is low (a guess or two a minute from one place is plenty for a
    person); the per-account limit is higher, so one address alone never reaches it: holding an
    account up for everyone takes failures from several addresses at once. Either hold lasts
    only until the failures are a window old (no growing lock-out), and attempts refused while
    held are not counted, so nobody can lengthen it by hammering. An address that signed in to
    the account within ``known_for`` seconds is held only by its own count: the account's owner
    keeps getting in from where they usually do while others guess from elsewhere.

    Names compare without case; the caller gives the address it trusts (``request.client``,
    which names a forwarding proxy's client only when that proxy is trusted).
    """

    def __init__(self, window: float = WINDOW, known_for: float = 30 * 86400) -> None:
        self.per_address = SlidingWindowLog(window)
        self.per_account = SlidingWindowLog(window)
        self.known_for = known_for
        self._known: dict[str, float] = {}  # "name\0address" -> last successful sign-in

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str]:
        account = name.casefold()
        return account, f"{account}\x00{address}"

    def _is_known(self, pair: str, now: float) -> bool:
        seen = self._known.get(pair)
        return seen is not None and seen > now - self.known_for

    def retry_after(self, name: str, address: str, per_address: int, per_account: int,
                    now: float | None = None) -> tuple[str, float] | None:
        """None when this address may try to sign in as ``name``; else what holds it up
        (``"address"`` or ``"account"``) and the seconds to wait."""
        now = time.time() if now is None else now
        account, pair = self._keys(name, address)
        wait = self.per_address.retry_after(pair, per_address, now)
        if wait is not None:
            return "address", wait
        if not self._is_known(pair, now):
            wait = self.per_account.retry_after(account, per_account, now)
            if wait is not None:
                return "account", wait
        return None

    def failed(self, name: str, address: str, now: float | None = None) -> None:
        account, pair = self._keys(name, address)
        self.per_address.add(pair, now)
        self.per_account.add(account, now)

    def succeeded(self, name: str, address: str, now: float | None = None) -> None:
        """Forget this address's failures and remember it for the account. The account's count
        stays: one right password must not buy a distributed guesser a fresh allowance."""
        now = time.time() if now is None else now
        _, pair = self._keys(name, address)
        self.per_address.reset(pair)
        self._known.pop(pair, None)
        self._known[pair] = now  # newest last: the oldest go first when there are too many
        if len(self._known) > _MAX_KEYS:
            for stale in list(self._known)[: len(self._known) - _MAX_KEYS]:
                del self._known[stale]


def _caller(scope: Scope, session_cookie: str) -> str:
    headers = dict(scope.get("headers") or [])
    auth = headers.get(b"authorization")
    if auth:
        return "t:" + hashlib.sha256(auth).hexdigest()[:32]
    for part in headers.get(b"cookie", b"").split(b";"):
        name, _, value = part.strip().partition(b"=")
        if name.decode("latin-1") == session_cookie and value and value != b"null":
            return "s:" + hashlib.sha256(value).hexdigest()[:32]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


class WriteThrottle:
    """ASGI middleware: at most ``write_requests_per_minute`` state-changing requests per caller."""

    def __init__(self, app: ASGIApp, counter: WindowCounter, session_cookie: str,
                 exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.counter = counter  # one per app: Litestar builds a middleware instance per route
        self.session_cookie = session_cookie
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] not in SAFE_METHODS
                and not scope["path"].startswith(self.exempt)):
            settings = getattr(scope["app"].state, "settings", None)
            limit = settings["write_requests_per_minute"] if settings is not None else 120_000
            wait = self.counter.hit(_caller(scope, self.session_cookie), limit)
            if wait is not None:
                raise too_many(f"more than {limit} write requests in a minute", wait)
        await self.app(scope, receive, send)

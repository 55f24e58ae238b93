"""Rate limits: failed sign-ins per account name and address and per account, writes per token or
session. (What uvicorn makes of X-Forwarded-For is tests/app/server/test_proxy_headers.py.)"""

from __future__ import annotations

import httpx

from app.accounts import create_account
from app.auth.throttle import LoginThrottle, SlidingWindowLog, WindowCounter
from app.core.database import Database
from app.core.keyring import Keyring
from ledger.log import Log
from tests.support.accounts import PASSWORD, auth, bootstrap, problem
from tests.support.asgi import running
from tests.support.sessions import csrf, sign_in


def test_window_counter_counts_per_key_and_minute() -> None:
    c = WindowCounter(window=60)
    t = 6000.0  # the start of a window
    assert [c.hit("a", 3, t + i) for i in range(3)] == [None, None, None]
    assert c.hit("a", 3, t + 10) == 50  # seconds until the next window
    assert c.hit("b", 3, t + 10) is None  # another key counts on its own
    assert c.hit("a", 3, t + 60) is None  # a new window
    c.reset("a")
    assert c.retry_after("a", 1, t + 61) is None
    c.add("a", t + 61)
    assert c.retry_after("a", 1, t + 61) == 59


def test_sliding_window_log_counts_the_last_minute_exactly() -> None:
    c = SlidingWindowLog(window=60)
    t = 6000.0
    assert [c.hit("a", 3, t + 50 + i) for i in range(3)] == [None, None, None]  # at 50, 51, 52
    # a fixed window would start afresh at t + 60; the last minute still holds three
    assert c.hit("a", 3, t + 61) == 49  # until the one at 50 is a minute old, at 110
    assert c.hit("b", 3, t + 61) is None  # another key counts on its own
    assert c.hit("a", 3, t + 110) is None  # 50 has left the window: one more fits
    assert c.retry_after("a", 3, t + 110) == 1  # 51, 52, 110 are in it; 51 leaves at 111
    c.reset("a")
    assert c.retry_after("a", 1, t + 111) is None
    c.add("a", t + 200)
    assert c.retry_after("a", 1, t + 230) == 30
    assert c.retry_after("a", 1, t + 260) is None and "a" not in c._times  # forgotten once old


def test_login_throttle_holds_an_address_then_the_account_for_a_window_at_most() -> None:
    t = LoginThrottle(window=60)
    now = 6000.0

    def held(name: str, address: str, at: float) -> tuple[str, float] | None:
        return t.retry_after(name, address, 2, 5, now + at)

    t.succeeded("olga", "10.0.0.1", now)  # olga's usual address
    for i in range(2):
        t.failed("Olga", "10.0.0.9", now + i)
    assert held("olga", "10.0.0.9", 2) == ("address", 58)  # names compare without case
    assert held("olga", "10.0.0.8", 2) is None  # another address counts on its own
    for i in range(3):  # one failure from each of three more addresses: five for the account
        t.failed("olga", f"10.0.1.{i}", now + 10 + i)
    assert held("olga", "10.0.0.8", 20) == ("account", 40)  # until the first is a minute old
    assert held("olga", "10.0.0.1", 20) is None  # where she signed in before: her own count only
    assert held("ivan", "10.0.0.8", 20) is None  # another account is not held up
    # refused attempts are not counted, so the hold ends a window after the last failure
    assert held("olga", "10.0.0.8", 61) is None
    assert held("olga", "10.0.0.9", 61) is None
    # a success clears its address's count but not the account's
    t.failed("olga", "10.0.0.1", now + 70)
    t.succeeded("olga", "10.0.0.1", now + 71)
    assert t.per_address.retry_after("olga\x0010.0.0.1", 1, now + 71) is None
    assert t.per_account.retry_after("olga", 2, now + 71) is not None  # at 12 and 70
    # what it remembers of known addresses ends, too
    assert held("olga", "10.0.0.1", 30 * 86400 + 72) is None
    assert not t._is_known("olga\x0010.0.0.1", now + 30 * 86400 + 72)


async def test_failed_sign_ins_are_throttled_per_account_from_any_address(db: Database, log: Log,
                                                                         keyring: Keyring) -> None:
    await create_account(db, log, "olga", "operator", PASSWORD, pseudonymizer=keyring.pseudonymizer)
    async with running(log, keyring) as (app, client):

        def at(address: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 4000)),
                                     base_url="http://t")

        async with at("10.0.0.1") as home:
            assert (await sign_in(home, "olga")).status_code == 200
        statuses = []
        for i in range(25):  # a guesser with many addresses, two guesses from each
            async with at(f"192.0.2.{i}") as guesser:
                statuses += [(await sign_in(guesser, "olga", "guess")).status_code for _ in range(2)]
        # 20 failures a minute for the account, from any number of addresses, then 429
        assert statuses == [401] * 20 + [429] * 30, statuses
        async with at("192.0.2.200") as other:
            problem(await sign_in(other, "olga"), 429, "failed sign-ins for this account")
        async with at("10.0.0.1") as home:  # her usual address still gets her in
            assert (await sign_in(home, "olga")).status_code == 200
        # the limit is a run-time setting
        app.state.settings.apply("account_login_failures_per_minute", 1000)
        async with at("192.0.2.200") as other:
            assert (await sign_in(other, "olga")).status_code == 200


async def test_failed_sign_ins_are_throttled(db: Database, log: Log, keyring: Keyring) -> None:
    await create_account(db, log, "olga", "operator", PASSWORD, pseudonymizer=keyring.pseudonymizer)
    await create_account(db, log, "ivan", "operator", PASSWORD, pseudonymizer=keyring.pseudonymizer)
    async with running(log, keyring) as (_, client):
        for _ in range(5):
            problem(await sign_in(client, "olga", "guess"), 401)
        r = await sign_in(client, "olga")  # the right password, too late
        problem(r, 429, "too many failed sign-ins")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        problem(await sign_in(client, "OLGA", "guess"), 429)  # names compare without case
        form = {"username": "olga", "password": PASSWORD, "_csrf_token": await csrf(client)}
        r = await client.post("/auth/login", data=form)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?error=throttled")
        assert (await sign_in(client, "ivan")).status_code == 200  # another account is not held up
        # a success resets the count
        for _ in range(4):
            problem(await sign_in(client, "ivan", "guess"), 401)
        assert (await sign_in(client, "ivan")).status_code == 200
        for _ in range(4):
            problem(await sign_in(client, "ivan", "guess"), 401)
        assert (await sign_in(client, "ivan")).status_code == 200


async def test_writes_are_throttled_per_caller(log: Log, keyring: Keyring) -> None:
    admin = await bootstrap(log, keyring)
    one = await bootstrap(log, keyring, "one", "operator")
    two = await bootstrap(log, keyring, "two", "operator")
    async with running(log, keyring) as (_, client):
        r = await client.put("/api/v1/config", json={"write_requests_per_minute": 3}, headers=auth(admin))
        assert r.status_code == 200, r.text
        size = await log.sequenced_size()
        answers = [await client.post("/api/v1/events", json={"kind": "x", "i": i}, headers=auth(one))
                   for i in range(8)]
        statuses = [r.status_code for r in answers]
        # three per minute (six if the minute turned over during the loop), then 429
        assert statuses[:3] == [201] * 3 and 429 in statuses and statuses.count(201) <= 6, statuses
        r = answers[statuses.index(429)]
        problem(r, 429, "write requests")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert await log.sequenced_size() == size + statuses.count(201)  # refused ones appended nothing
        # another token, reads, and a session are counted on their own
        r = await client.post("/api/v1/events", json={"kind": "x"}, headers=auth(two))
        assert r.status_code == 201, r.text
        assert (await client.get("/api/v1/whoami", headers=auth(one))).status_code == 200
        # a forged header with the token's public prefix does not spend its budget
        fake = one[:12] + "A" * 35
        problem(await client.post("/api/v1/events", json={"kind": "x"}, headers=auth(fake)), 401)
        async with httpx.AsyncClient(transport=client._transport, base_url="http://t") as browser:  # noqa: SLF001
            assert (await sign_in(browser, "one")).status_code == 200
            token = await csrf(browser)
            r = await browser.post("/api/v1/events", json={"kind": "x"}, headers={"X-CSRFToken": token})
            assert r.status_code == 201, r.text

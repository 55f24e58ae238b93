"""Sign-in gives a guesser no signal that a password was right for an account with a second factor,
and a browser asking ``GET /auth/login`` lands on the sign-in page (issue 15).

The portal over a real SQLite log, driven over ASGI; pyotp is the authenticator app.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from ledger.log import Log
from tests.support.portal import HTML, PASSWORD, accounts, csrf, enrolled, portal

JSON = {"Accept": "application/json"}


def _other(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.AsyncClient:
    """A fresh browser or script on the same app (its own cookies)."""
    return httpx.AsyncClient(transport=client._transport, base_url="http://portal.test",  # noqa: SLF001
                             headers=headers)


async def _attempt(client: httpx.AsyncClient, password: str, headers: dict[str, str]) -> httpx.Response:
    async with _other(client, headers) as c:
        await c.get("/login")
        return await c.post("/auth/login", data={"username": "ada", "password": password, "totp": "",
                                                 "next": "/runs", "_csrf_token": csrf(c)})


def _same(r: httpx.Response) -> tuple[int, Any]:
    body = r.json()
    body.pop("instance", None)
    body.pop("request_id", None)
    return r.status_code, body


async def test_api_answers_alike_for_right_and_wrong_password_without_code(sqlite_log: Log,
                                                                            tmp_path: Path) -> None:
    await accounts(sqlite_log, tmp_path / "keys", ada="admin")
    async with portal(sqlite_log, tmp_path / "keys") as client:
        await enrolled(client, "ada")
        right = await _attempt(client, PASSWORD, JSON)
        wrong = await _attempt(client, "not-the-password", JSON)
        assert right.status_code == 401, right.text
        assert _same(right) == _same(wrong), (right.text, wrong.text)
        assert "totp_required" not in right.text
        # a right code still signs in, so the code stays the only thing that makes the difference
        async with _other(client, JSON) as c:
            await c.get("/login")
            secretless = await c.post("/auth/login", data={"username": "ada", "password": PASSWORD,
                                                           "totp": "000000", "_csrf_token": csrf(c)})
            assert _same(secretless) == _same(wrong)


async def test_portal_answers_alike_for_right_and_wrong_password_without_code(sqlite_log: Log,
                                                                               tmp_path: Path) -> None:
    await accounts(sqlite_log, tmp_path / "keys", ada="admin", olga="operator")
    async with portal(sqlite_log, tmp_path / "keys") as client:
        await enrolled(client, "ada")
        pages = []
        for password in (PASSWORD, "not-the-password"):
            async with _other(client, HTML) as c:
                await c.get("/login")
                r = await c.post("/auth/login", data={"username": "ada", "password": password, "totp": "",
                                                      "next": "/runs", "_csrf_token": csrf(c)})
                assert r.status_code == 303, r.text
                shown = await c.get(r.headers["location"])
                pages.append((r.headers["location"], shown.status_code,
                              re.sub(r"[0-9a-f]{64,}", "<csrf>", shown.text)))  # modulo the CSRF token
        assert pages[0] == pages[1]
        assert "This account has a second factor" not in pages[0][2]
        # the code field is offered to everyone, so the page says nothing about which accounts have one
        for name in ("ada", "olga", "nobody"):
            async with _other(client, HTML) as c:
                page = await c.get(f"/login?next=/runs&user={name}")
                assert '<input id="totp" name="totp"' in page.text and " required" not in \
                    re.search(r'<input id="totp"[^>]*>', page.text).group(0)  # type: ignore[union-attr]
        async with _other(client, HTML) as c:  # success differs
            await c.get("/login")
            ok = await c.post("/auth/login", data={"username": "olga", "password": PASSWORD, "totp": "",
                                                   "next": "/runs", "_csrf_token": csrf(c)})
            assert ok.status_code == 303 and ok.headers["location"] == "/runs"


async def test_wrong_password_and_missing_code_count_alike_towards_throttling(sqlite_log: Log,
                                                                               tmp_path: Path) -> None:
    """Both are failures: a guesser cannot tell them apart by when the 429 comes either."""
    await accounts(sqlite_log, tmp_path / "keys", ada="admin")
    async with portal(sqlite_log, tmp_path / "keys") as client:
        await enrolled(client, "ada")
        statuses = [(await _attempt(client, PASSWORD, JSON)).status_code for _ in range(12)]
        assert statuses[0] == 401 and statuses[-1] == 429, statuses


async def test_browser_get_auth_login_goes_to_the_sign_in_page(sqlite_log: Log, tmp_path: Path) -> None:
    async with portal(sqlite_log, tmp_path / "keys") as client:
        r = await client.get("/auth/login")
        assert r.status_code in (302, 303) and r.headers["location"] == "/login", r.headers
        r = await client.get("/auth/login?next=/runs")
        assert r.status_code in (302, 303) and r.headers["location"] == "/login?next=/runs", r.headers
        r = await client.get("/auth/login?next=//evil.example")
        assert r.headers["location"] == "/login", r.headers
        page = await client.get("/auth/login", follow_redirects=True)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        # scripts keep their answer: a problem detail, not a redirect
        api = await client.get("/auth/login", headers=JSON)
        assert api.status_code == 405 and api.headers["content-type"].startswith("application/problem+json")

"""Signing in to the API's session endpoints as a script would (JSON answers, the CSRF header)."""

from __future__ import annotations

import httpx

from tests.support.accounts import PASSWORD

JSON = {"Accept": "application/json"}


async def csrf(client: httpx.AsyncClient) -> str:
    """The CSRF token for this client (``GET /auth/session`` sets the cookie and shows the token)."""
    r = await client.get("/auth/session")
    assert r.status_code == 200, r.text
    token = r.json()["csrf_token"]
    assert token and client.cookies.get("csrftoken") == token
    return str(token)


async def sign_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD, totp: str = "",
                  **extra: str) -> httpx.Response:
    form = {"username": name, "password": password, "totp": totp, **extra}
    return await client.post("/auth/login", data=form, headers={**JSON, "X-CSRFToken": await csrf(client)})

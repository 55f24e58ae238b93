"""TOTP enrolment in the portal: a QR code of the otpauth URI drawn server-side as inline SVG, and a
mistyped first code that keeps the pending secret so the same authenticator entry can retry (issue 15).

The portal over a real SQLite log, driven over ASGI; pyotp is the authenticator app.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pyotp
import segno

from ledger.log import Log
from tests.support.portal import accounts, csrf, portal, sign_in


def _shown(text: str) -> tuple[str, str, str]:
    """The secret, the otpauth URI and the inline SVG the enrolment page shows."""
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', text)
    uri = re.search(r'<a href="([^"]+)" id="totp-uri">', text)
    svg = re.search(r"<svg\b.*?</svg>", text, re.S)
    assert secret and uri and svg, text
    return secret.group(1), html.unescape(uri.group(1)), svg.group(0)


async def test_enrolment_page_shows_the_otpauth_uri_as_an_inline_svg_qr_code(sqlite_log: Log,
                                                                             tmp_path: Path) -> None:
    await accounts(sqlite_log, tmp_path / "keys", ada="admin")
    async with portal(sqlite_log, tmp_path / "keys") as client:
        await sign_in(client, "ada")
        page = await client.post("/account/totp", data={"_csrf_token": csrf(client)})
        assert page.status_code == 200, page.text
        secret, uri, svg = _shown(page.text)
        assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
        assert svg == segno.make_qr(uri, error="m").svg_inline(scale=4, border=4, dark="#000", light="#fff")
        # nothing outside the page: no image, script or style fetched from elsewhere for the code
        assert "http://" not in svg and "https://" not in svg and "<img" not in page.text


async def test_a_mistyped_code_keeps_the_secret_and_the_right_one_then_confirms(sqlite_log: Log,
                                                                                 tmp_path: Path) -> None:
    await accounts(sqlite_log, tmp_path / "keys", ada="admin")
    async with portal(sqlite_log, tmp_path / "keys") as client:
        await sign_in(client, "ada")
        page = await client.post("/account/totp", data={"_csrf_token": csrf(client)})
        secret, uri, svg = _shown(page.text)
        app = pyotp.TOTP(secret)  # the entry the person added to their authenticator app
        near = {app.at(time.time() + d * app.interval) for d in (-1, 0, 1)}
        wrong = next(c for c in (f"{n:06d}" for n in range(1000)) if c not in near)  # a mistyped code
        refused = await client.post("/account/totp/confirm", data={"code": wrong,
                                                                   "_csrf_token": csrf(client)})
        assert refused.status_code == 400, refused.text
        assert "not accepted" in refused.text and "same" in refused.text  # says to retry with the same entry
        assert _shown(refused.text) == (secret, uri, svg)  # the same secret, still on screen
        assert 'action="/account/totp/confirm"' in refused.text
        done = await client.post("/account/totp/confirm", data={"code": app.now(),
                                                                "_csrf_token": csrf(client)})
        assert done.status_code == 303, done.text
        account = await client.get("/account")
        assert "enrolled" in account.text and "not enrolled" not in account.text

"""The portal over a real log (SQLite and PostgreSQL), driven over ASGI as a browser would.

Browser-only behaviour (htmx polling, the in-browser proof check) is in ``tests/browser``; here:
sign-in and who sees what, the HTML error pages next to the API's problem details, the explorer's
search and the proof it hands the browser, and refusals of oversight actions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import re
from pathlib import Path

import pyotp
import pytest

from app.portal.charts import line_chart
from app.portal.explorer import parse_hash
from app.portal.runs import metric_series
from app.portal.signin import safe_next
from ledger.log import Log
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.note import open_note
from ledger.proofs import unb64
from tests.support.portal import accounts, csrf, enrolled, portal, sign_in


async def test_signed_out_browser_gets_sign_in_and_html_errors(sqlite_log: Log, tmp_path: Path) -> None:
    async with portal(sqlite_log, tmp_path / "keys") as client:
        r = await client.get("/")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/")
        page = await client.get(r.headers["location"])
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for name in ("username", "password", "totp"):
            assert re.search(rf'<label for="{name}">', page.text), name
        assert 'name="_csrf_token"' in page.text
        r = await client.get("/explorer/entries/0")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/explorer/entries/0"
        missing = await client.get("/no/such/page")
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
        assert "<h1>Not Found</h1>" in missing.text
        # the API keeps its problem details, whatever the caller accepts
        api = await client.get("/log/v1/proof/99")
        assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")
        scripted = await client.get("/no/such/page", headers={"Accept": "application/json"})
        assert scripted.headers["content-type"].startswith("application/problem+json")
        # htmx polling after the session ended: a full-page redirect to sign-in, not a fragment
        polled = await client.get("/dashboard/health", headers={"HX-Request": "true"})
        assert polled.headers["hx-redirect"].startswith("/login?next=/dashboard/health")


async def test_sign_in_messages_and_next(log: Log, tmp_path: Path) -> None:
    await accounts(log, tmp_path / "keys", aud="auditor")
    async with portal(log, tmp_path / "keys") as client:
        await client.get("/login")
        bad = await client.post("/auth/login", data={"username": "aud", "password": "wrong-password",
                                                     "next": "/explorer", "_csrf_token": csrf(client)})
        assert bad.status_code == 303
        page = await client.get(bad.headers["location"])
        assert "not right" in page.text and 'value="/explorer"' in page.text
        ok = await sign_in(client, "aud", next_path="/explorer")
        assert ok.status_code == 303 and ok.headers["location"] == "/explorer"
        dash = await client.get("/")
        assert dash.status_code == 200 and "<h1>Dashboard</h1>" in dash.text
        assert 'aria-current="page"' in dash.text and 'id="log-size"' in dash.text
        for path in ("/dashboard/health", "/dashboard/activity", "/runs", "/datasets", "/account"):
            r = await client.get(path)
            assert r.status_code == 200, (path, r.text[:500])
        # an auditor gets no oversight or submit forms
        assert "/oversight/" not in (await client.get("/runs")).text
        assert 'action="/runs"' not in (await client.get("/runs")).text


async def test_overseer_must_enrol_a_second_factor(log: Log, tmp_path: Path) -> None:
    await accounts(log, tmp_path / "keys", ov="overseer")
    async with portal(log, tmp_path / "keys") as client:
        await sign_in(client, "ov")
        r = await client.get("/explorer")
        assert r.status_code == 303 and r.headers["location"] == "/account"
        enrol = await client.post("/account/totp", data={"_csrf_token": csrf(client)})
        assert enrol.status_code == 200
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol.text).group(1)  # type: ignore[union-attr]
        wrong = await client.post("/account/totp/confirm",
                                  data={"code": "12345x", "_csrf_token": csrf(client)})
        assert wrong.status_code == 400 and "not accepted" in wrong.text
        done = await client.post("/account/totp/confirm",
                                 data={"code": pyotp.TOTP(secret).now(), "_csrf_token": csrf(client)})
        assert done.status_code == 303 and done.headers["location"] == "/account"
        shown = (await client.get("/account")).text
        assert "Second factor enrolled" in shown and 'id="totp-state"><span class="ok">enrolled' in shown
        assert "Second factor enrolled" not in (await client.get("/account")).text  # a flash shows once
        assert (await client.get("/explorer")).status_code == 200


async def test_explorer_search_and_proof(log: Log, tmp_path: Path) -> None:
    await accounts(log, tmp_path / "keys", aud="auditor")
    await log.append([{"kind": "test.portal", "run": "run_TEST", "i": i} for i in range(7)])
    async with portal(log, tmp_path / "keys") as client:
        await sign_in(client, "aud")
        cp = await log.wait_for(7, timeout=10)
        for _ in range(100):  # the event index catches up in the background
            found = await client.get("/explorer", params={"run": "run_TEST"})
            if found.text.count("<td>test.portal</td>") == 7:
                break
            await asyncio.sleep(0.05)
        assert found.text.count("<td>test.portal</td>") == 7, found.text
        assert (await client.get("/explorer", params={"kind": "no.such"})).text.count("No entries match") == 1
        bad = await client.get("/explorer", params={"q": "not-a-hash"})
        assert bad.status_code == 200 and "neither a leaf index nor a SHA-256 hash" in bad.text
        bad_time = await client.get("/explorer", params={"kind": "test.portal", "since": "yesterday"})
        assert "since must be a date and time" in bad_time.text
        entry = await log.entry(3)
        jump = await client.get("/explorer", params={"q": leaf_hash(entry).hex()})
        assert jump.status_code == 303 and jump.headers["location"] == "/explorer/entries/3"
        page = (await client.get("/explorer/entries/3")).text
        # what the page hands to verify.js checks out against the signed checkpoint
        data = base64.b64decode(re.search(r'data-entry="([^"]+)"', page).group(1))  # type: ignore[union-attr]
        assert data == entry
        path = [unb64(h) for h in re.findall(r'<li data-hash="([^"]+)"', page)]
        note = html.unescape(re.search(r'<pre class="code" id="checkpoint-note">(.*?)</pre>', page, re.S)
                             .group(1)).encode()  # type: ignore[union-attr]
        size = int(re.search(r'data-size="(\d+)"', page).group(1))  # type: ignore[union-attr]
        assert size >= cp.size
        body = open_note(note, [log.signer.verifier]).text
        root = base64.b64decode(body.decode().split("\n")[2])
        verify_inclusion(3, size, leaf_hash(entry), path, root)
        assert (await client.get("/explorer/entries/999999")).status_code == 404


async def test_oversight_refusals_in_the_page(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, aud="auditor", ov="overseer")
    async with portal(log, keys) as client:
        await sign_in(client, "aud")
        form = {"run": "run_X", "justification": "a good reason to halt", "confirm": "yes", "back": "/runs"}
        forged = await client.post("/oversight/halt", data={**form, "_csrf_token": csrf(client)})
        assert forged.status_code == 403 and "only overseer or admin accounts" in forged.text
        no_csrf = await client.post("/oversight/halt", data=form)
        assert no_csrf.status_code == 403
    async with portal(log, keys) as client:
        await enrolled(client, "ov")
        token = {"_csrf_token": csrf(client)}
        unconfirmed = await client.post("/oversight/halt", data={**form, "confirm": "", **token})
        assert unconfirmed.status_code == 400 and "tick the confirmation box" in unconfirmed.text
        short = await client.post("/oversight/halt", data={**form, "justification": "because", **token})
        assert short.status_code == 400 and "at least 10 characters" in short.text
        unknown = await client.post("/oversight/halt", data={**form, **token})
        assert unknown.status_code == 404 and "no job" in unknown.text
        assert (await client.post("/oversight/dance", data={**form, **token})).status_code == 404
        kinds = [json.loads(await log.entry(i)).get("kind") for i in range(await log.sequenced_size())]
        assert "oversight.decision" not in kinds


async def test_administration(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, boss="admin", aud="auditor")
    async with portal(log, keys) as client:
        await sign_in(client, "aud")
        assert 'href="/admin"' not in (await client.get("/")).text
        assert (await client.get("/admin")).status_code == 403
    async with portal(log, keys) as client:
        await enrolled(client, "boss")
        page = await client.get("/admin")
        assert page.status_code == 200 and "<td>aud</td><td>auditor</td>" in page.text
        token = {"_csrf_token": csrf(client)}
        made = await client.post("/admin/create_account", data={"name": "svc", "role": "service", **token})
        assert made.status_code == 303
        assert "Account svc (service) created." in (await client.get("/admin")).text
        bad = await client.post("/admin/create_account", data={"name": "x", "role": "king",
                                                                "password": "long-enough-1", **token})
        assert bad.status_code == 400 and "unknown role" in bad.text
        created = await client.post("/admin/create_token",
                                    data={"name": "svc", "scopes": "events:write", **token})
        assert created.status_code == 303  # POST-redirect-GET: the secret is on the next page
        shown = await client.get(created.headers["location"])
        secret = re.search(r'id="new-token">(rat_[A-Za-z0-9_-]+)<', shown.text)
        assert secret, shown.text[-3000:]
        again = (await client.get("/admin")).text
        assert secret.group(1) not in again and secret.group(1)[4:12] in again  # shown once, then the prefix
        who = await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret.group(1)}",
                                                          "Accept": "application/json"})
        assert who.status_code == 200 and who.json()["account"] == "svc"
        idle = {"key": "session_idle_seconds", **token}
        changed = await client.post("/admin/setting", data={**idle, "value": "600"})
        assert changed.status_code == 303
        refused = await client.post("/admin/setting", data={**idle, "value": "-5"})
        assert refused.status_code == 400 and 'id="admin-error"' in refused.text
        await log.integrate()
        kinds = [json.loads(await log.entry(i)).get("kind") for i in range(await log.sequenced_size())]
        assert {"account.created", "token.created", "config.changed", "account.totp_enrolled"} <= set(kinds)


async def test_reports(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, aud="auditor", op="operator")
    async with portal(log, keys) as client:
        await sign_in(client, "op")
        assert "Run checks now" not in (await client.get("/reports")).text
        assert (await client.post("/reports/checks", data={"_csrf_token": csrf(client)})).status_code == 403
    async with portal(log, keys) as client:
        await sign_in(client, "aud")
        assert "No check has run yet" in (await client.get("/reports")).text
        ran = await client.post("/reports/checks", data={"_csrf_token": csrf(client)})
        assert ran.status_code == 303
        page = (await client.get("/reports")).text
        assert "Checks done:" in page and "Newest check:" in page
        token = {"_csrf_token": csrf(client)}
        report = await client.post("/reports/report", data={"kind": "all", "format": "html", **token})
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
        assert report.headers["content-disposition"].startswith("inline")
        as_json = await client.post("/reports/report", data={"kind": "all", "format": "json", **token})
        assert as_json.status_code == 200 and as_json.headers["content-disposition"].startswith("attachment")
        json.loads(as_json.content)
        bad = await client.post("/reports/report", data={"kind": "run", "format": "html", **token})
        assert bad.status_code == 400 and "a run scope needs a run" in bad.text


async def test_incident_freeze_in_the_portal(log: Log, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The Art. 73 freeze from the Reports page: the list's empty state, who sees the form, the
    refusals (written nowhere), and a freeze by an overseer shown with its entry and bundle."""
    monkeypatch.delenv("RLHF_AUDIT_S3_ENDPOINT", raising=False)
    monkeypatch.setenv("RLHF_AUDIT_OBJECTS_DIR", str(tmp_path / "objects"))
    keys = tmp_path / "keys"
    await accounts(log, keys, aud="auditor", ov="overseer")
    await log.append([{"kind": "test.portal", "run": "run_FZ", "i": i} for i in range(3)])
    why = "users report harmful completions from this run"
    form = {"kind": "run", "run": "run_FZ", "reason": why, "confirm": "yes"}

    async def freezes() -> list[int]:
        await log.integrate()
        return [i for i in range(await log.sequenced_size())
                if json.loads(await log.entry(i)).get("kind") == "incident.frozen"]

    async with portal(log, keys) as client:
        await sign_in(client, "aud")
        page = (await client.get("/reports")).text
        assert 'id="no-incidents"' in page and 'action="/reports/incidents"' not in page
        forged = await client.post("/reports/incidents", data={**form, "_csrf_token": csrf(client)})
        assert forged.status_code == 403 and "only overseer or admin accounts" in forged.text
    assert await freezes() == []
    async with portal(log, keys) as client:
        await enrolled(client, "ov")
        assert 'action="/reports/incidents"' in (await client.get("/reports")).text
        token = {"_csrf_token": csrf(client)}
        for bad, status, words in (
                ({**form, "reason": "because"}, 400, "at least 10 characters"),
                ({**form, "run": " "}, 400, "a run scope needs a run"),
                ({**form, "kind": "time", "since": "yesterday", "until": "2030-01-01T00:00"}, 400, "since"),
                ({**form, "kind": "all"}, 400, "choose what to freeze"),
                ({**form, "confirm": ""}, 400, "tick the confirmation box"),
                ({**form, "run": "run_NOPE"}, 404, "run_NOPE")):
            r = await client.post("/reports/incidents", data={**bad, **token})
            assert r.status_code == status, (bad, r.text[-2000:])
            shown = re.search(r'<p class="error" role="alert" id="freeze-error">(.*?)</p>', r.text, re.S)
            assert shown and words in html.unescape(shown.group(1)), (bad, r.text[-2000:])
            assert html.escape(bad["reason"], quote=False) in r.text  # the form keeps what was typed
        assert await freezes() == []
        done = await client.post("/reports/incidents", data={**form, **token})
        assert done.status_code == 303, done.text[-2000:]
        [leaf] = await freezes()
        assert done.headers["location"] == f"/reports?frozen={leaf}#incidents"
        event = json.loads(await log.entry(leaf))
        assert event["scope"] == {"kind": "run", "run": "run_FZ"} and event["reason"] == why
        assert event["role"] == "overseer" and event["actor"].startswith("pseud:")
        page = (await client.get(done.headers["location"])).text
        assert f"Evidence frozen as incident {event['incident']} (log entry {leaf})" in page
        row = re.search(rf'<tr id="incident-{event["incident"]}">(.*?)</tr>', page, re.S)
        assert row, page[-4000:]
        for shown in (event["object_key"], event["sha256"], "training run run_FZ", event["actor"],
                      f'<a href="/explorer/entries/{leaf}">log entry {leaf}</a>', html.escape(why)):
            assert shown in row.group(1), shown
        link = f'/reports/incidents/{event["incident"]}/bundle'
        assert f'href="{link}"' in row.group(1)
        bundle = await client.get(link)
        assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
        assert "sha256:" + hashlib.sha256(bundle.content).hexdigest() == event["sha256"]
        assert bundle.headers["x-bundle-sha256"] == event["sha256"]
        unknown = await client.get("/reports/incidents/inc_" + "0" * 26 + "/bundle")
        assert unknown.status_code == 404
    async with portal(log, keys) as client:  # auditors are whom the list is for
        await sign_in(client, "aud")
        assert f'id="incident-{event["incident"]}"' in (await client.get("/reports")).text


def test_safe_next_stays_on_this_site() -> None:
    assert safe_next("/runs/run_1?x=1") == "/runs/run_1?x=1"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil", "", None, "runs"):
        assert safe_next(bad) == "/"


def test_parse_hash() -> None:
    h = bytes(range(32))
    assert parse_hash(h.hex()) == h and parse_hash("sha256:" + h.hex()) == h
    assert parse_hash(base64.b64encode(h).decode()) == h
    assert parse_hash("abc") is None and parse_hash(base64.b64encode(b"short").decode()) is None


def test_line_chart_and_metric_series() -> None:
    svg = line_chart([("loss", [(1, 0.9), (2, 0.7), (3, 0.5)])], title="Loss <train>", limit=1.0,
                     limit_label="budget")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<title>Loss &lt;train&gt;</title>" in svg and "polyline" in svg and "budget 1" in svg
    assert "no data yet" in line_chart([("loss", [])], title="Loss")
    assert "circle" in line_chart([("eps", [(5, 0.0)])], title="eps")  # one flat point: no division by 0

    class E:
        def __init__(self, steps: list[dict[str, object]]) -> None:
            self.event = {"steps": steps}

    series = metric_series([E([{"step": 1, "loss": 0.9, "epoch": 0, "note": "x"}]),
                            E([{"step": 2, "loss": 0.8, "reward_accuracy": 0.6, "flag": True}])])
    assert series == {"loss": [(1.0, 0.9), (2.0, 0.8)], "reward_accuracy": [(2.0, 0.6)]}


async def test_static_files_are_served(sqlite_log: Log, tmp_path: Path) -> None:
    async with portal(sqlite_log, tmp_path / "keys") as client:
        htmx = await client.get("/static/htmx.min.js")
        assert htmx.status_code == 200 and htmx.text.startswith("var htmx=function()")
        assert 'version:"2.0.11"' in htmx.text.replace(" ", "")
        verify = await client.get("/static/verify.js")
        assert verify.status_code == 200 and "crypto.subtle.digest" in verify.text
        assert (await client.get("/static/portal.css")).status_code == 200


def test_pages_load_nothing_from_other_sites() -> None:
    from app.portal import TEMPLATES_DIR

    for t in TEMPLATES_DIR.rglob("*.html"):
        assert not re.search(r'(src|href)="(https?:)?//', t.read_text()), f"{t} loads from another site"


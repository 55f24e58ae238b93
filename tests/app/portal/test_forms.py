"""The portal's forms as a browser submits them: what a page shows can be posted back unchanged,
every POST redirects (a reload repeats nothing), refusals name the field and the limit, and the
error pages say one clear thing."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from app.config.runtime import settings_of
from app.core.keyring import Keyring
from app.datasets import import_dataset
from ledger.log import Log
from tests.support.databases import database_of
from tests.support.datasets_data import jsonl, rows
from tests.support.portal import accounts, csrf, enrolled, portal, sign_in


class _Forms(HTMLParser):
    """Every ``<form>`` of a page: its action and its fields' names and values, as a browser
    would submit them (inputs, selected options, textareas)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif not self.forms:
            return
        elif tag == "input" and a.get("name"):
            self.forms[-1][1][a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and ("selected" in a or self._select not in self.forms[-1][1]):
            self.forms[-1][1][self._select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self.forms[-1][1][a["name"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            self.forms[-1][1][self._textarea] += data


def forms_of(page: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


async def test_configuration_posts_back_unchanged(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, boss="admin")
    async with portal(log, keys) as client:
        await enrolled(client, "boss")
        # a string value with the characters an attribute must escape
        token = {"_csrf_token": csrf(client)}
        for key, value in (("tsa_urls", '["local"]'),
                           ("alert_webhook_url", '"http://127.0.0.1:9/hook?a=1&b=<x>&c=\'d\'"')):
            r = await client.post("/admin/setting", data={"key": key, "value": value, **token})
            assert r.status_code == 303, r.text[-2000:]
        page = await client.get("/admin")
        before = dict(settings_of(client._transport.app.state).snapshot())  # type: ignore[attr-defined]
        assert before["tsa_urls"] == ["local"]
        assert before["alert_webhook_url"] == "http://127.0.0.1:9/hook?a=1&b=<x>&c='d'"
        settings = [fields for action, fields in forms_of(page.text) if action == "/admin/setting"]
        assert {f["key"] for f in settings} == set(before)
        for fields in settings:
            r = await client.post("/admin/setting", data=fields)
            assert r.status_code == 303, (fields, r.text[-2000:])
            assert "already had that value" in (await client.get("/admin")).text, fields
        assert dict(settings_of(client._transport.app.state).snapshot()) == before  # type: ignore[attr-defined]


async def test_new_token_is_post_redirect_get_and_shown_once(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, boss="admin", aud="auditor")
    async with portal(log, keys) as client:
        await enrolled(client, "boss")
        made = await client.post("/admin/create_token", data={"name": "aud", "_csrf_token": csrf(client)})
        assert made.status_code == 303 and made.headers["location"].startswith("/admin")
        shown = await client.get(made.headers["location"])
        secret = re.search(r'id="new-token">(rat_[A-Za-z0-9_-]+)<', shown.text)
        assert secret, shown.text[-3000:]
        again = await client.get(made.headers["location"])  # the reload: no second token, no secret
        assert secret.group(1) not in again.text
        assert again.text.count('action="/admin/revoke_token"') == 1


async def test_job_spec_base_model_must_be_a_model(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, op="operator")
    imported = await import_dataset(database_of(log), log, Keyring(keys), "helpful", jsonl(rows(6)))
    async with portal(log, keys) as client:
        await sign_in(client, "op")
        for base in ("/etc", "/etc/hostname"):
            spec = json.dumps({"kind": "reward_model", "base_model": base, "dataset": imported.dataset,
                               "learning_rate": 0.001, "batch_size": 4, "max_steps": 2})
            r = await client.post("/runs", data={"spec": spec, "_csrf_token": csrf(client)})
            assert r.status_code == 400, r.text[-2000:]
            assert "base_model" in r.text and "config.json" in r.text, r.text[-2000:]
        spec = json.dumps({"kind": "reward_model", "base_model": "m" * 5000, "dataset": imported.dataset,
                           "learning_rate": 0.001, "batch_size": 4, "max_steps": 2})
        r = await client.post("/runs", data={"spec": spec, "_csrf_token": csrf(client)})
        assert r.status_code == 400 and "at most 4,096" in r.text, r.text[-2000:]
        form = (await client.get("/runs/new")).text
        limit = re.search(r'<textarea id="spec"[^>]*maxlength="(\d+)"', form)
        assert limit and f"at most {int(limit.group(1)):,} characters" in form


async def test_missing_things_are_one_clear_404(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, aud="auditor")
    async with portal(log, keys) as client:
        await sign_in(client, "aud")
        for path in ("/reports/incidents/inc_missing/bundle", "/reports/incidents/nope/bundle",
                     "/reports/incidents/inc_00000000000000000000000000/bundle"):
            r = await client.get(path)
            assert r.status_code == 404, (path, r.status_code, r.text[-1500:])
            assert "Validation failed" not in r.text
        r = await client.get("/explorer/entries/abc")
        assert r.status_code == 404
        assert "Not Found Not Found" not in r.text
        assert not re.search(r"Not Found</h1>\s*<p[^>]*>Not Found<", r.text)
        assert "no page at /explorer/entries/abc" in r.text
        api = await client.get("/api/v1/no-such-thing", headers={"Accept": "application/json"})
        assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")



async def test_freeze_reason_has_a_stated_limit(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, ovr="overseer")
    async with portal(log, keys) as client:
        await enrolled(client, "ovr")
        page = (await client.get("/reports")).text
        limit = re.search(r'<textarea id="i-reason"[^>]*maxlength="(\d+)"', page)
        assert limit, page[-4000:]
        assert f"at most {int(limit.group(1)):,} characters" in page
        before = await log.sequenced_size()
        r = await client.post("/reports/incidents", data={
            "kind": "run", "run": "run_x", "reason": "x" * 200_000, "confirm": "yes",
            "_csrf_token": csrf(client)})
        assert r.status_code == 400, r.text[-2000:]
        said = re.search(r'id="freeze-error">([^<]*)<', r.text)
        assert said, r.text[-3000:]
        assert "200,000 characters" in said.group(1) and f"at most {int(limit.group(1)):,}" in said.group(1)
        assert "bundle" not in said.group(1)  # not the log's words about tlog-tiles entry bundles
        assert await log.sequenced_size() == before

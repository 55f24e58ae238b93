"""The compliance API, alerts and their webhook (a real HTTP server on 127.0.0.1), the settings the
engine reads, and the in-server schedule; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from app.compliance import ComplianceConfig, list_alerts, run_checks
from app.compliance.alerts import deliver
from app.compliance.config import ENV_RETENTION, ENV_WEBHOOK
from app.compliance.schedule import ENV_REDIS
from app.config.runtime import RuntimeSettings, change
from app.core.database import Database
from app.core.keyring import Keyring
from app.core.settings import Settings
from app.events.index import EventIndex
from app.events.recording import Actor, event
from ledger.home import LogHome
from ledger.log import Log
from tests.support.compliance_log import ALICE, build_log, dataset_events, doc, run_events
from tests.support.jobs import is_problem, serving, token


class Hook:
    """A webhook receiver: records every JSON body POSTed to it; can answer slowly or with an error."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.delay = 0.0
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(hook.delay)
                hook.bodies.append({"content_type": self.headers.get("Content-Type"), **json.loads(data)})
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/compliance"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path / "keys")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _unsheeted_run(log: Log) -> None:
    """A run on a dataset version without datasheet (but with a budget, a DPIA and a lawful basis):
    fails Art. 10 only."""
    await log.append(dataset_events("ds_unsheeted", 1, datasheet=False)
                     + [event("dataset.budget_set", ALICE, dataset="ds_unsheeted", epsilon_total=1.0,
                              delta=1e-5),
                        doc("dpia", "DPIA for the second campaign", dataset="ds_unsheeted"),
                        doc("lawful_basis", "consent form v2", dataset="ds_unsheeted", basis="consent")])
    await log.append(run_events("run_nosheet", "ds_unsheeted", 1, "model_x", eps=[0.5]))


async def test_roles_checks_latest_and_alerts(db: Database, log: Log, keyring: Keyring) -> None:
    await build_log(log)
    headers = {role: await token(log, keyring, f"{role}-1", role)
               for role in ("admin", "auditor", "overseer", "operator")}
    async with serving(log, keyring) as client:
        is_problem(await client.post("/api/v1/compliance/checks"), 401)
        is_problem(await client.post("/api/v1/compliance/checks", headers=headers["operator"]), 403)
        is_problem(await client.get("/api/v1/compliance/alerts", headers=headers["operator"]), 403)
        is_problem(await client.get("/api/v1/compliance/checks/latest", headers=headers["auditor"]), 404,
                   "no compliance check has run yet")
        r = await client.post("/api/v1/compliance/checks", headers=headers["auditor"])
        assert r.status_code == 201, r.text
        run = r.json()
        assert run["ok"] is True and run["counts"] == {"pass": 14, "fail": 0, "not_applicable": 3}
        assert run["actor"] == keyring.pseudonymizer.pseudonym("account:auditor-1")
        assert run["proof"] == f"/log/v1/proof/{run['leaf_index']}"
        checked = (await EventIndex(db, log).get(run["leaf_index"]))
        assert checked is not None and checked.kind == "compliance.checked"
        assert checked.event["role"] == "auditor" and checked.event["actor"] == run["actor"]
        for role in ("admin", "overseer"):
            assert (await client.post("/api/v1/compliance/checks", headers=headers[role])).status_code == 201
        latest = await client.get("/api/v1/compliance/checks/latest", headers=headers["admin"])
        assert latest.status_code == 200 and latest.json()["id"] == run["id"] + 2
        assert [r["status"] for r in latest.json()["results"]] == [r["status"] for r in run["results"]]
        alerts = await client.get("/api/v1/compliance/alerts", headers=headers["overseer"])
        assert alerts.status_code == 200 and alerts.json() == {"alerts": []}
        is_problem(await client.get("/api/v1/compliance/alerts?state=maybe", headers=headers["admin"]), 400)


async def test_reports_endpoint_in_three_formats(db: Database, log: Log, keyring: Keyring) -> None:
    built = await build_log(log)
    auditor = await token(log, keyring, "aud", "auditor")
    operator = await token(log, keyring, "op", "operator")
    async with serving(log, keyring) as client:
        await log.wait_for(built.size)  # the tokens' events are in a checkpoint too
        scope = {"kind": "model", "model": "model_a"}
        r = await client.post("/api/v1/reports", json={"scope": scope, "format": "json"}, headers=auditor)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        data = r.json()
        assert data["scope"] == scope and int(r.headers["x-tree-size"]) == data["log"]["tree_size"]
        assert [row["action"] for row in data["art14_oversight"]["rows"]] == ["approve_release", "release"]
        html = await client.post("/api/v1/reports", json={"scope": scope, "format": "html"}, headers=auditor)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert f"/log/v1/proof/{built.at['release']}" in html.text
        disposition = html.headers["content-disposition"]
        assert 'filename="compliance-report-model-release-model_a.html"' in disposition
        pdf = await client.post("/api/v1/reports", json={"scope": {"run": "run_bbbb"}, "format": "pdf"},
                                headers=auditor)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-")
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
        assert "training run run_bbbb" in text and "resume" in text
        generated = await EventIndex(db, log).query(kind="report.generated")
        assert [e.event["format"] for e in generated] == ["json", "html", "pdf"]
        assert {e.event["role"] for e in generated} == {"auditor"}
        # bad requests: problem details, never a 500
        is_problem(await client.post("/api/v1/reports", json={"scope": scope}, headers=operator), 403)
        is_problem(await client.post("/api/v1/reports", json={"scope": scope, "format": "docx"},
                                     headers=auditor), 400, "format must be one of")
        is_problem(await client.post("/api/v1/reports", content=b"{", headers=auditor), 400, "not JSON")
        is_problem(await client.post("/api/v1/reports", json={"scope": {"kind": "galaxy"}}, headers=auditor),
                   400, "scope kind")
        is_problem(await client.post("/api/v1/reports", json={"scope": scope, "extra": 1}, headers=auditor),
                   400)
        is_problem(await client.post("/api/v1/reports", json={"scope": {"model": "model_zzz"}},
                                     headers=auditor), 404, "model_zzz")


async def test_alerts_open_once_resolve_and_reach_the_webhook(log: Log, keyring: Keyring, hook: Hook,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    await build_log(log)
    await _unsheeted_run(log)
    monkeypatch.setenv(ENV_WEBHOOK, hook.url)
    admin = await token(log, keyring, "adm", "admin")
    async with serving(log, keyring) as client:
        first = (await client.post("/api/v1/compliance/checks", headers=admin)).json()
        assert first["ok"] is False and first["counts"]["fail"] == 1, first["results"]
        assert [a["rule"] for a in first["alerts_opened"]] == ["ai-act.art10.datasheet"]
        (body,) = hook.bodies
        assert body["content_type"] == "application/json"
        assert body["type"] == "rlhf-audit.compliance.alert" and body["state"] == "open"
        assert body["alert"]["rule"] == "ai-act.art10.datasheet"
        assert body["alert"]["article"].startswith("EU AI Act")
        assert body["pack"] == "eu-ai-act-2024-1689+gdpr@2026.12"
        assert body["check"]["leaf_index"] == first["leaf_index"] and body["alert"]["entries"]
        alerts = (await client.get("/api/v1/compliance/alerts?state=open", headers=admin)).json()["alerts"]
        assert len(alerts) == 1 and alerts[0]["delivery"] == "delivered: HTTP 200"
        # still failing: the same alert stays open, nobody is paged twice
        second = (await client.post("/api/v1/compliance/checks", headers=admin)).json()
        assert second["alerts_opened"] == [] and len(hook.bodies) == 1
        again = (await client.get("/api/v1/compliance/alerts", headers=admin)).json()["alerts"]
        assert len(again) == 1 and again[0]["last_seen_at"] >= alerts[0]["last_seen_at"]
        # fixed on the log: resolved, and the webhook hears it
        await log.append(dataset_events("ds_unsheeted", 1)[-1:])
        third = (await client.post("/api/v1/compliance/checks", headers=admin)).json()
        assert third["ok"] is True, [r for r in third["results"] if r["status"] == "fail"]
        assert [a["rule"] for a in third["alerts_resolved"]] == ["ai-act.art10.datasheet"]
        assert [b["state"] for b in hook.bodies] == ["open", "resolved"]
        resolved = (await client.get("/api/v1/compliance/alerts", params={"state": "resolved"},
                                     headers=admin)).json()["alerts"]
        assert len(resolved) == 1 and resolved[0]["resolved_at"] is not None
        still = await client.get("/api/v1/compliance/alerts?state=open", headers=admin)
        assert still.json() == {"alerts": []}


async def test_a_webhook_that_is_down_slow_or_failing_never_breaks_a_check(db: Database, log: Log,
                                                                          hook: Hook) -> None:
    await build_log(log)
    await _unsheeted_run(log)
    base = await ComplianceConfig.load(db, log, Settings.load())
    down = f"http://127.0.0.1:{_free_port()}/nobody"
    config = ComplianceConfig(**{**base.__dict__, "webhook_url": down, "webhook_timeout_s": 0.5})
    run = await run_checks(db, log, EventIndex(db, log), config=config)
    assert run.ok is False and run.leaf_index is not None  # the check itself is recorded
    (alert,) = await list_alerts(db, "open")
    assert alert.rule == "ai-act.art10.datasheet" and alert.delivery.startswith("failed: ConnectError")
    # a slow receiver is cut off at the timeout; an error status is reported, not raised
    hook.delay = 1.5
    started = time.monotonic()
    assert (await deliver(hook.url, {"n": 1}, 0.3)).startswith("failed: ReadTimeout")
    assert time.monotonic() - started < 1.4
    hook.delay, hook.status = 0.0, 500
    assert await deliver(hook.url, {"n": 2}, 5) == "failed: HTTP 500"
    hook.status = 204
    assert await deliver(hook.url, {"n": 3}, 5) == "delivered: HTTP 204"
    for _ in range(50):  # the slow receiver still records the body it was too slow to answer
        if len(hook.bodies) == 3:
            break
        await asyncio.sleep(0.1)
    assert sorted(b["n"] for b in hook.bodies) == [1, 2, 3]


async def test_webhook_from_the_run_time_setting(db: Database, log: Log, hook: Hook,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_WEBHOOK, raising=False)
    assert (await ComplianceConfig.load(db, log, Settings.load())).webhook_url is None
    await change(RuntimeSettings(db, log), "alert_webhook_url", hook.url, by=ALICE)
    assert (await ComplianceConfig.load(db, log, Settings.load())).webhook_url == hook.url
    monkeypatch.setenv(ENV_WEBHOOK, "http://127.0.0.1:9/elsewhere")
    assert (await ComplianceConfig.load(db, log, Settings.load())).webhook_url == "http://127.0.0.1:9/elsewhere"
    monkeypatch.delenv(ENV_WEBHOOK)
    await build_log(log)
    await _unsheeted_run(log)
    run = await run_checks(db, log, EventIndex(db, log), actor=Actor("system", "system"),
                           settings=Settings.load())
    assert [b["alert"]["rule"] for b in hook.bodies] == [a.rule for a in run.opened]
    assert [a.rule for a in run.opened] == ["ai-act.art10.datasheet"]


@pytest.mark.parametrize("interval", ["0.1", "0"])
async def test_the_server_checks_on_a_schedule_without_redis(db: Database, log: Log, keyring: Keyring,
                                                             interval: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLHF_AUDIT_COMPLIANCE_INTERVAL", interval)
    monkeypatch.delenv(ENV_REDIS, raising=False)
    await build_log(log)
    index = EventIndex(db, log)
    async with serving(log, keyring):
        for _ in range(100 if interval != "0" else 10):  # 0 disables: a few intervals' worth of nothing
            if await index.query(kind="compliance.checked"):
                break
            await asyncio.sleep(0.05)
    checked = await index.query(kind="compliance.checked")
    if interval == "0":
        assert checked == []
    else:
        assert checked and checked[0].event["actor"] == "system"


async def test_an_on_demand_check_uses_the_served_homes_settings(log: Log, keyring: Keyring, hook: Hook,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's ``--home`` decides (its config.toml), not whatever $RLHF_AUDIT_HOME names."""
    served, elsewhere = LogHome(tmp_path / "served"), LogHome(tmp_path / "elsewhere")
    other = Hook()
    try:
        for home, url, days in ((served, hook.url, 200), (elsewhere, other.url, 30)):
            home.init()
            with home.config_file.open("a") as f:
                f.write(f'alert_webhook = "{url}"\nretention_days = {days}\n')
        for name in (ENV_WEBHOOK, ENV_RETENTION, ENV_REDIS):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("RLHF_AUDIT_HOME", str(elsewhere.path))
        await build_log(log)
        await _unsheeted_run(log)
        admin = await token(log, keyring, "adm", "admin")
        async with serving(log, keyring, home=served) as client:
            r = await client.post("/api/v1/compliance/checks", headers=admin)
        assert r.status_code == 201, r.text
        status = {x["rule"]: x["status"] for x in r.json()["results"]}
        assert status["ai-act.art19.retention"] == "pass"  # 200 days (served), not 30 (elsewhere)
        assert [k for k, v in status.items() if v == "fail"] == ["ai-act.art10.datasheet"]
        assert [b["alert"]["rule"] for b in hook.bodies] == ["ai-act.art10.datasheet"]
        assert other.bodies == []
    finally:
        other.close()

"""Operations endpoints and middleware: /metrics, /readyz, request ids and JSON access logs,
over the real app and a real log (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterator

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from app.compliance import Outcome, Pack, Rule, run_checks
from app.compliance.config import ENV_WEBHOOK
from app.core.database import Database
from app.core.settings import Settings
from app.events.index import EventIndex
from app.server.metrics import Metrics
from app.server.observability import configure_logging
from ledger._internal.local_tsa import LocalTSA
from ledger.log import Log
from ledger.note import Signer
from ledger.storage import Store
from ledger.timestamping import LocalTSAClient
from tests.support.asgi import serving
from tests.support.databases import pair

HISTOGRAM = "rlhf_audit_http_request_duration_seconds"


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> [(labels, value)], parsed by prometheus_client's own parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def _value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    [(_, value)] = samples[name]
    return value


async def test_log_gauges_follow_appends_and_integration(db: Database, log: Log) -> None:
    m = Metrics()
    await log.append([{"kind": "test.event", "i": i} for i in range(3)])
    await m.refresh(db, log)
    s = _samples(m.render().decode())
    assert _value(s, "rlhf_audit_log_sequenced") == 3
    assert _value(s, "rlhf_audit_log_tree_size") == 0
    assert _value(s, "rlhf_audit_integration_lag_entries") == 3
    assert math.isnan(_value(s, "rlhf_audit_checkpoint_age_seconds"))  # nothing published yet

    await log.integrate()
    await m.refresh(db, log)
    s = _samples(m.render().decode())
    assert _value(s, "rlhf_audit_log_tree_size") == 3
    assert _value(s, "rlhf_audit_integration_lag_entries") == 0
    assert _value(s, "rlhf_audit_leaf_index_lag_entries") == 3  # the index follows the tree
    assert 0 <= _value(s, "rlhf_audit_checkpoint_age_seconds") < 60
    assert _value(s, "rlhf_audit_timestamp_gaps") == 1  # the new checkpoint, not stamped yet
    await log.timestamp_pending(force=True)
    await log.index_leaves()
    await m.refresh(db, log)
    s = _samples(m.render().decode())
    assert _value(s, "rlhf_audit_timestamp_gaps") == 0
    assert _value(s, "rlhf_audit_leaf_index_lag_entries") == 0


async def test_compliance_gauges_follow_checks_and_alerts(db: Database, log: Log,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Open alerts and the newest check's age, read from the database by each scrape."""
    monkeypatch.delenv(ENV_WEBHOOK, raising=False)
    failing = {"t.a", "t.b"}

    def rule(rule_id: str) -> Rule:
        async def check(ctx: object) -> Outcome:
            return Outcome("fail" if rule_id in failing else "pass", rule_id, ())
        return Rule(rule_id, "Art. 0", rule_id, check)

    pack = Pack("metrics-pack", "1", (rule("t.a"), rule("t.b"), rule("t.c")))
    index = EventIndex(db, log)
    m = Metrics()

    async def scraped() -> tuple[float, float]:
        await m.refresh(db, log)
        s = _samples(m.render().decode())
        return (_value(s, "rlhf_audit_compliance_open_alerts"),
                _value(s, "rlhf_audit_compliance_check_age_seconds"))

    alerts, age = await scraped()
    assert alerts == 0 and math.isnan(age)  # no check has run: no alert can fire on the age
    await run_checks(db, log, index, pack=pack, settings=Settings.load())
    alerts, age = await scraped()
    assert alerts == 2 and 0 <= age < 60
    failing.discard("t.a")
    await run_checks(db, log, index, pack=pack, settings=Settings.load())
    assert (await scraped())[0] == 1
    failing.clear()
    await run_checks(db, log, index, pack=pack, settings=Settings.load())
    assert (await scraped())[0] == 0


async def test_every_replica_reports_the_shared_figures(log: Log) -> None:
    """Two apps over one database (two replicas) scrape the same log gauges, whichever
    appended; their request histograms stay their own."""
    async with serving(log) as first, serving(log) as second:
        await log.append([{"kind": "test.event", "i": i} for i in range(4)])
        await log.integrate()
        await log.timestamp_pending(force=True)  # else the integrator may stamp between the scrapes
        await first.get("/healthz")
        a, b = _samples((await first.get("/metrics")).text), _samples((await second.get("/metrics")).text)
    for name in ("rlhf_audit_log_tree_size", "rlhf_audit_log_sequenced", "rlhf_audit_integration_lag_entries",
                 "rlhf_audit_timestamp_gaps", "rlhf_audit_compliance_open_alerts"):
        assert _value(a, name) == _value(b, name), name
    assert _value(a, "rlhf_audit_log_tree_size") == 4

    def healthz(s: dict[str, list[tuple[dict[str, str], float]]]) -> float:
        return sum(v for lb, v in s.get(f"{HISTOGRAM}_count", []) if lb["route"] == "/healthz")

    assert healthz(a) == 1 and healthz(b) == 0


async def test_metrics_endpoint(log: Log) -> None:
    async with serving(log) as client:
        await log.append([{"kind": "test.event", "i": i} for i in range(5)])
        await log.integrate()
        assert (await client.get("/log/v1/proof/0")).status_code == 200
        assert (await client.get("/log/tile/0/000.p/5")).status_code == 200
        assert (await client.get("/log/v1/proof/999")).status_code == 404
        assert (await client.get("/no/such/path/4711")).status_code == 404
        r = await client.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        s = _samples(r.text)
        assert _value(s, "rlhf_audit_log_tree_size") == 5
        assert _value(s, "rlhf_audit_log_sequenced") == 5
        assert _value(s, "rlhf_audit_integration_lag_entries") == 0
        assert _value(s, "rlhf_audit_compliance_open_alerts") == 0
        assert math.isnan(_value(s, "rlhf_audit_compliance_check_age_seconds"))
        counts = {(lb["method"], lb["route"], lb["status"]): v for lb, v in s[f"{HISTOGRAM}_count"]}
        assert counts[("GET", "/log/v1/proof/{index}", "200")] == 1
        assert counts[("GET", "/log/v1/proof/{index}", "404")] == 1
        assert counts[("GET", "/log/tile/{rest}", "200")] == 1
        routes = {lb["route"] for lb, _ in s[f"{HISTOGRAM}_count"]}
        assert not any("4711" in r or "999" in r or "000.p" in r for r in routes), routes


async def test_each_app_has_its_own_registry(log: Log) -> None:
    def healthz_count(text: str) -> float:
        return sum(v for lb, v in _samples(text).get(f"{HISTOGRAM}_count", []) if lb["route"] == "/healthz")

    async with serving(log) as first:
        await first.get("/healthz")
        assert healthz_count((await first.get("/metrics")).text) == 1
    async with serving(log) as second:
        assert healthz_count((await second.get("/metrics")).text) == 0


async def test_readyz(log: Log) -> None:
    await log.append([{"kind": "test.event"}] * 2)
    await log.integrate()
    async with serving(log) as client:
        r = await client.get("/readyz")
        assert r.status_code == 200 and r.json() == {"status": "ready", "tree_size": 2}
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_readyz_is_503_when_the_database_is_down(signer: Signer, local_tsa: LocalTSA) -> None:
    db = Database.open("postgresql://postgres@127.0.0.1:1/x")  # nothing listens on port 1
    log = pair(Log(Store(db.engine), signer, tsas=[LocalTSAClient(local_tsa)], interval=0.5), db)
    try:
        async with serving(log) as client:
            r = await client.get("/readyz")
            assert r.status_code == 503
            assert r.headers["content-type"].startswith("application/problem+json")
            body = r.json()
            assert body["status"] == 503 and body["type"] == "about:blank" and body["detail"]
            assert (await client.get("/healthz")).status_code == 200  # alive, not ready
            m = await client.get("/metrics")
            assert m.status_code == 503 and m.headers["content-type"].startswith("application/problem+json")
    finally:
        await log.close()
        await db.close()


async def test_request_ids(log: Log) -> None:
    async with serving(log) as client:
        given = (await client.get("/healthz", headers={"X-Request-ID": "abc-123_x.y"}))
        assert given.headers["x-request-id"] == "abc-123_x.y"
        made = (await client.get("/healthz")).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        assert (await client.get("/healthz")).headers["x-request-id"] != made
        for bad in ("a" * 129, "has space", "semi;colon", "", "é"):
            got = (await client.get("/healthz", headers={"X-Request-ID": bad.encode()})).headers
            assert re.fullmatch(r"[0-9a-f]{32}", got["x-request-id"]), bad
        assert (await client.get("/healthz", headers={"X-Request-ID": "b" * 128})).headers[
            "x-request-id"] == "b" * 128
        problem = await client.get("/log/v1/proof/77", headers={"X-Request-ID": "on-errors-too"})
        assert problem.status_code == 404 and problem.headers["x-request-id"] == "on-errors-too"


async def test_one_access_line_per_request_with_its_id(log: Log) -> None:
    async with serving(log) as client:
        with capture_logs() as logs:
            await client.get("/log/v1/proof/3", headers={"X-Request-ID": "req-42"})
    [line] = [e for e in logs if e["event"] == "request"]
    assert line["request_id"] == "req-42" and line["status"] == 404
    assert line["method"] == "GET" and line["path"] == "/log/v1/proof/3"
    assert line["route"] == "/log/v1/proof/{index}" and line["duration_ms"] >= 0


@pytest.fixture
def json_logging() -> Iterator[None]:
    """configure_logging(), undone afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging()
    try:
        yield
    finally:
        structlog.reset_defaults()
        root.handlers, root.level = handlers, level


async def test_configured_logs_are_json_lines(log: Log, capsys: pytest.CaptureFixture[str],
                                              json_logging: None) -> None:
    async with serving(log) as client:
        capsys.readouterr()
        await client.get("/healthz", headers={"X-Request-ID": "json-1"})
        logging.getLogger("ledger.test").warning("from the stdlib")
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.strip()]
    [access] = [x for x in lines if x.get("event") == "request"]
    assert access["request_id"] == "json-1" and access["level"] == "info" and access["status"] == 200
    assert access["path"] == "/healthz" and access["method"] == "GET" and "duration_ms" in access
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", access["timestamp"])
    [stdlib] = [x for x in lines if x.get("event") == "from the stdlib"]
    assert stdlib["level"] == "warning" and stdlib["logger"] == "ledger.test"

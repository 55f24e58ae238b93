"""Forwarded client addresses, against the real server (uvicorn): trusted only from the proxies
named in RLHF_AUDIT_TRUSTED_PROXIES, and the sign-in throttle per address and per account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from app.cli import cli as rlhf_audit
from tests.support.compose import env_file as _env_file
from tests.support.compose import resolved as _resolved
from tests.support.server_process import ROOT, Server, clean_env, cli

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with one operator account, olga."""
    home = tmp_path_factory.mktemp("proxy") / "home"
    env = clean_env()
    cli(home, env, "init")
    cli(home, env, "users", "create", "olga", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    return home


def _serving(home: Path, **env: str) -> Iterator[httpx.Client]:
    server = Server(home, clean_env(**env))
    server.start()
    try:
        with httpx.Client(base_url=server.base, timeout=30) as client:
            yield client
    finally:
        server.stop()
    assert "Traceback" not in server.stderr()


def sign_in(client: httpx.Client, password: str, forwarded_for: str) -> int:
    """POST /auth/login as olga, claiming to be forwarded for ``forwarded_for``; the status."""
    token = client.get("/auth/session").json()["csrf_token"]
    r = client.post("/auth/login", data={"username": "olga", "password": password},
                    headers={"Accept": "application/json", "X-CSRFToken": token,
                             "X-Forwarded-For": forwarded_for})
    assert r.status_code in (200, 401, 429), r.text
    if r.status_code == 429:
        assert "failed sign-ins" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1
    return r.status_code


@pytest.mark.slow
def test_forwarded_headers_are_ignored_without_trusted_proxies(home: Path) -> None:
    """By default no proxy is trusted, not even 127.0.0.1: a guesser on this host who names a new
    address each time is still one address, and throttled after five failures."""
    for client in _serving(home):
        statuses = [sign_in(client, "guess", f"203.0.113.{i}") for i in range(30)]
        assert statuses == [401] * 5 + [429] * 25, statuses
        assert sign_in(client, PASSWORD, "203.0.113.200") == 429  # the right password, too late


@pytest.mark.slow
def test_a_trusted_proxy_names_the_client_and_the_account_is_throttled_too(home: Path) -> None:
    for client in _serving(home, RLHF_AUDIT_TRUSTED_PROXIES="127.0.0.1, ::1"):
        # the forwarded address is the client: one address's failures hold up that address only
        assert [sign_in(client, "guess", "198.51.100.1") for _ in range(6)] == [401] * 5 + [429]
        assert sign_in(client, PASSWORD, "198.51.100.1") == 429
        assert sign_in(client, PASSWORD, "198.51.100.2") == 200
        # what the client says it forwards is not believed; the proxy's last address is
        assert sign_in(client, PASSWORD, "198.51.100.2, 198.51.100.1") == 429
        # many addresses, one account: 20 failures a minute (5 so far), then the account is held
        statuses = [sign_in(client, "guess", f"192.0.2.{i}") for i in range(30)]
        assert statuses == [401] * 15 + [429] * 15, statuses
        assert sign_in(client, PASSWORD, "192.0.2.200") == 429  # a new address: held as well
        # an address this account signed in from recently is held only by its own count
        assert sign_in(client, PASSWORD, "198.51.100.2") == 200


def test_a_trusted_proxy_must_be_an_address_or_network(tmp_path: Path) -> None:
    for bad in ("nginx", "10.0.0.1/8", "10.0.0.0/33", "*"):
        r = CliRunner().invoke(rlhf_audit, ["--home", str(tmp_path / "home"), "serve", "--no-worker"],
                               env={"RLHF_AUDIT_TRUSTED_PROXIES": f"127.0.0.1,{bad}"})
        assert r.exit_code == 2 and "is not an IP address or network" in r.output, r.output
        assert not (tmp_path / "home").exists()  # refused before anything started


def test_compose_trusts_the_proxy_alone(compose_bin: Path, tmp_path: Path) -> None:
    """In the compose stack every client came through nginx and shared its address (anyone could
    hold any account up): the servers trust the edge network, where only the proxy and they are."""
    for subnet in ("172.29.254.0/24", "10.99.0.0/24"):
        config = _resolved(compose_bin, _env_file(tmp_path, EDGE_SUBNET=subnet))
        services = config["services"]
        assert config["networks"]["edge"]["ipam"]["config"] == [{"subnet": subnet}]
        assert services["server"]["environment"]["RLHF_AUDIT_TRUSTED_PROXIES"] == subnet
        assert set(services["proxy"]["networks"]) == {"edge"}
        assert {n for n, s in services.items() if "edge" in (s.get("networks") or {})} == {"proxy", "server"}
        assert all("RLHF_AUDIT_TRUSTED_PROXIES" not in s.get("environment", {})
                   for n, s in services.items() if n != "server")
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in nginx

"""The datasets API (``/api/v1/datasets``, ``/api/v1/privacy/erasures``) and CLI, on a real log.

API tests run on SQLite and PostgreSQL through ``tests.support.asgi.serving``; the CLI tests
run ``python -m app.cli`` against a home with its own SQLite database and keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from app.accounts import create_account, create_token
from app.core.commands import run
from app.core.keyring import ENV_KEYS_DIR, Keyring
from ledger.events import Pseudonymizer
from ledger.log import Log
from tests.support.asgi import serving
from tests.support.databases import database_of
from tests.support.datasets_data import ANNOTATORS, jsonl, rows
from tests.support.paths import ROOT

PZ = Pseudonymizer(b"\x07" * 32)
SHEET = {"origin": "crowd vendor", "collection_process": "pairwise UI", "purpose": "reward model",
         "guideline_version": "g-7"}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _token(log: Log, name: str, role: str) -> dict[str, str]:
    await create_account(database_of(log), log, name, role, "correct horse battery", pseudonymizer=PZ)
    return _auth((await create_token(database_of(log), log, name, pseudonymizer=PZ)).token)


def _problem(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    detail: str = r.json()["detail"]
    return detail


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Keyring:
    monkeypatch.setenv(ENV_KEYS_DIR, str(tmp_path / "keys"))
    return Keyring(tmp_path / "keys")


async def test_import_list_show(log: Log, keys: Keyring) -> None:
    op, auditor = await _token(log, "op", "operator"), await _token(log, "aud", "auditor")
    data = jsonl(rows(9))
    async with serving(log) as client:
        r = await client.post("/api/v1/datasets/prefs/versions", content=data, headers=op)
        assert r.status_code == 201, r.text
        first = r.json()
        assert (first["dataset"], first["version"], first["records"], first["created"]) == (
            "ds_prefs", 1, 9, True)
        r = await client.post("/api/v1/datasets/prefs/versions", content=data, headers=op)
        assert r.status_code == 200 and r.json() == {**first, "created": False}
        r = await client.post("/api/v1/datasets/ds_prefs/versions", headers=op,
                              files={"file": ("more.jsonl", jsonl(rows(6)), "application/x-ndjson"),
                                     "datasheet": ("sheet.json", json.dumps(SHEET), "application/json")})
        assert r.status_code == 201 and r.json()["version"] == 2, r.text
        entry = orjson.loads(await log.entry(r.json()["leaf_index"]))
        assert entry["kind"] == "dataset.version"
        assert entry["actor"] == keys.pseudonymizer.pseudonym("account:op")
        assert entry["role"] == "operator"

        size = await log.sequenced_size()
        bad = data + b'{"prompt": "p", "chosen": "a"}\n'
        assert "line 10" in _problem(await client.post("/api/v1/datasets/prefs/versions", content=bad,
                                                       headers=op), 400)
        r = await client.post("/api/v1/datasets/prefs/versions", headers=op,
                              files={"file": ("x.jsonl", jsonl(rows(4)), "application/x-ndjson"),
                                     "datasheet": ("s.json", '{"origin": "x"}', "application/json")})
        assert "lacks collection_process" in _problem(r, 400)
        r = await client.post("/api/v1/datasets/prefs/versions", headers=op,
                              files={"datasheet": ("s.json", json.dumps(SHEET), "application/json")})
        assert "'file' part" in _problem(r, 400)
        assert "dataset name" in _problem(await client.post("/api/v1/datasets/Bad!/versions", content=data,
                                                            headers=op), 400)
        assert "events:write" in _problem(await client.post("/api/v1/datasets/prefs/versions",
                                                            content=jsonl(rows(5)), headers=auditor), 403)
        _problem(await client.post("/api/v1/datasets/prefs/versions", content=data), 401)
        assert await log.sequenced_size() == size  # no refused request logged anything

        listing = await client.get("/api/v1/datasets", headers=auditor)
        listed = listing.json()["datasets"]
        assert [(d["dataset"], d["versions"], d["latest"]["version"]) for d in listed] == [
            ("ds_prefs", 2, 2)]
        showing = await client.get("/api/v1/datasets/prefs", headers=auditor)
        shown = showing.json()
        assert [v["version"] for v in shown["versions"]] == [1, 2]
        assert shown["versions"][1]["datasheet"]["origin"] == "crowd vendor"
        assert shown["versions"][1]["datasheet"]["guideline_version"] == "g-7"
        assert shown["versions"][0]["datasheet"]["origin"] == "not stated"
        assert len(shown["annotators"]) == 3 and sum(a["records"] for a in shown["annotators"]) == 15
        assert all(a["annotator"].startswith("pseud:") for a in shown["annotators"])
        assert shown["budget"] is None
        assert not any(name.encode() in showing.content + listing.content for name in ANNOTATORS)
        r = await client.get("/api/v1/datasets/none", headers=auditor)
        assert "no dataset ds_none" in _problem(r, 404)


async def test_budget_and_erasure_are_for_admins(log: Log, keys: Keyring) -> None:
    admin, op = await _token(log, "root", "admin"), await _token(log, "op", "operator")
    async with serving(log) as client:
        r = await client.post("/api/v1/datasets/p/versions", content=jsonl(rows(6)), headers=op)
        assert r.status_code == 201, r.text
        budget = {"epsilon_total": 4.0, "delta": 1e-5}
        r = await client.put("/api/v1/datasets/p/budget", json=budget, headers=op)
        assert "admin" in _problem(r, 403)
        r = await client.put("/api/v1/datasets/p/budget", json=budget, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["remaining"] == 4.0
        for body in ({"epsilon_total": 4.0}, {"epsilon_total": -1, "delta": 0}, [1]):
            _problem(await client.put("/api/v1/datasets/p/budget", json=body, headers=admin), 400)
        _problem(await client.put("/api/v1/datasets/nope/budget", json=budget, headers=admin), 404)
        shown = (await client.get("/api/v1/datasets/p", headers=op)).json()
        assert shown["budget"]["epsilon_total"] == 4.0 and shown["budget"]["remaining"] == 4.0
        victim = shown["annotators"][0]["annotator"]

        erase = {"annotator": victim, "legal_basis": "GDPR Art. 17(1)(a)", "request_ref": "T-1"}
        assert "admin" in _problem(await client.post("/api/v1/privacy/erasures", json=erase, headers=op), 403)
        unknown = {**erase, "annotator": "pseud:" + "f" * 32}
        assert "no data subject" in _problem(await client.post("/api/v1/privacy/erasures", json=unknown,
                                                               headers=admin), 404)
        for body in ({"annotator": victim}, {**erase, "annotator": "bob"}, {**erase, "legal_basis": 3}):
            _problem(await client.post("/api/v1/privacy/erasures", json=body, headers=admin), 400)
        r = await client.post("/api/v1/privacy/erasures", json=erase, headers=admin)
        assert r.status_code == 201, r.text
        assert r.json()["records"] == 2
        event = orjson.loads(await log.entry(r.json()["leaf_index"]))
        assert (event["kind"], event["annotator"], event["records"], event["legal_basis"]) == (
            "privacy.erased", victim, 2, "GDPR Art. 17(1)(a)")
        assert (event["actor"], event["role"]) == (keys.pseudonymizer.pseudonym("account:root"), "admin")
        _problem(await client.post("/api/v1/privacy/erasures", json=erase, headers=admin), 404)
        shown = (await client.get("/api/v1/datasets/p", headers=op)).json()
        assert shown["erased_records"] == 2 and victim not in {a["annotator"] for a in shown["annotators"]}


def _subprocess_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for name in ("RLHF_AUDIT_DEBUG", "RLHF_AUDIT_DATABASE_URL", "RLHF_AUDIT_HOME", ENV_KEYS_DIR):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "app.cli", "--home", str(home), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """The console entry point (``app.core.commands.run``, which maps errors to exit codes), in-process:
    a subprocess per command would cost seconds each."""
    for name in ("RLHF_AUDIT_DEBUG", "RLHF_AUDIT_DATABASE_URL", "RLHF_AUDIT_HOME", ENV_KEYS_DIR):
        monkeypatch.delenv(name, raising=False)

    def invoke(home: Path, *args: str) -> Ran:
        from app.cli import cli as group

        monkeypatch.setattr(sys, "argv", ["rlhf-audit", "--home", str(home), *args])
        code = 0
        try:
            run(group)
        except SystemExit as e:
            code = int(e.code or 0)
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return invoke


def test_cli(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    home = tmp_path / "home"
    assert cli(home, "init").returncode == 0
    data, sheet, bad = tmp_path / "d.jsonl", tmp_path / "sheet.json", tmp_path / "bad.jsonl"
    data.write_bytes(jsonl(rows(6)))
    sheet.write_text(json.dumps(SHEET))
    bad.write_bytes(jsonl(rows(2)) + b'{"prompt": "p"}\n')
    r = _subprocess_cli(home, "datasets", "import", str(data), "--dataset", "cli", "--datasheet", str(sheet))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["dataset"], out["version"], out["created"]) == ("ds_cli", 1, True)
    ran = cli(home, "datasets", "import", str(data), "--dataset", "cli")
    assert ran.returncode == 0 and not json.loads(ran.stdout)["created"] and "already imported" in ran.stderr
    shown = json.loads(cli(home, "datasets", "show", "cli").stdout)
    victim = shown["annotators"][0]["annotator"]
    assert shown["versions"][0]["datasheet"]["purpose"] == "reward model"
    assert json.loads(cli(home, "datasets", "list").stdout)[0]["dataset"] == "ds_cli"
    ran = cli(home, "datasets", "budget", "set", "cli", "--epsilon", "3", "--delta", "1e-5")
    assert ran.returncode == 0 and json.loads(ran.stdout)["remaining"] == 3.0, ran.stderr

    for args, code, message in [
        (("datasets", "import", str(bad), "--dataset", "cli"), 1, "line 3: 'chosen' is missing"),
        (("datasets", "import", str(data), "--dataset", "cli", "--datasheet", str(data)), 2, "not JSON"),
        (("datasets", "show", "nothing"), 3, "no dataset ds_nothing"),
        (("datasets", "budget", "set", "cli", "--epsilon", "1", "--delta", "2"), 1, "delta"),
        (("datasets", "import", str(data), "--dataset", "cli", "--as", "ghost"), 3, "ghost"),
        (("privacy", "erase", "--annotator", "pseud:" + "1" * 32, "--legal-basis", "Art. 17"), 3,
         "no data subject"),
        (("privacy", "erase", "--annotator", victim), 2, "--legal-basis"),
    ]:
        ran = cli(home, *args)
        assert ran.returncode == code, (args, ran.stdout, ran.stderr)
        assert message in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
    ran = cli(home, "privacy", "erase", "--annotator", victim, "--legal-basis", "Art. 17(1)(b)",
              "--request-ref", "R-9")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["records"] == 2 and "erased" in ran.stderr
    assert json.loads(cli(home, "datasets", "show", "cli").stdout)["erased_records"] == 2

"""The job form on ``/runs/new``: a training job as fields (kind, base model, dataset and version
pickers, the hyper-parameters and DP, each with the spec's limits) or as JSON; a refusal gives the
form back with everything typed. Its example spec names this log's own data (issue 15: the default
spec named a dataset ``ds_example`` that no log has, so it failed as given)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from app.core.keyring import Keyring
from app.datasets import import_dataset, reject_version, set_budget
from app.jobs import get_job, list_jobs
from ledger.log import Log
from tests.support.databases import database_of
from tests.support.jobs import ADMIN, SHEET, dataset, jsonl
from tests.support.portal import accounts, csrf, enrolled, portal, sign_in


def _spec(page: str) -> dict[str, object]:
    found = re.search(r'<textarea id="spec"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, page[-2000:]
    doc: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return doc


async def test_the_example_spec_names_an_imported_dataset(sqlite_log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(sqlite_log, keys, boss="admin")
    async with portal(sqlite_log, keys) as client:
        await enrolled(client, "boss")
        empty = _spec((await client.get("/runs/new")).text)
        assert empty["dataset"] != "ds_example" and "import a dataset" in str(empty["dataset"])
        name = await dataset(sqlite_log, Keyring(keys), 4)
        spec = _spec((await client.get("/runs/new")).text)
    assert spec["dataset"] == name


# The structured form (/runs/new): fields instead of JSON, pickers fed by the server.

def _model_dir(tmp_path: Path) -> str:
    """A local model directory as the spec check wants it (one holding config.json)."""
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text("{}")
    return str(d)


def _select(page: str, name: str) -> list[tuple[str, str, bool, bool]]:
    """(value, text, selected, disabled) of each option of the ``<select name=...>``."""
    found = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert found, page[-3000:]
    return [(html.unescape(v), html.unescape(re.sub(r"<[^>]+>", "", t)).strip(), "selected" in a,
             "disabled" in a)
            for a, v, t in re.findall(r'<option([^>]*value="([^"]*)"[^>]*)>(.*?)</option>', found.group(1),
                                      re.S)]


def _value(page: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert found, (name, page[-3000:])
    value = re.search(r'value="([^"]*)"', found.group(0))
    return html.unescape(value.group(1)) if value else ""


def _fields(dataset: str, base: str, **over: str) -> dict[str, str]:
    out = {"kind": "reward_model", "base_model": base, "dataset": dataset, "dataset_version": "",
           "learning_rate": "0.001", "epochs": "1", "batch_size": "4", "max_steps": "", "save_steps": "",
           "logging_steps": "1", "max_length": "128", "seed": "0", "beta": "0.1", "dp_mode": "target_epsilon",
           "target_epsilon": "", "noise_multiplier": "", "delta": "1e-05", "max_grad_norm": "1.0",
           "accountant": "prv"}
    out.update(over)
    return out


async def _submitted(log: Log, client: Any, form: dict[str, str]) -> tuple[Any, Any]:
    r = await client.post("/runs", data={**form, "_csrf_token": csrf(client)})
    assert r.status_code == 303, r.text[-3000:]
    run = r.headers["location"].rsplit("/", 1)[1]
    return r, await get_job(database_of(log), run)


async def test_the_form_offers_the_imported_datasets_and_their_versions(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, op="operator")
    db = database_of(log)
    first = await dataset(log, Keyring(keys), 4)
    second = await dataset(log, Keyring(keys), 6)
    await import_dataset(db, log, Keyring(keys), second, jsonl(8, seed=3), datasheet=SHEET, actor=ADMIN)
    await reject_version(db, second, 1)
    await set_budget(db, log, first, 5.0, 1e-5, ADMIN)
    async with portal(log, keys) as client:
        await sign_in(client, "op")
        listed = await client.get("/runs")
        assert 'href="/runs/new"' in listed.text
        form = await client.get("/runs/new")
        assert form.status_code == 200, form.text[-3000:]
    datasets = _select(form.text, "dataset")
    assert {v for v, *_ in datasets} == {first, second}
    shown = {v: t for v, t, *_ in datasets}
    assert "5" in shown[first] and "left" in shown[first]  # the budget left, next to the picker
    assert "no budget" in shown[second]
    versions = {v: (t, disabled) for v, t, _, disabled in _select(form.text, "dataset_version")}
    assert versions[""][1] is False  # latest
    assert versions[f"{first}:1"][1] is False
    assert versions[f"{second}:2"][1] is False
    rejected_text, rejected_off = versions[f"{second}:1"]
    assert rejected_off and "rejected" in rejected_text
    assert {v for v, *_ in _select(form.text, "kind")} == {"reward_model", "dpo"}
    # the limits of the spec's checks, stated on the fields
    for name, attrs in {"epochs": ('min="1"', 'step="1"'), "batch_size": ('min="1"',),
                        "max_steps": ('min="1"',), "save_steps": ('min="1"',), "logging_steps": ('min="1"',),
                        "learning_rate": ('min="0"', 'max="1"'), "delta": ('min="0"', 'max="1"'),
                        "max_length": ('min="8"',)}.items():
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', form.text)
        assert tag, name
        for a in attrs:
            assert a in tag.group(0), (name, a, tag.group(0))


async def test_the_fields_submit_exactly_that_spec(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, op="operator")
    name = await dataset(log, Keyring(keys), 8)
    await set_budget(database_of(log), log, name, 100.0, 1e-5, ADMIN)
    base = _model_dir(tmp_path)
    async with portal(log, keys) as client:
        await sign_in(client, "op")
        page = (await client.get("/runs/new")).text
        example = re.search(r'<input[^>]*name="spec_example"[^>]*value="([^"]*)"', page, re.S)
        assert example, page[-3000:]
        # the JSON box as shown (the example) is not what is submitted: the fields are
        form = _fields(name, base, kind="dpo", dataset_version=f"{name}:1", learning_rate="0.0002",
                       epochs="2", batch_size="4", max_steps="6", save_steps="3", logging_steps="2",
                       max_length="64", seed="7", beta="0.2", spec=html.unescape(example.group(1)),
                       spec_example=html.unescape(example.group(1)))
        r, job = await _submitted(log, client, form)
        assert r.headers["location"] == f"/runs/{job.run}"
        assert job.spec == {"kind": "dpo", "base_model": base, "dataset": name,
                            "dataset_version": 1, "learning_rate": 0.0002, "epochs": 2, "batch_size": 4,
                            "max_length": 64, "seed": 7, "logging_steps": 2, "save_steps": 3,
                            "max_steps": 6, "beta": 0.2}
        assert job.planned_epsilon is None
        # DP with a noise multiplier: the target ε typed before switching is not sent
        _, dp_job = await _submitted(log, client, _fields(
            name, base, dp="on", dp_mode="noise_multiplier", target_epsilon="8", noise_multiplier="1.1",
            delta="1e-06", max_grad_norm="0.5", accountant="rdp", max_steps="2"))
        assert dp_job.spec["dp"] == {"noise_multiplier": 1.1, "delta": 1e-06,
                                     "max_grad_norm": 0.5, "accountant": "rdp"}
        assert dp_job.planned_epsilon and dp_job.planned_epsilon > 0
        # DP with a target ε; DP off: the DP fields are not sent
        _, target = await _submitted(log, client, _fields(name, base, dp="on", target_epsilon="2.5"))
        assert target.spec["dp"] == {"target_epsilon": 2.5, "delta": 1e-05,
                                     "max_grad_norm": 1.0, "accountant": "prv"}
        assert target.planned_epsilon == 2.5
        _, plain = await _submitted(log, client, _fields(name, base, target_epsilon="2.5"))
        assert "dp" not in plain.spec


async def test_a_refused_field_keeps_everything_typed(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, op="operator")
    name = await dataset(log, Keyring(keys), 8)
    base = _model_dir(tmp_path)
    typed = _fields(name, base, kind="dpo", learning_rate="1.5", epochs="3", batch_size="2", max_steps="9",
                    save_steps="4", logging_steps="5", max_length="96", seed="11", beta="0.3", dp="on",
                    dp_mode="noise_multiplier", noise_multiplier="0.9", delta="2e-05", max_grad_norm="0.7",
                    accountant="rdp", target_epsilon="3", dataset_version=f"{name}:1")
    async with portal(log, keys) as client:
        await sign_in(client, "op")
        # (what differs from ``typed``, what the message says, the field it marks)
        for bad, said, field in (
                ({}, "learning_rate must be less than 1", "learning_rate"),
                ({"learning_rate": "0.001", "epochs": "two"}, "epochs must be a whole number", "epochs"),
                ({"learning_rate": "0.001", "base_model": str(tmp_path)}, "config.json", "base_model"),
                ({"learning_rate": "0.001", "dataset_version": "ds_other:1"}, "ds_other", "dataset_version")):
            sent = {**typed, **bad}
            r = await client.post("/runs", data={**sent, "_csrf_token": csrf(client)})
            assert r.status_code == 400, r.text[-3000:]
            assert said in html.unescape(r.text), (said, r.text[-3000:])
            marked = re.findall(r'<(?:input|select)[^>]*name="(\w+)"[^>]*aria-invalid="true"', r.text)
            assert marked == [field], (marked, bad)
            for key in ("base_model", "learning_rate", "epochs", "batch_size", "max_steps", "save_steps",
                        "logging_steps", "max_length", "seed", "beta", "noise_multiplier", "target_epsilon",
                        "delta", "max_grad_norm"):
                assert _value(r.text, key) == sent[key], (key, bad)
            for key in ("kind", "dataset", "accountant"):
                assert [v for v, _, chosen, _ in _select(r.text, key) if chosen] == [sent[key]], (key, bad)
            assert re.search(r'<input[^>]*name="dp"[^>]*checked', r.text)
            assert re.search(r'<input[^>]*value="noise_multiplier"[^>]*checked', r.text)
    assert await list_jobs(database_of(log)) == []


async def test_the_json_view_still_submits(sqlite_log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(sqlite_log, keys, op="operator")
    name = await dataset(sqlite_log, Keyring(keys), 8)
    base = _model_dir(tmp_path)
    async with portal(sqlite_log, keys) as client:
        await sign_in(client, "op")
        page = (await client.get("/runs/new")).text
        assert re.search(r"<details[^>]*>\s*<summary>Edit as JSON</summary>", page), page[-3000:]
        assert re.search(r"<details[^>]*open[^>]*>\s*<summary>Edit as JSON", (await client.get(
            "/runs/new?edit=json")).text)
        shown = re.search(r'name="spec_example"[^>]*value="([^"]*)"', page, re.S)
        assert shown, page[-3000:]
        example = html.unescape(shown.group(1))
        spec = {"kind": "reward_model", "base_model": base, "dataset": name, "learning_rate": 0.003,
                "batch_size": 2, "max_steps": 3}
        # the fields as shown hold other values: the changed JSON wins
        form = _fields(name, "", learning_rate="0.5", spec=json.dumps(spec), spec_example=example)
        _, job = await _submitted(sqlite_log, client, form)
        assert job.spec["learning_rate"] == 0.003 and job.spec["max_steps"] == 3
        # a JSON refusal keeps the typed text, in the open JSON view
        r = await client.post("/runs", data={**form, "spec": '{"kind": "dpo",', "_csrf_token": csrf(client)})
        assert r.status_code == 400 and "the spec is not JSON" in r.text
        assert _spec_text(r.text) == '{"kind": "dpo",'
        assert re.search(r"<details[^>]*open[^>]*>\s*<summary>Edit as JSON", r.text)


def _spec_text(page: str) -> str:
    found = re.search(r'<textarea id="spec"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, page[-2000:]
    return html.unescape(found.group(1)).strip()

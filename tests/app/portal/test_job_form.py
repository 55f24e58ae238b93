"""The job form starts from a spec that names this log's own data (issue 15: the default spec named a
dataset ``ds_example`` that no log has, so it failed as given)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from app.core.keyring import Keyring
from ledger.log import Log
from tests.support.jobs import dataset
from tests.support.portal import accounts, enrolled, portal


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
        empty = _spec((await client.get("/runs")).text)
        assert empty["dataset"] != "ds_example" and "import a dataset" in str(empty["dataset"])
        name = await dataset(sqlite_log, Keyring(keys), 4)
        spec = _spec((await client.get("/runs")).text)
    assert spec["dataset"] == name

"""The forms that name a run, a model or a dataset offer the ones this log has: ``<input list>``
with a ``<datalist>`` (typing stays possible), fed by the server."""

from __future__ import annotations

import html
import re
from pathlib import Path

from app.core.keyring import Keyring
from app.jobs import submit
from app.jobs.queue import LocalQueue
from app.jobs.service import update_job
from ledger.log import Log
from tests.support.databases import database_of
from tests.support.jobs import ADMIN, dataset
from tests.support.portal import accounts, enrolled, portal


def offered(page: str, input_id: str) -> set[str]:
    """The values of the datalist that the input ``input_id`` names."""
    tag = re.search(rf'<input[^>]*id="{input_id}"[^>]*>', page)
    assert tag, (input_id, page[-3000:])
    named = re.search(r'list="([^"]+)"', tag.group(0))
    assert named, tag.group(0)
    found = re.search(rf'<datalist id="{named.group(1)}">(.*?)</datalist>', page, re.S)
    assert found, (named.group(1), page[-3000:])
    return {html.unescape(v) for v in re.findall(r'<option value="([^"]*)"', found.group(1))}


async def test_scope_forms_offer_the_runs_models_and_datasets(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(log, keys, ovr="overseer")
    db = database_of(log)
    name = await dataset(log, Keyring(keys), 6)
    base = tmp_path / "model"
    base.mkdir()
    (base / "config.json").write_text("{}")
    spec = {"kind": "reward_model", "base_model": str(base), "dataset": name, "learning_rate": 0.001}
    trained = await submit(db, log, Keyring(keys), LocalQueue(), spec, ADMIN)
    queued = await submit(db, log, Keyring(keys), LocalQueue(), spec, ADMIN)
    await update_job(db, trained.run, status="completed", model="model_0123456789ABCDEFGHJKMNPQRS")
    async with portal(log, keys) as client:
        await enrolled(client, "ovr")
        page = (await client.get("/reports")).text
    runs, models = {trained.run, queued.run}, {"model_0123456789ABCDEFGHJKMNPQRS"}
    for prefix in ("r", "b", "i"):  # the report, the bundle and the freeze forms
        assert runs <= offered(page, f"{prefix}-run"), prefix
        assert models == offered(page, f"{prefix}-model"), prefix
    for prefix in ("r", "b"):
        assert offered(page, f"{prefix}-dataset") == {name}
    # the labels the browser tests use stay
    for label in ("Scope", "Run", "Model", "Dataset"):
        assert f">{label}</label>" in page

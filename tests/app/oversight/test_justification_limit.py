"""A justification is a reason, not a document: its upper limit is stated in the form and refused
in plain words by the service (issue 15: a 200 KB justification was refused with a message about
tlog-tiles entry bundles). Nothing is recorded for a refused decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.keyring import Keyring
from app.events.recording import Actor
from app.jobs.errors import JobError
from app.jobs.queue import LocalQueue
from app.oversight.service import MAX_JUSTIFICATION, halt
from ledger.log import Log
from tests.support.databases import database_of
from tests.support.jobs import dataset, serving, token
from tests.support.portal import accounts, enrolled, portal


async def test_an_overlong_justification_is_refused_in_plain_words(log: Log, tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    db = database_of(log)
    ann = await token(log, keyring, "ann", "overseer")
    before = await log.sequenced_size()
    async with serving(log, keyring, LocalQueue()) as client:
        r = await client.post("/api/v1/oversight/runs/run_x/halt", headers=ann,
                              json={"justification": "x" * 200_000})
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "200,000 characters" in detail and f"{MAX_JUSTIFICATION:,}" in detail
    assert "tile" not in detail and "bundle" not in detail
    assert await log.sequenced_size() == before  # nothing recorded
    with pytest.raises(JobError, match="at most"):
        await halt(db, log, "run_x", "y" * (MAX_JUSTIFICATION + 1),
                   Actor.of_account(keyring.pseudonymizer, "ann", "overseer"))


async def test_the_decision_form_states_the_limit(sqlite_log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    await accounts(sqlite_log, keys, boss="admin")
    name = await dataset(sqlite_log, Keyring(keys), 4)
    async with portal(sqlite_log, keys) as client:
        await enrolled(client, "boss")
        page = await client.get(f"/datasets/{name}")
    assert page.status_code == 200, page.text[-2000:]
    assert 'name="justification"' in page.text  # the reject forms
    assert f'maxlength="{MAX_JUSTIFICATION}"' in page.text
    assert f"at most {MAX_JUSTIFICATION:,} characters" in page.text

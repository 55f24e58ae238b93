"""The explorer answers "what happened to run X": its run filter lists the run's halt, resume and
approval with the action taken and the target; the model and dataset filters find the decisions
about them; hashes are short with a copy button (the full hash stays in the page); the kind
picker offers the kinds the log holds.

Over a real log (SQLite and PostgreSQL): a job submitted, halted by one overseer and resumed by a
second through ``app.oversight``; an approval recorded as ``app.oversight`` records it."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx

from app.core.keyring import Keyring
from app.events.recording import record
from app.jobs import submit
from app.jobs.queue import LocalQueue
from app.oversight import halt, resume
from ledger.log import Log
from tests.support.databases import database_of
from tests.support.jobs import ADMIN, OVERSEER_A, OVERSEER_B, dataset, spec
from tests.support.portal import accounts, portal, sign_in

WHY = "the reward accuracy fell below the agreed floor"


def rows(page: httpx.Response) -> list[dict[str, str]]:
    """The results table, one dict per row: column header -> the cell's text."""
    assert page.status_code == 200, page.text
    table = re.search(r'<table class="results".*?</table>', page.text, re.S)
    assert table, page.text
    heads = [re.sub(r"<[^>]+>", "", h).strip()
             for h in re.findall(r"<th[^>]*>(.*?)</th>", table.group(0), re.S)]
    out = []
    for tr in re.findall(r"<tr>(.*?)</tr>", table.group(0).split("<tbody>")[1], re.S):
        cells = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split())
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        out.append(dict(zip(heads, cells, strict=True)))
    return out


async def test_the_run_filter_shows_the_decisions_with_action_and_target(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keyring, db = Keyring(keys), database_of(log)
    await accounts(log, keys, aud="auditor")
    ds = await dataset(log, keyring, 16)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    other = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    halted = await halt(db, log, job.run, WHY, OVERSEER_A)
    await halt(db, log, other.run, WHY, OVERSEER_A)
    resumed = await resume(db, log, LocalQueue(), job.run, WHY, OVERSEER_B)
    approval = await record(log, "oversight.decision", OVERSEER_A, action="approve_release",
                            target={"model": "model_x", "run": job.run}, justification=WHY,
                            decision_id="dec_" + "a" * 26, root="sha256:abc")

    async with portal(log, keys) as aud:
        await sign_in(aud, "aud")
        page = await aud.get("/explorer", params={"run": job.run})
        shown = rows(page)
        decisions = [r for r in shown if r["Kind"] == "oversight.decision"]
        assert [(r["#"], r["Action"], r["Target"]) for r in decisions] == [
            (str(approval.leaf_index), "approve_release", f"model model_x · run {job.run}"),
            (str(resumed.leaf_index), "resume", f"run {job.run}"),
            (str(halted.leaf_index), "halt", f"run {job.run}"),
        ]
        assert {r["Kind"] for r in shown} >= {"job.submitted", "run.halted", "oversight.decision"}
        assert all(other.run not in r["Target"] for r in shown)

        # only the decisions, with the kind picker; and by model
        only = rows(await aud.get("/explorer", params={"run": job.run, "kind": "oversight.decision"}))
        assert [r["Action"] for r in only] == ["approve_release", "resume", "halt"]
        by_model = rows(await aud.get("/explorer", params={"model": "model_x"}))
        assert [(r["Action"], r["Target"]) for r in by_model] == [("approve_release",
                                                                   f"model model_x · run {job.run}")]

        # the kind picker lists the kinds the log holds, the chosen one selected
        picker = re.search(r'<select id="kind" name="kind">(.*?)</select>', page.text, re.S)
        assert picker, page.text
        kinds = re.findall(r'<option value="([^"]*)"', picker.group(1))
        assert kinds[0] == ""
        assert {"oversight.decision", "job.submitted", "run.halted", "account.created"} <= set(kinds)
        assert "run.completed" not in kinds  # nothing completed on this log
        chosen = await aud.get("/explorer", params={"kind": "run.halted"})
        assert '<option value="run.halted" selected>' in chosen.text

        # short hashes with a copy button; the full hash stays in the page, selectable
        full = re.findall(r'data-copy="([^"]+)"', page.text)
        assert len(full) == len(shown) and all(len(h) == 44 for h in full)
        for r, h in zip(shown, full, strict=True):
            assert h in r["Leaf hash"]
        assert page.text.count('<script src="/static/copy.js" defer></script>') == 1
        assert re.search(r"<title>Log explorer ·", page.text)
        script = await aud.get("/static/copy.js")
        assert script.status_code == 200 and "data-copy" in script.text

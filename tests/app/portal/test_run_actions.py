"""The run page as a control room: which oversight forms it offers to whom in each state, the
release state spelled out, release from the portal, and refusals that keep what was typed.

Over a real log (SQLite and PostgreSQL) and real training (tiny model); each person is a
cookie-keeping browser session on the same app."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import httpx

from app.core.keyring import Keyring
from app.jobs import get_job, submit
from app.jobs.queue import LocalQueue
from app.jobs.service import checkpoints, claim
from app.worker.local import run_local_worker
from ledger.log import Log
from tests.support.databases import database_of
from tests.support.jobs import ADMIN, dataset, spec, worker_ctx
from tests.support.portal import HTML, accounts, csrf, enrolled, portal, sign_in

WHY = 'checked the "probe set" <twice> & it holds'


def offered(page: httpx.Response) -> list[str]:
    """The oversight forms on a page, by action."""
    return re.findall(r'<form method="post" action="/oversight/([a-z_]+)"', page.text)


def state(page: httpx.Response) -> str:
    found = re.search(r'id="release-state">(.*?)</dd>', page.text, re.S)
    assert found, page.text
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())


def typed(page: httpx.Response) -> str:
    """What the refused page's form holds in its justification."""
    found = re.search(r'name="justification"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert found, page.text
    assert "<twice>" not in found.group(1)  # escaped
    return html.unescape(found.group(1))


async def send(client: httpx.AsyncClient, action: str, **form: str) -> httpx.Response:
    data = {"justification": WHY, "confirm": "yes", **form, "_csrf_token": csrf(client)}
    return await client.post(f"/oversight/{action}", data=data)


async def last_event(log: Log, kind: str) -> tuple[int, dict[str, object]]:
    size = await log.sequenced_size()
    for i in reversed(range(size)):
        e = json.loads(await log.entry(i))
        if e["kind"] == kind:
            return i, e
    raise AssertionError(f"no {kind} on the log")


async def test_run_page_offers_only_the_actions_that_apply(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keyring, db = Keyring(keys), database_of(log)
    await accounts(log, keys, ann="overseer", bob="overseer", aud="auditor")
    ds = await dataset(log, keyring, 16)
    trained = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    await run_local_worker(worker_ctx(log, keyring, tmp_path), burst=True)
    model = (await get_job(db, trained.run)).model
    assert model
    queued = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    running = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    assert await claim(db, running.run)  # as a worker does when it picks the job up

    async with portal(log, keys) as ann:
        same_app = {"transport": ann._transport, "base_url": "http://portal.test", "headers": HTML}
        async with httpx.AsyncClient(**same_app) as bob, httpx.AsyncClient(**same_app) as aud:
            await enrolled(ann, "ann")
            await enrolled(bob, "bob")
            await sign_in(aud, "aud")

            async def page(who: httpx.AsyncClient, run: str) -> httpx.Response:
                shown = await who.get(f"/runs/{run}")
                assert shown.status_code == 200, shown.text
                return shown

            # queued and running: halt, for overseers only
            for run in (queued.run, running.run):
                assert offered(await page(ann, run)) == ["halt"]
                assert offered(await page(aud, run)) == []

            # halted by ann: ann is told a second overseer must resume; bob gets the form
            r = await send(ann, "halt", run=queued.run, back=f"/runs/{queued.run}")
            assert r.status_code == 303, r.text
            mine = await page(ann, queued.run)
            assert offered(mine) == [] and "a second overseer must resume it" in mine.text
            assert offered(await page(bob, queued.run)) == ["resume"]
            # her own resume is refused, and the refusal keeps the form with what she typed
            refused = await send(ann, "resume", run=queued.run, back=f"/runs/{queued.run}")
            assert refused.status_code == 403 and "other than the one who halted" in refused.text
            assert offered(refused) == ["resume"]
            assert typed(refused) == WHY
            assert f'name="run" value="{queued.run}"' in refused.text

            # a completed, undecided model: approve or veto (and roll back)
            run = trained.run
            assert offered(await page(ann, run)) == ["approve_release", "veto_release", "rollback"]
            assert offered(await page(aud, run)) == []
            assert state(await page(aud, run)) == "not yet decided: awaiting approval or veto"

            # vetoed: nothing but a rollback, which makes it undecided again
            assert (await send(ann, "veto_release", model=model, back=f"/runs/{run}")).status_code == 303
            _, veto = await last_event(log, "oversight.decision")
            assert state(await page(aud, run)).startswith(f"vetoed by {veto['actor']}")
            assert offered(await page(bob, run)) == ["rollback"]
            first = (await checkpoints(db, run))[0]["root"]
            r = await send(ann, "rollback", run=run, to_checkpoint=first, back=f"/runs/{run}")
            assert r.status_code == 303, r.text
            assert offered(await page(bob, run)) == ["approve_release", "veto_release", "rollback"]

            # approved: release (or a veto), no second approval
            assert (await send(ann, "approve_release", model=model, back=f"/runs/{run}")).status_code == 303
            approval_index, approval = await last_event(log, "oversight.decision")
            assert state(await page(aud, run)) == f"approved by {approval['actor']} · awaiting release"
            assert offered(await page(bob, run)) == ["release", "veto_release", "rollback"]
            second = await send(bob, "approve_release", model=model, back=f"/runs/{run}")
            assert second.status_code == 409, second.text
            assert "already approved" in second.text and f"log entry {approval_index}" in second.text
            assert typed(second) == WHY and offered(second) == ["approve_release"]

            # release through the portal: a justification is required, and goes on the log
            short = await send(bob, "release", model=model, justification="ok", back=f"/runs/{run}")
            assert short.status_code == 400 and "at least 10 characters" in short.text
            assert offered(short) == ["release"] and typed(short) == "ok"
            forged = await send(bob, "release", model='m" onmouseover="alert(1)', back=f"/runs/{run}")
            assert forged.status_code == 404 and 'onmouseover="' not in forged.text
            assert 'name="model" value="m&#34; onmouseover=&#34;alert(1)"' in forged.text
            r = await send(bob, "release", model=model, back=f"/runs/{run}")
            assert r.status_code == 303, r.text
            index, released = await last_event(log, "model.released")
            assert released["model"] == model and released["approval"] == approval["decision_id"]
            assert released["justification"] == WHY
            assert r.headers["location"].endswith(f"recorded={index}")
            done = await page(aud, run)
            assert state(done) == f"released by {released['actor']} · log entry {index}"
            assert offered(await page(ann, run)) == offered(await page(bob, run)) == []
            again = await send(bob, "release", model=model, back=f"/runs/{run}")
            assert again.status_code == 409 and "already released" in again.text

"""The run page's cockpit: a header that says where a run stands (status, "step 81 of 200", ε against
its plan and the dataset's budget, the decision state in words) and offers only the actions that
apply; charts with hover values over global steps and the resume drawn; one ε text everywhere.

Over a real log and database (SQLite and PostgreSQL); the job row comes from the real ``submit``,
the training events are appended as the worker's callback records them (no training): segment 1
to step 81, halted, resumed by a second overseer as segment 2 from step 81 to step 200."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from app.core.keyring import Keyring
from app.events.recording import Actor, event
from app.jobs import submit
from app.jobs.queue import LocalQueue
from app.jobs.service import add_checkpoint, claim, update_job
from app.oversight import service as oversight
from ledger.log import Log
from tests.support.databases import database_of
from tests.support.jobs import ADMIN, dataset, spec
from tests.support.portal import HTML, accounts, csrf, enrolled, portal, sign_in

WORKER = Actor("worker", "service")
WHY = "checked the metrics and the privacy spend"
ROOT_81 = "sha256:" + "8" * 64


def cockpit(page: httpx.Response) -> str:
    found = re.search(r'<header class="cockpit".*?</header>', page.text, re.S)
    assert found, page.text[:3000]
    return found.group(0)


def text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", "", fragment).replace("&#39;", "'").split())


def by_id(page: httpx.Response, ident: str) -> str:
    found = re.search(rf'id="{ident}"[^>]*>(.*?)</(?:strong|dd|span|p|meter)>', page.text, re.S)
    assert found, f"no #{ident} in {page.text[:3000]}"
    return text(found.group(1))


def links(page: httpx.Response) -> list[str]:
    """The actions the cockpit offers, by action: links to the forms further down."""
    return re.findall(r'href="#(?:form|fold)-([a-z_]+)"', cockpit(page))


def forms(page: httpx.Response) -> list[str]:
    return re.findall(r'<form method="post" action="/oversight/([a-z_]+)"', page.text)


def decision_state(page: httpx.Response) -> str:
    found = re.search(r'class="decision-state"[^>]*>(.*?)</dd>', cockpit(page), re.S)
    assert found, cockpit(page)
    return text(found.group(1))


async def send(client: httpx.AsyncClient, action: str, **form: str) -> httpx.Response:
    r = await client.post(f"/oversight/{action}", data={"justification": WHY, "confirm": "yes", **form,
                                                       "_csrf_token": csrf(client)})
    assert r.status_code == 303, r.text
    return r


def started(run: str, ds: str, planned_steps: int = 200, **extra: Any) -> dict[str, Any]:
    return event("run.started", WORKER, run=run, config_sha256="sha256:" + "0" * 64, dataset=ds,
                 dataset_version=1, dp={"enabled": True, "unit": "preference_pair",
                                        "planned_steps": planned_steps, "delta": 1e-5}, **extra)


def metrics(run: str, steps: range) -> dict[str, Any]:
    return event("run.metrics", WORKER, run=run, steps=[
        {"step": s, "loss": 0.7 - s / 1000, "reward_accuracy": 0.5 + s / 1000} for s in steps])


def privacy(run: str, step: int, epsilon: float) -> dict[str, Any]:
    return event("run.privacy", WORKER, run=run, step=step, epsilon=epsilon, delta=1e-5, accountant="prv")


async def test_the_cockpit_follows_a_run_through_halt_resume_and_release(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keyring, db = Keyring(keys), database_of(log)
    await accounts(log, keys, ann="overseer", bob="overseer", aud="auditor")
    ann_is = Actor.of_account(keyring.pseudonymizer, "ann", "overseer").pseudonym
    bob_is = Actor.of_account(keyring.pseudonymizer, "bob", "overseer")
    ds = await dataset(log, keyring, 16, budget=8.0)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds, max_steps=None, epochs=50,
                                                           dp={"target_epsilon": 1.0, "delta": 1e-5}), ADMIN)
    run, planned = job.run, job.planned_epsilon
    assert planned == 1.0
    assert await claim(db, run)
    await log.append([started(run, ds), metrics(run, range(1, 82)), privacy(run, 27, 0.2),
                      privacy(run, 54, 0.41), privacy(run, 81, 0.613)])

    async with portal(log, keys) as ann:
        same_app = {"transport": ann._transport, "base_url": "http://portal.test", "headers": HTML}
        async with httpx.AsyncClient(**same_app) as bob, httpx.AsyncClient(**same_app) as aud:
            await enrolled(ann, "ann")
            await enrolled(bob, "bob")
            await sign_in(aud, "aud")

            async def page(who: httpx.AsyncClient) -> httpx.Response:
                shown = await who.get(f"/runs/{run}")
                assert shown.status_code == 200, shown.text
                return shown

            # running, segment 1: where it stands, in the header
            seen = await page(aud)
            head = text(cockpit(seen))
            assert "running" in head and "step 81 of 200" in head, head
            assert by_id(seen, "steps") == "81" and by_id(seen, "epsilon") == "0.613"
            assert "ε 0.613 of 1 planned" in head, head
            assert "dataset budget: 7 of 8 left" in head, head  # 1 reserved for this run, none spent
            meter = re.search(r'<meter[^>]*id="epsilon-gauge"[^>]*>', seen.text)
            assert meter and re.search(r'value="0.613".*max="1(\.0)?"', meter.group(0)), meter
            assert decision_state(seen) == "no oversight decision yet"
            assert links(seen) == [] and links(await page(ann)) == ["halt"]
            assert "position: sticky" in (Path(__file__).parents[3] / "static" / "portal.css").read_text()

            # the htmx poll brings the header's numbers along (an out-of-band swap)
            await log.append([metrics(run, range(82, 91)), privacy(run, 90, 0.64)])
            live = await aud.get(f"/runs/{run}/live", headers={"HX-Request": "true"})
            assert live.status_code == 200
            assert re.search(r'<div id="cockpit-now"[^>]*hx-swap-oob="true"', live.text), live.text
            oob = text(live.text[live.text.index('id="cockpit-now"'):])
            assert "step 90 of 200" in oob and "ε 0.64 of 1 planned" in oob, oob

            # halt requested by ann, then halted at step 90 with a checkpoint
            await send(ann, "halt", run=run, back=f"/runs/{run}")
            requested = decision_state(await page(aud))
            assert requested == f"halt requested by {ann_is} · stopping at its next step"
            assert links(await page(ann)) == [] and links(await page(bob)) == []
            await add_checkpoint(db, run, 90, f"runs/{run}/step-90/", ROOT_81)
            (halt,) = await oversight.list_decisions(db, run=run, action="halt")
            await log.append([event("run.halted", WORKER, run=run, step=90, decision=halt.leaf_index,
                                    checkpoint_root=ROOT_81)])
            await update_job(db, run, status="halted", steps=90, epsilon=0.64)
            mine = await page(ann)
            assert decision_state(mine) == f"halted by you ({ann_is}) · waiting for a second overseer"
            assert links(mine) == forms(mine) == []
            theirs = await page(bob)
            assert decision_state(theirs) == f"halted by {ann_is} · waiting for a second overseer"
            assert links(theirs) == forms(theirs) == ["resume"]
            assert links(await page(aud)) == []

            # resumed by bob: segment 2 from step 90, global steps, cumulative ε
            resume = await oversight.resume(db, log, LocalQueue(), run, WHY, bob_is)
            assert await claim(db, run)
            await log.append([started(run, ds, segment=2, resumed_from={  # the worker names the halt
                "step": 90, "checkpoint_root": ROOT_81, "decision": halt.leaf_index}),
                metrics(run, range(91, 161)), privacy(run, 120, 0.8), privacy(run, 160, 0.9)])
            seen = await page(aud)
            assert "step 160 of 200" in text(cockpit(seen))
            assert decision_state(seen) == f"resumed by {bob_is.pseudonym} · running"
            segments = re.search(r'<ol class="segments".*?</ol>', seen.text, re.S)
            assert segments, seen.text
            said = text(segments.group(0))
            by = f"resumed by {bob_is.pseudonym} (log entry {resume.leaf_index})"
            assert f"segment 2 from step 90, {by}" in said, said
            assert f'href="/explorer/entries/{resume.leaf_index}"' in segments.group(0)
            charts = re.findall(r'<svg class="chart".*?</svg>', seen.text, re.S)
            assert len(charts) == 3
            for chart in charts:  # a dashed line at the resume, labelled
                assert re.search(r'<line[^>]*class="segment"', chart) and ">resumed</text>" in chart, chart
            eps = charts[2]
            assert "<title>step 90: ε 0.64</title>" in eps and "<title>step 160: ε 0.9</title>" in eps
            assert "planned ε 1</text>" in eps and "dataset budget 8</text>" in eps
            assert "<title>step 150: loss 0.55</title>" in charts[0]
            assert "<desc>" in eps

            # completed with a model: approve, then release
            await update_job(db, run, status="completed", steps=200, epsilon=0.996, model="model_cockpit",
                             model_root="sha256:" + "9" * 64)
            await log.append([metrics(run, range(161, 201)), privacy(run, 200, 0.996)])
            seen = await page(ann)
            assert "step 200 of 200" in text(cockpit(seen)) and by_id(seen, "epsilon") == "0.996"
            assert decision_state(seen) == "not yet decided: awaiting approval or veto"
            assert links(seen) == forms(seen) == ["approve_release", "veto_release", "rollback"]
            assert links(await page(aud)) == []
            await send(ann, "approve_release", model="model_cockpit", back=f"/runs/{run}")
            assert decision_state(await page(aud)) == f"approved by {ann_is} · awaiting release"
            theirs = await page(bob)
            assert links(theirs) == forms(theirs) == ["release", "veto_release", "rollback"]
            await send(bob, "release", model="model_cockpit", back=f"/runs/{run}")
            done = await page(aud)
            assert decision_state(done).startswith(f"released by {bob_is.pseudonym} · log entry ")
            assert links(await page(ann)) == links(await page(bob)) == []

            # the runs list says the same as the run page
            listed = await aud.get("/runs")
            row = re.search(rf'<tr>\s*<td class="id"><a href="/runs/{run}">.*?</tr>', listed.text, re.S)
            assert row, listed.text
            assert "step 200 of 200" in text(row.group(0))
            assert text(row.group(0)).split(" / ")[-1].split()[0] == by_id(done, "epsilon") == "0.996"


async def test_one_epsilon_text_on_the_page_and_the_list_while_running(log: Log, tmp_path: Path) -> None:
    """While a run trains, its job row lags the log; the list and the page both show the log's ε."""
    keys = tmp_path / "keys"
    keyring, db = Keyring(keys), database_of(log)
    await accounts(log, keys, aud="auditor")
    ds = await dataset(log, keyring, 16, budget=8.0)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds, max_steps=None, epochs=3,
                                                           dp={"target_epsilon": 2.0, "delta": 1e-5}), ADMIN)
    plain = await submit(db, log, keyring, LocalQueue(), spec(ds, max_steps=None, epochs=1), ADMIN)
    assert await claim(db, job.run) and await claim(db, plain.run)
    await log.append([started(job.run, ds, planned_steps=36), metrics(job.run, range(1, 13)),
                      privacy(job.run, 12, 0.123456), metrics(plain.run, range(1, 8))])
    async with portal(log, keys) as aud:
        await sign_in(aud, "aud")
        shown = await aud.get(f"/runs/{job.run}")
        listed = await aud.get("/runs")
        assert by_id(shown, "epsilon") == "0.123" and "step 12 of 36" in text(cockpit(shown))
        row = re.search(rf'<tr>\s*<td class="id"><a href="/runs/{job.run}">.*?</tr>', listed.text, re.S)
        assert row and "step 12 of 36" in text(row.group(0))  # the run's plan: its dp.planned_steps
        assert text(row.group(0)).split(" / ")[-1].split()[0] == "0.123"
        other = re.search(rf'<tr>\s*<td class="id"><a href="/runs/{plain.run}">.*?</tr>', listed.text, re.S)
        assert other and re.search(r"step 7(?! of)", text(other.group(0))), other
        page = await aud.get(f"/runs/{plain.run}")
        assert re.search(r"step 7(?! of)", text(cockpit(page))) and "no DP" in text(cockpit(page))

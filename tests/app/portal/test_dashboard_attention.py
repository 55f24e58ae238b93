"""The dashboard as the overseer's "needs attention" page: halted runs waiting for a second overseer,
models waiting for approval or release, failing compliance rules with the check's age, privacy
budgets as gauges with their numbers, timestamps behind and witnesses; each panel with a count,
links to where to act, and a plain empty state.

Over a real log and database (SQLite and PostgreSQL); job rows come from the real ``submit`` and are
moved on as a worker would (no training); the decisions and the check go through their services."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx

from app.compliance import run_checks
from app.core.keyring import Keyring
from app.core.settings import Settings
from app.datasets import get_budget
from app.events.index import EventIndex
from app.events.recording import Actor, event
from app.jobs import submit
from app.jobs.queue import LocalQueue
from app.jobs.service import update_job
from app.oversight import service as oversight
from ledger.log import Log
from tests.support.compliance_log import settle
from tests.support.databases import database_of
from tests.support.jobs import ADMIN, dataset, spec
from tests.support.portal import accounts, portal, sign_in

WHY = "checked the metrics and the privacy spend"


def panel(page: httpx.Response, ident: str) -> str:
    found = re.search(rf'<section class="panel" id="{ident}".*?</section>', page.text, re.S)
    assert found, f"no #{ident} in {page.text[:3000]}"
    return found.group(0)


def text(fragment: str) -> str:
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", fragment).split()))


def count(fragment: str) -> int:
    found = re.search(r'<h2[^>]*>.*?<span class="count[^"]*">(\d+)</span>', fragment, re.S)
    assert found, fragment
    return int(found.group(1))


async def test_every_panel_says_plainly_when_nothing_waits(log: Log, tmp_path: Path) -> None:
    await accounts(log, tmp_path / "keys", aud="auditor")
    async with portal(log, tmp_path / "keys") as client:
        await sign_in(client, "aud")
        page = await client.get("/")
        assert page.status_code == 200
        for ident, words in (("attention-halted", "Nothing waits for a second overseer."),
                             ("attention-models", "No model waits for approval or release."),
                             ("attention-rules", "No compliance check has run yet."),
                             ("attention-budgets", "No dataset has been imported yet"),
                             ("attention-timestamps", "No witnesses configured")):
            shown = panel(page, ident)
            assert words in text(shown), (ident, text(shown))
            assert count(shown) == 0, ident
        assert 'id="activity"' in page.text and 'id="log-size"' in page.text  # the panels kept


async def test_each_panel_lists_what_waits_with_links(log: Log, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keyring, db = Keyring(keys), database_of(log)
    await accounts(log, keys, ann="overseer", aud="auditor")
    ann = Actor.of_account(keyring.pseudonymizer, "ann", "overseer")
    ds = await dataset(log, keyring, 16, budget=8.0)
    bare = await dataset(log, keyring, 16)  # no budget: needs attention
    dp = {"max_steps": None, "epochs": 50, "dp": {"target_epsilon": 1.0, "delta": 1e-5}}
    halted, waiting, approved = [await submit(db, log, keyring, LocalQueue(), spec(ds, **dp), ADMIN)
                                 for _ in range(3)]
    halt = await oversight.halt(db, log, halted.run, WHY, ann)
    await update_job(db, waiting.run, status="completed", steps=200, epsilon=0.996, model="model_waiting",
                     model_root="sha256:" + "9" * 64)
    await update_job(db, approved.run, status="completed", steps=120, epsilon=0.5, model="model_approved",
                     model_root="sha256:" + "8" * 64)
    approval = await oversight.approve_release(db, log, "model_approved", WHY, ann)
    (personal,) = await log.append([event("test.note", ann, note="write to someone@example.com")])
    # the documentation the GDPR Art. 6 and 32 rules ask for, so that only the personal data fails
    await log.append([event("doc.recorded", ADMIN, topic="lawful_basis", text="consent", basis="consent",
                            dataset=d) for d in (ds, bare)]
                     + [event("doc.recorded", ADMIN, topic="cybersecurity", text="signed log, TLS")])
    await settle(log)
    check = await run_checks(db, log, EventIndex(db, log), settings=Settings.load())
    assert not check.ok
    budget = await get_budget(db, ds)

    async with portal(log, keys) as client:
        await sign_in(client, "aud")
        page = await client.get("/")
        assert page.status_code == 200

        halted_panel = panel(page, "attention-halted")
        said = text(halted_panel)
        assert count(halted_panel) == 1
        assert f'href="/runs/{halted.run}"' in halted_panel
        assert f'href="/runs/{halted.run}#form-resume"' in halted_panel
        assert f"halted by {ann.pseudonym}" in said and "(just now)" in said
        assert f'href="/explorer/entries/{halt.leaf_index}"' in halted_panel

        models = panel(page, "attention-models")
        assert count(models) == 2
        approval_list = re.search(r'id="models-approval".*?</ul>', models, re.S).group(0)  # type: ignore[union-attr]
        release_list = re.search(r'id="models-release".*?</ul>', models, re.S).group(0)  # type: ignore[union-attr]
        assert "model_waiting" in approval_list and "model_approved" not in approval_list
        assert f'href="/runs/{waiting.run}#form-approve_release"' in approval_list
        assert "200 steps" in text(approval_list) and "ε 0.996" in text(approval_list)
        assert "model_approved" in release_list
        assert f'href="/runs/{approved.run}#form-release"' in release_list
        assert f"approved by {ann.pseudonym}" in text(release_list)
        assert f'href="/explorer/entries/{approval.leaf_index}"' in release_list

        rules = panel(page, "attention-rules")
        assert count(rules) == 1
        assert "gdpr.art5.no-personal-data" in rules and "Checked just now" in text(rules)
        assert f'href="/explorer/entries/{personal.leaf_index}"' in rules
        assert f'href="/explorer/entries/{check.leaf_index}"' in rules and 'href="/reports"' in rules

        budgets = panel(page, "attention-budgets")
        assert f'href="/datasets/{ds}"' in budgets and f'href="/datasets/{bare}"' in budgets
        assert count(budgets) == 1 and "no privacy budget set" in text(budgets)  # ds: 5 of 8 left
        numbers = (f"ε {budget.spent:g} spent, {budget.reserved:g} reserved, {budget.remaining:g} left of "
                   f"{budget.epsilon_total:g}")
        assert budget.reserved == 3.0 and budget.epsilon_total == 8.0
        gauge = re.search(r'<svg class="gauge"[^>]*role="img"[^>]*>.*?</svg>', budgets, re.S)
        assert gauge and f'<title id="gauge-{ds}">{ds}: {numbers}</title>' in html.unescape(gauge.group(0))
        assert re.search(r'class="gauge-reserved" x="0(\.0)?" y="0" width="37.5"', gauge.group(0))
        shown = f"ε {budget.spent:g} spent · {budget.reserved:g} reserved · {budget.remaining:g} left"
        assert shown in text(budgets)

        stamps = panel(page, "attention-timestamps")
        assert "No witnesses configured" in text(stamps)

        # the fragment htmx polls carries the same panels
        polled = await client.get("/dashboard/attention", headers={"HX-Request": "true"})
        assert polled.status_code == 200 and 'id="attention"' in polled.text
        assert f'href="/runs/{halted.run}#form-resume"' in polled.text

        # resumed and released: the panels follow
        bob = Actor(ann.pseudonym.replace("pseud:", "pseud:b"), "overseer")
        await oversight.resume(db, log, LocalQueue(), halted.run, WHY, bob)
        await oversight.release_model(db, log, "model_approved", ann, justification=WHY)
        page = await client.get("/")
        assert "Nothing waits for a second overseer." in text(panel(page, "attention-halted"))
        models = panel(page, "attention-models")
        assert count(models) == 1 and "model_approved" not in models


def test_ages_read_as_people_say_them() -> None:
    from datetime import UTC, datetime, timedelta

    from app.portal.sources import ago

    now = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    assert ago(now - timedelta(seconds=20), now) == "just now"
    assert ago(now - timedelta(minutes=12, seconds=5), now) == "12 min ago"
    assert ago(now - timedelta(hours=3, minutes=40), now) == "3 h ago"
    assert ago("2026-12-06T11:00:00.000Z", now) == "2 d ago"
    assert ago(None, now) == ""

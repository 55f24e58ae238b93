"""The portal in a real browser (Debian's Chromium) against a real ``rlhf-audit serve`` process.

Covered: sign-in with a TOTP second factor (enrolment in the portal, codes from pyotp), session
end; the log explorer (search by kind and by leaf hash) and the inclusion proof checked in the
browser with WebCrypto (✓, and ✗ once the page's proof is tampered with); role limits (an
auditor sees no oversight or freeze forms, and a forged halt or freeze with the auditor's own session
and CSRF token is refused; an overseer freezes the day's evidence). Screenshots of the main pages
are kept as test artefacts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp

from .conftest import PASSWORD, ROOT, Server

SCREENSHOTS = ROOT / "docs" / "screenshots"



def shot(page: Any, artefacts: Path, name: str, part: Any = None) -> None:
    """Keep a screenshot (of the page, or of one ``part`` of it) as an artefact; with
    RLHF_AUDIT_UPDATE_SCREENSHOTS=1 also in docs/."""
    target = artefacts / f"{name}.png"
    if part is None:
        page.screenshot(path=str(target), full_page=True)
    else:
        part.screenshot(path=str(target))
    if os.environ.get("RLHF_AUDIT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, SCREENSHOTS / target.name)


def next_code(server: Server, account: str) -> str:
    """A code for a time step not used yet (the server refuses a code twice)."""
    totp = pyotp.TOTP(server.secrets[account])
    while True:
        current = int(time.time() // totp.interval)
        step = max(current, server.used_steps.get(account, -1) + 1)
        if step <= current + 1:  # the server accepts one step either side of now
            server.used_steps[account] = step
            return str(totp.generate_otp(step))
        time.sleep(1)


def sign_in(browser: Any, server: Server, account: str, artefacts: Path | None = None) -> Any:
    """A page signed in as ``account`` (enrolling a second factor for admins and overseers)."""
    page = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900}).new_page()
    page.goto("/")
    assert "/login" in page.url
    page.get_by_label("Account name").fill(account)
    page.get_by_label("Password").fill(PASSWORD)
    if account in server.secrets:
        page.get_by_label("One-time code").fill(next_code(server, account))
    page.get_by_role("button", name="Sign in").click()
    if page.url.endswith("/account"):  # an admin or overseer without a second factor
        page.get_by_role("button", name="Start enrolment").click()
        secret = page.locator("#totp-secret").inner_text().strip()
        assert page.locator("#totp-uri").inner_text().startswith("otpauth://totp/")
        if artefacts is not None:
            shot(page, artefacts, "totp-enrolment")
        server.secrets[account] = secret
        page.get_by_label("Code").fill(next_code(server, account))
        page.get_by_role("button", name="Confirm").click()
        assert page.locator("#totp-state").inner_text() == "enrolled"
        page.goto("/")
    assert page.locator("h1").inner_text() == "Dashboard", page.content()[:2000]
    return page


def test_sign_in_with_totp_and_sign_out(browser: Any, server: Server, artefacts: Path) -> None:
    page = sign_in(browser, server, "ov1", artefacts)
    assert page.locator(".who .role").inner_text() == "overseer"
    page.locator("#health #log-size").wait_for()
    shot(page, artefacts, "dashboard")
    page.get_by_role("button", name="Sign out").click()
    assert "/login" in page.url
    page.goto("/explorer")
    assert "/login" in page.url and "next=/explorer" in page.url
    shot(page, artefacts, "sign-in")
    # the factor is now required: the password alone is refused with a clear message
    page.get_by_label("Account name").fill("ov1")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert "one-time code" in page.locator("#sign-in-message").inner_text().lower() or \
        "second factor" in page.locator("#sign-in-message").inner_text().lower()
    page.get_by_label("Account name").fill("ov1")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("One-time code").fill("000000" if next_code(server, "ov1") != "000000" else "111111")
    page.get_by_role("button", name="Sign in").click()
    assert "not right" in page.locator("#sign-in-message").inner_text()
    page.get_by_label("Account name").fill("ov1")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("One-time code").fill(next_code(server, "ov1"))
    page.get_by_role("button", name="Sign in").click()
    assert page.url.rstrip("/").endswith("/explorer"), page.url  # back where the session ended
    page.context.close()


def test_explorer_verifies_proofs_in_the_browser(browser: Any, server: Server, artefacts: Path) -> None:
    page = sign_in(browser, server, "aud1")
    page.get_by_role("link", name="Log explorer").click()
    page.get_by_label("Kind").select_option("account.created")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.results tbody tr")
    assert rows.count() >= 5
    assert all(k == "account.created" for k in rows.locator("td:nth-child(2)").all_inner_texts())
    shot(page, artefacts, "explorer")
    rows.last.locator("a").first.click()  # the oldest: the deepest audit path
    leaf = page.locator("#leaf-hash").inner_text().strip()
    entry_url = page.url
    page.get_by_role("button", name="Verify in this browser").click()
    result = page.locator("#verify-result")
    page.wait_for_function("document.getElementById('verify-result').className !== ''")
    assert result.inner_text().startswith("✓"), result.inner_text()
    assert "ok" in (result.get_attribute("class") or "")
    shot(page, artefacts, "entry-verified")
    assert page.locator("#audit-path li[data-hash]").count() >= 1
    # tamper with one hash of the audit path shown on the page: the check must fail
    page.evaluate("""() => {
        const li = document.querySelector('#audit-path li[data-hash]');
        const bytes = Uint8Array.from(atob(li.textContent.trim()), c => c.charCodeAt(0));
        bytes[0] ^= 1;
        li.textContent = btoa(String.fromCharCode(...bytes));
    }""")
    page.get_by_role("button", name="Verify in this browser").click()
    page.wait_for_function("document.getElementById('verify-result').textContent.startsWith('✗')")
    assert "bad" in (result.get_attribute("class") or "")
    # tamper with the entry bytes instead
    page.reload()
    page.evaluate("""() => {
        const d = document.getElementById('proof-data');
        const text = atob(d.dataset.entry).replace('account.created', 'account.deleted');
        d.dataset.entry = btoa(text);
    }""")
    page.get_by_role("button", name="Verify in this browser").click()
    page.wait_for_function("document.getElementById('verify-result').textContent.startsWith('✗')")
    # search by leaf hash goes straight to the entry
    page.goto("/explorer")
    page.get_by_label("Leaf hash or index").fill(leaf)
    page.get_by_role("button", name="Search").click()
    assert page.url == entry_url
    # downloads offered: the offline proof and the checkpoint's timestamp
    proof = page.request.get(page.locator("a[href^='/log/v1/proof/']").get_attribute("href"))
    assert proof.ok and proof.text().startswith("c2sp.org/tlog-proof@v1")
    stamp = page.locator("a[href$='/timestamp']")
    if stamp.count():
        assert page.request.get(stamp.get_attribute("href")).ok
    page.context.close()


def test_role_limits(browser: Any, server: Server, artefacts: Path) -> None:
    page = sign_in(browser, server, "aud1")
    assert page.locator(".who .role").inner_text() == "auditor"
    page.goto("/runs")
    assert page.locator("form[action^='/oversight/']").count() == 0
    assert page.get_by_role("button", name=re.compile("Halt")).count() == 0
    # a forged halt with the auditor's own session and CSRF token is refused
    token = page.locator("input[name=_csrf_token]").first.get_attribute("value")
    forged = page.request.post("/oversight/halt", form={
        "run": "run_00000000000000000000000000", "justification": "forged by a test, must be refused",
        "confirm": "yes", "back": "/runs", "_csrf_token": token}, headers={"Accept": "text/html"},
        max_redirects=0)
    assert forged.status == 403, forged.text()[:500]
    assert "only overseer or admin accounts may do this" in forged.text()
    # without the CSRF token the request does not even get that far
    no_token = page.request.post("/oversight/halt", form={"run": "run_0", "justification": "x" * 20,
                                                          "confirm": "yes"}, max_redirects=0)
    assert no_token.status == 403
    # the Art. 73 evidence freeze: no form for an auditor, and a forged one is refused
    today = datetime.now(UTC)
    since, until = ((today + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M") for d in (-1, 1))
    page.goto("/reports")
    assert page.locator("form[action='/reports/incidents']").count() == 0
    forged = page.request.post("/reports/incidents", form={
        "kind": "time", "since": since, "until": until, "reason": "forged by a test, must be refused",
        "confirm": "yes", "_csrf_token": token}, headers={"Accept": "text/html"}, max_redirects=0)
    assert forged.status == 403, forged.text()[:500]
    page.context.close()
    # an overseer freezes the day's evidence and downloads the frozen bundle
    ov = sign_in(browser, server, "ov1")
    ov.goto("/reports")
    form = ov.locator("#form-freeze")
    form.get_by_label("Scope", exact=True).select_option("time")
    form.get_by_label("From (UTC)").fill(since)
    form.get_by_label("Until (UTC)").fill(until)
    form.get_by_label("Reason for the freeze").fill("Incident drill (browser test): freeze today's log.")
    form.get_by_role("checkbox", name=re.compile("^I confirm")).check()
    form.get_by_role("button", name="Freeze evidence").click()
    assert "Evidence frozen as incident" in ov.locator(".flashes").inner_text()
    assert ov.locator("#frozen a").inner_text().startswith("log entry")
    row = ov.locator("#incident-list tbody tr").first
    assert "Incident drill" in row.inner_text()
    with ov.expect_download() as download:
        row.get_by_role("link", name="Download the frozen bundle").click()
    assert download.value.suggested_filename.endswith("-bundle.zip")
    shot(ov, artefacts, "incident-frozen", ov.locator("#incidents"))
    ov.context.close()


def decide(page: Any, label: str, why: str) -> None:
    """Fill and send one oversight form (justification, confirmation) on the current page."""
    form = page.locator("form.decision").filter(has=page.get_by_role("button", name=label, exact=True))
    folded = page.locator("details").filter(has=form)
    if folded.count() and not folded.first.get_attribute("open"):
        folded.first.locator("summary").click()
    form.get_by_label(f"Justification for “{label}”").fill(why)
    form.get_by_role("checkbox").check()
    form.get_by_role("button", name=label, exact=True).click()


def wait_for_status(page: Any, run: str, wanted: tuple[str, ...], timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while True:
        page.goto(f"/runs/{run}")
        status = page.locator("#run-status").inner_text().split()[0]
        if status in wanted:
            return status
        assert status not in ("failed", "cancelled"), page.locator("dl.facts").inner_text()
        assert time.monotonic() < deadline, f"run {run} is still {status}"
        time.sleep(2)


def column(page: Any, run: str, header: str) -> str:
    """The text of ``run``'s cell under the column whose header contains ``header`` on /runs."""
    page.goto("/runs")
    table = page.locator("table").filter(has=page.locator(f"a[href='/runs/{run}']")).first
    headers = [h.inner_text() for h in table.locator("thead th").all()]
    at = next(i for i, h in enumerate(headers) if header in h)
    row = table.locator("tbody tr").filter(has=page.locator(f"a[href='/runs/{run}']"))
    return row.locator("td").nth(at).inner_text()


def one_truth(overseer: Any, auditor: Any, run: str, dataset: str, artefacts: Path) -> tuple[int, float]:
    """Steps and ε of ``run`` as the run page shows them, checked against the runs list, the
    dataset page (its only run) and the JSON compliance report, which must all say the same."""
    overseer.goto(f"/runs/{run}")
    steps = int(overseer.locator("#steps").inner_text())
    shown = overseer.locator("#epsilon").inner_text().strip()
    assert column(overseer, run, "ε").split("/")[-1].strip() == shown
    overseer.goto(f"/datasets/{dataset}")
    spent = re.search(r"spent ([0-9.e+-]+)", overseer.locator("main").inner_text())
    assert spent and spent.group(1) == shown, (spent, shown)
    auditor.goto("/reports")
    form = auditor.locator("form[action='/reports/report']")
    form.get_by_label("Scope").select_option("run")
    form.get_by_label("Run").fill(run)
    form.get_by_label("Format").select_option("json")
    with auditor.expect_download() as download:
        form.get_by_role("button", name="Generate report").click()
    path = artefacts / "report-one-truth.json"
    download.value.save_as(path)
    report = json.loads(path.read_text())
    runs = [r for r in report["dp_budget"]["runs"] if r["run"] == run]
    assert len(runs) == 1, runs  # one run, however many segments
    assert f"{runs[0]['epsilon']:.3g}" == shown, (runs[0], shown)
    return steps, float(shown)


def test_oversight_of_a_training_run(browser: Any, server: Server, training: Any, artefacts: Path) -> None:
    """Submit a tiny job, watch its metrics, halt it, resume it (four eyes), approve the release."""
    admin = sign_in(browser, server, "admin1")
    admin.goto("/admin")
    budget = admin.locator("form[action='/admin/set_budget']").filter(
        has=admin.locator(f"input[value='{training.dataset}']"))
    budget.get_by_label("ε").fill("50")
    budget.get_by_role("button", name="Set budget").click()
    assert f"Budget of {training.dataset} set" in admin.locator(".flashes").inner_text()
    shot(admin, artefacts, "admin")

    op = sign_in(browser, server, "op1")
    op.goto("/runs/new?edit=json")
    # max_steps: long enough that the overseer halts it while it runs, even on an idle machine
    spec = {"kind": "reward_model", "base_model": str(training.model), "dataset": training.dataset,
            "learning_rate": 0.001, "epochs": 100, "batch_size": 4, "max_steps": 200, "save_steps": 5,
            "logging_steps": 1, "dp": {"noise_multiplier": 1.0, "delta": 1e-5}}
    op.get_by_label("Job spec (JSON)").fill(json.dumps(spec))
    op.get_by_role("button", name="Submit job").click()
    assert re.search(r"/runs/run_[0-9A-Z]+$", op.url), op.content()[:3000]
    run = op.url.rsplit("/", 1)[1]
    assert "submitted and queued" in op.locator(".flashes").inner_text()
    # metrics arrive while the page stays open: htmx refreshes the live part, no reload
    op.wait_for_function("() => +document.getElementById('steps').textContent > 0", timeout=240_000)
    first = int(op.locator("#steps").inner_text())
    op.wait_for_function(f"() => +document.getElementById('steps').textContent > {first}", timeout=120_000)
    assert op.locator("#live svg.chart polyline").count() >= 2  # loss and accuracy drawn
    shot(op, artefacts, "run-live")
    assert op.get_by_role("button", name="Halt now").count() == 0  # operators do not oversee

    auditor = sign_in(browser, server, "aud1")
    auditor.goto(f"/runs/{run}")
    assert auditor.locator("#run-status").inner_text().startswith(("queued", "running"))
    assert auditor.get_by_role("button", name="Halt now").count() == 0

    ov1 = sign_in(browser, server, "ov1", artefacts)
    ov1.goto(f"/runs/{run}")
    decide(ov1, "Halt now", "Loss is not falling; stopping to inspect the data (test).")
    assert ov1.url.startswith(f"{server.url}/runs/{run}?recorded=")
    assert "Halt now recorded as log entry" in ov1.locator(".flashes").inner_text()
    ov1.locator("#recorded a").click()  # the decision's entry in the explorer
    assert '"oversight.decision"' in ov1.locator("#entry-raw").text_content()
    ov1.get_by_role("button", name="Verify in this browser").click(timeout=30_000)  # once checkpointed
    ov1.wait_for_function("document.getElementById('verify-result').textContent.startsWith('✓')")
    shot(ov1, artefacts, "decision-verified")

    assert wait_for_status(ov1, run, ("halted",)) == "halted"
    assert ov1.locator("table").filter(has_text="Root").locator("tbody tr").count() >= 1  # halt checkpoint
    # the overseer who halted is not offered the resume form: a second overseer must resume
    ov1.reload()
    assert ov1.get_by_role("button", name="Resume", exact=True).count() == 0
    assert "a second overseer must resume it" in ov1.locator("#halted-note").inner_text()
    shot(ov1, artefacts, "resume-refused")

    ov2 = sign_in(browser, server, "ov2")
    ov2.goto(f"/runs/{run}")
    decide(ov2, "Resume", "Second overseer: the data check is fine, resume training.")
    assert "Resume recorded as log entry" in ov2.locator(".flashes").inner_text()
    assert wait_for_status(ov2, run, ("completed",)) == "completed"
    decide(ov2, "Approve release", "Metrics and privacy spend reviewed; release approved.")
    assert "Approve release recorded as log entry" in ov2.locator(".flashes").inner_text()
    assert ov2.locator("#release-state").inner_text().endswith("awaiting release")
    assert ov2.get_by_role("button", name="Approve release", exact=True).count() == 0
    ov1.goto(f"/runs/{run}")
    decide(ov1, "Release model", "Approved by a second overseer; releasing the reviewed model.")
    assert "Release model recorded as log entry" in ov1.locator(".flashes").inner_text()
    assert ov1.locator("#release-state").inner_text().startswith("released")
    actions = ov2.locator("ul.decisions").inner_text()
    for action in ("halt", "resume", "approve release"):
        assert action in actions
    shot(ov2, artefacts, "run-completed")

    # the explorer answers "what happened to this run": its run filter finds the human decisions too
    # (the newest entries first: the kind picker narrows the run's 200 steps to its decisions)
    # (the index follows the log within seconds: the approval just made may need a moment)
    deadline = time.monotonic() + 60
    while True:
        ov2.goto(f"/explorer?run={run}&kind=oversight.decision")
        listed = [row.inner_text() for row in ov2.locator("table tbody tr").all()]
        missing = [a for a in ("halt", "resume", "approve_release")
                   if not any("oversight.decision" in r and a in r for r in listed)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not missing, (missing, listed)

    # one truth for the run across the halt and the resume: global steps, and one ε everywhere
    steps, epsilon = one_truth(ov2, auditor, run, training.dataset, artefacts)
    assert steps == 200, steps
    assert epsilon > 0

    # an auditor downloads the run's evidence bundle and checks it offline with the CLI
    auditor.goto("/reports")
    form = auditor.locator("form[action='/reports/bundle']")
    form.get_by_label("Scope").select_option("run")
    form.get_by_label("Run").fill(run)
    with auditor.expect_download() as download:
        form.get_by_role("button", name="Build and download bundle").click()
    bundle = artefacts / download.value.suggested_filename
    download.value.save_as(bundle)
    keys = auditor.request.get("/log/v1/keys").json()
    evidence_key = artefacts / "evidence-key.pem"
    evidence_key.write_text(keys["evidence_key"])
    checked = subprocess.run([sys.executable, "-m", "app.cli", "verify-bundle", str(bundle), "--log-key",
                              keys["log_vkey"], "--evidence-key", str(evidence_key)],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    auditor.goto("/reports")
    shot(auditor, artefacts, "reports")
    auditor.goto("/")
    assert "approve release" in auditor.locator("#activity").inner_text()
    shot(auditor, artefacts, "dashboard")
    for p in (admin, op, auditor, ov1, ov2):
        p.context.close()

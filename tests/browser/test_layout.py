"""The portal's layout in a real browser: at 800 px and 1400 px no page scrolls sideways.

Pages: the dashboard (with a job running or queued), the runs list, the job form, a run page, the explorer,
the datasets list and the admin page, with the longest account name and dataset id the services
allow (64 and 64 characters: longer ones are refused), so that long unbroken tokens are in the tables.
The dashboard's running-jobs table must show its status and dataset columns (inside the viewport,
or inside the horizontally scrollable box that holds the table).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pyotp

from tests.support.cli_run import cli_stdout as cli

from .conftest import PASSWORD, ROOT, Server

WIDTHS = (800, 1400)
LONG_ACCOUNT = "a" + "x" * 63  # the accounts service allows at most 64 characters
LONG_SLUG = "l" + "o" * 60  # dataset slugs: at most 61 characters (the id is ds_<slug>)
SCREENSHOTS = ROOT / "docs" / "screenshots"

# the widest element of the page and where it sits, for a readable failure
OVERFLOW = """() => {
  const doc = document.documentElement, limit = window.innerWidth;
  let worst = null;
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > limit + 1 && (!worst || r.right > worst.right)) {
      let p = el.parentElement, clipped = false;
      for (; p; p = p.parentElement) {
        const s = getComputedStyle(p);
        if (s.overflowX !== 'visible' && p.getBoundingClientRect().right <= limit + 1) {
          clipped = true; break;
        }
      }
      if (!clipped) worst = {tag: el.tagName, cls: el.className, right: r.right,
                             text: (el.textContent || '').slice(0, 60)};
    }
  }
  return {scroll: doc.scrollWidth, inner: limit, worst};
}"""

# is the header visible: inside the viewport and inside the box of its panel, or reachable in
# the horizontally scrollable box that holds its table
HEADER_SHOWN = """(th) => {
  const r = th.getBoundingClientRect();
  for (let p = th.parentElement; p; p = p.parentElement) {
    const s = getComputedStyle(p);
    if (s.overflowX === 'auto' || s.overflowX === 'scroll') {
      return r.left - p.getBoundingClientRect().left + p.scrollLeft + r.width <= p.scrollWidth + 1
        && p.getBoundingClientRect().right <= window.innerWidth + 1;
    }
    if (p.classList.contains('panel')) {
      const b = p.getBoundingClientRect();
      return r.right <= b.right + 1 && r.left >= b.left - 1 && r.right <= window.innerWidth + 1;
    }
  }
  return r.right <= window.innerWidth + 1;
}"""


def _code(server: Server, account: str) -> str:
    totp = pyotp.TOTP(server.secrets[account])
    while True:
        current = int(time.time() // totp.interval)
        step = max(current, server.used_steps.get(account, -1) + 1)
        if step <= current + 1:
            server.used_steps[account] = step
            return str(totp.generate_otp(step))
        time.sleep(1)


def _sign_in(browser: Any, server: Server, account: str) -> Any:
    """A signed-in context's page (enrolling a second factor where the role needs one)."""
    page = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900}).new_page()
    page.goto("/login")
    page.get_by_label("Account name").fill(account)
    page.get_by_label("Password").fill(PASSWORD)
    if account in server.secrets:
        page.get_by_label("One-time code").fill(_code(server, account))
    page.get_by_role("button", name="Sign in").click()
    if page.url.endswith("/account"):
        page.get_by_role("button", name="Start enrolment").click()
        server.secrets[account] = page.locator("#totp-secret").inner_text().strip()
        page.get_by_label("Code").fill(_code(server, account))
        page.get_by_role("button", name="Confirm").click()
        assert page.locator("#totp-state").inner_text() == "enrolled"
    page.goto("/")
    assert page.locator("h1").inner_text() == "Dashboard", page.content()[:2000]
    return page


def _shot(page: Any, artefacts: Path, name: str) -> None:
    target = artefacts / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    if os.environ.get("RLHF_AUDIT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, SCREENSHOTS / target.name)


def _no_sideways_scroll(page: Any, width: int, path: str) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(path)
    page.wait_for_load_state("load")
    state = page.evaluate(OVERFLOW)
    assert state["scroll"] <= state["inner"], f"{path} at {width} px scrolls sideways: {state}"


def test_no_page_scrolls_sideways(browser: Any, server: Server, training: Any, artefacts: Path,
                                  tmp_path: Path) -> None:
    from trainers.tiny import synthetic_pairs

    cli(server.home, "users", "create", LONG_ACCOUNT, "--role", "auditor", "--password-stdin",
        stdin=PASSWORD + "\n", env=server.env)
    pairs = tmp_path / "pairs.jsonl"
    fields = ("prompt", "chosen", "rejected", "annotator")
    pairs.write_text("".join(json.dumps({k: r[k] for k in fields}) + "\n"
                             for r in synthetic_pairs(16, annotators=2)))
    sheet = tmp_path / "datasheet.json"
    sheet.write_text(json.dumps({"origin": "synthetic", "collection_process": "trainers.tiny",
                                 "purpose": "the layout test"}))
    cli(server.home, "datasets", "import", str(pairs), "--dataset", LONG_SLUG, "--datasheet", str(sheet),
        env=server.env)
    dataset = f"ds_{LONG_SLUG}"

    op = _sign_in(browser, server, "op1")
    op.goto("/runs/new?edit=json")
    spec = {"kind": "reward_model", "base_model": str(training.model), "dataset": dataset,
            "learning_rate": 0.001, "epochs": 1, "batch_size": 4, "max_steps": 4, "save_steps": 100,
            "logging_steps": 1}
    op.get_by_label("Job spec (JSON)").fill(json.dumps(spec))
    op.get_by_role("button", name="Submit job").click()
    assert re.search(r"/runs/run_[0-9A-Z]+$", op.url), op.content()[:3000]
    run = op.url.rsplit("/", 1)[1]

    for width in WIDTHS:  # first, while the job is queued or running
        _no_sideways_scroll(op, width, "/")
        jobs = op.locator("#activity table").first
        jobs.wait_for()
        for name in ("Status", "Dataset"):
            header = jobs.get_by_role("columnheader", name=name, exact=True)
            assert header.evaluate(HEADER_SHOWN), f"the jobs table's {name} column is hidden at {width} px"
        _shot(op, artefacts, f"dashboard-{width}")

    for width in WIDTHS:
        for path in ("/runs", "/runs/new", f"/runs/{run}", "/explorer", f"/explorer?dataset={dataset}",
                     "/datasets", f"/datasets/{dataset}"):
            _no_sideways_scroll(op, width, path)
            if path in ("/runs", "/runs/new"):
                _shot(op, artefacts, f"{path[1:].replace('/', '-')}-{width}")
    op.context.close()

    admin = _sign_in(browser, server, "admin1")
    for width in WIDTHS:
        _no_sideways_scroll(admin, width, "/admin")
        assert admin.get_by_text(LONG_ACCOUNT, exact=True).count() >= 1
        _no_sideways_scroll(admin, width, f"/runs/{run}")  # an overseer's cockpit: the action links too
        _shot(admin, artefacts, f"run-cockpit-{width}")
        admin.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # the cockpit stays in view
        assert admin.evaluate("document.body.scrollHeight > window.innerHeight + 200")
        top = admin.locator("#cockpit").evaluate("e => e.getBoundingClientRect().top")
        assert 0 <= top <= 1, f"the run cockpit scrolled away at {width} px: top {top}"
    admin.context.close()

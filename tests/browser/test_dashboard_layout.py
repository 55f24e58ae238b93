"""The "needs attention" dashboard with something in every panel, in a real browser: at 800 px and
1400 px it does not scroll sideways, and each panel shows what waits with its link.

In it: a dataset with the longest slug the service allows and a privacy budget, a completed model
waiting for approval, a run halted by one overseer, and a failing compliance rule (a run trained
without differential privacy on a dataset with a budget), made through the CLI and the portal."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.support.cli_run import cli_stdout as cli

from .conftest import Server
from .test_layout import WIDTHS, _no_sideways_scroll, _shot, _sign_in

SLUG = "n" + "e" * 60  # the longest slug (ds_<slug>, 64 characters)
WHY = "the layout test halts this run on purpose"


def test_the_attention_dashboard_fits(browser: Any, server: Server, training: Any, artefacts: Path,
                                      tmp_path: Path) -> None:
    from trainers.tiny import synthetic_pairs

    pairs = tmp_path / "pairs.jsonl"
    fields = ("prompt", "chosen", "rejected", "annotator")
    pairs.write_text("".join(json.dumps({k: r[k] for k in fields}) + "\n"
                             for r in synthetic_pairs(16, annotators=2)))
    sheet = tmp_path / "datasheet.json"
    sheet.write_text(json.dumps({"origin": "synthetic", "collection_process": "trainers.tiny",
                                 "purpose": "the dashboard layout test"}))
    cli(server.home, "datasets", "import", str(pairs), "--dataset", SLUG, "--datasheet", str(sheet),
        env=server.env)
    dataset = f"ds_{SLUG}"
    cli(server.home, "datasets", "budget", "set", dataset, "--epsilon", "8", "--delta", "1e-5",
        "--as", "admin1", env=server.env)

    def submit(max_steps: int) -> str:
        spec = tmp_path / f"spec-{max_steps}.json"
        spec.write_text(json.dumps({"kind": "reward_model", "base_model": str(training.model),
                                    "dataset": dataset, "learning_rate": 0.001, "epochs": 1, "batch_size": 4,
                                    "max_steps": max_steps, "save_steps": 100, "logging_steps": 1}))
        return cli(server.home, "jobs", "submit", str(spec), "--as", "op1", env=server.env).strip()

    trained = submit(2)
    halted = submit(10_000)
    cli(server.home, "oversight", "halt", halted, "--why", WHY, "--as", "ov1", env=server.env)
    done = cli(server.home, "jobs", "wait", trained, "--timeout", "110", env=server.env)
    assert done.strip() == "completed"

    admin = _sign_in(browser, server, "admin1")
    admin.goto("/reports")
    admin.get_by_role("button", name="Run checks now").click()
    admin.wait_for_load_state("load")
    admin.goto("/")

    halted_panel = admin.locator("#attention-halted")
    assert halted_panel.locator(f"a[href='/runs/{halted}#form-resume']").count() == 1
    models = admin.locator("#attention-models")
    assert models.locator(f"a[href='/runs/{trained}#form-approve_release']").count() == 1
    rules = admin.locator("#attention-rules")
    assert "gdpr.art25.dp-budget" in rules.inner_text() and "Checked just now" in rules.inner_text()
    # the gauge is an image whose accessible name carries the numbers
    named = re.compile(rf"{dataset}: ε [\d.]+ spent, [\d.]+ reserved, [\d.]+ left of 8$")
    assert admin.locator("#attention-budgets").get_by_role("img", name=named).count() == 1
    assert "No witnesses configured" in admin.locator("#attention-timestamps").inner_text()

    for width in WIDTHS:
        _no_sideways_scroll(admin, width, "/")
        _shot(admin, artefacts, f"dashboard-attention-{width}")
    admin.context.close()

"""What the forms that name a run, a model or a dataset offer to pick from.

The options feed ``<datalist>``s (``<input list=...>``: a typed id still works) and the job form's
``<select>``s. They come from the jobs table and the datasets package, newest runs first.
"""

from __future__ import annotations

from typing import Any

from ..core.database import Database
from ..datasets import list_datasets
from ..jobs import service as jobs

__all__ = ["RECENT_RUNS", "dataset_label", "scope_pickers"]

RECENT_RUNS = 200  # the runs (and their models) offered: the newest ones


def dataset_label(d: dict[str, Any]) -> str:
    """A dataset as a picker shows it: its versions and the privacy budget left."""
    b = d.get("budget")
    budget = (f"ε left {b['remaining']:.3g} of {b['epsilon_total']:.3g}" if b
              else "no budget set: DP jobs are refused")
    rejected = ", newest version rejected" if d["latest"]["rejected"] else ""
    return f"{d['versions']} version(s){rejected} · {budget}"


async def scope_pickers(db: Database) -> dict[str, list[tuple[str, str]]]:
    """``{"runs": [(run, label)], "models": [(model, label)], "datasets": [(dataset, label)]}``."""
    listed = await jobs.list_jobs(db, limit=RECENT_RUNS)
    return {
        "runs": [(j.run, f"{j.kind} · {j.status} · {j.dataset} v{j.dataset_version}") for j in listed],
        "models": [(j.model, f"trained by {j.run} · {j.status}") for j in listed if j.model],
        "datasets": [(d["dataset"], dataset_label(d)) for d in await list_datasets(db)],
    }

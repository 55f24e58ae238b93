"""Synthetic envelope events for the event index and its query API: every indexed field present or
absent at random, reproducibly (a seed)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)  # not today: account events carry today
KINDS = ["run.started", "run.metrics", "dataset.record", "oversight.decision", "model.released"]


def _rfc3339(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def corpus(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Envelope events with every indexed field present or absent at random."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        e: dict[str, Any] = {"kind": rng.choice(KINDS), "v": 1, "at": _rfc3339(T0 + timedelta(minutes=i)),
                             "actor": rng.choice(["pseud:aa", "pseud:bb", "system"]), "role": "operator",
                             "i": i}
        for field, values in (("run", ["run_a", "run_b", "run_c"]), ("dataset", ["ds_x", "ds_y"]),
                              ("model", ["model_1", "model_2"]), ("annotator", ["pseud:c1", "pseud:c2"])):
            if rng.random() < 0.5:
                e[field] = rng.choice(values)
        if "dataset" in e and rng.random() < 0.8:
            e["dataset_version"] = rng.randint(1, 3)
        out.append(e)
    return out

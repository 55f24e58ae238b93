"""``config_sha256`` of ``run.started`` can be recomputed from the logged spec (issue 16): it is
the SHA-256 of the spec's RFC 8785 bytes, checked with an independent JCS implementation
(``rfc8785``) over the event as the log stores it, floats such as 1.0 and 5e-05 included."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import rfc8785

from ledger.canonical import encode_event
from tests.support.ml import tiny_model  # noqa: F401 (a fixture)
from trainers.callback import AuditCallback
from trainers.sinks import MemorySink
from trainers.spec import TrainingSpec


def test_config_sha256_is_recomputable_from_the_logged_spec(tiny_model: Path) -> None:  # noqa: F811
    spec = TrainingSpec.from_dict({"kind": "dpo", "base_model": str(tiny_model), "dataset": "ds_x",
                                   "learning_rate": 5e-05, "beta": 1.0,
                                   "dp": {"target_epsilon": 2.0, "max_grad_norm": 1.0}})
    sink = MemorySink()
    AuditCallback(sink, run="run_hash", spec=spec).record_started()
    [started] = [json.loads(encode_event(e)) for e in sink.events if e["kind"] == "run.started"]
    logged = started["spec"]
    assert logged["beta"] == 1 and logged["learning_rate"] == 5e-05  # as the log holds them
    assert started["config_sha256"] == "sha256:" + hashlib.sha256(rfc8785.dumps(logged)).hexdigest()

"""A realistic log for the compliance tests, written event by event as docs/events.md describes.

Two datasets' versions with datasheets and budgets, two DP training runs (one halted by one
overseer and resumed by another), an approved release, and a completed compliance check. Tests
add the offending events they need on top (a run without datasheet, a release without approval,
an overspend, personal data).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from app.events.recording import Actor, event
from ledger.log import Log

__all__ = [
    "ALICE",
    "BOB",
    "DS",
    "OPERATOR",
    "WORKER",
    "Built",
    "build_log",
    "dataset_events",
    "decision",
    "doc",
    "pseud",
    "run_events",
    "settle",
]


def pseud(name: str) -> str:
    return "pseud:" + hashlib.sha256(name.encode()).hexdigest()[:32]


ALICE = Actor(pseud("account:alice"), "overseer")
BOB = Actor(pseud("account:bob"), "overseer")
OPERATOR = Actor(pseud("account:olga"), "operator")
WORKER = Actor("worker", "system")
SYS = Actor("system", "system")
DS = "ds_helpful_prefs"


@dataclass
class Built:
    """What was appended, by name: leaf indices to assert on."""

    at: dict[str, int] = field(default_factory=dict)
    size: int = 0


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _commitment(text: str) -> str:
    import base64

    return "sha256:" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def dataset_events(ds: str, version: int, *, datasheet: bool = True, first: int = 0) -> list[dict[str, Any]]:
    annotators = [pseud(f"annotator:{ds}:{i}") for i in range(3)]
    records = [
        event(
            "dataset.record",
            OPERATOR,
            dataset=ds,
            dataset_version=version,
            i=i,
            commitment=_commitment(f"{ds}:{version}:{i}"),
            annotator=annotators[i % 3],
        )
        for i in range(6)
    ]
    out = records + [
        event(
            "dataset.version",
            OPERATOR,
            dataset=ds,
            dataset_version=version,
            records=6,
            annotators=3,
            root="q2vPGkN0y9VJm0mE3O2nHk9wZ2tFq8dYw2m6nJj0x6s=",
            source_sha256=_digest(f"{ds} file"),
            first_record=first,
            last_record=first + 5,
        )
    ]
    if datasheet:
        out.append(
            event(
                "dataset.datasheet",
                OPERATOR,
                dataset=ds,
                dataset_version=version,
                datasheet={
                    "origin": "in-house annotation campaign, November 2026",
                    "collection_process": "pairwise preference labelling of answers, two passes per item",
                    "purpose": "reward modelling for a helpful-assistant policy",
                    "guideline_version": "guide-v3",
                    "annotator_count": 3,
                    "records": 6,
                    "agreement": {"pairs": 4, "rate": 0.75},
                    "known_gaps": ["no non-English items"],
                    "lawful_basis": "consent",
                },
            )
        )
    return out


def run_events(
    run: str, ds: str, version: int, model: str, *, eps: list[float], dp: bool = True, complete: bool = True
) -> list[dict[str, Any]]:
    out = [
        event(
            "job.submitted",
            OPERATOR,
            run=run,
            job_kind="dpo",
            spec_sha256=_digest(run + " spec"),
            spec={"epochs": 1, "learning_rate": 5e-6, "beta": 0.1},
            dataset=ds,
            dataset_version=version,
            planned_epsilon=eps[-1] if eps else None,
        ),
        event(
            "run.started",
            WORKER,
            run=run,
            config_sha256=_digest(run + " config"),
            libraries={"torch": "2.13.0", "trl": "1.16.0", "opacus": "1.6.0"},
            code_version="git:abc1234",
            base_model={"root": _digest("tiny-gpt2"), "files": {"model.safetensors": _digest("w")}},
            dataset=ds,
            dataset_version=version,
            dataset_root="q2vPGkN0y9VJm0mE3O2nHk9wZ2tFq8dYw2m6nJj0x6s=",
            dp={
                "enabled": dp,
                "unit": "preference_pair",
                "noise_multiplier": 1.1,
                "max_grad_norm": 1.0,
                "target_epsilon": 3.0,
                "delta": 1e-5,
                "sample_rate": 0.01,
                "accountant": "prv",
            },
            notice="DP covers the model weights, not the logged metrics.",
        ),
        event(
            "run.metrics",
            WORKER,
            run=run,
            steps=[{"step": 10, "epoch": 0, "loss": 0.69}, {"step": 20, "epoch": 0, "loss": 0.61}],
        ),
    ]
    for step, e in enumerate(eps, 1):
        out.append(
            event("run.privacy", WORKER, run=run, step=step * 10, epsilon=e, delta=1e-5, accountant="prv")
        )
    out.append(
        event(
            "run.checkpoint",
            WORKER,
            run=run,
            step=20,
            object_prefix=f"runs/{run}/step-20/",
            files={"model.safetensors": _digest(run + "ckpt")},
            root=_digest(run + " ckpt root"),
        )
    )
    if complete:
        out.append(
            event(
                "run.completed",
                WORKER,
                run=run,
                model=model,
                steps=20,
                epsilon=eps[-1] if eps else None,
                files={"model.safetensors": _digest(model)},
                root=_digest(model + " root"),
            )
        )
    return out


def decision(
    actor: Actor, action: str, target: dict[str, Any], decision_id: str, **extra: Any
) -> dict[str, Any]:
    return event(
        "oversight.decision",
        actor,
        action=action,
        target=target,
        decision_id=decision_id,
        **{"justification": f"{action}: reviewed the evaluation results and the datasheet", **extra},
    )


def doc(topic: str, text: str = "", actor: Actor = OPERATOR, **about: Any) -> dict[str, Any]:
    """A documentation event (``doc.recorded``) as an operator records it."""
    return event("doc.recorded", actor, topic=topic, **({"text": text} if text else {}), **about)


async def settle(log: Log) -> int:
    """Integrate everything appended, timestamp it; return the tree size."""
    cp = await log.integrate()
    await log.timestamp_pending(force=True)
    if cp is None:
        latest = await log.latest_checkpoint()
        return 0 if latest is None else latest.size
    return cp.size


async def append(log: Log, built: Built, name: str, events: list[dict[str, Any]]) -> int:
    """Append ``events``; remember the index of the last one as ``name``."""
    entries = await log.append(events)
    built.at[name] = entries[-1].leaf_index
    return entries[-1].leaf_index


async def build_log(log: Log) -> Built:
    """The compliant log: every rule of the default pack passes on it."""
    b = Built()
    await log.append(
        [
            event("account.created", SYS, subject=ALICE.pseudonym, subject_role="overseer"),
            event("account.created", SYS, subject=BOB.pseudonym, subject_role="overseer"),
        ]
    )
    await append(
        log,
        b,
        "docs",
        [
            doc("dpia", "DPIA for preference data of pseudonymous annotators", dataset=DS),
            doc("intended_purpose", "A helpful-assistant policy for customer questions"),
            doc("instructions_for_use", "Deployers: read the model card; human review of escalations"),
            doc("cybersecurity", "Signed checkpoints, RFC 3161 timestamps, TLS, encrypted records"),
        ],
    )
    await append(log, b, "ds_v1", dataset_events(DS, 1, first=6))
    await append(
        log, b, "budget", [event("dataset.budget_set", ALICE, dataset=DS, epsilon_total=8.0, delta=1e-5)]
    )
    await append(log, b, "run_a", run_events("run_aaaa", DS, 1, "model_a", eps=[1.2, 2.9]))
    await append(log, b, "halt", [decision(ALICE, "halt", {"run": "run_bbbb"}, "dec_halt1")])
    await append(log, b, "run_b_started", run_events("run_bbbb", DS, 1, "model_b", eps=[1.0], complete=False))
    await append(
        log, b, "resume", [decision(BOB, "resume", {"run": "run_bbbb"}, "dec_resume1", halted_by="dec_halt1")]
    )
    await append(
        log,
        b,
        "run_b_done",
        [
            event(
                "run.completed",
                WORKER,
                run="run_bbbb",
                model="model_b",
                steps=20,
                epsilon=3.0,
                files={},
                root=_digest("model_b root"),
            )
        ],
    )
    await append(
        log, b, "validation", [doc("validation", "Held-out preference accuracy", run="run_aaaa",
                                   metrics={"preference_accuracy": 0.71})]
    )
    await append(
        log,
        b,
        "approve",
        [decision(BOB, "approve_release", {"model": "model_a", "run": "run_aaaa"}, "dec_app1")],
    )
    await append(
        log,
        b,
        "release",
        [
            event(
                "model.released",
                ALICE,
                model="model_a",
                run="run_aaaa",
                approval="dec_app1",
                root=_digest("model_a root"),
            )
        ],
    )
    b.size = await settle(log)
    return b

"""Human oversight of training (EU AI Act Art. 14): every decision justified and on the log."""

from __future__ import annotations

from .service import (
    Decision,
    approve_release,
    halt,
    list_decisions,
    reject_annotator,
    reject_dataset,
    release_model,
    resume,
    rollback,
    veto_release,
)

__all__ = ["Decision", "approve_release", "halt", "list_decisions", "release_model", "reject_annotator",
           "reject_dataset", "resume", "rollback", "veto_release"]

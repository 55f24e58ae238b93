"""Incident response (EU AI Act Art. 73): freeze the evidence of a serious incident.

A provider must report a serious incident and must not alter the system, or the evidence, in a
way that affects the later evaluation of its causes before informing the authority. One call
(:func:`freeze_evidence`; ``rlhf-audit incident freeze``, ``POST /api/v1/incidents``) builds the
evidence bundle of the scope, stores it under ``incidents/<id>/bundle.zip``, puts a legal hold on
it and on every stored artefact the scope's entries name, optionally halts the runs in scope
(each halt an oversight decision), and records ``incident.frozen`` on the log.

:mod:`.freeze` does it, :mod:`.api` serves it, :mod:`.commands` is the CLI group.
"""

from __future__ import annotations

from .freeze import Frozen, freeze_evidence, list_incidents

__all__ = ["Frozen", "freeze_evidence", "list_incidents"]

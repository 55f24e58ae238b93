"""Evidence bundles: one signed zip per scope (model release, run, dataset version, time range) that
an auditor checks offline, with ``rlhf-audit verify-bundle`` or the standalone ``verify.py`` inside.

:mod:`.builder` builds them, :mod:`.scope` selects the entries, :mod:`.dsse` signs the in-toto
attestation, :mod:`.api` serves ``POST /api/v1/bundles``. The format is in ``docs/evidence.md``;
the package's verifier is :mod:`ledger.bundle` (checking side, no writer imports).
"""

from __future__ import annotations

from .builder import Bundle, build_bundle
from .scope import Scope, ScopeError

__all__ = ["Bundle", "Scope", "ScopeError", "build_bundle"]

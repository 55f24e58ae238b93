"""The ledger's public surface, its independence from the web and ML stacks, and events."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ledger
from ledger.errors import VerificationError
from ledger.events import Commitment, Pseudonymizer, commit


def test_public_names_are_pinned() -> None:
    assert sorted(ledger.__all__) == sorted([
        "MAX_ENTRY_BYTES", "Checkpoint", "Commitment", "ConfigError", "ConsistencyProof",
        "EntryError", "InclusionProof", "LedgerError", "Log", "LogHome", "NotFound",
        "NoteError", "Opening", "ProofError", "Pseudonymizer", "SequencedEntries", "SequencedEntry",
        "Settings",
        "SignedCheckpoint", "Signer", "StorageError", "TimestampError", "TimestampGap",
        "TimestampInfo", "TimestampVerificationError", "VerificationError", "Verifier",
        "canonical_event", "canonicalize", "commit", "decode_event", "encode_event", "leaf_hash",
        "open_note", "sign_note", "verify_consistency", "verify_inclusion", "verify_timestamp",
    ])
    for name in ledger.__all__:
        assert hasattr(ledger, name)


def test_ledger_imports_without_web_or_ml_stack() -> None:
    code = ("import sys, ledger, ledger.audit, ledger.cli; "
            "bad = [m for m in ('litestar', 'torch', 'trl', 'transformers', 'app', 'trainers') "
            "if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checking_side_does_not_import_the_writer() -> None:
    code = ("import sys; import ledger.merkle, ledger.note, ledger.checkpoint, ledger.proofs, "
            "ledger.timestamp_verify; "
            "bad = [m for m in ('ledger.log', 'ledger._internal.store', 'ledger.timestamping', "
            "'sqlalchemy') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_commitments_open_and_refuse_other_values() -> None:
    c, opening = commit("annotator note: prefers answer A")
    assert str(c).startswith("sha256:")
    opening.verify(Commitment.parse(str(c)))
    _, other = commit("annotator note: prefers answer A")
    assert other.salt != opening.salt  # fresh salt: equal values do not give equal commitments
    with pytest.raises(VerificationError):
        other.verify(c)


def test_pseudonyms_are_stable_and_keyed() -> None:
    a = Pseudonymizer(b"k" * 32)
    assert a.pseudonym("alice@example.org") == a.pseudonym("alice@example.org")
    assert a.pseudonym("alice@example.org") != Pseudonymizer(b"j" * 32).pseudonym("alice@example.org")
    assert "alice" not in a.pseudonym("alice@example.org")

"""The ledger's public surface, its independence from the web and ML stacks, and events."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ledger
from ledger.errors import VerificationError
from ledger.events import Commitment, Pseudonymizer, commit
from ledger.log import Log, TreeHead
from ledger.merkle import leaf_hash
from ledger.timestamping import token_certificates


def test_public_names_are_pinned() -> None:
    assert sorted(ledger.__all__) == sorted([
        "MAX_ENTRY_BYTES", "Checkpoint", "Commitment", "ConfigError", "ConsistencyProof",
        "EntryError", "InclusionProof", "LedgerError", "Log", "LogHome", "NotFound",
        "NoteError", "Opening", "ProofError", "Pseudonymizer", "SequencedEntries", "SequencedEntry",
        "Settings",
        "SignedCheckpoint", "Signer", "StorageError", "TimestampError", "TimestampGap",
        "TimestampInfo", "TimestampVerificationError", "TreeHead", "VerificationError", "Verifier",
        "canonical_event", "canonicalize", "commit", "decode_event", "encode_event", "leaf_hash",
        "open_note", "sign_note", "verify_consistency", "verify_inclusion", "verify_timestamp",
    ])
    for name in ledger.__all__:
        assert hasattr(ledger, name)


async def test_the_log_reads_its_stored_state_publicly(log: Log) -> None:
    """What an application reads of the stored log goes through these, never ``log.store``."""
    head = await log.tree_head()
    assert isinstance(head, TreeHead) and head.size == 0
    entries = [b'{"n":%d}' % i for i in range(5)]
    await log.append_entries(entries)
    assert await log.sequenced_size() == 5
    assert (await log.tree_head()).size == 0  # sequenced, not integrated yet
    cp = await log.integrate()
    assert cp is not None
    size, root = await log.tree_head()
    assert (size, root) == (5, cp.checkpoint.root_hash)
    assert await log.entries(1, 3) == entries[1:3]
    assert await log.entries(3, 99) == entries[3:]  # past the end: absent
    assert await log.entries_at([4, 0, 9]) == {0: entries[0], 4: entries[4]}
    scanned = [pair async for chunk in log.scan_entries(0, 5) for pair in chunk]
    assert scanned == list(enumerate(entries))
    assert await log.leaf_index_size() == 0
    assert await log.index_leaves() == 5 and await log.leaf_index_size() == 5
    assert await log.find(leaf_hash(entries[2])) == [2]
    assert await log.timestamp_responses(5) == {}
    await log.timestamp_pending(force=True)
    stamps = await log.timestamp_responses(5)
    assert list(stamps) == [name for name, _ in await log.timestamps(5)]
    assert await log.all_timestamps() == {5: stamps}
    assert all(token_certificates(der) for der in stamps.values())  # the local TSA embeds its own
    await log.append_entries([b'{"n":5}'])
    await log.integrate()
    times = await log.checkpoint_times()
    assert [s for s, _ in times] == [5, 6] and all(at is not None for _, at in times)
    assert [s for s, _ in await log.checkpoint_times(5)] == [5]


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

"""C2SP tlog-proof files: the format's edge cases, without a database."""

from __future__ import annotations

import pytest

from ledger.checkpoint import Checkpoint
from ledger.errors import NoteError, ProofError
from ledger.merkle import leaf_hash, root_of
from ledger.note import Signer, sign_note
from ledger.proofs import InclusionProof
from ledger.tlog_proof import format_tlog_proof, parse_tlog_proof, verify_tlog_proof

ENTRIES = [b"a", b"b", b"c"]
SIGNER = Signer.generate("proof.example/log")


def _proof_file(index: int = 2) -> bytes:
    leaves = [leaf_hash(e) for e in ENTRIES]
    note = sign_note(Checkpoint(SIGNER.name, 3, root_of(leaves)).body(), [SIGNER])
    path = (root_of(leaves[:2]),) if index == 2 else (leaves[1 - index], leaves[2])
    return format_tlog_proof(index, InclusionProof(index, 3, path), note)


def test_round_trip_and_the_spec_layout() -> None:
    text = _proof_file(0)
    assert text.startswith(b"c2sp.org/tlog-proof@v1\nindex 0\n")
    index, path, note = parse_tlog_proof(text)
    assert index == 0 and len(path) == 2 and note.startswith(b"proof.example/log\n3\n")
    assert verify_tlog_proof(text, b"a", SIGNER.verifier).size == 3
    assert verify_tlog_proof(_proof_file(2), b"c", SIGNER.verifier).size == 3


def test_extra_line_is_accepted_and_ignored() -> None:
    text = _proof_file().replace(b"\nindex", b"\nextra aGVsbG8=\nindex", 1)
    assert verify_tlog_proof(text, b"c", SIGNER.verifier).size == 3


@pytest.mark.parametrize("change", [
    (b"c2sp.org/tlog-proof@v1", b"c2sp.org/tlog-proof@v2"),
    (b"index 2", b"index 02"),
    (b"index 2", b"index two"),
    (b"index 2", b"index 1"),
    (b"\nindex", b"\nextra ***\nindex"),
    (b"\n\n", b"\n"),
])
def test_malformed_or_wrong_proofs_fail(change: tuple[bytes, bytes]) -> None:
    with pytest.raises(ProofError):
        verify_tlog_proof(_proof_file().replace(*change, 1), b"c", SIGNER.verifier)


def test_wrong_entry_and_wrong_key_fail() -> None:
    with pytest.raises(ProofError):
        verify_tlog_proof(_proof_file(), b"x", SIGNER.verifier)
    with pytest.raises(NoteError):
        verify_tlog_proof(_proof_file(), b"c", Signer.generate("proof.example/log").verifier)

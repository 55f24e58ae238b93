"""C2SP tlog-proof files (c2sp.org/tlog-proof): an inclusion proof an auditor keeps offline.

A proof file binds one entry (by index) to a signed checkpoint, so whoever holds the entry and
the log's verifier key can check it with no network and no database::

    c2sp.org/tlog-proof@v1
    [extra <base64>]            optional, unauthenticated: parsed and ignored here
    index <N>
    <base64 hash>               the RFC 6962 audit path, leaf's sibling first
    ...
    <empty line>
    <the signed checkpoint note, verbatim>

This is a checking-side module: it imports only the shared models, never the writer.
"""

from __future__ import annotations

import base64
import binascii

from .checkpoint import Checkpoint
from .errors import ProofError
from .merkle import HASH_SIZE, leaf_hash, verify_inclusion
from .note import Verifier, open_note
from .proofs import InclusionProof

__all__ = ["HEADER", "format_tlog_proof", "parse_tlog_proof", "verify_tlog_proof"]

HEADER = b"c2sp.org/tlog-proof@v1"
_MAX_BYTES = 1_000_000  # a proof for a 2^64 tree is a few KiB; refuse anything absurd early


def format_tlog_proof(index: int, proof: InclusionProof, note: bytes) -> bytes:
    """The proof file for the entry at ``index`` against the signed checkpoint ``note``.

    ``proof`` must be the inclusion proof at the checkpoint's size; the note is kept byte for
    byte, since its signature covers those bytes.
    """
    if proof.leaf_index != index:
        raise ProofError(f"the proof is for entry {proof.leaf_index}, not {index}")
    lines = [HEADER, b"index %d" % index, *(base64.b64encode(h) for h in proof.audit_path)]
    return b"\n".join(lines) + b"\n\n" + note


def _b64(line: bytes, what: str) -> bytes:
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ProofError(f"{what} is not standard padded base64") from e


def _parse_index(line: bytes) -> int:
    if not line.startswith(b"index "):
        raise ProofError("tlog-proof: expected an 'index <N>' line")
    digits = line[len(b"index "):]
    if not digits.isdigit() or (digits != b"0" and digits.startswith(b"0")):
        raise ProofError("tlog-proof: the index is not a decimal number without leading zeros")
    index = int(digits)
    if index >= 1 << 64:
        raise ProofError("tlog-proof: the index does not fit 64 bits")
    return index


def parse_tlog_proof(text: bytes) -> tuple[int, list[bytes], bytes]:
    """Split a proof file into (index, audit path, signed checkpoint note); checks nothing signed."""
    if len(text) > _MAX_BYTES:
        raise ProofError("tlog-proof is too large")
    head, sep, note = text.partition(b"\n\n")
    if not sep or not note:
        raise ProofError("tlog-proof: no empty line before the checkpoint")
    lines = head.split(b"\n")
    if lines[0] != HEADER:
        raise ProofError(f"tlog-proof: the first line must be {HEADER.decode()}")
    rest = lines[1:]
    if rest and rest[0].startswith(b"extra "):
        _b64(rest[0][len(b"extra "):], "tlog-proof extra data")  # well-formed, then ignored
        rest = rest[1:]
    if not rest:
        raise ProofError("tlog-proof: missing the index line")
    index = _parse_index(rest[0])
    path = [_b64(line, "tlog-proof hash") for line in rest[1:]]
    if any(len(h) != HASH_SIZE for h in path):
        raise ProofError(f"tlog-proof: every proof hash is {HASH_SIZE} bytes")
    return index, path, note


def verify_tlog_proof(text: bytes, entry: bytes, verifier: Verifier) -> Checkpoint:
    """Check that ``entry`` is in the log ``verifier`` signs for; return the checkpoint it is in.

    Checks, in order: the file's shape, the checkpoint note's signature by ``verifier`` (whose
    name must be the checkpoint's origin), and the inclusion of ``leaf_hash(entry)`` at the
    stated index under the checkpoint's root. Raises ProofError or NoteError otherwise.
    """
    index, path, note = parse_tlog_proof(text)
    checkpoint = Checkpoint.parse(open_note(note, [verifier]).text)
    if checkpoint.origin != verifier.name:
        raise ProofError(f"the checkpoint's origin {checkpoint.origin!r} is not {verifier.name!r}")
    if not index < checkpoint.size:
        raise ProofError(f"entry {index} is not in a tree of size {checkpoint.size}")
    verify_inclusion(index, checkpoint.size, leaf_hash(entry), path, checkpoint.root_hash)
    return checkpoint

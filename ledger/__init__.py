"""The RLHF Audit Trail ledger: an RFC 6962 transparency log with C2SP checkpoints and
RFC 3161 timestamps. Importable without the web or ML stack.

Writing side: :class:`Log` (append, integrate, timestamp, prove) over a database, opened from a
:class:`LogHome`. Checking side: :mod:`ledger.merkle`, :mod:`ledger.note`,
:mod:`ledger.checkpoint`, :mod:`ledger.proofs` and :mod:`ledger.timestamp_verify`, which share
only models and errors with the writer. Everything under ``ledger._internal`` carries no
stability promise.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names load on first use, so that importing one checking module (ledger.merkle, say)
# does not pull in the writer, SQLAlchemy and the TSA client.
_WHERE = {
    "MAX_ENTRY_BYTES": "canonical",
    "canonical_event": "canonical",
    "canonicalize": "canonical",
    "decode_event": "canonical",
    "encode_event": "canonical",
    "Checkpoint": "checkpoint",
    "ConfigError": "errors",
    "EntryError": "errors",
    "LedgerError": "errors",
    "NoteError": "errors",
    "NotFound": "errors",
    "ProofError": "errors",
    "StorageError": "errors",
    "TimestampError": "errors",
    "TimestampVerificationError": "errors",
    "VerificationError": "errors",
    "Commitment": "events",
    "Opening": "events",
    "Pseudonymizer": "events",
    "commit": "events",
    "LogHome": "home",
    "Settings": "home",
    "Log": "log",
    "SequencedEntries": "log",
    "SequencedEntry": "log",
    "SignedCheckpoint": "log",
    "TimestampGap": "log",
    "TreeHead": "log",
    "leaf_hash": "merkle",
    "verify_consistency": "merkle",
    "verify_inclusion": "merkle",
    "Signer": "note",
    "Verifier": "note",
    "open_note": "note",
    "sign_note": "note",
    "ConsistencyProof": "proofs",
    "InclusionProof": "proofs",
    "TimestampInfo": "timestamp_verify",
    "verify_timestamp": "timestamp_verify",
}

if TYPE_CHECKING:
    from .canonical import (
        MAX_ENTRY_BYTES,
        canonical_event,
        canonicalize,
        decode_event,
        encode_event,
    )
    from .checkpoint import Checkpoint
    from .errors import (
        ConfigError,
        EntryError,
        LedgerError,
        NoteError,
        NotFound,
        ProofError,
        StorageError,
        TimestampError,
        TimestampVerificationError,
        VerificationError,
    )
    from .events import Commitment, Opening, Pseudonymizer, commit
    from .home import LogHome, Settings
    from .log import Log, SequencedEntries, SequencedEntry, SignedCheckpoint, TimestampGap, TreeHead
    from .merkle import leaf_hash, verify_consistency, verify_inclusion
    from .note import Signer, Verifier, open_note, sign_note
    from .proofs import ConsistencyProof, InclusionProof
    from .timestamp_verify import TimestampInfo, verify_timestamp


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "MAX_ENTRY_BYTES",
    "Checkpoint",
    "Commitment",
    "ConfigError",
    "ConsistencyProof",
    "EntryError",
    "InclusionProof",
    "LedgerError",
    "Log",
    "LogHome",
    "NotFound",
    "NoteError",
    "Opening",
    "ProofError",
    "Pseudonymizer",
    "SequencedEntries",
    "SequencedEntry",
    "Settings",
    "SignedCheckpoint",
    "Signer",
    "StorageError",
    "TimestampError",
    "TimestampGap",
    "TimestampInfo",
    "TimestampVerificationError",
    "TreeHead",
    "VerificationError",
    "Verifier",
    "canonical_event",
    "canonicalize",
    "commit",
    "decode_event",
    "encode_event",
    "leaf_hash",
    "open_note",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
    "verify_timestamp",
]

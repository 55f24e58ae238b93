"""Rotating the evidence-signing key (``<keys>/evidence.key``, Ed25519), as the release key is rotated.

:func:`rotate_evidence_key` keeps the old seed as ``<keys>/retired/evidence-<key id>.key``, installs a
new one (an atomic rename: a server signing meanwhile uses the old key or the new, and follows the
file) and records ``keys.evidence_key`` {``key``, ``key_id``, ``replaces``} at once, so the new key is
on the log before it signs anything. A bundle built before keeps verifying: it carries the old public
key and the old key's own ``keys.evidence_key`` entry with its proof. The key id is the DSSE keyid,
the hex SHA-256 of the raw public key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import LedgerError
from ledger.log import Log

from ..core.errors import AppError, Unavailable
from ..core.keyring import EVIDENCE_KEY, Keyring
from ..events.index import EventIndex
from ..events.recording import Actor, record
from ..evidence import dsse
from ..evidence.verify import EVIDENCE_KEY_EVENT

__all__ = ["RotatedEvidenceKey", "rotate_evidence_key"]


@dataclass(frozen=True)
class RotatedEvidenceKey:
    previous_key_id: str
    key_id: str
    leaf_index: int
    retired_file: str


async def rotate_evidence_key(log: Log, index: EventIndex, keyring: Keyring,
                              actor: Actor) -> RotatedEvidenceKey:
    """A new evidence-signing key; the old seed kept in ``retired/``; the new key on the log."""
    old_id = dsse.key_id(keyring.evidence_signer.public_key())  # created if this home never had one
    seed = secrets.token_bytes(32)
    new = Ed25519PrivateKey.from_private_bytes(seed)
    retired = keyring.replace_key(EVIDENCE_KEY, seed, f"evidence-{old_id}.key")
    pem, kid = dsse.public_key_pem(new.public_key()).decode(), dsse.key_id(new.public_key())
    try:
        entry = await record(log, EVIDENCE_KEY_EVENT, actor, key=pem, key_id=kid, replaces=old_id)
    except (LedgerError, AppError) as e:
        raise Unavailable(f"the evidence key was rotated ({old_id} -> {kid}; the old key is in {retired}), "
                          f"but its {EVIDENCE_KEY_EVENT} event could not be recorded: {e}; the next bundle "
                          "built records the new key (without naming the key it replaces)") from e
    await index.catch_up()  # the next bundle finds the key's entry without waiting for the indexer
    return RotatedEvidenceKey(old_id, kid, entry.leaf_index, str(retired))

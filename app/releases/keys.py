"""The release-signing key: ECDSA P-256, on the log as ``keys.release_key``, rotated by replacing it.

P-256 because ``model_signing verify key`` (model-signing 1.1) accepts only NIST curves, and one
key signs both a release's model signature and its provenance, so an auditor pins one key per
release. Its key ID is the hex SHA-256 of its SubjectPublicKeyInfo PEM: what model-signing writes
as the bundle's public-key hint, and the DSSE ``keyid`` of the provenance envelope.

Rotation: :func:`rotate_release_key` keeps the old seed as ``<keys>/retired/release-<key id>.key``,
makes a new one and records ``keys.release_key`` {``key``, ``key_id``, ``replaces``}. Releases
attested before stay verifiable with the old public key, which its own ``keys.release_key`` entry
still holds; each release's ``release-key.pem`` names the key that signed it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.log import Log

from ..core.keyring import RELEASE_KEY, Keyring
from ..events.index import EventIndex
from ..events.recording import SYSTEM, Actor, record

__all__ = ["RELEASE_KEY_EVENT", "RotatedKey", "key_id", "public_key_pem", "record_release_key",
           "rotate_release_key"]

RELEASE_KEY_EVENT = "keys.release_key"


def public_key_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    """Hex SHA-256 of the SPKI PEM: model-signing's public-key hint, and our DSSE keyid."""
    return hashlib.sha256(public_key_pem(key)).hexdigest()


async def record_release_key(log: Log, index: EventIndex, key: ec.EllipticCurvePrivateKey, *,
                             actor: Actor = SYSTEM, replaces: str | None = None) -> int:
    """The leaf index of the first ``keys.release_key`` event naming ``key``; recorded when the log
    has none (a new home's key, or a rotated one)."""
    pem, kid = public_key_pem(key.public_key()).decode(), key_id(key.public_key())
    await index.catch_up()
    found = await index.first(RELEASE_KEY_EVENT, key_id=kid, key=pem)
    if found is not None:
        return found.index
    return (await record(log, RELEASE_KEY_EVENT, actor, key=pem, key_id=kid, replaces=replaces)).leaf_index


@dataclass(frozen=True)
class RotatedKey:
    previous_key_id: str
    key_id: str
    leaf_index: int
    retired_file: str


async def rotate_release_key(log: Log, index: EventIndex, keyring: Keyring, actor: Actor) -> RotatedKey:
    """A new release-signing key; the old seed kept in ``retired/``; the new key on the log."""
    old = keyring.release_signer
    old_id = key_id(old.public_key())
    keyring.retired_dir.mkdir(mode=0o700, exist_ok=True)
    retired = keyring.retired_dir / f"release-{old_id}.key"
    # a hard link first: a crash between the two steps leaves the key in both places, never in none
    if not retired.exists():
        os.link(keyring.directory / RELEASE_KEY, retired)
    (keyring.directory / RELEASE_KEY).unlink()
    new = Keyring(keyring.directory).release_signer  # a fresh keyring makes the new seed
    keyring.__dict__.pop("release_signer", None)
    at = await record_release_key(log, index, new, actor=actor, replaces=old_id)
    return RotatedKey(old_id, key_id(new.public_key()), at, str(retired))

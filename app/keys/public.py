"""The signing keys' public halves, as ``rlhf-audit public-keys`` prints them and ``GET /log/v1/keys``
serves them: ``evidence_key`` (Ed25519, SPKI PEM) with ``evidence_key_id`` (the DSSE keyid: hex
SHA-256 of the raw key), ``release_key`` (ECDSA P-256, SPKI PEM) with ``release_key_id`` (hex SHA-256
of that PEM, model-signing's key hint). Public keys only; a key the home does not have is left out."""

from __future__ import annotations

from ..core.keyring import EVIDENCE_KEY, RELEASE_KEY, Keyring
from ..evidence import dsse
from ..releases import keys as release

__all__ = ["signing_keys"]


def signing_keys(keyring: Keyring, *, create: bool = False) -> dict[str, str]:
    """The four members for the keys that exist (``create``: making missing ones first, as the CLI
    does for the keys a home will sign with)."""
    out: dict[str, str] = {}
    if create or keyring.has(EVIDENCE_KEY):
        evidence = keyring.evidence_signer.public_key()
        out |= {"evidence_key": dsse.public_key_pem(evidence).decode(),
                "evidence_key_id": dsse.key_id(evidence)}
    if create or keyring.has(RELEASE_KEY):
        signer = Keyring(keyring.directory).release_signer.public_key()  # read now: it may have been rotated
        out |= {"release_key": release.public_key_pem(signer).decode(),
                "release_key_id": release.key_id(signer)}
    return out

"""Secrets the sign-in machinery derives from the off-log keyring, one per purpose.

HKDF-SHA256 over the keyring's records key-encryption key with a distinct ``info`` per use, so
no new key file is needed, every server process sharing the keys directory agrees, and knowing
one derived key tells nothing about the KEK or the others.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..core.keyring import Keyring

__all__ = ["csrf_secret", "totp_key", "totp_key_of"]


def _derive(kek: bytes, purpose: str) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"rlhf-audit " + purpose.encode()).derive(kek)


def csrf_secret(keyring: Keyring) -> str:
    """The secret Litestar's CSRF tokens are HMAC'd with."""
    return _derive(keyring.records_kek, "csrf v1").hex()


def totp_key(keyring: Keyring) -> bytes:
    """The AES-256-GCM key TOTP secrets are stored under."""
    return totp_key_of(keyring.records_kek)


def totp_key_of(records_kek: bytes) -> bytes:
    """:func:`totp_key` for a given records KEK (a rotation re-encrypts from the old to the new)."""
    return _derive(records_kek, "totp v1")

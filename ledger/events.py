"""Keeping personal data off the log: pseudonyms and salted commitments.

The log is append-only and public to auditors, so nothing on it may identify a person or
reveal content that a data subject can later ask to erase (GDPR Art. 17). Events carry:

- **pseudonyms**: HMAC-SHA-256 of an identity under a key kept outside the log's database;
  the same annotator always gets the same pseudonym, and destroying the key unlinks them all;
- **salted commitments**: SHA-256 over a random 32-byte salt and the clear value. The salt and
  the value live off the log; showing both later proves what was committed, and erasing them
  leaves a commitment that reveals nothing, while every proof over the log stays valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from .errors import ConfigError, VerificationError

__all__ = ["Commitment", "Opening", "Pseudonymizer", "commit"]

_COMMIT_DOMAIN = b"rlhf-audit-trail/commitment/v1\x00"
_PSEUDONYM_DOMAIN = b"rlhf-audit-trail/pseudonym/v1\x00"


@dataclass(frozen=True)
class Commitment:
    """What goes on the log: ``sha256:<base64>`` of domain || salt || value."""

    digest: bytes

    def __str__(self) -> str:
        return "sha256:" + base64.b64encode(self.digest).decode()

    @classmethod
    def parse(cls, text: str) -> Commitment:
        prefix, _, b64 = text.partition(":")
        try:
            digest = base64.b64decode(b64, validate=True)
        except ValueError as e:
            raise VerificationError("a commitment reads sha256:<base64>") from e
        if prefix != "sha256" or len(digest) != 32:
            raise VerificationError("a commitment reads sha256:<base64 of 32 bytes>")
        return cls(digest)


@dataclass(frozen=True)
class Opening:
    """What stays off the log, erasable: the salt and the clear value."""

    salt: bytes
    value: bytes

    def commitment(self) -> Commitment:
        return Commitment(hashlib.sha256(_COMMIT_DOMAIN + self.salt + self.value).digest())

    def verify(self, commitment: Commitment) -> None:
        if not hmac.compare_digest(self.commitment().digest, commitment.digest):
            raise VerificationError("the opening does not match the commitment")


def commit(value: bytes | str) -> tuple[Commitment, Opening]:
    """Commit to a value with a fresh random salt."""
    raw = value.encode() if isinstance(value, str) else value
    opening = Opening(secrets.token_bytes(32), raw)
    return opening.commitment(), opening


class Pseudonymizer:
    """Stable pseudonyms for identities, keyed so that the log alone cannot reverse them."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ConfigError("a pseudonymisation key needs at least 32 bytes")
        self._key = key

    def pseudonym(self, identity: str) -> str:
        mac = hmac.new(self._key, _PSEUDONYM_DOMAIN + identity.encode(), hashlib.sha256)
        return "pseud:" + mac.hexdigest()[:32]

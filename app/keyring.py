"""The product's secrets that must live outside the log's database.

GDPR Art. 4(5) counts pseudonymisation only when the additional information is kept apart,
so these keys are files in the home (owner-only, 0600), never rows next to the log:

- ``keys/pseudonym.key``: the HMAC key turning identities (annotators, staff accounts) into
  pseudonyms (:class:`ledger.events.Pseudonymizer`);
- ``keys/records.key``: the key-encryption key wrapping each data subject's record key
  (envelope encryption in ``app.datasets``; erasing a subject destroys its wrapped key);
- ``keys/evidence.key``: the Ed25519 seed of the operator's evidence-signing key, which signs the
  DSSE attestation of evidence bundles (``app.evidence``).

``RLHF_AUDIT_KEYS_DIR`` points elsewhere (a mounted secret volume in production).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import ConfigError
from ledger.events import Pseudonymizer
from ledger.home import LogHome

__all__ = ["ENV_KEYS_DIR", "Keyring"]

ENV_KEYS_DIR = "RLHF_AUDIT_KEYS_DIR"


class Keyring:
    """Loads (creating on first use) the product's off-log keys."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def of(cls, home: LogHome) -> Keyring:
        chosen = os.environ.get(ENV_KEYS_DIR)
        return cls(Path(chosen) if chosen else home.path / "keys")

    def _key(self, name: str) -> bytes:
        path = self.directory / name
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # write a private temporary file, then link it into place: a concurrent reader sees
        # either no key or the whole key, and the first process to link wins
        tmp = self.directory / f".{name}.{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
            return path.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot create the key {path}: {e}") from e
        finally:
            tmp.unlink(missing_ok=True)

    @cached_property
    def pseudonymizer(self) -> Pseudonymizer:
        return Pseudonymizer(self._key("pseudonym.key"))

    @cached_property
    def evidence_signer(self) -> Ed25519PrivateKey:
        """The Ed25519 key that signs evidence bundles' attestations (``app.evidence``)."""
        return Ed25519PrivateKey.from_private_bytes(self._key("evidence.key"))

    @cached_property
    def records_kek(self) -> bytes:
        """32 bytes: the AES-256 key-encryption key for data subjects' record keys."""
        return self._key("records.key")

"""C2SP signed notes with Ed25519 keys (c2sp.org/signed-note).

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> <base64(key ID || signature)>``. Parsing follows Go's
``golang.org/x/mod/sumdb/note`` (the reference verifier) so that notes we write open there,
and notes it refuses are refused here too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from .errors import NoteError

__all__ = ["Note", "NoteSignature", "Signer", "Verifier", "key_id", "open_note", "sign_note"]

ALG_ED25519 = 0x01
_DASH = "\u2014 ".encode()  # EM DASH, space
_MAX_SIGNATURES = 100


def _b64decode(s: str | bytes, what: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise NoteError(f"{what} is not valid padded base64") from e


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise NoteError(f"invalid key name {name!r}: it must be non-empty, without spaces or '+'")


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """First four bytes of SHA-256(name || 0x0A || alg || public key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 note verifier: a key name, its key ID and the 32-byte public key."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """The C2SP verifier key string ``<name>+<hex key ID>+<base64(0x01 || key)>``."""
        b64 = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or len(parts[1]) != 8:
            raise NoteError("a verifier key reads <name>+<8 hex digits>+<base64 key>")
        name, hex_id, b64 = parts
        try:
            kid = bytes.fromhex(hex_id)
        except ValueError as e:
            raise NoteError("verifier key ID is not hexadecimal") from e
        raw = _b64decode(b64, "verifier key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
        verifier = cls(name, raw[1:])
        if verifier.key_id != kid:
            raise NoteError("verifier key ID does not match its name and key")
        return verifier

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            nacl.signing.VerifyKey(self.public_key).verify(text, signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True


class Signer:
    """An Ed25519 note signer, made from a 32-byte seed."""

    def __init__(self, name: str, seed: bytes) -> None:
        _check_name(name)
        if len(seed) != 32:
            raise NoteError("an Ed25519 seed is 32 bytes")
        self.name = name
        self._key = nacl.signing.SigningKey(seed)
        self.verifier = Verifier(name, bytes(self._key.verify_key))

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key reads PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
        _, _, name, hex_id, b64 = parts
        raw = _b64decode(b64, "signer key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("signer key is not an Ed25519 key (type 0x01, 32-byte seed)")
        signer = cls(name, raw[1:])
        if signer.verifier.key_id.hex() != hex_id.lower():
            raise NoteError("signer key ID does not match its name and key")
        return signer

    @property
    def skey(self) -> str:
        """The signer key string ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``."""
        b64 = base64.b64encode(bytes([ALG_ED25519]) + bytes(self._key)).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{b64}"

    def sign(self, text: bytes) -> bytes:
        """The signature line (ending in a newline) for ``text``."""
        sig = self._key.sign(text).signature
        b64 = base64.b64encode(self.verifier.key_id + sig)
        return _DASH + self.name.encode() + b" " + b64 + b"\n"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    """An opened note: its text and the signatures that verified."""

    text: bytes
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def _check_text(text: bytes) -> None:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NoteError("note is not valid UTF-8") from e
    if not decoded.endswith("\n"):
        raise NoteError("note text does not end in a newline")
    if any((c < " " and c != "\n") or c == "\x7f" for c in decoded):
        raise NoteError("note contains control characters")


def sign_note(text: bytes, signers: Sequence[Signer]) -> bytes:
    """The signed note: text, a blank line, one signature line per signer."""
    _check_text(text)
    if b"\n\n" in text:
        raise NoteError("note text must not contain a blank line")
    if not signers:
        raise NoteError("a signed note needs at least one signer")
    return text + b"\n" + b"".join(s.sign(text) for s in signers)


def _parse_signature(line: bytes) -> NoteSignature:
    if not line.startswith(_DASH):
        raise NoteError("malformed signature line (it must start with an em dash and a space)")
    try:
        name, b64 = line[len(_DASH) :].decode("utf-8").split(" ")
    except (UnicodeDecodeError, ValueError) as e:
        raise NoteError("malformed signature line") from e
    _check_name(name)
    raw = _b64decode(b64, "signature")
    if len(raw) < 5:
        raise NoteError("signature is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def open_note(note: bytes, verifiers: Iterable[Verifier]) -> Note:
    """Check a signed note against known verifiers.

    Signatures from unknown keys are ignored; a bad signature from a known key fails the note;
    at least one known key must have signed.
    """
    if len(note) > 1_000_000:
        raise NoteError("note is too large")
    _check_text(note)
    split = note.rfind(b"\n\n")
    if split < 0:
        raise NoteError("note has no signatures (no blank line before them)")
    text, sig_block = note[: split + 1], note[split + 2 :]
    lines = sig_block.split(b"\n")
    if lines[-1] != b"" or len(lines) < 2:
        raise NoteError("signature block does not end in a newline")
    lines = lines[:-1]
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError(f"note has more than {_MAX_SIGNATURES} signatures")
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for line in lines:
        sig = _parse_signature(line)
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unverified.append(sig)
        elif verifier.verify(text, sig.signature):
            verified.append(sig)
        else:
            raise NoteError(f"invalid signature from key {sig.name}+{sig.key_id.hex()}")
    if not verified:
        raise NoteError("note is not signed by any known key")
    return Note(text, tuple(verified), tuple(unverified))

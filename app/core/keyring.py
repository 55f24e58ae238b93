"""The product's secrets that must live outside the log's database.

GDPR Art. 4(5) counts pseudonymisation only when the additional information is kept apart,
so these keys are files in the home (owner-only, 0600), never rows next to the log:

- ``keys/pseudonym.key``: the HMAC key turning identities (annotators, staff accounts) into
  pseudonyms (:class:`ledger.events.Pseudonymizer`);
- ``keys/records.key``: the key-encryption key wrapping each data subject's record key
  (envelope encryption in ``app.datasets``; erasing a subject destroys its wrapped key). The
  TOTP-secret and CSRF keys are derived from it (``app.auth.keys``). ``rlhf-audit keys
  rotate-records-kek`` (``app.keys.kek_rotation``) replaces it: the new key is staged as
  ``keys/records.key.next`` before the database is re-wrapped, and renamed over ``records.key``
  after; the old one is kept as ``keys/retired/records-<key id>.key``. While a ``.next`` file
  exists the KEK is undecided and :attr:`Keyring.records_kek` refuses (fail closed) until
  ``app.keys.kek_rotation.settle_records_kek`` has seen which key the database is under;
- ``keys/evidence.key``: the Ed25519 seed of the operator's evidence-signing key, which signs the
  DSSE attestation of evidence bundles (``app.evidence``); ``rlhf-audit keys rotate-evidence-key``
  (``app.keys.evidence_rotation``) replaces it, keeping the old one as
  ``keys/retired/evidence-<key id>.key``.
- ``keys/release.key``: the 32-byte seed of the release-signing key, ECDSA P-256 (``model_signing
  verify key`` takes no Ed25519), which signs each released model's OpenSSF model-signing signature
  and its SLSA provenance (``app.releases``; rotated by ``rlhf-audit releases rotate-key``).

``RLHF_AUDIT_KEYS_DIR`` points elsewhere (a mounted secret volume in production).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.events import Pseudonymizer
from ledger.home import LogHome

from .errors import Misconfigured, Unavailable
from .settings import Settings

__all__ = ["ENV_KEYS_DIR", "EVIDENCE_KEY", "RECORDS_KEY", "RECORDS_KEY_NEXT", "RELEASE_KEY", "Keyring",
           "RecordsKekPending", "records_kek_id", "release_key_from_seed"]

ENV_KEYS_DIR = "RLHF_AUDIT_KEYS_DIR"  # read into Settings.keys_dir (app.core.settings)
EVIDENCE_KEY = "evidence.key"
RECORDS_KEY = "records.key"
RECORDS_KEY_NEXT = "records.key.next"  # a staged KEK: a rotation is under way or was interrupted
RELEASE_KEY = "release.key"
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # the group order


class RecordsKekPending(Unavailable):
    """``records.key.next`` exists: which KEK the database is under is not settled yet (503: it
    will be, once the rotation finishes or is undone)."""


def records_kek_id(kek: bytes) -> str:
    """16 hex digits naming a records KEK (retired files, the rotation event); not the key."""
    return hashlib.sha256(b"rlhf-audit records-kek id\x00" + kek).hexdigest()[:16]


def release_key_from_seed(seed: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 key whose scalar is the seed reduced into [1, n-1] (bias below 2^-128)."""
    scalar = int.from_bytes(hashlib.sha512(b"rlhf-audit release key\x00" + seed).digest()) % (_P256_N - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to a private (0600) temporary sibling, fsync it, then rename it to ``path``
    (``replace``) or link it there (fails with FileExistsError if ``path`` exists); fsync the dir."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


class Keyring:
    """Loads (creating on first use) the product's off-log keys."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._records: tuple[tuple[int, int, int] | None, bytes] | None = None
        self._evidence: tuple[tuple[int, int, int] | None, Ed25519PrivateKey] | None = None

    @classmethod
    def of(cls, home: LogHome, settings: Settings) -> Keyring:
        """The keyring ``settings.keys_dir`` names (``RLHF_AUDIT_KEYS_DIR``), else ``<home>/keys``."""
        return cls(settings.keys_dir or home.path / "keys")

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
            raise Misconfigured(f"cannot create the key {path}: {e}") from e
        finally:
            tmp.unlink(missing_ok=True)

    @cached_property
    def pseudonymizer(self) -> Pseudonymizer:
        return Pseudonymizer(self._key("pseudonym.key"))

    @property
    def evidence_signer(self) -> Ed25519PrivateKey:
        """The Ed25519 key that signs evidence bundles' attestations (``app.evidence``).

        Re-read when the file changed: a server signs with the new key as soon as another process
        has rotated it (the rotation replaces the file atomically)."""
        path = self.directory / EVIDENCE_KEY
        stamp = _stamp(path)
        if self._evidence is None or stamp is None or self._evidence[0] != stamp:
            key = Ed25519PrivateKey.from_private_bytes(self._key(EVIDENCE_KEY))
            self._evidence = (stamp if stamp is not None else _stamp(path), key)
        return self._evidence[1]

    def has(self, name: str) -> bool:
        """Whether the key file ``name`` exists (reading a key property would create it)."""
        return (self.directory / name).is_file()

    def replace_key(self, name: str, seed: bytes, retired_name: str) -> Path:
        """Make ``seed`` the key ``name``: the old file kept first as ``retired/<retired_name>``
        (0600, durable), then the new one renamed over it, so a reader sees the old key or the new
        one, never none (a reader must not create a key of its own meanwhile)."""
        retired = self.retired_dir / retired_name
        try:
            self.retired_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_durably(retired, (self.directory / name).read_bytes(), replace=True)
            _write_durably(self.directory / name, seed, replace=True)
        except OSError as e:
            raise Misconfigured(f"cannot replace the key {self.directory / name}: {e}") from e
        return retired

    @cached_property
    def release_signer(self) -> ec.EllipticCurvePrivateKey:
        """The ECDSA P-256 key that signs model releases (``app.releases``), from its seed."""
        return release_key_from_seed(self._key(RELEASE_KEY))

    @property
    def records_kek(self) -> bytes:
        """32 bytes: the AES-256 key-encryption key for data subjects' record keys.

        Re-read when the file changed (another process rotated it). Refused while a rotation's
        staged key (``records.key.next``) exists: the database may be under either key."""
        if (self.directory / RECORDS_KEY_NEXT).exists():
            raise RecordsKekPending(
                "a rotation of the records key was interrupted or is running "
                f"({self.directory / RECORDS_KEY_NEXT} exists): run `rlhf-audit keys rotate-records-kek "
                "--recover` (or any dataset command, or restart the server) to finish or undo it")
        path = self.directory / RECORDS_KEY
        stamp = _stamp(path)
        if self._records is None or stamp is None or self._records[0] != stamp:
            key = self._key(RECORDS_KEY)  # creates the file on first use: stamp it after
            self._records = (stamp if stamp is not None else _stamp(path), key)
        return self._records[1]

    # -- rotating the records KEK (driven by app.keys.kek_rotation) ---------------------------------

    @property
    def retired_dir(self) -> Path:
        return self.directory / "retired"

    def installed_records_kek(self) -> bytes | None:
        """The bytes of ``records.key`` as they are (None: no such file); creates nothing."""
        try:
            return (self.directory / RECORDS_KEY).read_bytes()
        except FileNotFoundError:
            return None

    def staged_records_kek(self) -> bytes | None:
        """The bytes of ``records.key.next`` (None: no rotation pending)."""
        try:
            return (self.directory / RECORDS_KEY_NEXT).read_bytes()
        except FileNotFoundError:
            return None

    def stage_records_kek(self, kek: bytes) -> None:
        """Write ``kek`` durably as ``records.key.next`` (0600); refuse if one is there already."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            _write_durably(self.directory / RECORDS_KEY_NEXT, kek, replace=False)
        except FileExistsError:
            raise RecordsKekPending(f"{self.directory / RECORDS_KEY_NEXT} exists already") from None
        except OSError as e:
            raise Misconfigured(f"cannot write {self.directory / RECORDS_KEY_NEXT}: {e}") from e

    def drop_staged_records_kek(self) -> None:
        """Remove ``records.key.next`` (the database was never re-wrapped under it)."""
        (self.directory / RECORDS_KEY_NEXT).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            _fsync_dir(self.directory)

    def install_staged_records_kek(self, *, keep_old: bool) -> Path | None:
        """Make ``records.key.next`` the records KEK: keep the old key as
        ``retired/records-<key id>.key`` (0600) unless not ``keep_old``, then rename the staged
        file over ``records.key``. Each step is atomic and may be repeated after a crash."""
        staged = self.staged_records_kek()
        if staged is None:
            raise Misconfigured(f"no staged records key ({self.directory / RECORDS_KEY_NEXT}) to install")
        old = self.installed_records_kek()
        retired = None
        try:
            if keep_old and old is not None and old != staged:
                self.retired_dir.mkdir(mode=0o700, exist_ok=True)
                retired = self.retired_dir / f"records-{records_kek_id(old)}.key"
                _write_durably(retired, old, replace=True)
            os.replace(self.directory / RECORDS_KEY_NEXT, self.directory / RECORDS_KEY)
            _fsync_dir(self.directory)
        except OSError as e:
            raise Misconfigured(f"cannot install the new records key in {self.directory}: {e}") from e
        self._records = None
        return retired

    @contextlib.contextmanager
    def records_kek_lock(self) -> Iterator[None]:
        """Exclusive, non-blocking: one rotation (or recovery) of the records KEK at a time.
        RecordsKekPending if another process holds it."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / ".records.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RecordsKekPending("another process is rotating the records key now") from None
            yield
        finally:
            os.close(fd)

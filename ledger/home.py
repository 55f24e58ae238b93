"""The log's home directory: settings, the log key and the built-in TSA.

Layout (created by ``init``, owner-only)::

    <home>/config.toml     origin, TSA URLs, integration interval (env vars override)
    <home>/log.key         the Ed25519 signer key, C2SP PRIVATE+KEY string (0600)
    <home>/log.vkey        its public verifier key
    <home>/log.vkeys       the key history after a rotation: <first size> <verifier key> per key
    <home>/retired/        rotated-out signer keys, kept unless rotation was told not to (0600)
    <home>/tsa/            the local TSA's root and TSA certificates and keys (0600)
    <home>/ledger.db       the SQLite database (unless RLHF_AUDIT_DATABASE_URL says otherwise;
                           0600, with its -wal and -shm, as the home is 0700)

The ledger reads only its own settings (:class:`Settings`: origin, database URL, TSAs, integration
interval, SQLite synchronous mode; the home and the TSA roots), by the product's one rule:
command-line flag > environment variable > ``config.toml`` > default, an empty value counting as
not given. The flags are ``--home`` (:meth:`LogHome.resolve`) and ``init --origin``; the origin is
written to ``config.toml`` once and never changes. A server's run-time table may change
``tsa_urls`` and ``integration_interval`` later (the application's, ``app.config.runtime``).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from ._internal.local_tsa import LocalTSA
from ._internal.store import Store
from .errors import ConfigError, NoteError
from .key_history import KeyHistory
from .log import Log
from .note import Signer, Verifier
from .timestamping import TimestampAuthority, tsa_from_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["ENV_TSA_ROOTS", "ENV_TSA_URLS", "LogHome", "Settings", "load_tsa_roots", "public_keys",
           "tsa_roots_from_env"]

ENV_HOME = "RLHF_AUDIT_HOME"
ENV_DATABASE = "RLHF_AUDIT_DATABASE_URL"
ENV_TSA = "RLHF_AUDIT_TSA_URLS"
ENV_TSA_URLS = ENV_TSA
ENV_TSA_ROOTS = "RLHF_AUDIT_TSA_ROOTS"
ENV_INTERVAL = "RLHF_AUDIT_INTEGRATION_INTERVAL"
ENV_SYNC = "RLHF_AUDIT_SQLITE_SYNCHRONOUS"


@dataclass(frozen=True)
class Settings:
    """The ledger's settings of one home: environment > ``config.toml`` > default (no flags here)."""

    origin: str
    database_url: str
    tsa_urls: tuple[str, ...]
    integration_interval: float
    sqlite_synchronous: str


def load_tsa_roots(paths: Iterable[str | os.PathLike[str]], what: str = ENV_TSA_ROOTS
                   ) -> tuple[x509.Certificate, ...]:
    """Every certificate in each PEM file (one file may hold several roots).

    ``what`` names the setting in errors.
    """
    out: list[x509.Certificate] = []
    for path in paths:
        try:
            certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{what}: cannot read certificates from {path}: {e}") from e
        out += certs
    return tuple(out)


def tsa_roots_from_env() -> tuple[x509.Certificate, ...]:
    """The external TSAs' roots named by ``RLHF_AUDIT_TSA_ROOTS`` (comma-separated PEM files).

    The one reader of that setting: ``verify`` (:meth:`LogHome.tsa_roots`) and the compliance
    check trust the same roots.
    """
    return load_tsa_roots(p.strip() for p in os.environ.get(ENV_TSA_ROOTS, "").split(",") if p.strip())


def _write_private(path: Path, data: bytes) -> None:
    """Create a file readable by its owner only; never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _owner_only(directory: Path) -> None:
    """Take group and other access away from ``directory`` (an older home, or one an operator
    made with a plain ``mkdir``, is often 0755), where it is ours to change."""
    try:
        st = directory.stat()
        if st.st_uid == os.geteuid() and st.st_mode & 0o077:
            directory.chmod(stat.S_IMODE(st.st_mode) & 0o700)
    except OSError:
        pass  # missing or not ours: whatever reads it next reports that


def _toml_value(value: object) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _replace_file(path: Path, data: bytes, mode: int) -> None:
    """Write a sibling temporary file and rename it over ``path``: readers see old or new."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def public_keys(origin: str, verifier: Verifier, local_tsa: LocalTSA | None,
                history: KeyHistory | None = None) -> dict[str, Any]:
    """What an auditor needs to check the log offline: its origin, its note verifier key (the
    current one), every key it has used with the first checkpoint size each signs, and the local
    TSA's certificate chain (PEM, TSA certificate then root; empty without a local TSA).

    One shape for ``rlhf-audit public-keys`` and ``GET /log/v1/keys``: scripts read either.
    """
    chain = local_tsa.chain_pem().decode() if local_tsa is not None else ""
    history = history or KeyHistory.single(verifier)
    return {"origin": origin, "log_vkey": verifier.vkey, "tsa_certificates": chain,
            "log_vkey_history": history.to_json()}


class LogHome:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> LogHome:
        """``--home``, else $RLHF_AUDIT_HOME, else the per-user data directory."""
        chosen = home or os.environ.get(ENV_HOME)
        if not chosen:
            import platformdirs  # only for the per-user default

            chosen = platformdirs.user_data_dir("rlhf-audit")
        return cls(Path(chosen).expanduser().resolve())

    @property
    def config_file(self) -> Path:
        return self.path / "config.toml"

    @property
    def key_file(self) -> Path:
        return self.path / "log.key"

    @property
    def tsa_dir(self) -> Path:
        return self.path / "tsa"

    @property
    def history_file(self) -> Path:
        return self.path / "log.vkeys"

    @property
    def retired_dir(self) -> Path:
        return self.path / "retired"

    def exists(self) -> bool:
        return self.config_file.exists() and self.key_file.exists()

    def init(self, origin: str | None = None) -> Signer:
        """Create whatever is missing; never replace an existing key or setting."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        _owner_only(self.path)
        if not self.config_file.exists():
            origin = origin or os.environ.get("RLHF_AUDIT_ORIGIN") or (
                f"rlhf-audit.local/{secrets.token_hex(4)}"
            )
            config = {"origin": origin, "tsa_urls": ["local"], "integration_interval": 0.5}
            text = "# rlhf-audit ledger settings; environment variables override them.\n"
            text += "".join(f"{k} = {_toml_value(v)}\n" for k, v in config.items())
            _write_private(self.config_file, text.encode())
        settings = self.settings()
        if origin is not None and origin != settings.origin:
            raise ConfigError(
                f"this home's log is {settings.origin!r}; a log's origin cannot change"
            )
        if not self.key_file.exists():
            try:
                signer = Signer.generate(settings.origin)
            except NoteError as e:
                raise ConfigError(f"origin {settings.origin!r} cannot name a key: {e}") from e
            _write_private(self.key_file, (signer.skey + "\n").encode())
            (self.path / "log.vkey").write_text(signer.verifier.vkey + "\n")
        LocalTSA.create(self.tsa_dir)
        return self.signer()

    def settings(self) -> Settings:
        try:
            config = tomllib.loads(self.config_file.read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"{self.path} is not initialised: run `rlhf-audit init`") from e
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read {self.config_file}: {e}") from e
        env = os.environ
        url = env.get(ENV_DATABASE) or config.get("database_url") or (
            f"sqlite+aiosqlite:///{self.path / 'ledger.db'}"
        )
        tsa_env = env.get(ENV_TSA)
        tsa_urls = [u.strip() for u in tsa_env.split(",")] if tsa_env else config.get("tsa_urls", [])
        try:
            interval = float(env.get(ENV_INTERVAL) or config.get("integration_interval", 0.5))
        except ValueError as e:
            raise ConfigError(f"the integration interval must be a number of seconds: {e}") from e
        return Settings(
            origin=str(config.get("origin", "")),
            database_url=str(url),
            tsa_urls=tuple(str(u) for u in tsa_urls if u),
            integration_interval=interval,
            sqlite_synchronous=env.get(ENV_SYNC) or str(config.get("sqlite_synchronous", "FULL")),
        )

    def signer(self) -> Signer:
        try:
            text = self.key_file.read_text()
        except FileNotFoundError as e:
            raise ConfigError(f"no log key in {self.path}: run `rlhf-audit init`") from e
        except OSError as e:
            raise ConfigError(f"cannot read the log key {self.key_file}: {e}") from e
        try:
            return Signer.from_skey(text)
        except NoteError as e:
            raise ConfigError(f"the log key {self.key_file} is unusable: {e}") from e

    def key_history(self, signer: Signer | None = None) -> KeyHistory:
        """The keys the log has signed with; without ``log.vkeys`` (never rotated), the one key.

        The newest key in the history must be the signer's: a mismatch means a rotation was
        interrupted or a file was swapped, and nothing should sign until an operator looks.
        """
        signer = signer or self.signer()
        try:
            history = KeyHistory.parse(self.history_file.read_text())
        except FileNotFoundError:
            return KeyHistory.single(signer.verifier)
        except OSError as e:
            raise ConfigError(f"cannot read the key history {self.history_file}: {e}") from e
        except NoteError as e:
            raise ConfigError(f"the key history {self.history_file} is unusable: {e}") from e
        if history.current != signer.verifier:
            raise ConfigError(f"the log key {self.key_file} is not the newest key in {self.history_file}")
        return history

    def install_log_key(self, new: Signer, history: KeyHistory, retire: Signer | None) -> None:
        """Make ``new`` the log key: keep the retired key (unless None), then the history, then
        the key, each replaced atomically so that other processes never read half a file."""
        if retire is not None:
            self.retired_dir.mkdir(mode=0o700, exist_ok=True)
            _write_private(self.retired_dir / f"log-{retire.verifier.key_id.hex()}.key",
                           (retire.skey + "\n").encode())
        _replace_file(self.history_file, history.format().encode(), 0o644)
        _replace_file(self.key_file, (new.skey + "\n").encode(), 0o600)
        _replace_file(self.path / "log.vkey", (new.verifier.vkey + "\n").encode(), 0o644)

    def _key_stamp(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for path in (self.key_file, self.history_file):
            try:
                st = path.stat()
                stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((0, 0, 0))
        return tuple(stamps)

    def key_watch(self) -> Callable[[], tuple[Signer, KeyHistory] | None]:
        """For :class:`Log`: a new (signer, history) when the key files changed, else None.

        Two ``stat`` calls per checkpoint; a half-finished rotation (key and history not yet
        agreeing) reads as no change, and is looked at again before the next checkpoint.
        """
        seen = [self._key_stamp()]

        def check() -> tuple[Signer, KeyHistory] | None:
            stamp = self._key_stamp()
            if stamp == seen[0]:
                return None
            try:
                signer = self.signer()
                history = self.key_history(signer)
            except ConfigError:
                return None
            seen[0] = stamp
            return signer, history

        return check

    def local_tsa(self) -> LocalTSA:
        return LocalTSA.load(self.tsa_dir)

    def tsa_roots(self, extra: Iterable[x509.Certificate] = ()) -> tuple[x509.Certificate, ...]:
        """The TSA roots this home trusts: its local TSA's own root (for the local stamps, kept
        even after ``local`` leaves the TSA list), then ``RLHF_AUDIT_TSA_ROOTS``, then ``extra``."""
        root = self.tsa_dir / "root.pem"
        local = load_tsa_roots([root], "the local TSA's root") if root.exists() else ()
        return local + tsa_roots_from_env() + tuple(extra)

    def public_keys(self) -> dict[str, Any]:
        """The home's :func:`public_keys`, without opening the database."""
        settings = self.settings()
        local = any(u.split(":")[0] == "local" for u in settings.tsa_urls)
        signer = self.signer()
        return public_keys(settings.origin, signer.verifier, self.local_tsa() if local else None,
                           self.key_history(signer))

    def timestamp_authorities(self, settings: Settings | None = None) -> list[TimestampAuthority]:
        settings = settings or self.settings()
        return [tsa_from_url(u, local_dir=self.tsa_dir) for u in settings.tsa_urls]

    def engine(self, settings: Settings | None = None) -> AsyncEngine:
        """An engine on the configured database, for a caller that owns it and builds the log
        over it (:meth:`open_log`). The home is made owner-only first; so is a SQLite database."""
        from .storage import open_engine

        settings = settings or self.settings()
        _owner_only(self.path)
        return open_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)

    def store(self, settings: Settings | None = None) -> Store:
        """The database (the home's ``ledger.db`` unless configured otherwise). The home is made
        owner-only first; so is a SQLite database, by the Store."""
        settings = settings or self.settings()
        _owner_only(self.path)
        return Store(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)

    async def open_log(self, *, engine: AsyncEngine | None = None) -> Log:
        """Open the log this home describes, over ``engine`` (:func:`ledger.storage.open_engine`,
        owned by the caller) or over an engine of its own on the configured database. The schema
        must exist: the ledger never migrates (the product does, ``rlhf-audit init``)."""
        settings = self.settings()
        watch = self.key_watch()  # before reading the key: a rotation meanwhile is seen
        signer = self.signer()
        if signer.name != settings.origin:
            raise ConfigError(
                f"the log key is named {signer.name!r} but the origin is {settings.origin!r}"
            )
        history = self.key_history(signer)
        store = self.store(settings) if engine is None else Store(engine)
        try:
            await store.check_schema()
            tsas = self.timestamp_authorities(settings)
        except BaseException:
            await store.close()
            raise
        return Log(store, signer, tsas=tsas, interval=settings.integration_interval,
                   key_history=history, rekey=watch)

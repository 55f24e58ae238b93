"""The log's home directory: settings, the log key and the built-in TSA.

Layout (created by ``init``, owner-only)::

    <home>/config.toml     origin, TSA URLs, integration interval (env vars override)
    <home>/log.key         the Ed25519 signer key, C2SP PRIVATE+KEY string (0600)
    <home>/log.vkey        its public verifier key
    <home>/tsa/            the local TSA's root and TSA certificates and keys (0600)
    <home>/ledger.db       the SQLite database (unless RLHF_AUDIT_DATABASE_URL says otherwise)
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ._internal.local_tsa import LocalTSA
from ._internal.store import Store
from .errors import ConfigError, NoteError
from .log import Log
from .note import Signer, Verifier
from .timestamping import TimestampAuthority, tsa_from_url

__all__ = ["LogHome", "Settings", "public_keys"]

ENV_HOME = "RLHF_AUDIT_HOME"
ENV_DATABASE = "RLHF_AUDIT_DATABASE_URL"
ENV_TSA = "RLHF_AUDIT_TSA_URLS"
ENV_INTERVAL = "RLHF_AUDIT_INTEGRATION_INTERVAL"
ENV_SYNC = "RLHF_AUDIT_SQLITE_SYNCHRONOUS"


@dataclass(frozen=True)
class Settings:
    origin: str
    database_url: str
    tsa_urls: tuple[str, ...]
    integration_interval: float
    sqlite_synchronous: str


def _write_private(path: Path, data: bytes) -> None:
    """Create a file readable by its owner only; never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _toml_value(value: object) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def public_keys(origin: str, verifier: Verifier, local_tsa: LocalTSA | None) -> dict[str, str]:
    """What an auditor needs to check the log offline: its origin, its note verifier key and the
    local TSA's certificate chain (PEM, TSA certificate then root; empty without a local TSA).

    One shape for ``rlhf-audit public-keys`` and ``GET /log/v1/keys``: scripts read either.
    """
    chain = local_tsa.chain_pem().decode() if local_tsa is not None else ""
    return {"origin": origin, "log_vkey": verifier.vkey, "tsa_certificates": chain}


class LogHome:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> LogHome:
        """``--home``, else $RLHF_AUDIT_HOME, else the per-user data directory."""
        chosen = home or os.environ.get(ENV_HOME) or platformdirs.user_data_dir("rlhf-audit")
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

    def exists(self) -> bool:
        return self.config_file.exists() and self.key_file.exists()

    def init(self, origin: str | None = None) -> Signer:
        """Create whatever is missing; never replace an existing key or setting."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
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

    def local_tsa(self) -> LocalTSA:
        return LocalTSA.load(self.tsa_dir)

    def public_keys(self) -> dict[str, str]:
        """The home's :func:`public_keys`, without opening the database."""
        settings = self.settings()
        local = any(u.split(":")[0] == "local" for u in settings.tsa_urls)
        return public_keys(settings.origin, self.signer().verifier, self.local_tsa() if local else None)

    def timestamp_authorities(self, settings: Settings | None = None) -> list[TimestampAuthority]:
        settings = settings or self.settings()
        return [tsa_from_url(u, local_dir=self.tsa_dir) for u in settings.tsa_urls]

    def store(self, settings: Settings | None = None) -> Store:
        settings = settings or self.settings()
        return Store(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)

    async def open_log(self, *, migrate: bool = False) -> Log:
        """Open the log this home describes (``migrate`` brings the schema up to date)."""
        settings = self.settings()
        signer = self.signer()
        if signer.name != settings.origin:
            raise ConfigError(
                f"the log key is named {signer.name!r} but the origin is {settings.origin!r}"
            )
        store = self.store(settings)
        try:
            if migrate:
                await store.migrate()
            else:
                await store.check_schema()
            tsas = self.timestamp_authorities(settings)
        except BaseException:
            await store.close()
            raise
        return Log(store, signer, tsas=tsas, interval=settings.integration_interval)

"""The application's settings: one frozen :class:`Settings`, built once per process from one rule.

    CLI flag  >  environment variable  >  the home's ``config.toml``  >  default

An empty value counts as not given (``RLHF_AUDIT_REDIS_URL=`` is unset). :data:`SETTINGS` lists
each setting once: its environment variable, its ``config.toml`` key (top level, beside the
ledger's ``origin`` and ``tsa_urls``), its flag where a command has one, and its default;
``docs/operations.md`` shows the same table. Build it at the edge and pass it in: the CLI's
:func:`~app.core.commands.settings_of` (once per process), ``create_app(settings=...)`` (kept on
``app.state.app_settings`` for the lifespans and middleware), ``rlhf-audit worker`` (in the
worker's context); the keyring, the object store and the token check take it as an argument, and
a caller that holds none (a test, library use) builds ``Settings.load(home)`` itself. Two
settings have no ``config.toml`` key: the S3 secret key (a secret stays out of the home's files,
which backups copy) and ``debug`` (read where errors are reported, before any settings exist).

The ledger's own settings (home, database URL, origin, TSAs, integration interval, SQLite
synchronous mode) are read by the ledger (:class:`ledger.home.Settings`), by the same rule.

The run-time table (:mod:`app.config.runtime`, ``server_settings``) is a separate layer for what
an admin may change while the server runs: a setting marked ``live`` starts from the value built
here and, once changed there, the stored value overrides it in every process sharing the
database, except ``alert_webhook``, which a variable or ``config.toml`` pins (tested: an operator's
deployment decides where alerts go).

Light on purpose (no SQLAlchemy, no ledger storage): commands import it on use.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Misconfigured

__all__ = ["ENV_DEBUG", "SETTINGS", "Setting", "Settings", "debugging"]

ENV_DEBUG = "RLHF_AUDIT_DEBUG"
_YES, _NO = ("1", "true", "yes"), ("0", "false", "no")


def _text(name: str, raw: Any) -> str:
    return str(raw)


def _path(name: str, raw: Any) -> Path:
    return Path(str(raw)).expanduser()


def _strict_flag(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value not in _YES + _NO:
        raise Misconfigured(f"{name} must be 1/true/yes or 0/false/no, not {value!r}")
    return value in _YES


def _loose_flag(name: str, raw: Any) -> bool:
    """On for 1/true/yes, off for anything else (as these two settings have always been read)."""
    return raw is True or str(raw) in _YES


def _seconds(name: str, raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise Misconfigured(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise Misconfigured(f"{name} must not be negative, not {raw}")
    return value


def _retention(name: str, raw: Any) -> int:
    low, high = 183, 36500  # EU AI Act Art. 19(1): at least six months (app.objects checks it too)
    try:
        days = int(str(raw).strip())
    except ValueError:
        raise Misconfigured(f"{name} must be a whole number of days, not {raw!r}") from None
    if not low <= days <= high:
        raise Misconfigured(f"{name}={days}: object-lock retention must be {low} to {high} days "
                            "(EU AI Act Art. 19 asks for at least six months)")
    return days


def _addresses(name: str, raw: Any) -> tuple[str, ...]:
    """IP addresses or networks, as uvicorn's ``forwarded_allow_ips`` takes them."""
    import ipaddress

    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    addresses = tuple(p for p in (str(i).strip() for i in items) if p)
    for p in addresses:
        try:  # uvicorn would take anything else as a name, silently
            ipaddress.ip_network(p) if "/" in p else ipaddress.ip_address(p)
        except ValueError:
            raise Misconfigured(f"{name}: {p!r} is not an IP address or network (e.g. 10.0.0.5, "
                                "172.16.0.0/12)") from None
    return addresses


@dataclass(frozen=True)
class Setting:
    """One setting: where it may come from, its default, and whether it may change live."""

    name: str
    env: str
    default: Any
    parse: Callable[[str, Any], Any]
    what: str
    flag: str | None = None
    live: str | None = None  # the run-time table's key, when an admin may change it live
    in_file: bool = True  # read from config.toml too (False: only from a flag or the environment)

    @property
    def key(self) -> str | None:
        """Its ``config.toml`` key, if it has one."""
        return self.name if self.in_file else None


SETTINGS: tuple[Setting, ...] = (
    Setting("redis_url", "RLHF_AUDIT_REDIS_URL", None, _text,
            "Redis: the job queue, the portal's sessions, the compliance cron (unset: local worker)"),
    Setting("queue", "RLHF_AUDIT_QUEUE", "rlhf-audit:jobs", _text, "ARQ queue name"),
    Setting("keys_dir", "RLHF_AUDIT_KEYS_DIR", None, _path, "off-log keys (unset: <home>/keys)"),
    Setting("objects_dir", "RLHF_AUDIT_OBJECTS_DIR", None, _path,
            "the file object store without S3 (unset: <home>/objects)"),
    Setting("s3_endpoint", "RLHF_AUDIT_S3_ENDPOINT", None, _text, "S3 API host:port (unset: files)"),
    Setting("s3_bucket", "RLHF_AUDIT_S3_BUCKET", None, _text, "the object-locked bucket"),
    Setting("s3_access_key", "RLHF_AUDIT_S3_ACCESS_KEY", None, _text, "S3 access key"),
    Setting("s3_secret_key", "RLHF_AUDIT_S3_SECRET_KEY", None, _text, "S3 secret key",
            in_file=False),  # a secret stays out of the home's files (backups copy config.toml)
    Setting("s3_secure", "RLHF_AUDIT_S3_SECURE", True, _strict_flag, "HTTPS to the S3 endpoint"),
    Setting("s3_retention_days", "RLHF_AUDIT_S3_RETENTION_DAYS", 183, _retention,
            "COMPLIANCE-mode retention of every stored object, 183 to 36500 days"),
    Setting("s3_allow_unlocked", "RLHF_AUDIT_S3_ALLOW_UNLOCKED", False, _strict_flag,
            "accept a bucket without object lock (development only)"),
    Setting("trusted_proxies", "RLHF_AUDIT_TRUSTED_PROXIES", (), _addresses,
            "reverse proxies whose forwarded headers `serve` believes", flag="--trusted-proxies"),
    Setting("secure_cookies", "RLHF_AUDIT_SECURE_COOKIES", False, _loose_flag,
            "the session and CSRF cookies get Secure"),
    Setting("compliance_interval", "RLHF_AUDIT_COMPLIANCE_INTERVAL", 3600.0, _seconds,
            "seconds between the server's own compliance checks without Redis; 0 disables"),
    Setting("retention_days", "RLHF_AUDIT_RETENTION_DAYS", 3650.0, _seconds,
            "the log retention the compliance check assumes"),
    Setting("timestamp_tolerance", "RLHF_AUDIT_TIMESTAMP_TOLERANCE", 3600.0, _seconds,
            "seconds a checkpoint may wait for its timestamp"),
    Setting("alert_webhook", "RLHF_AUDIT_ALERT_WEBHOOK", None, _text,
            "http(s) URL compliance alerts are POSTed to", live="alert_webhook_url"),
    Setting("token_cache_seconds", "RLHF_AUDIT_TOKEN_CACHE_SECONDS", 2.0, _seconds,
            "seconds a verified API token is trusted before it is looked up again"),
    Setting("debug", ENV_DEBUG, False, lambda _n, raw: str(raw) == "1" or raw is True,
            "CLI errors show a traceback", in_file=False),
)


def _given(value: Any) -> bool:
    return value is not None and value != "" and value != ()


def _config(home: str | os.PathLike[str] | None, env: Mapping[str, str]) -> dict[str, Any]:
    """The home's ``config.toml`` (none yet: empty). The home as ``LogHome.resolve`` finds it."""
    if home is None and not env.get("RLHF_AUDIT_HOME"):
        import platformdirs

        home = platformdirs.user_data_dir("rlhf-audit")
    path = Path(home or env["RLHF_AUDIT_HOME"]).expanduser() / "config.toml"
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise Misconfigured(f"cannot read {path}: {e}") from e


@dataclass(frozen=True)
class Settings:
    """The application's settings for this process (see the module's docstring for the rule)."""

    redis_url: str | None = None
    queue: str = "rlhf-audit:jobs"
    keys_dir: Path | None = None
    objects_dir: Path | None = None
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_secure: bool = True
    s3_retention_days: int = 183
    s3_allow_unlocked: bool = False
    trusted_proxies: tuple[str, ...] = ()
    secure_cookies: bool = False
    compliance_interval: float = 3600.0
    retention_days: float = 3650.0
    timestamp_tolerance: float = 3600.0
    alert_webhook: str | None = None
    token_cache_seconds: float = 2.0
    debug: bool = False

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None, flags: Mapping[str, Any] | None = None,
             env: Mapping[str, str] | None = None, config: Mapping[str, Any] | None = None) -> Settings:
        """Each setting from the first layer that gives it: ``flags`` (by name; ``None`` is not
        given), ``env`` (default: the process's), ``config`` (default: ``<home>/config.toml``,
        ``home`` as ``--home`` names it), then its default."""
        flags = flags or {}
        env = os.environ if env is None else env
        config = _config(home, env) if config is None else config
        values: dict[str, Any] = {}
        for s in SETTINGS:
            layers = ((flags.get(s.name), s.flag or s.name), (env.get(s.env, "").strip(), s.env),
                      (config.get(s.key) if s.key else None, f"{s.key} in config.toml"))
            raw, where = next(((v, w) for v, w in layers if _given(v)), (None, ""))
            values[s.name] = s.default if raw is None else s.parse(where, raw)
        return cls(**values)


def debugging(env: Mapping[str, str] | None = None) -> bool:
    """``RLHF_AUDIT_DEBUG=1``: read where errors are reported, before any settings exist."""
    return (os.environ if env is None else env).get(ENV_DEBUG) == "1"

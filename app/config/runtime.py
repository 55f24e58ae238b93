"""Run-time configuration: settings an admin changes while the server runs, each change an event.

The start-up layers (flag > environment > ``config.toml`` > default: ``app.core.settings`` and
``ledger.home``) set how the server starts; the settings here are the separate layer above them:
they live in the ``server_settings`` table (JSON values) and override the start-up value once
changed (except ``alert_webhook_url``, which ``RLHF_AUDIT_ALERT_WEBHOOK`` pins when set), so every
server process sharing the database agrees. A change is validated, stored, applied to the running
app at once, and recorded as ``config.changed`` {``key``, ``from``, ``to``} (``docs/events.md``).

======================================  ===========================================================
``tsa_urls``                            RFC 3161 TSAs: ``local`` or http(s) URLs (applied to the Log)
``integration_interval``                seconds between integrations, 0 < x <= 60 (``Log.interval``)
``alert_webhook_url``                   http(s) URL alerts are POSTed to, or null
``session_idle_seconds``                a portal session ends after this long unused
``session_max_seconds``                 ... and this long after sign-in, used or not
``write_requests_per_minute``           per token or session, on POST/PUT/PATCH/DELETE (``app.auth``)
``login_failures_per_minute``           per account name and client address, then 429
``account_login_failures_per_minute``   per account name from all addresses, then 429
======================================  ===========================================================

:class:`RuntimeSettings` is the cached view on ``app.state.settings`` that request handlers read
without a query; :func:`load` refreshes it from the table (at startup, then every few seconds
under :func:`kept_fresh`, so a change made through one server process reaches the others),
:func:`change` writes through it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa

from ledger import log as ledger_log
from ledger.errors import ConfigError
from ledger.log import Log
from ledger.timestamping import LocalTSAClient, TimestampAuthority, tsa_from_url

from ..core.background import every as periodically
from ..core.database import Database
from ..core.errors import Invalid
from ..events.recording import Actor, record

__all__ = ["SETTINGS", "RuntimeSettings", "SettingError", "change", "check", "kept_fresh", "load",
           "server_settings", "settings_of"]

metadata = sa.MetaData()
server_settings = sa.Table(
    "server_settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class SettingError(Invalid):
    """An unknown setting or a value it does not accept (a 400 on the API)."""


def _url(value: Any, what: str = "it") -> str:
    if not isinstance(value, str):
        raise SettingError(f"{what} must be a string URL")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or len(value) > 2000:
        raise SettingError(f"{what} must be an http:// or https:// URL, not {value!r}")
    return value


def _tsa_urls(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 10:
        raise SettingError("must be a list of at most 10 TSAs ('local' or http(s) URLs)")
    out = []
    for i, url in enumerate(value):
        if isinstance(url, str) and url.strip().lower() in ("local", "local:"):
            out.append("local")
        else:
            out.append(_url(url, f"entry {i}"))
    if len(set(out)) != len(out):
        raise SettingError("lists a TSA twice")
    return out


def _number(low: float, high: float, *, integer: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SettingError("must be a number")
        if integer and value != int(value):
            raise SettingError("must be a whole number")
        if not low < value <= high:
            raise SettingError(f"must be more than {low:g} and at most {high:g}")
        return int(value) if integer else float(value)
    return check


def _optional_url(value: Any) -> str | None:
    return None if value is None else _url(value)


@dataclass(frozen=True)
class Setting:
    key: str
    check: Callable[[Any], Any]
    default: Any  # None for tsa_urls/integration_interval: the running log's own
    description: str


SETTINGS: dict[str, Setting] = {s.key: s for s in [
    Setting("tsa_urls", _tsa_urls, None, "RFC 3161 TSAs timestamping checkpoints: 'local' or http(s) URLs"),
    Setting("integration_interval", _number(0, 60), None, "seconds between integrations (0 < x <= 60)"),
    Setting("alert_webhook_url", _optional_url, None, "http(s) URL alerts are POSTed to, or null"),
    Setting("session_idle_seconds", _number(0, 7 * 86400, integer=True), 1800,
            "a portal session ends after this many seconds unused"),
    Setting("session_max_seconds", _number(0, 30 * 86400, integer=True), 12 * 3600,
            "a portal session ends this many seconds after sign-in"),
    Setting("write_requests_per_minute", _number(0, 10_000_000, integer=True), 120_000,
            "state-changing API requests per minute per token or session"),
    Setting("login_failures_per_minute", _number(0, 1000, integer=True), 5,
            "failed sign-ins per minute per account name and address before 429"),
    # Higher than the per-address limit, so that one address alone cannot hold an account up.
    Setting("account_login_failures_per_minute", _number(0, 1000, integer=True), 20,
            "failed sign-ins per minute per account name, from any address, before 429"),
]}


def _tsa_name(tsa: TimestampAuthority) -> str:
    return "local" if isinstance(tsa, LocalTSAClient) else tsa.name


class RuntimeSettings:
    """The current values, stored in ``db``; the ``log`` settings are read from (and applied to)
    the running Log."""

    def __init__(self, db: Database, log: Log, tsa_dir: Path | None = None) -> None:
        self.db = db
        self.log = log
        self.tsa_dir = tsa_dir  # where a 'local' TSA's keys live, when the app has a home
        self.values: dict[str, Any] = {k: s.default for k, s in SETTINGS.items()}

    def __getitem__(self, key: str) -> Any:
        if key == "tsa_urls":
            return [_tsa_name(t) for t in self.log.tsas]
        if key == "integration_interval":
            return self.log.interval
        return self.values[key]

    def snapshot(self) -> dict[str, Any]:
        return {k: self[k] for k in SETTINGS}

    def _tsas(self, urls: list[str]) -> list[TimestampAuthority]:
        current = {_tsa_name(t): t for t in self.log.tsas}
        try:
            return [current.get(u) or tsa_from_url(u, local_dir=self.tsa_dir) for u in urls]
        except ConfigError as e:
            raise SettingError(f"tsa_urls: {e}") from None  # e.g. 'local' where no local TSA exists

    def apply(self, key: str, value: Any) -> None:
        """Make ``value`` current (already checked)."""
        if key == "tsa_urls":
            tsas = self._tsas(value)
            # The Log keeps a retry backoff per TSA name; a new TSA starts with a fresh one.
            # (the Log has no setter for its TSAs; this is the one place reaching inside it)
            for tsa in tsas:
                self.log._backoff.setdefault(tsa.name, ledger_log._Backoff())
            self.log.tsas = tsas
        elif key == "integration_interval":
            self.log.interval = value
        else:
            self.values[key] = value


def settings_of(state: Any) -> RuntimeSettings:
    """The server's settings, from the app's ``state`` (a Litestar dependency: ``settings``)."""
    settings: RuntimeSettings = state.settings
    return settings


async def _rows(db: Database) -> dict[str, Any]:
    async with db.connect("reading settings") as conn:
        rows = (await conn.execute(sa.select(server_settings))).all()
    return {r.key: orjson.loads(r.value) for r in rows if r.key in SETTINGS}


async def load(settings: RuntimeSettings) -> None:
    """Apply the stored values (at startup, and whenever another process may have changed them)."""
    for key, value in (await _rows(settings.db)).items():
        try:
            settings.apply(key, SETTINGS[key].check(value))
        except SettingError:
            continue  # a value this build refuses stays stored but unused; the default holds


def check(key: str, value: Any) -> Any:
    """``value`` as ``key`` stores it, or a SettingError naming the key."""
    spec = SETTINGS.get(key)
    if spec is None:
        raise SettingError(f"unknown setting {key!r}: choose from {', '.join(SETTINGS)}")
    try:
        return spec.check(value)
    except SettingError as e:
        raise SettingError(f"{key}: {e}") from None


async def change(settings: RuntimeSettings, key: str, value: Any, *, by: Actor) -> bool:
    """Validate, store, apply and record one change; False when ``value`` is already current."""
    value = check(key, value)
    before = settings[key]
    if before == value:
        return False
    if key == "tsa_urls":
        settings._tsas(value)  # fail before storing when a TSA cannot be built
    now = datetime.now(UTC)
    encoded = orjson.dumps(value).decode()
    table = server_settings
    async with settings.db.transaction("storing a setting") as conn:
        updated = await conn.execute(sa.update(table).where(table.c.key == key)
                                     .values(value=encoded, updated_at=now))
        if not updated.rowcount:
            await conn.execute(sa.insert(table).values(key=key, value=encoded, updated_at=now))
    settings.apply(key, value)
    await record(settings.log, "config.changed", by, key=key, **{"from": before, "to": value})
    return True


@contextlib.asynccontextmanager
async def kept_fresh(settings: RuntimeSettings, every: float = 5.0) -> AsyncIterator[RuntimeSettings]:
    """Reload the stored settings every ``every`` seconds while the server runs (a failed reload
    keeps the values we have: the database is away for a moment)."""
    async with periodically(every, lambda: load(settings), name="settings reload", first_delay=every):
        yield settings

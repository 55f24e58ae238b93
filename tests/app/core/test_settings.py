"""One precedence rule for the settings (issue #14): CLI flag > environment > config.toml > default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.core.settings import SETTINGS, Settings
from ledger.errors import ConfigError
from ledger.home import LogHome


def _home(tmp_path: Path, toml: str) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(toml)
    return home


def test_each_layer_wins_over_the_next(tmp_path: Path) -> None:
    home = _home(tmp_path, 'queue = "from-file"\ncompliance_interval = 60\nredis_url = "redis://file"\n'
                           'trusted_proxies = ["10.0.0.1"]\n')
    env = {"RLHF_AUDIT_QUEUE": "from-env", "RLHF_AUDIT_COMPLIANCE_INTERVAL": "30",
           "RLHF_AUDIT_TRUSTED_PROXIES": "10.0.0.2, 10.0.0.3"}
    settings = Settings.load(home, {"trusted_proxies": ("10.0.0.9",)}, env=env)
    assert settings.trusted_proxies == ("10.0.0.9",)  # flag > environment
    assert settings.queue == "from-env"  # environment > config.toml
    assert settings.compliance_interval == 30.0
    assert settings.redis_url == "redis://file"  # config.toml > default
    assert settings.timestamp_tolerance == 3600.0  # the default
    without_flag = Settings.load(home, {"trusted_proxies": None}, env=env)
    assert without_flag.trusted_proxies == ("10.0.0.2", "10.0.0.3")
    assert Settings.load(home, env={}).trusted_proxies == ("10.0.0.1",)


def test_an_empty_value_is_not_given(tmp_path: Path) -> None:
    home = _home(tmp_path, 'queue = "from-file"\n')
    assert Settings.load(home, {"queue": ""}, env={"RLHF_AUDIT_QUEUE": ""}).queue == "from-file"


def test_defaults_without_a_home_or_environment(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "not-yet", env={})
    assert settings == Settings()
    assert (settings.redis_url, settings.queue, settings.s3_secure, settings.debug) == (
        None, "rlhf-audit:jobs", True, False)


def test_the_table_and_the_dataclass_list_the_same_settings() -> None:
    assert [f.name for f in dataclasses.fields(Settings)] == [s.name for s in SETTINGS]
    assert all(s.env.startswith("RLHF_AUDIT_") for s in SETTINGS)
    assert {s.name: s.default for s in SETTINGS} == dataclasses.asdict(Settings())


def test_a_bad_value_names_where_it_came_from(tmp_path: Path) -> None:
    home = _home(tmp_path, "compliance_interval = -5\n")
    with pytest.raises(ConfigError, match="compliance_interval in config.toml"):
        Settings.load(home, env={})
    with pytest.raises(ConfigError, match="RLHF_AUDIT_S3_SECURE"):
        Settings.load(home, env={"RLHF_AUDIT_S3_SECURE": "maybe", "RLHF_AUDIT_COMPLIANCE_INTERVAL": "5"})
    with pytest.raises(ConfigError, match="RLHF_AUDIT_S3_RETENTION_DAYS=30"):
        Settings.load(home, env={"RLHF_AUDIT_S3_RETENTION_DAYS": "30", "RLHF_AUDIT_COMPLIANCE_INTERVAL": "5"})


def test_proxies_from_the_file_are_checked_as_the_flag_is(tmp_path: Path) -> None:
    home = _home(tmp_path, 'trusted_proxies = ["10.0.0.0/8", "proxy.example"]\n')
    with pytest.raises(ConfigError, match="trusted_proxies in config.toml: 'proxy.example' is not an IP"):
        Settings.load(home, env={})


def test_settings_without_a_file_key_ignore_the_file(tmp_path: Path) -> None:
    home = _home(tmp_path, 's3_endpoint = "minio:9000"\n')
    assert Settings.load(home, env={}).s3_endpoint is None
    assert {s.name for s in SETTINGS if s.key is None} >= {"s3_endpoint", "keys_dir", "debug"}


def test_the_ledger_follows_the_same_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's own settings: environment > config.toml > default; --home > $RLHF_AUDIT_HOME."""
    home = _home(tmp_path, 'origin = "x.example/log"\ntsa_urls = ["local"]\nintegration_interval = 2\n')
    for name in ("RLHF_AUDIT_TSA_URLS", "RLHF_AUDIT_INTEGRATION_INTERVAL", "RLHF_AUDIT_DATABASE_URL",
                 "RLHF_AUDIT_SQLITE_SYNCHRONOUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RLHF_AUDIT_HOME", str(tmp_path / "elsewhere"))
    assert LogHome.resolve(home).path == home.resolve()  # flag > environment
    assert LogHome.resolve(None).path == (tmp_path / "elsewhere").resolve()
    ledger = LogHome(home).settings()
    assert (ledger.integration_interval, ledger.tsa_urls, ledger.sqlite_synchronous) == (
        2.0, ("local",), "FULL")
    monkeypatch.setenv("RLHF_AUDIT_INTEGRATION_INTERVAL", "0.25")
    monkeypatch.setenv("RLHF_AUDIT_TSA_URLS", "https://tsa.example")
    ledger = LogHome(home).settings()
    assert (ledger.integration_interval, ledger.tsa_urls) == (0.25, ("https://tsa.example",))


def test_the_app_is_handed_its_settings(tmp_path: Path) -> None:
    """``create_app`` keeps the settings it is given for its lifespans and middleware."""
    from app.server.core import create_app

    settings = Settings(secure_cookies=True, compliance_interval=0.0)
    app = create_app(LogHome(tmp_path / "home"), settings=settings)
    assert app.state.app_settings is settings

"""One precedence rule for the settings (issue #14): CLI flag > environment > config.toml > default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.core.errors import Misconfigured
from app.core.settings import SETTINGS, Settings
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
    with pytest.raises(Misconfigured, match="compliance_interval in config.toml"):
        Settings.load(home, env={})
    with pytest.raises(Misconfigured, match="RLHF_AUDIT_S3_SECURE"):
        Settings.load(home, env={"RLHF_AUDIT_S3_SECURE": "maybe", "RLHF_AUDIT_COMPLIANCE_INTERVAL": "5"})
    with pytest.raises(Misconfigured, match="RLHF_AUDIT_S3_RETENTION_DAYS=30"):
        Settings.load(home, env={"RLHF_AUDIT_S3_RETENTION_DAYS": "30", "RLHF_AUDIT_COMPLIANCE_INTERVAL": "5"})


def test_proxies_from_the_file_are_checked_as_the_flag_is(tmp_path: Path) -> None:
    home = _home(tmp_path, 'trusted_proxies = ["10.0.0.0/8", "proxy.example"]\n')
    with pytest.raises(Misconfigured, match="trusted_proxies in config.toml: 'proxy.example' is not an IP"):
        Settings.load(home, env={})


def test_settings_without_a_file_key_ignore_the_file(tmp_path: Path) -> None:
    home = _home(tmp_path, 's3_secret_key = "in-a-backed-up-file"\ndebug = true\n')
    assert Settings.load(home, env={}).s3_secret_key is None
    assert Settings.load(home, env={}).debug is False
    assert {s.name for s in SETTINGS if s.key is None} == {"s3_secret_key", "debug"}


# The settings the keyring, the object store, the token check and the worker take from Settings
# (they read their variables themselves before): (name, config.toml line, environment value,
# what the environment gives, what the file gives, a flag's value).
_MOVED = [
    ("keys_dir", 'keys_dir = "/file/keys"', "/env/keys", Path("/env/keys"), Path("/file/keys"),
     Path("/flag")),
    ("objects_dir", 'objects_dir = "/file/objects"', "/env/objects", Path("/env/objects"),
     Path("/file/objects"), Path("/flag")),
    ("s3_endpoint", 's3_endpoint = "file:9000"', "env:9000", "env:9000", "file:9000", "flag:9000"),
    ("s3_bucket", 's3_bucket = "file-bucket"', "env-bucket", "env-bucket", "file-bucket", "flag-bucket"),
    ("s3_access_key", 's3_access_key = "file-ak"', "env-ak", "env-ak", "file-ak", "flag-ak"),
    ("s3_secure", "s3_secure = false", "yes", True, False, False),
    ("s3_retention_days", "s3_retention_days = 365", "200", 200, 365, 3650),
    ("s3_allow_unlocked", 's3_allow_unlocked = "1"', "0", False, True, True),
    ("token_cache_seconds", "token_cache_seconds = 7", "0", 0.0, 7.0, 1.5),
    ("queue", 'queue = "file-q"', "env-q", "env-q", "file-q", "flag-q"),
    ("redis_url", 'redis_url = "redis://file"', "redis://env", "redis://env", "redis://file", "redis://flag"),
]


@pytest.mark.parametrize(("name", "toml", "raw", "from_env", "from_file", "flag"), _MOVED,
                         ids=[m[0] for m in _MOVED])
def test_a_moved_setting_keeps_the_layer_order(tmp_path: Path, name: str, toml: str, raw: str,
                                              from_env: object, from_file: object, flag: object) -> None:
    [setting] = [s for s in SETTINGS if s.name == name]
    home = _home(tmp_path, toml + "\n")
    env = {setting.env: raw}
    assert getattr(Settings.load(home, {name: flag}, env=env), name) == flag  # flag > environment
    assert getattr(Settings.load(home, env=env), name) == from_env  # environment > config.toml
    assert getattr(Settings.load(home, env={}), name) == from_file  # config.toml > default
    assert getattr(Settings.load(tmp_path / "none", env={}), name) == setting.default


def test_the_secret_key_comes_from_a_flag_or_the_environment(tmp_path: Path) -> None:
    home = _home(tmp_path, 's3_secret_key = "in-the-file"\n')
    env = {"RLHF_AUDIT_S3_SECRET_KEY": "from-env"}
    assert Settings.load(home, {"s3_secret_key": "flag"}, env=env).s3_secret_key == "flag"
    assert Settings.load(home, env=env).s3_secret_key == "from-env"
    assert Settings.load(home, env={}).s3_secret_key is None


def test_the_keyring_and_the_object_store_follow_the_settings(tmp_path: Path) -> None:
    from app.core.keyring import Keyring
    from app.objects import FileStore, S3Store, object_store

    home = _home(tmp_path, f'keys_dir = "{tmp_path / "file-keys"}"\n'
                           f'objects_dir = "{tmp_path / "file-objects"}"\n')
    ledger_home = LogHome(home)
    from_file = Settings.load(home, env={})
    assert Keyring.of(ledger_home, from_file).directory == tmp_path / "file-keys"
    store = object_store(ledger_home, from_file)
    assert isinstance(store, FileStore) and store.root == tmp_path / "file-objects"
    from_env = Settings.load(home, env={"RLHF_AUDIT_KEYS_DIR": str(tmp_path / "env-keys"),
                                        "RLHF_AUDIT_OBJECTS_DIR": str(tmp_path / "env-objects")})
    assert Keyring.of(ledger_home, from_env).directory == tmp_path / "env-keys"
    assert object_store(ledger_home, from_env).root == tmp_path / "env-objects"  # type: ignore[attr-defined]
    assert Keyring.of(ledger_home, Settings()).directory == home / "keys"  # the defaults: the home's
    assert object_store(ledger_home, Settings()).root == home / "objects"  # type: ignore[attr-defined]
    s3 = Settings(s3_endpoint="127.0.0.1:9", s3_bucket="rlhf-bucket", s3_access_key="a")
    with pytest.raises(Misconfigured, match="RLHF_AUDIT_S3_ENDPOINT is set but RLHF_AUDIT_S3_SECRET_KEY"):
        object_store(ledger_home, s3)
    store = object_store(ledger_home, dataclasses.replace(s3, s3_secret_key="s", s3_retention_days=365,
                                                          s3_allow_unlocked=True, s3_secure=False))
    assert isinstance(store, S3Store)
    assert (store.bucket, store.retention_days, store.object_lock) == ("rlhf-bucket", 365, False)


def test_the_worker_takes_the_queue_and_redis_from_the_settings(tmp_path: Path) -> None:
    from app.worker.settings import WorkerSettings, worker_settings

    home = _home(tmp_path, 'queue = "file-q"\nredis_url = "redis://file.example:6390"\n')
    settings = Settings.load(home, env={"RLHF_AUDIT_QUEUE": "env-q"})
    arq = worker_settings(LogHome(home), settings)
    assert arq["queue_name"] == "env-q"
    assert (arq["redis_settings"].host, arq["redis_settings"].port) == ("file.example", 6390)
    assert arq["ctx"]["settings"] is settings and arq["ctx"]["home"].path == LogHome(home).path
    assert arq["functions"] == WorkerSettings.functions and arq["max_jobs"] == 1


def test_the_servers_token_cache_follows_the_environment(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """RLHF_AUDIT_TOKEN_CACHE_SECONDS still sets how long the server trusts a checked token."""
    from app.server.core import create_app

    monkeypatch.setenv("RLHF_AUDIT_TOKEN_CACHE_SECONDS", "0.25")
    app = create_app(LogHome(tmp_path / "home"))
    assert app.state.app_settings.token_cache_seconds == 0.25


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

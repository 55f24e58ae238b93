"""`verify` with an external TSA (OpenSSL's, over HTTP): the trusted TSA roots are one setting
(``RLHF_AUDIT_TSA_ROOTS`` or ``--tsa-root``) that verify honours, the local TSA's own root stays
trusted, and findings of one kind are summarised so that a distinct one is never hidden."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.compliance.config import ComplianceConfig
from app.core.database import migrate_home, open_home
from app.core.settings import Settings
from ledger.errors import ConfigError
from ledger.home import ENV_TSA_ROOTS, ENV_TSA_URLS, LogHome
from tests.support.cli_run import cli, cli_env
from tests.support.entry_rows import sql
from tests.support.openssl_tsa import OpenSSLTSA, openssl_tsa

CHECKPOINTS = 60  # more than the 50 problems verify used to print before it stopped


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSSLTSA]:
    with openssl_tsa(tmp_path_factory.mktemp("openssl-tsa")) as served:
        yield served


@pytest.fixture(scope="module")
def stamped_home(tsa: OpenSSLTSA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose log has CHECKPOINTS checkpoints, each stamped by `local` and by OpenSSL's TSA."""
    home = LogHome(tmp_path_factory.mktemp("home"))
    home.init()

    async def build() -> None:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(ENV_TSA_URLS, f"local,{tsa.url}")
            await migrate_home(home)
            log = await home.open_log()
        try:
            for i in range(CHECKPOINTS):
                await log.append([{"kind": "e", "i": i}])
                await log.integrate()
            assert await log.timestamp_pending(force=True, limit=1000) == []
            # openssl itself accepts the stored external stamp against the CA alone
            note = (await log.checkpoint(CHECKPOINTS)).note
            der = await log.timestamp(CHECKPOINTS, tsa.url)
        finally:
            await log.close()
        (home.path / "cp").write_bytes(note)
        (home.path / "cp.tsr").write_bytes(der)
        ok = subprocess.run(["openssl", "ts", "-verify", "-data", str(home.path / "cp"), "-in",
                             str(home.path / "cp.tsr"), "-CAfile", str(tsa.ca)], capture_output=True,
                            text=True, timeout=30)
        assert "Verification: OK" in ok.stdout, ok.stderr

    asyncio.run(build())
    return home.path


def _env(home: Path, tsa: OpenSSLTSA, roots: str | None = None) -> dict[str, str]:
    env = cli_env(home)
    env[ENV_TSA_URLS] = f"local,{tsa.url}"
    if roots is not None:
        env[ENV_TSA_ROOTS] = roots
    return env


def _fails(proc: subprocess.CompletedProcess[bytes]) -> list[str]:
    return [line for line in proc.stdout.decode().splitlines() if line.startswith("FAIL: ")]


def test_verify_honours_the_configured_roots(stamped_home: Path, tsa: OpenSSLTSA) -> None:
    good = cli(_env(stamped_home, tsa, str(tsa.ca)), "verify", "--no-artefacts")
    out = good.stdout.decode()
    assert "OK: the log is intact" in out, out
    assert f"timestamps checked:  {2 * CHECKPOINTS}" in out, out
    # or named on the command line, for an auditor with the root in hand
    assert b"OK: the log is intact" in cli(_env(stamped_home, tsa), "verify", "--no-artefacts",
                                           "--tsa-root", str(tsa.ca)).stdout


def test_untrusted_tsa_is_one_summarised_finding(stamped_home: Path, tsa: OpenSSLTSA) -> None:
    bad = cli(_env(stamped_home, tsa), "verify", "--no-artefacts", ok=False)
    assert bad.returncode == 1, bad.stderr
    fails = _fails(bad)
    assert len(fails) == 1, fails  # the local stamps still verify against the home's own root
    assert tsa.url in fails[0] and f"at {CHECKPOINTS} checkpoints" in fails[0], fails
    assert "[timestamp-invalid]" in fails[0] and "first sizes 1, 2, 3" in fails[0], fails


def test_distinct_finding_is_not_hidden_behind_noise(stamped_home: Path, tsa: OpenSSLTSA,
                                                     tmp_path: Path) -> None:
    import shutil

    home = tmp_path / "copy"
    shutil.copytree(stamped_home, home)

    async def tamper() -> None:
        log = await LogHome(home).open_log()
        try:
            await log.index_leaves()
            await sql(log, "UPDATE leaf_index SET idx = 59 WHERE idx = 57")
        finally:
            await log.close()

    asyncio.run(tamper())
    bad = cli(_env(home, tsa), "verify", "--no-artefacts", ok=False)
    fails = _fails(bad)
    assert any("[leaf-index]" in f and "entry 57" in f for f in fails), fails
    assert any("[timestamp-invalid]" in f for f in fails), fails


def test_bad_roots_setting_is_a_readable_error(stamped_home: Path, tsa: OpenSSLTSA, tmp_path: Path) -> None:
    missing = cli(_env(stamped_home, tsa, str(tmp_path / "nope.pem")), "verify", "--no-artefacts", ok=False)
    assert missing.returncode == 1
    expected = f"{ENV_TSA_ROOTS}: cannot read certificates from {tmp_path / 'nope.pem'}"
    assert expected.encode() in missing.stderr, missing.stderr


async def test_one_roots_setting_for_verify_and_compliance(
    stamped_home: Path, tsa: OpenSSLTSA, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = LogHome(stamped_home)
    monkeypatch.setenv(ENV_TSA_URLS, f"local,{tsa.url}")
    monkeypatch.setenv(ENV_TSA_ROOTS, str(tsa.ca))
    roots = home.tsa_roots()
    assert [r.subject.rfc4514_string() for r in roots] == [
        home.local_tsa().root_certificate.subject.rfc4514_string(), "CN=Test Root CA"]
    db, log = await open_home(home)
    try:
        config = await ComplianceConfig.load(db, log, Settings.load(home.path))
    finally:
        await log.close()
        await db.close()
    assert set(config.tsa_roots) == set(roots)  # the same setting, read by the same code
    monkeypatch.setenv(ENV_TSA_ROOTS, "/no/such.pem")
    with pytest.raises(ConfigError, match=ENV_TSA_ROOTS):
        home.tsa_roots()

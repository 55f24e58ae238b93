"""Backups taken and restored exactly as docs/operations.md tells operators, then verified.

PostgreSQL: ``pg_dump --format=custom`` of the database plus copies of the home and keys
directories, restored with ``pg_restore`` into a new empty database. SQLite: the online backup
API while another process keeps appending. And what a restore cannot hide: a checkpoint handed
out after the backup was taken (``rlhf-audit verify --checkpoint``).
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from ledger.proofs import ConsistencyProof
from tests.support.cli_run import cli, cli_env
from tests.support.postgres import PG_ADMIN_URL

ORIGIN = "backup.example/log"


def _append(env: dict[str, str], kind: str, n: int) -> None:
    cli(env, "append", input=b"".join(b'{"kind":"%s","i":%d}\n' % (kind.encode(), i) for i in range(n)))


def _root(note: bytes) -> bytes:
    return base64.b64decode(note.split(b"\n")[2])


def _size(env: dict[str, str]) -> int:
    return int(json.loads(cli(env, "status").stdout)["tree_size"])


def _copy_home(src: Path, dst: Path) -> None:
    """The file backup of the home (config, log key, TSA, keys): copied, database left out."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("ledger.db*"))


def test_postgresql_dump_restores_into_a_new_database(pg_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", pg_url)
    cli(env, "init", "--origin", ORIGIN)
    for batch in range(3):  # several checkpoints, each timestamped by the local TSA
        _append(env, f"batch{batch}", 5)
    cli(env, "users", "create", "alice", "--role", "auditor", "--password-stdin",
        input=b"correct horse battery\n")  # app tables: accounts, and the keys directory
    cli(env, "tokens", "create", "alice")
    backed_up_note = cli(env, "checkpoint").stdout
    backed_up_size = _size(env)

    # the backup, as the guide says: pg_dump, then the home and keys directories as files
    dump = tmp_path / "backup" / "rlhf.dump"
    dump.parent.mkdir()
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", pg_url], check=True)
    _copy_home(tmp_path / "home", tmp_path / "backup" / "home")

    # the original goes on and hands out a newer checkpoint, which an auditor keeps
    _append(env, "after-backup", 4)
    kept = tmp_path / "kept-checkpoint.txt"
    kept.write_bytes(cli(env, "checkpoint").stdout)
    kept_size = _size(env)

    name = f"rlhf_restore_{secrets.token_hex(6)}"
    restored_url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    subprocess.run(["createdb", "--host=127.0.0.1", "--username=postgres", name], check=True)
    try:
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={restored_url}", str(dump)], check=True)
        _copy_home(tmp_path / "backup" / "home", tmp_path / "restored")
        renv = cli_env(tmp_path / "restored", restored_url)

        assert b"OK: the log is intact" in cli(renv, "verify").stdout
        assert _size(renv) == backed_up_size
        with psycopg.connect(restored_url) as conn:
            assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (1,)
            assert conn.execute("SELECT count(*) FROM api_tokens").fetchone() == (1,)
        # the checkpoint of the backup is still held; the newer one kept by an auditor is not
        old = tmp_path / "old-checkpoint.txt"
        old.write_bytes(backed_up_note)
        assert b"kept checkpoints:    1 of 1" in cli(renv, "verify", "--checkpoint", str(old)).stdout
        out = cli(renv, "verify", "--checkpoint", str(kept), ok=False).stdout.decode()
        assert f"kept checkpoint 1 (size {kept_size}) is beyond the stored tree" in out

        # the restored log keeps working, consistent with what it had signed before
        _append(renv, "after-restore", 6)
        new_note = cli(renv, "checkpoint").stdout
        new_size = _size(renv)
        proof = json.loads(cli(renv, "proof", "consistency", str(backed_up_size), str(new_size)).stdout)
        ConsistencyProof.from_json(proof).verify(_root(backed_up_note), _root(new_note))
        cli(renv, "users", "create", "bob", "--role", "service")
        assert b"OK: the log is intact" in cli(renv, "verify").stdout
        # now past the kept size, but with other entries: a fork, not the log the auditor saw
        assert new_size >= kept_size
        out = cli(renv, "verify", "--checkpoint", str(kept), ok=False).stdout.decode()
        assert f"kept checkpoint of size {kept_size}: the stored tree at that size has another root" in out
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    # the original, with the kept checkpoint, is fine
    assert b"kept checkpoints:    1 of 1" in cli(env, "verify", "--checkpoint", str(kept)).stdout


WRITER = """
import asyncio, sys
from ledger.home import LogHome

async def main():
    log = await LogHome.resolve(sys.argv[1]).open_log()
    try:
        for i in range(10**6):
            await log.append([{"kind": "busy", "i": i}])
            if i % 7 == 0:
                await log.integrate()
                await log.timestamp_pending(force=True)
            if i == 20:
                print("writing", flush=True)
    finally:
        await log.close()

asyncio.run(main())
"""


def test_sqlite_online_backup_while_a_process_appends(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(home)
    cli(env, "init", "--origin", ORIGIN)
    _append(env, "first", 3)
    cli(env, "users", "create", "carol", "--role", "service")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(home)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"writing\n"
        time.sleep(0.5)
        # what `sqlite3 ledger.db ".backup backup.db"` does: the online backup API
        src = sqlite3.connect(home / "ledger.db")
        dst = sqlite3.connect(tmp_path / "backup.db")
        with dst:
            src.backup(dst, pages=16, sleep=0.001)  # in steps, so the writer goes on meanwhile
        src.close()
        dst.close()
        time.sleep(0.3)
        assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
    finally:
        writer.terminate()
        writer.wait(timeout=30)

    restored = tmp_path / "restored"
    _copy_home(home, restored)
    shutil.copyfile(tmp_path / "backup.db", restored / "ledger.db")
    renv = cli_env(restored)
    report = cli(renv, "verify", ok=None)
    if report.returncode != 0:
        # the backup may catch checkpoints still waiting for their timestamp: the only
        # acceptable complaint, and `integrate --once` fills it in
        problems = [line for line in report.stdout.decode().splitlines() if line.startswith("FAIL: ")]
        assert problems and all("no timestamp from" in p for p in problems), report.stdout.decode()
        cli(renv, "integrate", "--once")
    assert b"OK: the log is intact" in cli(renv, "verify").stdout
    # entries the backup caught sequenced but not yet integrated are durable: integrated next
    before = json.loads(cli(renv, "status").stdout)["sequenced"]
    assert before > 4
    _append(renv, "after-restore", 2)
    assert _size(renv) == before + 2
    assert b"OK: the log is intact" in cli(renv, "verify").stdout

    # the CLI way the guide shows, on the restored copy
    subprocess.run(["sqlite3", str(restored / "ledger.db"), f".backup {tmp_path / 'again.db'}"],
                   check=True)
    again = tmp_path / "again"
    _copy_home(restored, again)
    shutil.copyfile(tmp_path / "again.db", again / "ledger.db")
    assert b"OK: the log is intact" in cli(cli_env(again), "verify").stdout


def test_a_restore_older_than_a_kept_checkpoint_fails_verify_on_sqlite(tmp_path: Path) -> None:
    """The negative on SQLite too: restore a backup older than the checkpoint an auditor kept."""
    home = tmp_path / "home"
    env = cli_env(home)
    cli(env, "init", "--origin", ORIGIN)
    _append(env, "a", 3)
    subprocess.run(["sqlite3", str(home / "ledger.db"), f".backup {tmp_path / 'old.db'}"], check=True)
    _append(env, "b", 3)
    kept = tmp_path / "kept.txt"
    kept.write_bytes(cli(env, "checkpoint").stdout)
    shutil.copyfile(tmp_path / "old.db", home / "ledger.db")
    for leftover in home.glob("ledger.db-*"):  # the WAL of the newer database must not survive
        leftover.unlink()
    assert b"OK: the log is intact" in cli(env, "verify").stdout  # alone, it looks fine
    out = cli(env, "verify", "--checkpoint", str(kept), ok=False).stdout.decode()
    assert "is beyond the stored tree (3)" in out

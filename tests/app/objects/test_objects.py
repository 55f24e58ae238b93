"""The object store: FileStore on disk, and S3Store against a real HTTP S3 server.

The S3 server is moto's ThreadedMotoServer, or a real MinIO when RLHF_AUDIT_TEST_S3_URL is set
(tests/support/s3_server.py): the real ``minio`` client is exercised end to end (requests, signatures,
listing, presigned URLs, object lock, retention, legal hold).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.core.errors import Misconfigured
from app.core.settings import Settings
from app.objects import (
    FileStore,
    ObjectError,
    ObjectMissing,
    ObjectStore,
    ObjectStoreUnavailable,
    S3Store,
    Stored,
    object_store,
)
from ledger.home import LogHome
from tests.support.s3_server import S3Server, _free_port


def _tree(root: Path) -> dict[str, bytes]:
    files = {"config.json": b'{"a": 1}', "model.safetensors": os.urandom(300_000),
             "tokenizer/vocab.json": b"{}", "tokenizer/deep/merges.txt": b"a b\n"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _exercise(store: ObjectStore, tmp_path: Path) -> None:
    """The whole protocol, the same for every implementation."""
    assert isinstance(store, ObjectStore)
    src = tmp_path / "src"
    files = _tree(src)
    stored = store.put_dir("runs/run_x/checkpoint-2", src)
    keys = [s.key for s in stored]
    assert sorted(keys) == sorted(f"runs/run_x/checkpoint-2/{rel}" for rel in files)
    for s in stored:  # the store says what it stored: the hash the log will carry
        rel = s.key.removeprefix("runs/run_x/checkpoint-2/")
        assert s.sha256 == "sha256:" + hashlib.sha256(files[rel]).hexdigest() and s.size == len(files[rel])
        assert store.sha256(s.key) == s.sha256
    assert store.list("runs/run_x/checkpoint-2") == sorted(keys)
    assert store.list("runs/run_x") == sorted(keys)
    assert store.list("runs/run_y") == []
    assert store.list("runs/run_x/checkpoint-20") == []  # a prefix is a directory, not a string prefix
    for rel, data in files.items():
        assert store.read(f"runs/run_x/checkpoint-2/{rel}") == data
    out = store.get("runs/run_x/checkpoint-2/model.safetensors", tmp_path / "one" / "m.bin")
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(files["model.safetensors"]).digest()
    back = tmp_path / "back"
    store.get_dir("runs/run_x/checkpoint-2", back)
    assert {p.relative_to(back).as_posix(): p.read_bytes() for p in back.rglob("*") if p.is_file()} == files
    # overwrite in place; a single file put
    (src / "config.json").write_bytes(b'{"a": 2}')
    one = store.put_file("runs/run_x/checkpoint-2/config.json", src / "config.json")
    assert isinstance(one, Stored) and one.sha256 == "sha256:" + hashlib.sha256(b'{"a": 2}').hexdigest()
    assert store.read("runs/run_x/checkpoint-2/config.json") == b'{"a": 2}'
    assert store.sha256("runs/run_x/checkpoint-2/config.json") == one.sha256
    blob = store.put_bytes("reports/r.json", b"{}\n")
    assert (blob.key, blob.size, store.read("reports/r.json")) == ("reports/r.json", 3, b"{}\n")
    assert blob.sha256 == "sha256:" + hashlib.sha256(b"{}\n").hexdigest()
    assert store.url("runs/run_x/checkpoint-2/config.json")
    with pytest.raises(ObjectMissing):
        store.read("runs/run_x/nothing")
    with pytest.raises(ObjectMissing):
        store.sha256("runs/run_x/nothing")
    with pytest.raises(ObjectMissing):
        store.get_dir("runs/none", tmp_path / "none")
    with pytest.raises(ObjectMissing):
        store.put_file("a/b", tmp_path / "missing")
    for bad in ("", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"):
        with pytest.raises(ObjectError):
            store.put_file(bad, src / "config.json")
    assert store.list("runs/run_x") == sorted(keys)  # nothing stored by the refusals
    store.put_bytes("runs/run_x/checkpoint-2/config.json", b"tampered")  # an overwrite (a new version)
    assert store.sha256("runs/run_x/checkpoint-2/config.json") != one.sha256


def test_file_store(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "objects")
    _exercise(store, tmp_path)
    assert store.url("runs/run_x/checkpoint-2/config.json").startswith("file://")
    assert store.path("runs/run_x/checkpoint-2/config.json").is_file()
    # the refused keys wrote nothing outside the store
    assert not (tmp_path / "x").exists()


def _configured(home: LogHome) -> ObjectStore:
    """The store this environment's settings (and ``home``'s config.toml) choose, as a command builds it."""
    return object_store(home, Settings.load(home.path))


def test_default_store_is_the_homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RLHF_AUDIT_S3_ENDPOINT", "RLHF_AUDIT_OBJECTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    store = _configured(LogHome(tmp_path / "home"))
    assert isinstance(store, FileStore) and store.root == tmp_path / "home" / "objects"
    monkeypatch.setenv("RLHF_AUDIT_OBJECTS_DIR", str(tmp_path / "elsewhere"))
    store = _configured(LogHome(tmp_path / "home"))
    assert isinstance(store, FileStore) and store.root == tmp_path / "elsewhere"
    monkeypatch.setenv("RLHF_AUDIT_S3_ENDPOINT", "127.0.0.1:9")
    with pytest.raises(Misconfigured, match="RLHF_AUDIT_S3_BUCKET"):
        _configured(LogHome(tmp_path / "home"))



def _store(server: S3Server, bucket: str, **kw: object) -> S3Store:
    """A store on the test server; a real MinIO locks for one day only (see tests/support/s3_server.py)."""
    kw.setdefault("retention_days", 1 if server.real else 183)
    return S3Store(server.endpoint, bucket, server.access_key, server.secret_key, secure=server.secure,
                   **kw)  # type: ignore[arg-type]


def _lock_headers(server: S3Server, bucket: str, key: str, version: str | None = None) -> dict[str, str]:
    meta = server.client().stat_object(bucket, key, version_id=version).metadata
    return {k.lower(): v for k, v in meta.items() if k.lower().startswith("x-amz-object-lock-")}


def test_s3_store(tmp_path: Path, s3_server: S3Server) -> None:
    store = _store(s3_server, s3_server.bucket_name("proto"))
    _exercise(store, tmp_path)  # the bucket is created on first use
    url = store.url("runs/run_x/checkpoint-2/tokenizer/vocab.json")
    assert "X-Amz-Signature" in url
    assert httpx.get(url).content == b"{}"  # a presigned URL works without credentials


def test_s3_configuration(tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_server.env(monkeypatch, "rlhf-artefacts")
    home = LogHome(tmp_path / "home")
    store = _configured(home)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.retention_days, store.object_lock) == ("rlhf-artefacts", 183, True)
    monkeypatch.setenv("RLHF_AUDIT_S3_RETENTION_DAYS", "3650")
    assert _configured(home).retention_days == 3650  # type: ignore[attr-defined]
    for bad in ("30", "182", "0", "-5", "six months", "1e3", "99999"):
        monkeypatch.setenv("RLHF_AUDIT_S3_RETENTION_DAYS", bad)
        with pytest.raises(Misconfigured, match="RLHF_AUDIT_S3_RETENTION_DAYS"):
            _configured(home)
    monkeypatch.delenv("RLHF_AUDIT_S3_RETENTION_DAYS")
    monkeypatch.setenv("RLHF_AUDIT_S3_ALLOW_UNLOCKED", "1")
    assert _configured(home).object_lock is False  # type: ignore[attr-defined]
    monkeypatch.setenv("RLHF_AUDIT_S3_ALLOW_UNLOCKED", "perhaps")
    with pytest.raises(Misconfigured, match="RLHF_AUDIT_S3_ALLOW_UNLOCKED"):
        _configured(home)


def test_s3_bucket_is_created_write_once(s3_server: S3Server) -> None:
    bucket = s3_server.bucket_name("new")
    store = _store(s3_server, bucket, retention_days=1 if s3_server.real else 200)
    stored = store.put_bytes("evidence/a.zip", b"zip bytes")
    client = s3_server.client()
    assert client.get_bucket_versioning(bucket).status == "Enabled"
    config = client.get_object_lock_config(bucket)
    assert (config.mode, config.duration_unit) == ("COMPLIANCE", "Days")
    assert config.duration == store.retention_days
    assert stored.version_id and stored.retain_until is not None
    # a second store (another process) accepts the bucket as it is
    assert _store(s3_server, bucket).sha256("evidence/a.zip") == stored.sha256


def test_s3_objects_are_locked_in_compliance_mode(s3_server: S3Server) -> None:
    from minio.error import S3Error

    bucket = s3_server.bucket_name("lock")
    store = _store(s3_server, bucket)
    before = datetime.now(UTC)
    first = store.put_bytes("runs/r/final/model.bin", b"weights v1")
    assert first.retain_until is not None
    expected = before + timedelta(days=store.retention_days)
    assert abs((first.retain_until - expected).total_seconds()) < 60
    lock = _lock_headers(s3_server, bucket, first.key)
    assert lock["x-amz-object-lock-mode"] == "COMPLIANCE"
    until = datetime.fromisoformat(lock["x-amz-object-lock-retain-until-date"].replace("Z", "+00:00"))
    assert abs((until - first.retain_until).total_seconds()) < 1
    client = s3_server.client()
    with pytest.raises(S3Error) as refused:  # nobody deletes a locked version, not even its writer
        client.remove_object(bucket, first.key, version_id=first.version_id)
    assert refused.value.code == "AccessDenied"
    # an overwrite adds a version; the first one is still there, byte for byte
    second = store.put_bytes(first.key, b"weights v2")
    assert second.version_id != first.version_id and second.sha256 != first.sha256
    assert store.sha256(first.key) == second.sha256
    old = client.get_object(bucket, first.key, version_id=first.version_id)
    try:
        assert hashlib.sha256(old.read()).hexdigest() == first.sha256.removeprefix("sha256:")
    finally:
        old.close()
        old.release_conn()
    versions = [o.version_id for o in client.list_objects(bucket, prefix="runs/", recursive=True,
                                                           include_version=True)]
    assert set(versions) == {first.version_id, second.version_id}
    # a legal hold (incident freeze) on the newest version
    store.legal_hold(first.key)
    assert _lock_headers(s3_server, bucket, first.key)["x-amz-object-lock-legal-hold"] == "ON"
    with pytest.raises(ObjectMissing):
        store.legal_hold("runs/r/none")


def test_s3_puts_carry_a_sha256_checksum(tmp_path: Path, s3_server: S3Server) -> None:
    """A locked bucket refuses a PUT without a checksum: the store's PUTs go through with theirs,
    and the server keeps the algorithm it was given."""
    from minio.error import S3Error

    bucket = s3_server.bucket_name("sum")
    store = _store(s3_server, bucket)
    data = os.urandom(70_000)
    (tmp_path / "f.bin").write_bytes(data)
    stored = store.put_file("a/f.bin", tmp_path / "f.bin")
    assert stored.sha256 == "sha256:" + hashlib.sha256(data).hexdigest() and stored.size == len(data)
    client = s3_server.client()
    with pytest.raises(S3Error):
        client.put_object(bucket, "a/bare.bin", io.BytesIO(data), len(data))
    head = client.stat_object(bucket, "a/f.bin", extra_headers={"x-amz-checksum-mode": "ENABLED"})
    meta = {k.lower(): v for k, v in head.metadata.items()}
    sent = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert meta.get("x-amz-checksum-sha256", sent) == sent
    assert "x-amz-checksum-sha256" in meta or meta.get("x-amz-sdk-checksum-algorithm") == "SHA256"


def test_s3_bucket_without_object_lock_is_refused(s3_server: S3Server) -> None:
    bucket = s3_server.bucket_name("plain")
    s3_server.client().make_bucket(bucket)
    with pytest.raises(Misconfigured, match=f"bucket {bucket} has no object lock.*ALLOW_UNLOCKED"):
        _store(s3_server, bucket).put_bytes("a", b"x")
    assert s3_server.client().list_objects(bucket) is not None
    assert list(s3_server.client().list_objects(bucket)) == []  # nothing was written
    unlocked = _store(s3_server, bucket, object_lock=False)  # the explicit opt-out
    stored = unlocked.put_bytes("a", b"x")
    assert stored.retain_until is None and unlocked.read("a") == b"x"
    assert "x-amz-object-lock-mode" not in _lock_headers(s3_server, bucket, "a")


def test_s3_store_unreachable(tmp_path: Path) -> None:
    with pytest.raises(Misconfigured, match="bucket"):
        S3Store("127.0.0.1:9000", "No_Such/Bucket", "k", "s", secure=False)
    store = S3Store(f"127.0.0.1:{_free_port()}", "bucket", "k", "s", secure=False)  # nothing listens
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ObjectStoreUnavailable, match="unreachable"):
        store.put_file("a/f", tmp_path / "f")


def test_store_errors_answer_as_the_ledger_errors_they_replace() -> None:
    """The store's errors are the application's kinds now; the API and the CLI answer them as they
    answered the ledger's errors the store raised before (same status, same client detail)."""
    from app.core.problems import classify
    from ledger.errors import ConfigError, EntryError, NotFound, StorageError

    for ours, theirs in ((ObjectMissing, NotFound), (ObjectError, EntryError),
                         (ObjectStoreUnavailable, StorageError), (Misconfigured, ConfigError)):
        assert classify(ours("no object 'a' in b")) == classify(theirs("no object 'a' in b")), ours

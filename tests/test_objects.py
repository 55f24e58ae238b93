"""The object store: FileStore on disk, and S3Store against a real HTTP S3 server (moto's).

No MinIO can run here; moto's ThreadedMotoServer speaks the S3 REST API over HTTP, so the real
``minio`` client is exercised end to end (requests, signatures, listing, presigned URLs).
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.objects import FileStore, ObjectError, ObjectStore, S3Store, object_store
from ledger.errors import ConfigError, NotFound, StorageError
from ledger.home import LogHome

IN_CI = os.environ.get("CI", "").lower() == "true"


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
    keys = store.put_dir("runs/run_x/checkpoint-2", src)
    assert sorted(keys) == sorted(f"runs/run_x/checkpoint-2/{rel}" for rel in files)
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
    assert store.put_file("runs/run_x/checkpoint-2/config.json", src / "config.json")
    assert store.read("runs/run_x/checkpoint-2/config.json") == b'{"a": 2}'
    assert store.url("runs/run_x/checkpoint-2/config.json")
    with pytest.raises(NotFound):
        store.read("runs/run_x/nothing")
    with pytest.raises(NotFound):
        store.get_dir("runs/none", tmp_path / "none")
    with pytest.raises(NotFound):
        store.put_file("a/b", tmp_path / "missing")
    for bad in ("", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"):
        with pytest.raises(ObjectError):
            store.put_file(bad, src / "config.json")
    assert store.list("runs/run_x") == sorted(keys)  # nothing stored by the refusals


def test_file_store(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "objects")
    _exercise(store, tmp_path)
    assert store.url("runs/run_x/checkpoint-2/config.json").startswith("file://")
    assert store.path("runs/run_x/checkpoint-2/config.json").is_file()
    # the refused keys wrote nothing outside the store
    assert not (tmp_path / "x").exists()


def test_default_store_is_the_homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RLHF_AUDIT_S3_ENDPOINT", "RLHF_AUDIT_OBJECTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    store = object_store(LogHome(tmp_path / "home"))
    assert isinstance(store, FileStore) and store.root == tmp_path / "home" / "objects"
    monkeypatch.setenv("RLHF_AUDIT_OBJECTS_DIR", str(tmp_path / "elsewhere"))
    store = object_store(LogHome(tmp_path / "home"))
    assert isinstance(store, FileStore) and store.root == tmp_path / "elsewhere"
    monkeypatch.setenv("RLHF_AUDIT_S3_ENDPOINT", "127.0.0.1:9")
    with pytest.raises(ConfigError, match="RLHF_AUDIT_S3_BUCKET"):
        object_store(LogHome(tmp_path / "home"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as e:  # the test extra installs moto
        if IN_CI:
            pytest.fail(f"moto is required when CI=true: {e}")
        pytest.skip(f"moto is not installed: {e}")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


def test_s3_store(tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLHF_AUDIT_S3_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("RLHF_AUDIT_S3_BUCKET", "rlhf-artifacts")
    monkeypatch.setenv("RLHF_AUDIT_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("RLHF_AUDIT_S3_SECRET_KEY", "testing-secret")
    monkeypatch.setenv("RLHF_AUDIT_S3_SECURE", "0")
    store = object_store(LogHome(tmp_path / "home"))
    assert isinstance(store, S3Store)
    _exercise(store, tmp_path)  # the bucket is created on first use
    url = store.url("runs/run_x/checkpoint-2/tokenizer/vocab.json")
    assert "X-Amz-Signature" in url
    assert httpx.get(url).content == b"{}"  # a presigned URL works without credentials


def test_s3_store_unreachable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bucket"):
        S3Store("127.0.0.1:9000", "No_Such/Bucket", "k", "s", secure=False)
    store = S3Store(f"127.0.0.1:{_free_port()}", "bucket", "k", "s", secure=False)  # nothing listens
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(StorageError, match="unreachable"):
        store.put_file("a/f", tmp_path / "f")

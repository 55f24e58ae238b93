"""An S3 server for the object-store tests: a real MinIO when ``RLHF_AUDIT_TEST_S3_URL`` is set
(``http://user:password@host:9000``), else moto's ThreadedMotoServer, which speaks the S3 REST
API over real HTTP, so the ``minio`` client is exercised end to end either way.

Against a real MinIO every test makes its own bucket, and COMPLIANCE-locked objects cannot be
deleted before their retention ends: the tests lock for one day (``S3Store(retention_days=1)``,
below what the configuration accepts), so a test server empties out the next day.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
ENV_URL = "RLHF_AUDIT_TEST_S3_URL"


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # host:port
    access_key: str
    secret_key: str
    secure: bool
    real: bool  # a real MinIO, not moto

    def client(self) -> Any:
        from minio import Minio

        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                     secure=self.secure)

    @staticmethod
    def bucket_name(what: str = "t") -> str:
        return f"rlhf-test-{what}-{secrets.token_hex(4)}"

    def env(self, monkeypatch: pytest.MonkeyPatch, bucket: str) -> None:
        """Point ``object_store()`` at this server and ``bucket``."""
        for name, value in (("ENDPOINT", self.endpoint), ("BUCKET", bucket), ("ACCESS_KEY", self.access_key),
                            ("SECRET_KEY", self.secret_key), ("SECURE", "1" if self.secure else "0")):
            monkeypatch.setenv(f"RLHF_AUDIT_S3_{name}", value)
        monkeypatch.delenv("RLHF_AUDIT_S3_ALLOW_UNLOCKED", raising=False)
        monkeypatch.delenv("RLHF_AUDIT_S3_RETENTION_DAYS", raising=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def s3_server() -> Iterator[S3Server]:
    """The generator behind the ``s3_server`` fixture (tests/conftest.py)."""
    url = os.environ.get(ENV_URL)
    if url:
        parts = urlsplit(url)
        if not (parts.hostname and parts.username and parts.password):
            pytest.fail(f"{ENV_URL} must look like http://user:password@host:9000")
        yield S3Server(f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}",
                       unquote(parts.username), unquote(parts.password), parts.scheme == "https", True)
        return
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
        yield S3Server(f"127.0.0.1:{port}", "testing", "testing-secret", False, False)
    finally:
        server.stop()

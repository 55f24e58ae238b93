"""Test TSAs that are not ours, over HTTP on 127.0.0.1: :func:`serve` answers ``POST`` with any
function, and :func:`make_openssl_tsa` makes that function OpenSSL's own TSA (``openssl ts
-reply``) with a root CA and a TSA certificate it issued (critical ``timeStamping`` EKU).
:func:`openssl_tsa` is both at once, for tests that configure it with ``RLHF_AUDIT_TSA_URLS``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

Answer = tuple[int, bytes]


@dataclass(frozen=True)
class OpenSSLTSA:
    url: str  # POST RFC 3161 queries here
    ca: Path  # the root certificate (PEM) that vouches for its TSA certificate


@contextlib.contextmanager
def serve(answer: Callable[[bytes], Answer]) -> Iterator[str]:
    """Serve ``POST /`` on 127.0.0.1 (free port) with ``answer(body) -> (status, body)``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, reply = answer(query)
            self.send_response(status)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def openssl(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=30
    )


def _need_openssl() -> None:
    if shutil.which("openssl") is None:
        if IN_CI:
            pytest.fail("the openssl command is required when CI=true")
        pytest.skip("no openssl command")


def make_openssl_tsa(d: Path, *, certs: str | None = None) -> Callable[[bytes], Answer]:
    """A root CA and a TSA certificate under ``d``, and OpenSSL's ``ts -reply`` as an answer
    function for :func:`serve`. ``certs`` names a PEM file under ``d`` that OpenSSL then puts in
    every token beside the signer: ``ca.pem`` (the root) or ``chain.pem`` (TSA and root)."""
    _need_openssl()
    d.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    (d / "ext.cnf").write_text("basicConstraints=critical,CA:FALSE\n"
                               "keyUsage=critical,digitalSignature,nonRepudiation\n"
                               "extendedKeyUsage=critical,timeStamping\n")
    for step in (
        ("req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
         "-subj", "/CN=Test Root CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        ("req", "-new", *ec, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Test TSA"),
        ("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "tsa.pem", "-days", "825", "-sha256", "-extfile", "ext.cnf"),
    ):
        result = openssl(*step, cwd=d)
        assert result.returncode == 0, result.stderr
    (d / "chain.pem").write_bytes((d / "tsa.pem").read_bytes() + (d / "ca.pem").read_bytes())
    (d / "serial").write_text("01\n")
    (d / "tsa.cnf").write_text(f"""[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
serial = {d}/serial
crypto_device = builtin
signer_cert = {d}/tsa.pem
signer_key = {d}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""" + (f"certs = {d}/{certs}\n" if certs else ""))
    lock = threading.Lock()  # one reply at a time: they share the serial file

    def reply(query: bytes) -> Answer:
        with lock:
            (d / "q.tsq").write_bytes(query)
            result = openssl("ts", "-reply", "-config", d / "tsa.cnf", "-queryfile", d / "q.tsq",
                             "-out", d / "r.tsr", cwd=d)
            if result.returncode != 0:
                return 500, result.stderr.encode()
            return 200, (d / "r.tsr").read_bytes()

    return reply


@contextlib.contextmanager
def openssl_tsa(directory: Path, *, certs: str | None = None) -> Iterator[OpenSSLTSA]:
    """Create the CA and TSA under ``directory`` and serve the TSA until the block ends."""
    with serve(make_openssl_tsa(directory, certs=certs)) as url:
        yield OpenSSLTSA(url + "tsr", directory / "ca.pem")


def openssl_verify(
    tmp: Path, data: bytes, response: bytes, ca: Path
) -> subprocess.CompletedProcess[str]:
    """``openssl ts -verify``: the auditor's check without any of our code."""
    (tmp / "data.bin").write_bytes(data)
    (tmp / "resp.tsr").write_bytes(response)
    return openssl(
        "ts", "-verify", "-data", tmp / "data.bin", "-in", tmp / "resp.tsr", "-CAfile", ca
    )

"""OpenSSL's own TSA (``openssl ts -reply``) served over HTTP on 127.0.0.1, for tests that need an
external RFC 3161 TSA that is not ours: a root CA, a TSA certificate it issued (critical
``timeStamping`` EKU), and a ``POST /tsr`` endpoint. Configure it with ``RLHF_AUDIT_TSA_URLS``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


@dataclass(frozen=True)
class OpenSSLTSA:
    url: str  # POST RFC 3161 queries here
    ca: Path  # the root certificate (PEM) that vouches for its TSA certificate


def _openssl(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr


def _make_ca_and_tsa(d: Path) -> None:
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
             "-subj", "/CN=Test Root CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-new", *ec, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Test TSA", cwd=d)
    (d / "ext.cnf").write_text("basicConstraints=critical,CA:FALSE\n"
                               "keyUsage=critical,digitalSignature,nonRepudiation\n"
                               "extendedKeyUsage=critical,timeStamping\n")
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "tsa.pem", "-days", "825", "-sha256", "-extfile", "ext.cnf", cwd=d)
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
""")


@contextlib.contextmanager
def openssl_tsa(directory: Path) -> Iterator[OpenSSLTSA]:
    """Create the CA and TSA under ``directory`` and serve the TSA until the block ends."""
    if shutil.which("openssl") is None:
        if IN_CI:
            pytest.fail("the openssl command is required when CI=true")
        pytest.skip("no openssl command")
    directory.mkdir(parents=True, exist_ok=True)
    _make_ca_and_tsa(directory)
    lock = threading.Lock()  # one reply at a time: they share the serial file

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                (directory / "q.tsq").write_bytes(query)
                result = subprocess.run(
                    ["openssl", "ts", "-reply", "-config", str(directory / "tsa.cnf"), "-queryfile",
                     str(directory / "q.tsq"), "-out", str(directory / "r.tsr")],
                    cwd=directory, capture_output=True, timeout=30)
                status, reply = ((200, (directory / "r.tsr").read_bytes()) if result.returncode == 0
                                 else (500, result.stderr))
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
        yield OpenSSLTSA(f"http://127.0.0.1:{server.server_address[1]}/tsr", directory / "ca.pem")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

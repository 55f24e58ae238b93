"""RFC 3161 timestamps with real parts only: the built-in local TSA, OpenSSL's TSA served over
HTTP on 127.0.0.1, ``openssl ts -verify`` as an independent verifier, and real failing servers."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import rfc3161_client
from asn1crypto import tsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ledger._internal.local_tsa import POLICY_OID, LocalTSA, TimeStampResp
from ledger.errors import ConfigError, TimestampError, TimestampVerificationError
from ledger.timestamp_verify import parse_timestamp, verify_timestamp
from ledger.timestamping import HttpTSA, LocalTSAClient, tsa_from_url
from tests.support.openssl_tsa import Answer, make_openssl_tsa, openssl_verify, serve

CHECKPOINT = (
    b"audit.example/log\n42\nq6pvdGu2hlTkdNbmZcAkIYQLIwdZ6bBv8Ws1Ltrg9S0=\n\n\xe2\x80\x94 sig\n"
)

# -- helpers ---------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request_der(data: bytes, *, cert_req: bool = True) -> bytes:
    builder = rfc3161_client.TimestampRequestBuilder().data(data)
    builder = builder.hash_algorithm(rfc3161_client.HashAlgorithm.SHA256)
    return builder.cert_request(cert_request=cert_req).build().as_bytes()


def status_of(response: bytes) -> tuple[str, set[str]]:
    status = TimeStampResp.load(response)["status"]
    return status["status"].native, set(status["fail_info"].native or ())


@pytest.fixture
def local_tsa(tmp_path: Path) -> LocalTSA:
    return LocalTSA.create(tmp_path / "tsa")


@pytest.fixture
def other_tsa(tmp_path: Path) -> LocalTSA:
    return LocalTSA.create(tmp_path / "other", label="someone else")


# -- the local TSA ---------------------------------------------------------------------------


async def test_local_round_trip(local_tsa: LocalTSA) -> None:
    client = LocalTSAClient(local_tsa)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    response = await client.timestamp(CHECKPOINT)

    info = verify_timestamp(response, CHECKPOINT, roots=[local_tsa.root_certificate])
    assert before <= info.gen_time <= dt.datetime.now(dt.UTC)
    assert info.policy == POLICY_OID
    assert info.hash_algorithm == "sha256"
    assert info.tsa_name == local_tsa.certificate.subject.rfc4514_string()
    assert "local" in info.tsa_name
    assert info.serial_number > 0
    assert parse_timestamp(response) == info
    assert client.name == "local:rlhf-audit local TSA"

    # Roots as PEM (also a multi-certificate PEM) and DER bytes work alike.
    root_pem = (local_tsa.directory / "root.pem").read_bytes()
    assert verify_timestamp(response, CHECKPOINT, roots=[root_pem]) == info
    assert verify_timestamp(response, CHECKPOINT, roots=[local_tsa.chain_pem()]) == info
    root_der = local_tsa.root_certificate.public_bytes(Encoding.DER)
    assert verify_timestamp(response, CHECKPOINT, roots=[root_der]) == info


async def test_serials_differ(local_tsa: LocalTSA) -> None:
    client = LocalTSAClient(local_tsa)
    first = parse_timestamp(await client.timestamp(CHECKPOINT))
    second = parse_timestamp(await client.timestamp(CHECKPOINT))
    assert first.serial_number != second.serial_number


async def test_wrong_data_fails(local_tsa: LocalTSA) -> None:
    response = await LocalTSAClient(local_tsa).timestamp(CHECKPOINT)
    with pytest.raises(TimestampVerificationError, match="imprint does not match"):
        verify_timestamp(response, CHECKPOINT + b"x", roots=[local_tsa.root_certificate])


async def test_wrong_root_fails(local_tsa: LocalTSA, other_tsa: LocalTSA) -> None:
    response = await LocalTSAClient(local_tsa).timestamp(CHECKPOINT)
    with pytest.raises(TimestampVerificationError, match="certificate chain"):
        verify_timestamp(response, CHECKPOINT, roots=[other_tsa.root_certificate])


async def test_self_signed_intermediate_is_refused(
    local_tsa: LocalTSA, other_tsa: LocalTSA
) -> None:
    # rfc3161-client would trust a self-signed "intermediate" as an anchor; we refuse it.
    response = await LocalTSAClient(local_tsa).timestamp(CHECKPOINT)
    with pytest.raises(TimestampVerificationError, match="self-signed"):
        verify_timestamp(
            response,
            CHECKPOINT,
            roots=[other_tsa.root_certificate],
            intermediates=[local_tsa.root_certificate],
        )


async def test_altered_token_fails(local_tsa: LocalTSA) -> None:
    response = bytearray(await LocalTSAClient(local_tsa).timestamp(CHECKPOINT))
    # Flip one bit inside the ECDSA signature (the last bytes of the response).
    response[-5] ^= 0x01
    with pytest.raises(TimestampVerificationError):
        verify_timestamp(bytes(response), CHECKPOINT, roots=[local_tsa.root_certificate])


@pytest.mark.parametrize("garbage", [b"", b"garbage", b"\x30\x03\x02\x01\x00", os.urandom(300)])
def test_garbage_fails(local_tsa: LocalTSA, garbage: bytes) -> None:
    with pytest.raises(TimestampVerificationError, match="not an RFC 3161 TimeStampResp"):
        verify_timestamp(garbage, CHECKPOINT, roots=[local_tsa.root_certificate])
    with pytest.raises(TimestampVerificationError):
        parse_timestamp(garbage)


def test_no_roots_or_bad_roots(local_tsa: LocalTSA) -> None:
    response = local_tsa.respond(request_der(CHECKPOINT))
    with pytest.raises(TimestampVerificationError, match="no trusted root"):
        verify_timestamp(response, CHECKPOINT, roots=[])
    with pytest.raises(TimestampVerificationError, match="unreadable root"):
        verify_timestamp(response, CHECKPOINT, roots=[b"not a certificate"])


def test_rejection_for_malformed_request(local_tsa: LocalTSA) -> None:
    assert status_of(local_tsa.respond(b"not DER at all")) == ("rejection", {"bad_data_format"})
    assert status_of(local_tsa.respond(b"")) == ("rejection", {"bad_data_format"})
    with pytest.raises(TimestampVerificationError, match=r"not granted \(rejection\): not a DER"):
        parse_timestamp(local_tsa.respond(b"garbage"))


def _asn1_request(algorithm: str, digest: bytes, version: str = "v1") -> bytes:
    imprint = {"hash_algorithm": {"algorithm": algorithm}, "hashed_message": digest}
    request = tsp.TimeStampReq({"version": version, "message_imprint": imprint, "cert_req": True})
    return bytes(request.dump())


def test_rejection_for_sha1(local_tsa: LocalTSA) -> None:
    sha1 = _asn1_request("sha1", hashlib.sha1(CHECKPOINT).digest())
    assert status_of(local_tsa.respond(sha1)) == ("rejection", {"bad_alg"})


def test_rejection_for_bad_version_and_length(local_tsa: LocalTSA) -> None:
    v2 = _asn1_request("sha256", hashlib.sha256(CHECKPOINT).digest(), version="v2")
    assert status_of(local_tsa.respond(v2)) == ("rejection", {"bad_request"})
    short = _asn1_request("sha256", b"\x00" * 20)
    assert status_of(local_tsa.respond(short)) == ("rejection", {"bad_data_format"})


def test_sha512_request_is_granted(local_tsa: LocalTSA) -> None:
    request = _asn1_request("sha512", hashlib.sha512(CHECKPOINT).digest())
    info = verify_timestamp(
        local_tsa.respond(request), CHECKPOINT, roots=[local_tsa.root_certificate]
    )
    assert info.hash_algorithm == "sha512"


def test_bad_input_never_raises(local_tsa: LocalTSA) -> None:
    """Random bytes and single-byte mutations of a valid request always get a TimeStampResp."""
    rng = random.Random(3161)
    valid = request_der(CHECKPOINT)
    inputs = [rng.randbytes(rng.randrange(0, 200)) for _ in range(50)]
    for _ in range(150):
        mutated = bytearray(valid)
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        inputs.append(bytes(mutated))
    inputs += [valid[:n] for n in range(len(valid))]
    for data in inputs:
        status, _ = status_of(local_tsa.respond(data))
        assert status in ("granted", "rejection")


def test_cert_req_false_leaves_certificate_out(local_tsa: LocalTSA) -> None:
    response = local_tsa.respond(request_der(CHECKPOINT, cert_req=False))
    decoded = rfc3161_client.decode_timestamp_response(response)
    assert decoded.signed_data.certificates == set()
    with_cert = rfc3161_client.decode_timestamp_response(local_tsa.respond(request_der(CHECKPOINT)))
    assert len(with_cert.signed_data.certificates) == 1
    with pytest.raises(TimestampVerificationError, match="no TSA certificate"):
        verify_timestamp(response, CHECKPOINT, roots=[local_tsa.root_certificate])


async def test_openssl_verifies_local_tsa(local_tsa: LocalTSA, tmp_path: Path) -> None:
    response = await LocalTSAClient(local_tsa).timestamp(CHECKPOINT)
    ca = local_tsa.directory / "root.pem"
    ok = openssl_verify(tmp_path, CHECKPOINT, response, ca)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr
    tampered = openssl_verify(tmp_path, CHECKPOINT.replace(b"42", b"43"), response, ca)
    assert tampered.returncode != 0
    assert "Verification: OK" not in tampered.stdout


# -- local TSA files -------------------------------------------------------------------------


def test_local_tsa_files(local_tsa: LocalTSA) -> None:
    directory = local_tsa.directory
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for key in ("root.key", "tsa.key"):
        assert stat.S_IMODE((directory / key).stat().st_mode) == 0o600
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert set(before) == {"root.pem", "root.key", "tsa.pem", "tsa.key"}

    again = LocalTSA.create(directory)
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    assert again.certificate == local_tsa.certificate
    assert LocalTSA.load(directory).chain_pem() == local_tsa.chain_pem()
    assert local_tsa.chain_pem() == before["tsa.pem"] + before["root.pem"]


def test_local_tsa_certificates(local_tsa: LocalTSA) -> None:
    cert, root = local_tsa.certificate, local_tsa.root_certificate
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cn = x509.oid.NameOID.COMMON_NAME
    tsa_cn = cert.subject.get_attributes_for_oid(cn)[0].value
    root_cn = root.subject.get_attributes_for_oid(cn)[0].value
    assert tsa_cn == "rlhf-audit local TSA (local, not a trusted third party)"
    assert root_cn == "rlhf-audit local TSA root (local, not a trusted third party)"
    cert.verify_directly_issued_by(root)


def test_local_tsa_partial_or_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the local TSA"):
        LocalTSA.load(tmp_path / "nothing")
    tsa = LocalTSA.create(tmp_path / "tsa")
    (tsa.directory / "tsa.key").unlink()
    with pytest.raises(ConfigError, match="incomplete"):
        LocalTSA.create(tsa.directory)
    assert not (tsa.directory / "tsa.key").exists()  # nothing was regenerated
    with pytest.raises(ConfigError):
        LocalTSA.load(tsa.directory)


def test_local_tsa_mismatched_key(tmp_path: Path) -> None:
    a = LocalTSA.create(tmp_path / "a")
    b = LocalTSA.create(tmp_path / "b")
    (a.directory / "tsa.key").write_bytes((b.directory / "tsa.key").read_bytes())
    with pytest.raises(ConfigError, match="does not match"):
        LocalTSA.load(a.directory)


# -- choosing an authority -------------------------------------------------------------------


async def test_tsa_from_url(local_tsa: LocalTSA) -> None:
    for setting in ("local", "local:"):
        tsa = tsa_from_url(setting, local_dir=local_tsa.directory)
        assert isinstance(tsa, LocalTSAClient)
        assert tsa.name.startswith("local:")
    with pytest.raises(ConfigError):
        tsa_from_url("local", local_dir=None)
    http = tsa_from_url("https://user:secret@tsa.example/tsr", local_dir=None)
    assert isinstance(http, HttpTSA)
    assert http.name == "https://tsa.example/tsr"
    await http.aclose()
    for bad in ("ftp://tsa.example", "tsa.example", ""):
        with pytest.raises(ConfigError):
            tsa_from_url(bad, local_dir=local_tsa.directory)


# -- OpenSSL's TSA over HTTP -----------------------------------------------------------------


async def test_http_tsa_with_openssl(openssl_tsa: tuple[str, Path], tmp_path: Path) -> None:
    url, ca = openssl_tsa
    async with HttpTSA(url) as tsa:
        response = await tsa.timestamp(CHECKPOINT)
    info = verify_timestamp(response, CHECKPOINT, roots=[ca.read_bytes()])
    assert info.policy == "1.2.3.4.1"
    assert info.tsa_name == "CN=Test TSA"
    assert info.hash_algorithm == "sha256"
    ok = openssl_verify(tmp_path, CHECKPOINT, response, ca)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr
    with pytest.raises(TimestampVerificationError):
        verify_timestamp(response, CHECKPOINT + b"!", roots=[ca.read_bytes()])


async def test_openssl_root_does_not_vouch_for_local(
    openssl_tsa: tuple[str, Path], local_tsa: LocalTSA
) -> None:
    _, ca = openssl_tsa
    response = await LocalTSAClient(local_tsa).timestamp(CHECKPOINT)
    with pytest.raises(TimestampVerificationError, match="certificate chain"):
        verify_timestamp(response, CHECKPOINT, roots=[ca.read_bytes()])
    # Both roots together: the right one is found.
    verify_timestamp(response, CHECKPOINT, roots=[ca.read_bytes(), local_tsa.root_certificate])


async def test_local_tsa_behind_http(local_tsa: LocalTSA) -> None:
    with serve(lambda query: (200, local_tsa.respond(query))) as url:
        async with HttpTSA(url) as tsa:
            response = await tsa.timestamp(CHECKPOINT)
    verify_timestamp(response, CHECKPOINT, roots=[local_tsa.root_certificate])


# -- TSAs that fail --------------------------------------------------------------------------


async def test_tsa_down_fails_fast() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    start = time.monotonic()
    async with HttpTSA(url, timeout=2.0) as tsa:
        with pytest.raises(TimestampError, match="cannot reach TSA http://127.0.0.1"):
            await tsa.timestamp(CHECKPOINT)
    assert time.monotonic() - start < 3


async def test_tsa_too_slow_times_out() -> None:
    release = threading.Event()

    def hang(query: bytes) -> Answer:
        release.wait(10)
        return 200, b""

    with serve(hang) as url:
        try:
            async with HttpTSA(url, timeout=0.3) as tsa:
                with pytest.raises(TimestampError, match="did not answer within 0.3s"):
                    await tsa.timestamp(CHECKPOINT)
        finally:
            release.set()


async def test_http_500_fails() -> None:
    with serve(lambda query: (500, b"oops")) as url:
        async with HttpTSA(url, timeout=2.0) as tsa:
            with pytest.raises(TimestampError, match="HTTP 500"):
                await tsa.timestamp(CHECKPOINT)


async def test_garbage_answer_fails() -> None:
    with serve(lambda query: (200, b"<html>hello</html>")) as url:
        async with HttpTSA(url, timeout=2.0) as tsa:
            with pytest.raises(TimestampError, match="no usable TimeStampResp"):
                await tsa.timestamp(CHECKPOINT)


async def test_rejection_answer_fails(local_tsa: LocalTSA) -> None:
    with serve(lambda query: (200, local_tsa.respond(b"bad"))) as url:
        async with HttpTSA(url, timeout=2.0) as tsa:
            refused = r"did not grant a timestamp \(rejection\): not a DER"
            with pytest.raises(TimestampError, match=refused):
                await tsa.timestamp(CHECKPOINT)


async def test_answer_for_other_data_fails(local_tsa: LocalTSA) -> None:
    """A TSA that answers about other bytes, or replays an old answer, is caught."""
    other = local_tsa.respond(request_der(b"something else"))
    with serve(lambda query: (200, other)) as url:
        async with HttpTSA(url, timeout=2.0) as tsa:
            with pytest.raises(TimestampError, match="nonce not echoed.*imprint is not SHA-256"):
                await tsa.timestamp(CHECKPOINT)

    replayed = await LocalTSAClient(local_tsa).timestamp(CHECKPOINT)
    with serve(lambda query: (200, replayed)) as url:
        async with HttpTSA(url, timeout=2.0) as tsa:
            with pytest.raises(TimestampError, match="nonce not echoed"):
                await tsa.timestamp(CHECKPOINT)


async def test_empty_data_is_refused(local_tsa: LocalTSA) -> None:
    with pytest.raises(ValueError, match="empty"):
        await LocalTSAClient(local_tsa).timestamp(b"")


# -- a TSA that puts its certificate chain in every token -------------------------------------
#
# With ``certs = <chain>`` OpenSSL writes the SignedData certificates in chain order (signer
# first) under the SET tag: BER, as CMS allows (RFC 5652 section 1), but not DER-sorted, and
# with chain.pem the signer comes twice. ``openssl ts -verify`` accepts such tokens; rfc3161-client
# parses DER only and refuses them. The certificates lie outside the signed attributes, so the
# product parses a copy with the set sorted and stores the TSA's bytes as they came.


@pytest.fixture(scope="module", params=["ca.pem", "chain.pem"])
def chain_tsa(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, list[bytes]]]:
    """OpenSSL's TSA with its chain in every token; yields (URL, CA path, the replies it sent)."""
    d = tmp_path_factory.mktemp("openssl-chain-tsa")
    answer, sent = make_openssl_tsa(d, certs=request.param), []

    def reply(query: bytes) -> Answer:
        status, body = answer(query)
        sent.append(body)
        return status, body

    with serve(reply) as url:
        yield url, d / "ca.pem", sent


def certificate_set(response: bytes) -> list[bytes]:
    """The DER of each certificate in the token's SignedData, in the order the bytes hold them."""
    signed = TimeStampResp.load(response)["time_stamp_token"]["content"]
    return [c.dump() for c in signed["certificates"]]


def make_openssl_answer(url: str, data: bytes) -> Answer:
    """POST a SHA-256 query with certReq for ``data`` to the TSA at ``url``: (status, body)."""
    reply = httpx.post(url, content=request_der(data), timeout=30,
                       headers={"Content-Type": "application/timestamp-query"})
    return reply.status_code, reply.content


def test_library_still_refuses_unsorted_certificate_set(
    chain_tsa: tuple[str, Path, list[bytes]], tmp_path: Path
) -> None:
    """A minimal reproduction of rfc3161-client refusing what OpenSSL writes and accepts.

    When this test fails, the library parses BER certificate sets: drop the workaround
    (``ledger.timestamp_verify._der_sorted_certificates``) and this test.
    """
    url, ca, _ = chain_tsa
    status, response = make_openssl_answer(url, CHECKPOINT)
    assert status == 200
    certs = certificate_set(response)
    assert len(certs) >= 2 and certs != sorted(certs)  # the TSA's order: signer first
    ok = openssl_verify(tmp_path, CHECKPOINT, response, ca)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr
    with pytest.raises(ValueError, match="InvalidSetOrdering"):
        rfc3161_client.decode_timestamp_response(response)


async def test_tsa_sending_its_chain_is_accepted(
    chain_tsa: tuple[str, Path, list[bytes]], tmp_path: Path
) -> None:
    url, ca, sent = chain_tsa
    async with HttpTSA(url) as tsa:
        response = await tsa.timestamp(CHECKPOINT)
    assert response == sent[-1]  # the TSA's bytes, unchanged: its signature stays checkable
    assert certificate_set(response) != sorted(certificate_set(response))

    info = verify_timestamp(response, CHECKPOINT, roots=[ca.read_bytes()])
    assert info.tsa_name == "CN=Test TSA" and info.policy == "1.2.3.4.1"
    assert parse_timestamp(response) == info
    ok = openssl_verify(tmp_path, CHECKPOINT, response, ca)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr
    # Still a real check: other data, another root or a flipped signature bit all fail.
    with pytest.raises(TimestampVerificationError, match="imprint does not match"):
        verify_timestamp(response, CHECKPOINT + b"!", roots=[ca.read_bytes()])
    with pytest.raises(TimestampVerificationError, match="certificate chain"):
        verify_timestamp(response, CHECKPOINT, roots=[LocalTSA.create(tmp_path / "x").root_certificate])
    altered = bytearray(response)
    altered[-5] ^= 0x01
    with pytest.raises(TimestampVerificationError):
        verify_timestamp(bytes(altered), CHECKPOINT, roots=[ca.read_bytes()])


def test_standalone_verifier_accepts_a_chain_in_the_token(
    chain_tsa: tuple[str, Path, list[bytes]],
) -> None:
    """The standalone bundle verifier reads the same tokens (it has its own DER reader)."""
    from app.evidence import standalone_verify

    url, ca, _ = chain_tsa
    status, response = make_openssl_answer(url, CHECKPOINT)
    assert status == 200
    chain = x509.load_pem_x509_certificates((ca.parent / "chain.pem").read_bytes())
    roots = [x509.load_pem_x509_certificate(ca.read_bytes())]
    when, cert, root = standalone_verify.verify_timestamp(response, CHECKPOINT, chain, roots)
    assert cert.subject.rfc4514_string() == "CN=Test TSA" and root == roots[0]
    assert when == parse_timestamp(response).gen_time.replace(microsecond=0)

"""Checking RFC 3161 timestamps on checkpoints.

The auditor's side: this module imports nothing of the writing side (no TSA client, no local TSA),
so it can be run alone against a published checkpoint, its stored TimeStampResp and the TSA's root
certificate. ``openssl ts -verify -data CHECKPOINT -in RESPONSE -CAfile ROOT`` is the same check
without any of this code.

Verification is rfc3161-client's (Trail of Bits, used by sigstore-python): the CMS signature, the
chain from the signer certificate to one of the given roots at genTime, the critical
timeStamping extended key usage, and the message imprint. This module turns its results and
errors into :class:`~ledger.errors.TimestampVerificationError` with messages a person can act on.

rfc3161-client reads DER only, but CMS is BER (RFC 5652 section 1), and TSAs that put their
certificate chain in the token (OpenSSL's ``ts -reply`` with ``certs =``, and many public ones)
write the SignedData certificates SET in chain order rather than DER order. ``openssl ts -verify``
accepts them; rfc3161-client refuses them ("InvalidSetOrdering"). :func:`decode_response` then
parses a copy with only that set sorted: the certificates lie outside the signed attributes, so
the signature checks the same. Stored and served bytes stay the TSA's own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import rfc3161_client
from asn1crypto import cms, tsp  # type: ignore[import-untyped]  # ships no type hints
from cryptography import x509

from ledger.errors import TimestampVerificationError

__all__ = ["TimestampInfo", "decode_response", "parse_timestamp", "verify_timestamp"]

_HASH_NAMES = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}

CertificateSource = bytes | x509.Certificate


@dataclass(frozen=True)
class TimestampInfo:
    """What a timestamp token says, for reports: when, which token, under which policy, by whom."""

    gen_time: dt.datetime
    serial_number: int
    policy: str
    tsa_name: str | None
    hash_algorithm: str


def parse_timestamp(response_der: bytes) -> TimestampInfo:
    """Read a granted TimeStampResp WITHOUT checking signature, chain or imprint (display only)."""
    return _info(_decode(response_der))


def verify_timestamp(
    response_der: bytes,
    data: bytes,
    *,
    roots: Sequence[CertificateSource],
    intermediates: Sequence[CertificateSource] = (),
) -> TimestampInfo:
    """Check that ``response_der`` is a valid timestamp over ``data`` from a TSA under ``roots``.

    ``roots`` and ``intermediates`` are certificate objects or PEM/DER bytes (one PEM blob may
    hold several certificates). Raises :class:`TimestampVerificationError` saying what failed.
    """
    trusted = _load_certificates(roots, "root")
    if not trusted:
        raise TimestampVerificationError("no trusted root certificate was given")
    chain = _load_certificates(intermediates, "intermediate")
    for cert in chain:
        # rfc3161-client puts roots and intermediates in one trust store, where any self-signed
        # certificate acts as an anchor: an "intermediate" that is a root must be named a root.
        if cert.subject == cert.issuer:
            raise TimestampVerificationError(
                f"intermediate certificate {cert.subject.rfc4514_string()} is self-signed; "
                "pass it in roots if it is meant to be trusted"
            )
    response = _decode(response_der)
    verifier = rfc3161_client.VerifierBuilder(roots=trusted, intermediates=chain).build()
    try:
        if not response.signed_data.certificates:
            # rfc3161-client finds the signer among the token's certificates, and only there.
            raise TimestampVerificationError(
                "the response embeds no TSA certificate (it was requested without certReq)"
            )
        verifier.verify_message(response, data)
    except rfc3161_client.VerificationError as e:
        raise TimestampVerificationError(_explain(str(e))) from e
    except ValueError as e:  # raised by the Rust core for structures it cannot use
        raise TimestampVerificationError(f"timestamp token is unusable: {e}") from e
    return _info(response)


def decode_response(response_der: bytes) -> rfc3161_client.TimeStampResponse:
    """rfc3161-client's parse of a TimeStampResp, also when its certificates are in BER order.

    Raises ValueError as rfc3161-client does for what is not a TimeStampResp.
    """
    data = bytes(response_der)
    try:
        return rfc3161_client.decode_timestamp_response(data)
    except ValueError as original:
        sorted_copy = _der_sorted_certificates(data)
        if sorted_copy is None:
            raise
        try:
            return rfc3161_client.decode_timestamp_response(sorted_copy)
        except ValueError:
            raise original from None  # the error about the TSA's own bytes


def _der_sorted_certificates(data: bytes) -> bytes | None:
    """``data`` with its token's certificates SET in DER order; None if that changes nothing.

    Only the order within that one set changes (the copy has the same length, and every
    certificate and everything signed keep their bytes), so what the copy proves, the original
    proves.
    """
    try:
        response = tsp.TimeStampResp.load(data)
        signed = response["time_stamp_token"]["content"]
        encodings = [c.dump() for c in signed["certificates"]]
        if encodings == sorted(encodings):
            return None
        signed["certificates"] = cms.CertificateSet(
            [cms.CertificateChoices.load(e) for e in sorted(encodings)]
        )
        copy = bytes(response.dump())
    except (ValueError, TypeError, KeyError, AttributeError):  # not a token asn1crypto can read
        return None
    return copy if len(copy) == len(data) else None


_GRANTED = (rfc3161_client.PKIStatus.GRANTED, rfc3161_client.PKIStatus.GRANTED_WITH_MODS)


def _decode(response_der: bytes) -> rfc3161_client.TimeStampResponse:
    """Parse a whole TimeStampResp; a bare token, garbage or a refusal is an error."""
    try:
        response = decode_response(response_der)
        status = rfc3161_client.PKIStatus(response.status)
        if status in _GRANTED:
            response.tst_info  # noqa: B018 - parsed lazily by the Rust core: fail here, not later
    except (ValueError, TypeError) as e:
        raise TimestampVerificationError(
            f"not an RFC 3161 TimeStampResp with a token ({len(response_der)} bytes): {e}"
        ) from e
    if status not in _GRANTED:
        texts = "".join(f": {text}" for text in response.status_string)
        raise TimestampVerificationError(
            f"timestamp was not granted ({status.name.lower()}){texts}"
        )
    return response


def _info(response: rfc3161_client.TimeStampResponse) -> TimestampInfo:
    tst = response.tst_info
    oid = tst.message_imprint.hash_algorithm.dotted_string
    return TimestampInfo(
        gen_time=tst.gen_time,
        serial_number=tst.serial_number,
        policy=tst.policy.dotted_string,
        tsa_name=_general_name(tst),
        hash_algorithm=_HASH_NAMES.get(oid, oid),
    )


def _general_name(tst: rfc3161_client.TimeStampTokenInfo) -> str | None:
    """The optional TSTInfo.tsa field as text: an RFC 4514 string for a directory name."""
    try:
        name = tst.name
    except (ValueError, AttributeError):
        return None
    if name is None:
        return None
    if isinstance(name, x509.DirectoryName):
        return name.value.rfc4514_string()
    return str(name.value)


def _explain(message: str) -> str:
    """Reword rfc3161-client's terse messages; keep its text for the details."""
    if message == "Mismatch between messages":
        return "message imprint does not match the data (the timestamp is for other bytes)"
    if message.startswith("Error while verifying certificates"):
        return (
            "signature or certificate chain does not verify against the given roots "
            f"(untrusted TSA, wrong root or altered token): {message}"
        )
    return f"timestamp does not verify: {message}"


def _load_certificates(sources: Sequence[CertificateSource], role: str) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for source in sources:
        if isinstance(source, x509.Certificate):
            certs.append(source)
            continue
        try:
            if b"-----BEGIN" in source:
                certs.extend(x509.load_pem_x509_certificates(source))
            else:
                certs.append(x509.load_der_x509_certificate(source))
        except (ValueError, TypeError) as e:
            raise TimestampVerificationError(f"unreadable {role} certificate: {e}") from e
    return certs

"""A small RFC 3161 time-stamp authority that runs inside the ledger.

The embedded default, so a fresh log can timestamp its checkpoints with no network. It is plainly
*local*: its root is self-signed on this machine, so its tokens only show that whoever holds the
keys here said "this checkpoint existed at genTime". Production deployments point the ledger at an
independent TSA by URL; the tokens look the same to every verifier (``openssl ts -verify``,
rfc3161-client), so nothing else changes.

Layout of the directory (created 0700, keys 0600, never overwritten)::

    root.pem  root.key   self-signed root CA (EC P-256, 10 years)
    tsa.pem   tsa.key    TSA certificate signed by the root (EC P-256, ~5 years,
                         extendedKeyUsage = critical, timeStamping)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from pathlib import Path

from asn1crypto import algos, cms, tsp  # type: ignore[import-untyped]  # ships no type hints
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ledger.errors import ConfigError

__all__ = ["LOCAL_SUFFIX", "POLICY_OID", "LocalTSA", "TimeStampResp"]

#: TSA policy of the local TSA. An ITU-T X.667 UUID-based OID (arc 2.25, also RFC 4122 section
#: 1): anyone may mint one without registration, and it names nothing outside this project.
POLICY_OID = "2.25.139568600396556424657080617269571501858"

#: Appended to every local subject name, so that no one mistakes a local token for a third party's.
LOCAL_SUFFIX = "(local, not a trusted third party)"


class TimeStampResp(tsp.TimeStampResp):  # type: ignore[misc]
    """asn1crypto's TimeStampResp with timeStampToken OPTIONAL, as in RFC 3161 section 2.4.2.

    asn1crypto 1.5.1 declares the token mandatory, so it can neither write nor read a refusal.
    """

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


_FILES = ("root.pem", "root.key", "tsa.pem", "tsa.key")
_SUPPORTED_DIGESTS = {"sha256": 32, "sha384": 48, "sha512": 64}


class LocalTSA:
    """A TSA key pair and certificate chain on disk, answering TimeStampReq bytes in-process."""

    def __init__(
        self,
        directory: Path,
        root_certificate: x509.Certificate,
        certificate: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
    ) -> None:
        self.directory = directory
        self._root = root_certificate
        self._cert = certificate
        self._key = key
        self._cert_der = certificate.public_bytes(serialization.Encoding.DER)

    # -- files -------------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, label: str = "rlhf-audit local TSA") -> LocalTSA:
        """Make a root and a TSA certificate in ``directory``, or load the ones already there.

        Idempotent: a complete directory is loaded unchanged (keys are never regenerated, since
        that would orphan every token already issued). A directory holding only some of the files
        is a ConfigError: half a TSA is something a person must look at, not something to patch.
        """
        directory = Path(directory)
        present = [name for name in _FILES if (directory / name).exists()]
        if len(present) == len(_FILES):
            return cls.load(directory)
        if present:
            raise ConfigError(
                f"local TSA directory {directory} is incomplete: it has {', '.join(present)} but "
                f"not {', '.join(n for n in _FILES if n not in present)}; restore the missing "
                "files or remove the directory to start a new local TSA"
            )
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

        now = dt.datetime.now(dt.UTC)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name(f"{label} root {LOCAL_SUFFIX}")
        root = (
            _builder(root_name, root_name, root_key.public_key(), now, days=3650)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
            .sign(root_key, hashes.SHA256())
        )
        tsa_key = ec.generate_private_key(ec.SECP256R1())
        tsa = (
            _builder(_name(f"{label} {LOCAL_SUFFIX}"), root_name, tsa_key.public_key(), now, 1826)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(tsa_key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
            )
            .sign(root_key, hashes.SHA256())
        )
        # Keys first: a crash part-way leaves an "incomplete" directory, never a usable-looking
        # certificate whose key was lost.
        _write_new(directory / "root.key", _key_pem(root_key), 0o600)
        _write_new(directory / "tsa.key", _key_pem(tsa_key), 0o600)
        _write_new(directory / "root.pem", root.public_bytes(serialization.Encoding.PEM), 0o644)
        _write_new(directory / "tsa.pem", tsa.public_bytes(serialization.Encoding.PEM), 0o644)
        return cls(directory, root, tsa, tsa_key)

    @classmethod
    def load(cls, directory: Path) -> LocalTSA:
        """Read a directory written by :meth:`create`, checking the pieces belong together."""
        directory = Path(directory)
        try:
            root = x509.load_pem_x509_certificate((directory / "root.pem").read_bytes())
            cert = x509.load_pem_x509_certificate((directory / "tsa.pem").read_bytes())
            key = serialization.load_pem_private_key(
                (directory / "tsa.key").read_bytes(), password=None
            )
        except OSError as e:
            raise ConfigError(
                f"cannot read the local TSA in {directory}: {e.strerror or e} "
                f"({e.filename or directory}); create it with LocalTSA.create"
            ) from e
        except (ValueError, TypeError) as e:
            raise ConfigError(
                f"local TSA in {directory} holds an unreadable key or certificate: {e}"
            ) from e
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"local TSA key {directory / 'tsa.key'} is not an EC key")
        if key.public_key() != cert.public_key():
            raise ConfigError(f"local TSA key in {directory} does not match tsa.pem")
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError) as e:
            raise ConfigError(
                f"local TSA certificate in {directory} is not issued by its root.pem"
            ) from e
        return cls(directory, root, cert, key)

    # -- identity ----------------------------------------------------------------------------

    @property
    def certificate(self) -> x509.Certificate:
        """The TSA (signing) certificate."""
        return self._cert

    @property
    def root_certificate(self) -> x509.Certificate:
        """The self-signed root that verifiers must be given as trust anchor."""
        return self._root

    @property
    def label(self) -> str:
        """The label given at creation, recovered from the TSA certificate's common name."""
        cn = self._cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        return str(cn).removesuffix(LOCAL_SUFFIX).strip()

    def chain_pem(self) -> bytes:
        """The TSA certificate then the root, as one PEM chain ending in the root."""
        return self._cert.public_bytes(serialization.Encoding.PEM) + self._root.public_bytes(
            serialization.Encoding.PEM
        )

    # -- protocol ----------------------------------------------------------------------------

    def respond(self, request_der: bytes) -> bytes:
        """Answer a DER TimeStampReq with a DER TimeStampResp.

        Bad input never raises: it gets a ``rejection`` response with a failInfo, as RFC 3161
        section 2.4.2 asks of a TSA, so that an HTTP front end can pass any bytes straight in.
        """
        try:
            request = tsp.TimeStampReq.load(bytes(request_der), strict=True)
            _ = request.native  # asn1crypto parses lazily: force the whole structure now
            version = request["version"].native
            imprint = request["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            digest = imprint["hashed_message"].native
        except Exception as e:  # noqa: BLE001 - any parse failure of foreign bytes is a rejection
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            return _rejection("bad_data_format", f"not a DER TimeStampReq: {reason}")
        if version != "v1":
            return _rejection("bad_request", f"unsupported TimeStampReq version {version}")
        if algorithm not in _SUPPORTED_DIGESTS:
            return _rejection("bad_alg", f"unsupported hash algorithm {algorithm}")
        if len(digest) != (size := _SUPPORTED_DIGESTS[algorithm]):
            return _rejection("bad_data_format", f"a {algorithm} imprint must be {size} bytes")
        policy = request["req_policy"].native
        if policy is not None and policy != POLICY_OID:
            return _rejection("unaccepted_policy", f"this TSA only issues under {POLICY_OID}")
        if request["extensions"].native:
            return _rejection("unaccepted_extensions", "this TSA supports no request extensions")
        token = self._sign(
            tsp.MessageImprint.load(imprint.dump(force=True)),
            request["nonce"].native,
            include_certificate=bool(request["cert_req"].native),
        )
        granted = {"status": {"status": "granted"}, "time_stamp_token": token}
        return bytes(TimeStampResp(granted).dump())

    def _sign(
        self, imprint: tsp.MessageImprint, nonce: int | None, *, include_certificate: bool
    ) -> cms.ContentInfo:
        """Build the TimeStampToken: TSTInfo inside CMS SignedData, signed with the TSA key."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        tst_fields: dict[str, object] = {
            "version": "v1",
            "policy": POLICY_OID,
            "message_imprint": imprint,
            # Unique without any state on disk: 128 bits, top bit set so it is never 0 or short.
            "serial_number": (1 << 127) | secrets.randbits(127),
            "gen_time": now,
            "accuracy": {"seconds": 1},
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self._asn1_subject()),
        }
        if nonce is not None:
            tst_fields["nonce"] = nonce
        tst_info = tsp.TSTInfo(tst_fields)
        tst_der = tst_info.dump()

        cert = asn1_x509.Certificate.load(self._cert_der)
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]},
                {"type": "signing_time", "values": [cms.Time({"utc_time": now})]},
                {"type": "signing_certificate_v2", "values": [self._signing_certificate(cert)]},
            ]
        )
        # The signature covers the DER of the attributes as a SET (tag 0x31), RFC 5652 5.4.
        signature = self._key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    name="issuer_and_serial_number",
                    value={"issuer": cert.issuer, "serial_number": cert.serial_number},
                ),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed_data: dict[str, object] = {
            "version": "v3",  # RFC 5652 5.1: v3 because eContentType is not id-data
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info", "content": tst_info},
            "signer_infos": [signer],
        }
        if include_certificate:
            # The signer only: a one-element SET is trivially DER-sorted (rfc3161-client rejects
            # unsorted certificate sets) and verifiers are given the root anyway.
            signed_data["certificates"] = [cert]
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})

    def _signing_certificate(self, cert: asn1_x509.Certificate) -> tsp.SigningCertificateV2:
        """ESS signingCertificateV2 (RFC 5816): binds the signature to this exact certificate."""
        issuer = asn1_x509.GeneralName(name="directory_name", value=cert.issuer)
        cert_id = {
            # hashAlgorithm left out: SHA-256 is its DEFAULT, which DER must omit
            "cert_hash": hashlib.sha256(self._cert_der).digest(),
            "issuer_serial": {"issuer": [issuer], "serial_number": cert.serial_number},
        }
        return tsp.SigningCertificateV2({"certs": [cert_id]})

    def _asn1_subject(self) -> asn1_x509.Name:
        return asn1_x509.Name.load(self._cert.subject.public_bytes())


def _rejection(fail_info: str, text: str) -> bytes:
    status = {"status": "rejection", "status_string": [text], "fail_info": {fail_info}}
    return bytes(TimeStampResp({"status": status}).dump())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate a little clock skew
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,  # a.k.a. nonRepudiation
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet, with its final mode from the first instant."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as e:
        raise ConfigError(f"{path} appeared while creating the local TSA; not overwriting") from e
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())

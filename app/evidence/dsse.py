"""DSSE envelopes holding in-toto Statements, signed with the log operator's evidence key.

DSSE (github.com/secure-systems-lab/dsse, v1) signs ``PAE(payloadType, payload)``::

    "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body     (LEN: decimal byte count, SP: 0x20)

so a signature can never be replayed over another payload type. The envelope is JSON:
``{"payloadType", "payload" (base64), "signatures": [{"keyid", "sig" (base64)}]}``. Our key ID is
the lowercase hex SHA-256 of the raw 32-byte Ed25519 public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "IN_TOTO_PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "key_id",
    "pae",
    "public_key_pem",
    "sign_envelope",
    "statement",
]

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://rlhf-audit-trail.dev/evidence/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public_key)).hexdigest()


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM: what ``openssl pkey -pubin`` and every library read."""
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def statement(subjects: dict[str, bytes], predicate: dict[str, Any]) -> bytes:
    """An in-toto Statement v1 over ``subjects`` (name -> file bytes), as compact sorted JSON."""
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": hashlib.sha256(data).hexdigest()}}
                    for name, data in subjects.items()],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_envelope(payload: bytes, key: Ed25519PrivateKey,
                  payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> bytes:
    """The DSSE envelope (JSON bytes) over ``payload``, signed by ``key``."""
    signature = key.sign(pae(payload_type, payload))
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key_id(key.public_key()),
                        "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(envelope, indent=2).encode() + b"\n"

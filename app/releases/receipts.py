"""COSE receipts (draft-ietf-cose-merkle-tree-proofs, RFC 9162 inclusion) for log entries.

A receipt is a COSE_Sign1 (RFC 9052), tagged 18:

- protected header: ``alg`` (1) EdDSA (-8), ``kid`` (4) the SHA-256 of the raw Ed25519 public key,
  ``vds`` (395) ``RFC9162_SHA256`` (1);
- unprotected header: ``vdp`` (396) ``{-1: [bstr .cbor [tree_size, leaf_index, [audit path]]]}``,
  the inclusion proof of RFC 9162 section 2.1.3;
- payload: detached (``nil``). The signed payload is the tree's root hash, which a verifier
  recomputes from the entry's leaf hash (``SHA-256(0x00 || entry)``) and the proof, then checks
  the signature over; the same root is in the log's signed checkpoint of that tree size.

Which key signs: the log's own Ed25519 key (the one its C2SP checkpoints carry), because a receipt
is the log's statement "this root is my tree of size N", the statement a checkpoint makes, and an
auditor who pinned the log's key needs no other. The two formats cannot be confused for one
another: a signed note's text is UTF-8 that starts with the origin, while COSE signs a CBOR
``Sig_structure`` (first byte 0x84, never the start of UTF-8 text).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from ledger.errors import ProofError
from ledger.merkle import leaf_hash, root_from_inclusion
from ledger.note import Signer
from ledger.proofs import InclusionProof

__all__ = ["INCLUSION_PROOFS", "RFC9162_SHA256", "VDP", "VDS", "VerifiedReceipt", "issue_receipt",
           "verify_receipt"]

VDS, VDP = 395, 396  # COSE header parameters: verifiable data structure, and its proofs
RFC9162_SHA256 = 1
INCLUSION_PROOFS = -1


def _okp_key(seed: bytes | None, public: bytes) -> Any:
    from pycose.keys import OKPKey
    from pycose.keys.curves import Ed25519

    return OKPKey(crv=Ed25519, x=public, d=seed) if seed is not None else OKPKey(crv=Ed25519, x=public)


def _seed(signer: Signer) -> bytes:
    """The 32-byte seed out of the signer's key string (``PRIVATE+KEY+...+base64(0x01 || seed)``)."""
    return base64.b64decode(signer.skey.split("+", 4)[4])[1:]


def issue_receipt(signer: Signer, proof: InclusionProof, root: bytes) -> bytes:
    """The receipt (tagged COSE_Sign1 bytes) for ``proof`` against the tree ``root``."""
    import cbor2
    from pycose.algorithms import EdDSA
    from pycose.headers import KID, Algorithm
    from pycose.messages import Sign1Message

    public = signer.verifier.public_key
    encoded = cbor2.dumps([proof.tree_size, proof.leaf_index, list(proof.audit_path)])
    message = Sign1Message(phdr={Algorithm: EdDSA, KID: hashlib.sha256(public).digest(), VDS: RFC9162_SHA256},
                           uhdr={VDP: {INCLUSION_PROOFS: [encoded]}}, payload=None)
    message.key = _okp_key(_seed(signer), public)
    return message.encode(tag=True, detached_payload=root)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class VerifiedReceipt:
    tree_size: int
    leaf_index: int
    root: bytes


def verify_receipt(receipt: bytes, entry: bytes, public_key: bytes) -> VerifiedReceipt:
    """Check a receipt for the log entry ``entry`` (its canonical bytes) under the raw Ed25519
    ``public_key``: recompute the root from the proof, verify the signature over it. ValueError
    names what failed; the caller compares ``root`` and ``tree_size`` with a signed checkpoint."""
    import cbor2
    from pycose.messages import CoseMessage

    message = CoseMessage.decode(receipt)
    if message.phdr.get(VDS) != RFC9162_SHA256:
        raise ValueError(f"vds is {message.phdr.get(VDS)!r}, not RFC9162_SHA256 (1)")
    proofs = (message.uhdr.get(VDP) or {}).get(INCLUSION_PROOFS) or []
    if len(proofs) != 1:
        raise ValueError(f"expected one inclusion proof, found {len(proofs)}")
    tree_size, leaf_index, path = cbor2.loads(proofs[0])
    try:
        root = root_from_inclusion(leaf_index, tree_size, leaf_hash(entry), path)
    except ProofError as e:
        raise ValueError(f"the receipt's inclusion proof is malformed: {e}") from None
    message.key = _okp_key(None, public_key)
    if not message.verify_signature(detached_payload=root):
        raise ValueError("the receipt's signature does not verify over the recomputed root")
    return VerifiedReceipt(tree_size, leaf_index, root)

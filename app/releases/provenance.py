"""SLSA Provenance v1 for a released model: an in-toto Statement v1 in a DSSE envelope.

The subject is the model: its name and, as ``sha256``, model-signing's digest (the SHA-256 over
its files' digests, the subject of ``model.sig``), so a policy engine ties the provenance to the
signature; the log's Merkle root over the directory rides along as an annotation. The predicate
(https://slsa.dev/provenance/v1):

- ``buildDefinition``: ``buildType`` :data:`BUILD_TYPE`; ``externalParameters`` the job spec as
  ``job.submitted`` logged it; ``internalParameters`` what the worker added (code version,
  libraries, DP terms); ``resolvedDependencies`` every base-model file (``sha256``) and the dataset
  version (its logged root, ``rlhfAuditMerkleRoot``);
- ``runDetails``: ``builder.id`` the log's origin under :data:`BUILDER`; ``metadata.invocationId``
  the run id, ``startedOn``/``finishedOn`` from the events; ``byproducts`` the log entries this
  release rests on (each ``run.started``, ``run.completed``, the approval, ``model.released``,
  the ``keys.release_key`` entry): the entry's SHA-256 and its RFC 6962 leaf hash, the log's
  origin, the leaf index and the kind as annotations.

Signed like the evidence attestation (DSSE v1 PAE), by the release-signing key (ECDSA P-256,
DER signature), keyid :func:`app.releases.keys.key_id`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from .keys import key_id

__all__ = ["BUILDER", "BUILD_TYPE", "PAYLOAD_TYPE", "SLSA_PROVENANCE", "STATEMENT_TYPE", "LoggedEntry",
           "pae", "sign_statement", "statement"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "https://rlhf-audit-trail.dev/buildtypes/rlhf-training/v1"
BUILDER = "https://rlhf-audit-trail.dev/builder/"


class LoggedEntry:
    """One log entry a release rests on: its leaf index and its canonical bytes."""

    def __init__(self, index: int, data: bytes) -> None:
        self.index, self.data = index, data
        self.event: dict[str, Any] = json.loads(data)

    def descriptor(self, origin: str) -> dict[str, Any]:
        return {"name": f"log-entry-{self.index}",
                "digest": {"sha256": hashlib.sha256(self.data).hexdigest(),
                           "rfc6962LeafHash": hashlib.sha256(b"\x00" + self.data).hexdigest()},
                "mediaType": "application/json",
                "annotations": {"logOrigin": origin, "leafIndex": self.index,
                                "kind": self.event.get("kind", "")}}


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def _dependencies(started: list[LoggedEntry]) -> list[dict[str, Any]]:
    first = started[0].event
    deps: list[dict[str, Any]] = []
    base = first.get("base_model") or {}
    for path, digest in sorted((base.get("files") or {}).items()):
        deps.append({"name": f"base_model/{path}", "digest": {"sha256": _hex(digest)},
                     "annotations": {"baseModelRoot": base.get("root")}})
    if first.get("dataset"):
        deps.append({"name": f"dataset/{first['dataset']}/v{first.get('dataset_version')}",
                     "digest": {"rlhfAuditMerkleRoot": str(first.get("dataset_root"))}})
    code = first.get("code") if isinstance(first.get("code"), dict) else {}
    if code.get("repository") and code.get("commit"):  # SLSA's ResourceDescriptor for a git source
        deps.append({"name": "code", "uri": f"git+{code['repository']}@{code['commit']}",
                     "digest": {"gitCommit": code["commit"]},
                     **({"annotations": {"dirty": True}} if code.get("dirty") else {})})
    upstream = base.get("upstream") if isinstance(base.get("upstream"), dict) else {}
    if upstream.get("id"):  # a hub id (the base model's files are hashed above in any case)
        revision = str(upstream.get("revision") or "")
        pinned = {"digest": {"gitCommit": revision}} if re.fullmatch(r"[0-9a-f]{40}", revision) else {}
        deps.append({"name": "base_model_upstream", "uri": f"https://huggingface.co/{upstream['id']}",
                     **pinned, "annotations": {k: v for k, v in upstream.items() if v is not None}})
    return deps


def statement(*, model: str, model_digest: str, model_root: str, origin: str, run: str,
              spec: dict[str, Any] | None, started: list[LoggedEntry], completed: LoggedEntry,
              byproducts: list[LoggedEntry]) -> dict[str, Any]:
    """The in-toto Statement v1 with the SLSA Provenance v1 predicate (see the module docstring)."""
    first = started[0].event
    internal = {k: first[k] for k in ("code_version", "libraries", "dp", "config_sha256") if k in first}
    internal["segments"] = len(started)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model, "digest": {"sha256": model_digest},
                     "annotations": {"rlhfAuditRoot": model_root}}],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"run": run, "spec": spec if spec is not None else first.get("spec")},
                "internalParameters": internal,
                "resolvedDependencies": _dependencies(started),
            },
            "runDetails": {
                "builder": {"id": BUILDER + origin},
                "metadata": {"invocationId": run, "startedOn": first.get("at"),
                             "finishedOn": completed.event.get("at")},
                "byproducts": [e.descriptor(origin) for e in byproducts],
            },
        },
    }


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sign_statement(body: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> bytes:
    """The DSSE envelope (JSON) over the statement, compact sorted JSON, signed ECDSA P-256/SHA-256."""
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    signature = key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                "signatures": [{"keyid": key_id(key.public_key()),
                                "sig": base64.b64encode(signature).decode()}]}
    return json.dumps(envelope, indent=2).encode() + b"\n"

"""The OpenSSF model-signing signature of a released model, from the digests the log holds.

model-signing (``model_signing``, 1.1) signs an in-toto Statement whose predicate lists every
file of the model with its SHA-256 (the "resources") and whose one subject is the model's name
with the SHA-256 over those digests in path order. It normally hashes the directory itself; here
the manifest is built from ``run.completed``'s ``files`` ({relative path: ``sha256:<hex>``}, the
trainer's :func:`trainers.hashing.hash_directory`), so the model is hashed once, by the trainer,
and the signature's resources ARE the logged digests. The serialization recorded in the signature
is model-signing's default (``files``, ``sha256``, no symlinks), so ``model_signing verify key``
re-hashes the directory the same way and compares.

It uses model-signing's manifest and key-signer classes (some are underscored): the version is
pinned below 1.2 in ``pyproject.toml`` and the tests run the ``model_signing`` CLI over the result.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["ModelSignature", "sign_model"]


@dataclass(frozen=True)
class ModelSignature:
    bundle: bytes  # the Sigstore bundle (JSON) that `model_signing verify` reads
    digest: str  # hex SHA-256 over the resources' digests: the statement's subject
    resources: dict[str, str]  # relative path -> "sha256:<hex>", as signed


def _resources(statement: dict[str, Any]) -> dict[str, str]:
    return {r["name"]: f"{r['algorithm']}:{r['digest']}" for r in statement["predicate"]["resources"]}


def sign_model(name: str, files: dict[str, str], key: ec.EllipticCurvePrivateKey) -> ModelSignature:
    """Sign the model ``name`` whose files have the digests ``files`` (``sha256:<hex>``)."""
    from model_signing import manifest
    from model_signing._hashing.hashing import Digest
    from model_signing._signing import sign_ec_key, signing

    class _KeySigner(sign_ec_key.Signer):
        """model-signing's EC key signer over a key in memory (it reads a PEM file otherwise)."""

        def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
            sign_ec_key._check_supported_ec_key(private_key.public_key())
            self._private_key = private_key

    items = []
    for path, digest in files.items():
        algorithm, _, value = digest.partition(":")
        if algorithm != "sha256" or len(value) != 64:
            raise ValueError(f"{path}: {digest!r} is not a sha256:<hex> digest")
        items.append(manifest.FileManifestItem(path=pathlib.PurePosixPath(path),
                                               digest=Digest("sha256", bytes.fromhex(value))))
    serialization = manifest._FileSerialization("sha256", allow_symlinks=False)
    signature = _KeySigner(key).sign(signing.Payload(manifest.Manifest(name, items, serialization)))
    bundle = signature.bundle.to_json().encode()
    statement = _statement(bundle)
    signed = _resources(statement)
    if signed != files:  # what model-signing wrote is what the log says, path for path
        raise AssertionError(f"model-signing's resources differ from the logged digests: {signed} != {files}")
    return ModelSignature(bundle, statement["subject"][0]["digest"]["sha256"], signed)


def _statement(bundle: bytes) -> dict[str, Any]:
    import base64

    envelope = json.loads(bundle)["dsseEnvelope"]
    return json.loads(base64.b64decode(envelope["payload"]))  # type: ignore[no-any-return]

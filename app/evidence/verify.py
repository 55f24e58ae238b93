"""Verifying evidence bundles offline: no database, no server, only the zip and pinned keys.

The checking side of ``app.evidence`` (the format is in ``docs/evidence.md``), behind
``rlhf-audit verify-bundle``. It uses only the ledger's public checking modules (notes,
checkpoints, Merkle proofs, tlog-proof files, RFC 3161 verification) and ``cryptography``: no
writer, no database, nothing else of the app, so an auditor can run it alone.

Each check has a stable name, the same in the bundle's standalone ``verify.py``:
``archive``, ``manifest``, ``files``, ``attestation``, ``log-key``, ``checkpoints``,
``consistency``, ``timestamps``, ``entries``, ``evidence-key``, ``citations``, ``report``. A check
that cannot run because an earlier one failed is reported as failed too, so the account always
names what was not established.

``report`` (recomputing report.json from the bundle's entries) is written once, in the standalone
verifier, which needs nothing but the standard library for it: this module runs that code.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoint import Checkpoint
from ledger.errors import VerificationError
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.note import Verifier, open_note
from ledger.proofs import ConsistencyProof, b64, unb64
from ledger.timestamp_verify import verify_timestamp
from ledger.tlog_proof import parse_tlog_proof

from . import standalone_verify

__all__ = ["EVIDENCE_KEY_EVENT", "FORMAT", "BundleCheck", "BundleReport", "report_citations", "verify_bundle"]

FORMAT = "https://rlhf-audit-trail.dev/evidence-bundle"
FORMAT_VERSION = 1
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://rlhf-audit-trail.dev/evidence/v1"
UNLISTED = ("manifest.json", "attestation.dsse.json")  # the two files the manifest cannot list
_MAX_TOTAL = 4 << 30  # uncompressed bytes: refuse zip bombs before inflating anything
CHECKS = ("archive", "manifest", "files", "attestation", "log-key", "checkpoints", "consistency",
          "timestamps", "entries", "evidence-key", "citations", "report")
EVIDENCE_KEY_EVENT = "keys.evidence_key"
_CITATION = re.compile(rb"/log/v1/proof/(\d+)|entries/(\d+)\.json")


@dataclass(frozen=True)
class BundleCheck:
    name: str
    ok: bool
    detail: str


@dataclass
class BundleReport:
    """The account of a verification: every check, its outcome and warnings about trust."""

    checks: list[BundleCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    def text(self) -> str:
        lines = [f"{'OK' if c.ok else 'FAIL':<5} {c.name:<12} {c.detail}" for c in self.checks]
        lines += [f"WARN  {w}" for w in self.warnings]
        if self.ok:
            lines.append("VERIFIED: every check passed")
        else:
            lines.append(f"FAILED: {', '.join(self.failed)}")
        return "\n".join(lines) + "\n"


class _Fail(Exception):
    """One check failed; the message says why."""


@dataclass
class _Bundle:
    files: dict[str, bytes]
    manifest: dict[str, Any] = field(default_factory=dict)
    log_key: Verifier | None = None
    notes: dict[int, bytes] = field(default_factory=dict)
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    signer: bytes | None = None  # the raw evidence key the attestation verified with
    proven: set[int] = field(default_factory=set)  # entries whose inclusion verified


def _read_zip(data: bytes) -> dict[str, bytes]:
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise _Fail(f"not a zip archive: {e}") from e
    with z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise _Fail("the archive holds two members with the same name")
        for name in names:
            if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                raise _Fail(f"unsafe member name {name!r}")
        if sum(i.file_size for i in infos) > _MAX_TOTAL:
            raise _Fail("the archive inflates to more than 4 GiB")
        try:
            return {i.filename: z.read(i) for i in infos if not i.is_dir()}
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise _Fail(f"a member cannot be read: {e}") from e


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise _Fail(f"{what} is not JSON: {e}") from e


def _check_manifest(b: _Bundle) -> str:
    if "manifest.json" not in b.files:
        raise _Fail("manifest.json is missing")
    m = _json(b.files["manifest.json"], "manifest.json")
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise _Fail(f"manifest.json is not a {FORMAT} manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise _Fail(f"format version {m.get('format_version')!r} is not {FORMAT_VERSION}")
    for key, kind in (("origin", str), ("files", dict), ("checkpoints", list), ("consistency", list),
                      ("tree_size", int), ("latest_tree_size", int), ("entries", int),
                      ("checkpoint", str), ("report", list), ("scope", dict), ("created_at", str)):
        if not isinstance(m.get(key), kind):
            raise _Fail(f"manifest field {key!r} is missing or not a {kind.__name__}")
    b.manifest = m
    return (f"format v{FORMAT_VERSION}, origin {m['origin']}, scope {json.dumps(m['scope'])}, "
            f"created {m['created_at']}, {m['entries']} entries, tree size {m['tree_size']}")


def _check_files(b: _Bundle) -> str:
    listed: dict[str, str] = b.manifest["files"]
    problems = []
    for name in sorted(set(listed) - set(b.files)):
        problems.append(f"{name} is listed but missing")
    for name in sorted(set(b.files) - set(listed) - set(UNLISTED)):
        problems.append(f"{name} is in the archive but not in the manifest")
    total = 0
    for name, digest in listed.items():
        if name in b.files:
            total += len(b.files[name])
            if hashlib.sha256(b.files[name]).hexdigest() != digest:
                problems.append(f"{name} does not match its SHA-256 in the manifest")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise _Fail("; ".join(problems[:5]) + more)
    return f"{len(listed)} files match their SHA-256 in the manifest ({total:,} bytes)"


def _load_evidence_key(pem: bytes, what: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise _Fail(f"{what} is not a PEM public key: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise _Fail(f"{what} is not an Ed25519 key")
    return key


def _pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _evidence_key(b: _Bundle, pinned: bytes | None, warnings: list[str]) -> tuple[Ed25519PublicKey, str]:
    if pinned is not None:
        return _load_evidence_key(pinned, "the pinned evidence key"), "pinned"
    warnings.append("the evidence key was taken from the bundle itself: pass --evidence-key to pin it")
    key = _load_evidence_key(b.files.get("keys/evidence-key.pem", b""), "keys/evidence-key.pem")
    return key, "from the bundle"


def _open_envelope(b: _Bundle, key: Ed25519PublicKey) -> bytes:
    """The DSSE payload, once a signature over it verifies with ``key``."""
    if "attestation.dsse.json" not in b.files:
        raise _Fail("attestation.dsse.json is missing")
    env = _json(b.files["attestation.dsse.json"], "attestation.dsse.json")
    if not isinstance(env, dict) or env.get("payloadType") != PAYLOAD_TYPE:
        raise _Fail(f"the DSSE envelope's payloadType is not {PAYLOAD_TYPE}")
    try:
        payload = unb64(str(env.get("payload", "")))
        sigs = [unb64(str(s.get("sig", ""))) for s in env.get("signatures", []) if isinstance(s, dict)]
    except VerificationError as e:
        raise _Fail(f"the DSSE envelope is malformed: {e}") from e
    for sig in sigs:
        try:
            key.verify(sig, _pae(PAYLOAD_TYPE, payload))
            return payload
        except InvalidSignature:
            continue
    raise _Fail("no DSSE signature verifies with the evidence key (payload or signature altered)")


def _check_attestation(b: _Bundle, pinned: bytes | None, warnings: list[str]) -> str:
    key, source = _evidence_key(b, pinned, warnings)
    st = _json(_open_envelope(b, key), "the DSSE payload")
    if not isinstance(st, dict) or st.get("_type") != STATEMENT_TYPE or \
            st.get("predicateType") != PREDICATE_TYPE:
        raise _Fail("the DSSE payload is not an in-toto Statement v1 of the evidence predicate")
    subjects = {str(s.get("name")): (s.get("digest") or {}).get("sha256")
                for s in st.get("subject", []) if isinstance(s, dict)}
    for name in ["manifest.json", *b.manifest["report"]]:
        if name not in subjects:
            raise _Fail(f"the Statement has no subject {name}")
        if name not in b.files or hashlib.sha256(b.files[name]).hexdigest() != subjects[name]:
            raise _Fail(f"{name} does not match the SHA-256 the signed Statement gives it")
    pred = st.get("predicate") or {}
    for key_name in ("origin", "tree_size", "scope", "entries"):
        if pred.get(key_name) != b.manifest.get(key_name):
            raise _Fail(f"the signed predicate's {key_name} differs from the manifest's")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    b.signer = raw
    return (f"DSSE signature by evidence key {hashlib.sha256(raw).hexdigest()[:16]}… ({source}); "
            f"subjects {', '.join(sorted(subjects))} match")


def _check_log_key(b: _Bundle, pinned: str | None, warnings: list[str]) -> str:
    inside = b.files.get("keys/log.vkey", b"").decode("utf-8", "replace").strip()
    try:
        if pinned is not None:
            key = Verifier.from_vkey(pinned)
            if inside and inside != key.vkey:
                raise _Fail(f"the bundle's keys/log.vkey ({inside[:40]}…) is not the pinned key")
            source = "pinned"
        else:
            key = Verifier.from_vkey(inside)
            source = "from the bundle"
            warnings.append("the log key was taken from the bundle itself: pin it with --log-key "
                            "(get it from the operator out of band)")
    except VerificationError as e:
        raise _Fail(f"unusable log key: {e}") from e
    if key.name != b.manifest["origin"]:
        raise _Fail(f"the log key is named {key.name!r}, the manifest's origin is {b.manifest['origin']!r}")
    b.log_key = key
    return f"{key.vkey} ({source})"


def _check_checkpoints(b: _Bundle) -> str:
    if b.log_key is None:
        raise _Fail("not checked: no usable log key")
    sizes = []
    for c in b.manifest["checkpoints"]:
        path = str(c.get("note"))
        if path not in b.files:
            raise _Fail(f"{path} is missing")
        try:
            cp = Checkpoint.parse(open_note(b.files[path], [b.log_key]).text)
        except VerificationError as e:
            raise _Fail(f"{path}: {e}") from e
        if cp.origin != b.manifest["origin"] or cp.size != c.get("size") or \
                b64(cp.root_hash) != c.get("root_hash"):
            raise _Fail(f"{path} does not say what the manifest says (origin, size or root)")
        b.notes[cp.size] = b.files[path]
        b.checkpoints[cp.size] = cp
        sizes.append(f"{cp.size} (root {b64(cp.root_hash)[:12]}…)")
    for key in ("tree_size", "latest_tree_size"):
        if b.manifest[key] not in b.checkpoints:
            raise _Fail(f"no signed checkpoint of the manifest's {key} {b.manifest[key]}")
    return f"signed by {b.log_key.name}: sizes {', '.join(sizes)}"


def _check_consistency(b: _Bundle) -> str:
    first, last = b.manifest["tree_size"], b.manifest["latest_tree_size"]
    if first not in b.checkpoints or last not in b.checkpoints:
        raise _Fail("not checked: the checkpoints did not verify")
    if first == last:
        return f"the proofs' checkpoint {first} is the newest: nothing to prove"
    items = [c for c in b.manifest["consistency"] if c.get("first") == first and c.get("second") == last]
    if not items or str(items[0].get("proof")) not in b.files:
        raise _Fail(f"no consistency proof from {first} to {last}")
    path = str(items[0]["proof"])
    try:
        proof = ConsistencyProof.from_json(_json(b.files[path], path))
        if (proof.first, proof.second) != (first, last):
            raise _Fail(f"{path} is a proof from {proof.first} to {proof.second}")
        proof.verify(b.checkpoints[first].root_hash, b.checkpoints[last].root_hash)
    except VerificationError as e:
        raise _Fail(f"{path}: {e}") from e
    return f"tree {first} is a prefix of tree {last} ({len(proof.hashes)} hashes)"


def _split_chain(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem) if pem.strip() else []
    except ValueError as e:
        raise _Fail(f"unreadable TSA certificate: {e}") from e


def _check_timestamps(b: _Bundle, roots_pem: Sequence[bytes], warnings: list[str],
                      allow_untimestamped: bool = False) -> str:
    chain = _split_chain(b.files.get("keys/tsa-chain.pem", b""))
    if roots_pem:
        roots = [c for pem in roots_pem for c in _split_chain(pem)]
        source = "pinned root"
    else:
        roots = [c for c in chain if c.subject == c.issuer]
        source = "root from the bundle"
        warnings.append("the TSA root was taken from the bundle itself: pin it with --tsa-root")
    intermediates = [c for c in chain if c.subject != c.issuer]
    out, unstamped = [], []
    for c in b.manifest["checkpoints"]:
        size, path = c.get("size"), c.get("timestamp")
        if path is None:
            unstamped.append(f"checkpoint {size} carries no RFC 3161 timestamp")
            continue
        if str(path) not in b.files or size not in b.notes:
            raise _Fail(f"{path} or its checkpoint is missing")
        if not roots:
            raise _Fail("no TSA root certificate: pass --tsa-root (the bundle's chain has none)")
        try:
            info = verify_timestamp(b.files[str(path)], b.notes[size], roots=roots,
                                    intermediates=intermediates)
        except VerificationError as e:
            raise _Fail(f"{path}: {e}") from e
        out.append(f"checkpoint {size} at {info.gen_time.isoformat()} by {info.tsa_name or c.get('tsa')}")
    if unstamped and not allow_untimestamped:
        raise _Fail("; ".join(unstamped) + ": nothing dates it (pass --allow-untimestamped to accept that)")
    warnings += [f"{u}: accepted with --allow-untimestamped, so nothing dates it" for u in unstamped]
    if not out:
        return "no timestamps in the bundle (allowed with --allow-untimestamped)"
    return "; ".join(out) + f" ({source}: {roots[0].subject.rfc4514_string()})"


def _check_entries(b: _Bundle) -> str:
    size = b.manifest["tree_size"]
    if size not in b.checkpoints:
        raise _Fail("not checked: the proofs' checkpoint did not verify")
    cp, note = b.checkpoints[size], b.notes[size]
    names = [n for n in b.files if n.startswith("entries/")]
    indices = []
    for name in names:
        stem = name[len("entries/"):].removesuffix(".json")
        if not name.endswith(".json") or not stem.isdigit() or (stem != "0" and stem.startswith("0")):
            raise _Fail(f"{name} is not named entries/<index>.json")
        indices.append(int(stem))
    if len(indices) != b.manifest["entries"]:
        raise _Fail(f"{len(indices)} entry files, the manifest says {b.manifest['entries']}")
    for index in sorted(indices):
        path = f"proofs/{index}.tlog-proof"
        if path not in b.files:
            raise _Fail(f"entry {index} has no {path}")
        try:
            at, hashes, proof_note = parse_tlog_proof(b.files[path])
            if at != index:
                raise _Fail(f"{path} proves entry {at}, not {index}")
            if proof_note != note:
                raise _Fail(f"{path} is against another checkpoint than checkpoints/{size}.note")
            verify_inclusion(index, size, leaf_hash(b.files[f"entries/{index}.json"]), hashes, cp.root_hash)
        except VerificationError as e:
            raise _Fail(f"entry {index}: {e}") from e
    b.proven = set(indices)
    span = f"indices {min(indices)}..{max(indices)}" if indices else "none"
    return f"{len(indices)} entries are in checkpoint {size} ({span})"


def _check_evidence_key(b: _Bundle, warnings: list[str]) -> str:
    """The attestation's key is the one a ``keys.evidence_key`` entry in the bundle records,
    proven on the log below the bundle's tree size."""
    at = b.manifest.get("evidence_key_entry")
    if at is None:
        warnings.append("the evidence key is not bound to the log: the bundle carries no "
                        f"{EVIDENCE_KEY_EVENT} entry (a bundle made before keys were recorded on the log)")
        return "not bound to the log: the bundle names no keys.evidence_key entry"
    if b.signer is None:
        raise _Fail("not checked: the attestation did not verify")
    size = b.manifest["tree_size"]
    if type(at) is not int or not 0 <= at < size:
        raise _Fail(f"evidence_key_entry {at!r} is not a leaf index below the tree size {size}")
    if at not in b.proven:
        raise _Fail(f"not checked: the evidence key's entry {at} is not in the bundle with a verified proof")
    event = _json(b.files[f"entries/{at}.json"], f"entries/{at}.json")
    kid = hashlib.sha256(b.signer).hexdigest()
    if not isinstance(event, dict) or event.get("kind") != EVIDENCE_KEY_EVENT:
        raise _Fail(f"entry {at} is not a {EVIDENCE_KEY_EVENT} event")
    recorded = _load_evidence_key(str(event.get("key", "")).encode(), f"the key of entry {at}")
    raw = recorded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if raw != b.signer or event.get("key_id") != kid:
        raise _Fail(f"the attestation was signed by key {kid[:16]}…, not by the key the log records at "
                    f"entry {at} ({str(event.get('key_id'))[:16]}…)")
    return f"the attestation's key {kid[:16]}… is the one the log records at entry {at}"


def report_citations(files: dict[str, bytes], members: Sequence[str]) -> set[int]:
    """The leaf indices the report members cite: every link to an entry (``entries/N.json``,
    ``/log/v1/proof/N``) and every integer in an ``entries`` list of a JSON member."""
    out: set[int] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "entries" and isinstance(value, list):
                    out.update(v for v in value if type(v) is int)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in members:
        data = files.get(name, b"")
        out.update(int(a or c) for a, c in _CITATION.findall(data))
        if name.endswith(".json"):
            walk(_json(data, name))
    return out


def _check_citations(b: _Bundle) -> str:
    size = b.manifest["tree_size"]
    cited = report_citations(b.files, [str(n) for n in b.manifest["report"]])
    beyond = [i for i in sorted(cited) if i >= size]
    absent = [i for i in sorted(cited) if i < size and f"entries/{i}.json" not in b.files]
    problems = ([f"#{i} lies at or beyond the tree size {size}" for i in beyond]
                + [f"#{i} is not in the bundle" for i in absent])
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise _Fail("the report cites " + "; ".join(problems[:5]) + more)
    return f"the {len(cited)} entries the report cites are in the bundle, below tree size {size}"


def _check_report(b: _Bundle) -> str:
    try:
        return str(standalone_verify.check_report(b.files, b.manifest, b.proven))
    except standalone_verify.Fail as e:
        raise _Fail(str(e)) from e


def verify_bundle(data: bytes, *, log_key: str | None = None, tsa_roots: Sequence[bytes] = (),
                  evidence_key: bytes | None = None, allow_untimestamped: bool = False) -> BundleReport:
    """Check an evidence bundle (zip bytes) and return the account of every check.

    ``log_key`` (a C2SP verifier key string), ``tsa_roots`` (PEM) and ``evidence_key`` (SPKI PEM)
    pin trust; without them the copies inside the bundle are used and a warning says so. A
    checkpoint without an RFC 3161 timestamp fails ``timestamps`` unless ``allow_untimestamped``,
    which makes it a warning.
    """
    report = BundleReport()
    try:
        files = _read_zip(data)
        report.checks.append(BundleCheck("archive", True, f"{len(files)} members, {len(data):,} bytes"))
    except _Fail as e:
        report.checks.append(BundleCheck("archive", False, str(e)))
        return report
    b = _Bundle(files)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("manifest", lambda: _check_manifest(b)),
        ("files", lambda: _check_files(b)),
        ("attestation", lambda: _check_attestation(b, evidence_key, report.warnings)),
        ("log-key", lambda: _check_log_key(b, log_key, report.warnings)),
        ("checkpoints", lambda: _check_checkpoints(b)),
        ("consistency", lambda: _check_consistency(b)),
        ("timestamps", lambda: _check_timestamps(b, tsa_roots, report.warnings, allow_untimestamped)),
        ("entries", lambda: _check_entries(b)),
        ("evidence-key", lambda: _check_evidence_key(b, report.warnings)),
        ("citations", lambda: _check_citations(b)),
        ("report", lambda: _check_report(b)),
    ]
    for name, step in steps:
        try:
            report.checks.append(BundleCheck(name, True, step()))
        except _Fail as e:
            report.checks.append(BundleCheck(name, False, str(e)))
            if name == "manifest":
                report.checks += [BundleCheck(n, False, "not checked: the manifest is unusable")
                                  for n, _ in steps[1:]]
                break
        except (KeyError, TypeError, AttributeError, ValueError) as e:  # a malformed manifest value
            report.checks.append(BundleCheck(name, False, f"malformed bundle: {type(e).__name__}: {e}"))
    return report

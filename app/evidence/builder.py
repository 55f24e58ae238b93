"""Building an evidence bundle: one zip an auditor takes away and checks with nothing of ours.

The layout is specified byte for byte in ``docs/evidence.md``; in short::

    manifest.json              format, origin, scope, sizes, SHA-256 of every other file
    attestation.dsse.json      DSSE envelope: in-toto Statement over manifest.json and the report
    entries/<index>.json       each entry's canonical bytes, exactly as on the log
    proofs/<index>.tlog-proof  C2SP tlog-proof of that entry against checkpoints/<N>.note
    checkpoints/<size>.note    the signed checkpoints (the proofs' one, and the newest)
    consistency/<N>-<M>.json   RFC 9162 consistency proof from the proofs' checkpoint to the newest
    timestamps/<size>.tsr      each checkpoint's RFC 3161 TimeStampResp (DER)
    keys/log.vkey              the log's C2SP verifier key
    keys/tsa-chain.pem         the TSA certificate chain, signer first
    keys/evidence-key.pem      the operator's evidence-signing key (Ed25519, SPKI PEM)
    report.json .html .pdf     the compliance report for the scope, its links pointing into the bundle
    verify.py  README.md       the standalone verifier and the auditor's instructions

Besides the scope's entries the bundle holds the ``keys.evidence_key`` entry that puts the
attestation's key on the log (recorded here the first time a key signs a bundle) and every entry
the report cites. All proofs go to ONE checkpoint, the first that covers every entry in the
bundle, so one timestamp dates them all; a consistency proof then ties it to the newest
checkpoint at build time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import pem  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import NotFound
from ledger.log import Log, SignedCheckpoint
from ledger.timestamping import LocalTSAClient, token_certificates
from ledger.tlog_proof import format_tlog_proof

from ..compliance.reports import Report, build_report
from ..core.database import Database
from ..core.settings import Settings
from ..events.index import EventIndex
from ..events.recording import SYSTEM, Actor, record
from ..objects import ObjectStore, Stored
from . import dsse
from .scope import Scope, select
from .verify import EVIDENCE_KEY_EVENT, report_citations

__all__ = ["EVIDENCE_KEY_EVENT", "FORMAT", "FORMAT_VERSION", "Bundle", "build_bundle", "record_evidence_key"]

FORMAT = "https://rlhf-audit-trail.dev/evidence-bundle"
FORMAT_VERSION = 1
_HERE = Path(__file__).resolve().parent
# What a report links to on the server, and what the same thing is called inside the bundle.
_SERVER_LINK = re.compile(rb"/log/v1/(?:proof/(\d+|&lt;index&gt;|<index>)|checkpoints/(\d+)(/timestamp)?)")


@dataclass(frozen=True)
class Bundle:
    """A built bundle: the zip's bytes and what the ``bundle.created`` event says about it."""

    data: bytes
    scope: Scope
    manifest_sha256: str
    entries: int
    tree_size: int
    latest_tree_size: int
    created_at: str
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, for benchmarks
    stored: Stored | None = None  # the zip as archived in the object store, when one was given

    @property
    def filename(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.scope.label())
        return f"evidence-{safe}-{self.tree_size}.zip"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _timestamp(log: Log, size: int) -> tuple[str, bytes] | None:
    """(TSA name, TimeStampResp) for a checkpoint, the configured TSAs first; None if unstamped."""
    stamps = await log.timestamp_responses(size)
    for tsa in log.tsas:
        if tsa.name in stamps:
            return tsa.name, stamps[tsa.name]
    return next(iter(sorted(stamps.items())), None)


def _tsa_chain(log: Log, responses: Sequence[bytes]) -> bytes:
    """The local TSA's chain (ending in its root), else the certificates the tokens embed."""
    for tsa in log.tsas:
        if isinstance(tsa, LocalTSAClient):
            return tsa.tsa.chain_pem()
    seen: dict[bytes, None] = {}
    for response in responses:
        for der in token_certificates(response):
            seen[der] = None
    return b"".join(pem.armor("CERTIFICATE", der) for der in seen)


async def record_evidence_key(log: Log, index: EventIndex, key: Ed25519PrivateKey) -> int:
    """The leaf index of the first ``keys.evidence_key`` event naming ``key``; recorded (by the
    system) when the log has none, e.g. for a new home's key or a replaced one (a rotation).

    :func:`build_bundle` calls it; recorded earlier, when the key is set up, the event does not
    push a bundle's proofs to the checkpoint that first holds it."""
    pem, kid = dsse.public_key_pem(key.public_key()).decode(), dsse.key_id(key.public_key())
    found = await index.first(EVIDENCE_KEY_EVENT, key_id=kid, key=pem)
    if found is not None:
        return found.index
    return (await record(log, EVIDENCE_KEY_EVENT, SYSTEM, key=pem, key_id=kid)).leaf_index


def _bundle_links(data: bytes, files: dict[str, bytes]) -> bytes:
    """The report's server links as the bundle's member names, so they work in an unzipped bundle:
    ``/log/v1/proof/N`` is ``entries/N.json`` (its proof beside it), the prose's
    ``/log/v1/proof/<index>`` is ``proofs/<index>.tlog-proof``, a checkpoint and its timestamp
    their files (left as they are if the bundle has no such file)."""
    def inside(m: re.Match[bytes]) -> bytes:
        if m[1] is not None:  # an entry, or the pattern the report's prose names
            return b"entries/%s.json" % m[1] if m[1].isdigit() else b"proofs/%s.tlog-proof" % m[1]
        name = f"timestamps/{int(m[2])}.tsr" if m[3] else f"checkpoints/{int(m[2])}.note"
        return name.encode() if name in files else m[0]

    return _SERVER_LINK.sub(inside, data)


async def _cited(log: Log, report: dict[str, bytes], size: int,
                 entries: dict[int, bytes]) -> dict[int, bytes]:
    """The entries the report cites that are not in ``entries`` yet, so that every citation can be
    checked inside the bundle."""
    cited = report_citations(report, list(report))  # as the verifiers will read them
    beyond = sorted(i for i in cited if i >= size)
    if beyond:  # the report is built at the bundle's tree size: a rule citing past it is a bug there
        raise RuntimeError(f"the report cites entries {beyond} at or beyond the bundle's tree size {size}")
    return await log.entries_at(sorted(cited - set(entries)))


async def _report(db: Database, log: Log, index: EventIndex, scope: Scope,
                  tree_size: int, settings: Settings) -> tuple[Report, dict[str, bytes]]:
    """The compliance report for the scope, over the tree the proofs are against (so it cites
    nothing beyond it), and its text files (the PDF comes once the links are known: :func:`_pdf`)."""
    report = await build_report(db, log, index, scope, tree_size=tree_size, settings=settings)
    return report, {"report.json": report.json_bytes(), "report.html": report.html_bytes()}


def _pdf(report: Report, bundled_json: bytes) -> bytes:
    """The report's PDF, rendered from the data of the bundle's ``report.json``, whose links
    already point into the bundle: a PDF's links cannot be rewritten in its bytes."""
    return replace(report, data=json.loads(bundled_json)).render("pdf")


def _readme(values: dict[str, str]) -> bytes:
    text = (_HERE / "README_bundle.md").read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text.encode()


def _zip(files: dict[str, bytes], when: datetime) -> bytes:
    """The archive. Small members (entries, proofs: mostly hashes, which do not compress) are
    stored; deflating 20,000 of them would cost four times as long as the rest of the zip."""
    buf = io.BytesIO()
    stamp = when.timetuple()[:6]
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED if len(data) > 16384 else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


def _manifest(log: Log, scope: Scope, created_at: str, cp: SignedCheckpoint, latest: SignedCheckpoint,
              stamps: dict[int, tuple[str, bytes] | None], count: int, files: dict[str, bytes],
              report: list[str], key_entry: int) -> bytes:
    checkpoints = []
    for c in (cp, latest) if latest.size != cp.size else (cp,):
        stamp = stamps[c.size]
        checkpoints.append({
            "size": c.size,
            "root_hash": base64.b64encode(c.checkpoint.root_hash).decode(),
            "note": f"checkpoints/{c.size}.note",
            "timestamp": f"timestamps/{c.size}.tsr" if stamp else None,
            "tsa": stamp[0] if stamp else None,
        })
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "origin": log.origin,
        "scope": scope.to_json(),
        "created_at": created_at,
        "tree_size": cp.size,
        "latest_tree_size": latest.size,
        "checkpoint": f"checkpoints/{cp.size}.note",
        "checkpoints": checkpoints,
        "consistency": [] if latest.size == cp.size else [{
            "first": cp.size, "second": latest.size,
            "proof": f"consistency/{cp.size}-{latest.size}.json"}],
        "entries": count,
        "evidence_key_entry": key_entry,
        "report": report,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    return json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"


async def build_bundle(db: Database, log: Log, scope: Scope, *, evidence_key: Ed25519PrivateKey,
                       actor: Actor = SYSTEM, record_event: bool = True,
                       index: EventIndex | None = None, objects: ObjectStore | None = None,
                       settings: Settings) -> Bundle:
    """Build the bundle for ``scope`` from the log as it is now, and record ``bundle.created``;
    its compliance report is evaluated under the caller's ``settings``.

    With ``objects`` the zip is archived first (``evidence/bundles/<name>-<sha256 prefix>.zip``,
    write-once on a locked bucket) and the event carries its key and SHA-256, so the archived
    copy can be checked against the log (``rlhf-audit verify``).

    Raises NotFound when the scope names nothing on the log or nothing is checkpointed yet.
    """
    await log.integrate()  # everything sequenced so far gets into a checkpoint
    latest = await log.latest_checkpoint()
    if latest is None:
        raise NotFound("the log has published no checkpoint yet")
    index = index or EventIndex(db, log)
    clock = [time.perf_counter()]
    timings: dict[str, float] = {}

    def lap(phase: str) -> None:
        clock.append(time.perf_counter())
        timings[phase] = clock[-1] - clock[-2]

    entries = await select(log, scope, latest.size, index)
    key_entry = await record_evidence_key(log, index, evidence_key)
    if key_entry >= latest.size:  # just recorded: into a checkpoint with it
        await log.integrate()
        latest = await log.latest_checkpoint()
        assert latest is not None and key_entry < latest.size
    if key_entry not in entries:
        entries[key_entry] = await log.entry(key_entry)
    lap("select")
    cp = await log.checkpoint_covering(max(entries))
    built_report, report = await _report(db, log, index, scope, cp.size, settings)
    lap("report")
    entries.update(await _cited(log, report, cp.size, entries))
    indices = sorted(entries)
    sizes = sorted({cp.size, latest.size})
    stamps = {s: await _timestamp(log, s) for s in sizes}
    if log.tsas and None in stamps.values():  # timestamping runs behind integration: catch up
        await log.timestamp_pending(force=True)
        stamps = {s: await _timestamp(log, s) for s in sizes}

    proofs = await log.inclusion_proofs(indices, cp.size)
    lap("proofs")
    created_at = _now()
    files: dict[str, bytes] = {}
    files["keys/log.vkey"] = (log.signer.verifier.vkey + "\n").encode()
    files["keys/tsa-chain.pem"] = _tsa_chain(log, [s[1] for s in stamps.values() if s])
    files["keys/evidence-key.pem"] = dsse.public_key_pem(evidence_key.public_key())
    for c in (cp, latest) if latest.size != cp.size else (cp,):
        files[f"checkpoints/{c.size}.note"] = c.note
        stamp = stamps[c.size]
        if stamp is not None:
            files[f"timestamps/{c.size}.tsr"] = stamp[1]
    if latest.size != cp.size:
        proof = await log.consistency_proof(cp.size, latest.size)
        files[f"consistency/{cp.size}-{latest.size}.json"] = json.dumps(proof.to_json()).encode() + b"\n"
    for i, proof in zip(indices, proofs, strict=True):
        files[f"entries/{i}.json"] = entries[i]
        files[f"proofs/{i}.tlog-proof"] = format_tlog_proof(i, proof, cp.note)
    report = {name: _bundle_links(data, files) for name, data in report.items()}
    lap("files")
    report["report.pdf"] = await asyncio.to_thread(_pdf, built_report, report["report.json"])
    files.update(report)
    lap("pdf")
    files["verify.py"] = (_HERE / "standalone_verify.py").read_bytes()
    files["README.md"] = _readme({
        "origin": log.origin, "scope": json.dumps(scope.to_json()), "created_at": created_at,
        "entries": str(len(indices)), "tree_size": str(cp.size), "latest_tree_size": str(latest.size),
        "log_vkey": log.signer.verifier.vkey, "evidence_key_id": dsse.key_id(evidence_key.public_key()),
    })
    manifest = _manifest(log, scope, created_at, cp, latest, stamps, len(indices), files, list(report),
                         key_entry)
    predicate = {
        "origin": log.origin, "scope": scope.to_json(), "created_at": created_at,
        "tree_size": cp.size, "latest_tree_size": latest.size, "entries": len(indices),
        "log_vkey": log.signer.verifier.vkey,
        "checkpoint_root_hash": base64.b64encode(cp.checkpoint.root_hash).decode(),
    }
    subjects = {"manifest.json": manifest, **report}
    envelope = dsse.sign_envelope(dsse.statement(subjects, predicate), evidence_key)
    data = _zip({"manifest.json": manifest, "attestation.dsse.json": envelope, **files},
                datetime.now(UTC))
    lap("zip")
    bundle = Bundle(data, scope, hashlib.sha256(manifest).hexdigest(), len(indices), cp.size,
                    latest.size, created_at, timings)
    if objects is not None:
        stem = bundle.filename.removesuffix(".zip")
        key = f"evidence/bundles/{stem}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
        bundle = replace(bundle, stored=await asyncio.to_thread(objects.put_bytes, key, data))
    if record_event:
        archived = {"object_key": bundle.stored.key, "sha256": bundle.stored.sha256} if bundle.stored else {}
        await record(log, "bundle.created", actor, scope=scope.to_json(),
                     manifest_sha256="sha256:" + bundle.manifest_sha256, entries=bundle.entries,
                     tree_size=bundle.tree_size, **archived)
    return bundle


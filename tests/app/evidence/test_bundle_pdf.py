"""The report's PDF is in the bundle (issue 16): ``report.pdf``, rendered by the compliance
package from the same report as ``report.json``/``report.html``, its links pointing into the
bundle; listed in the manifest with its SHA-256, a subject of the attestation, and checked by both
verifiers, so one changed byte fails them."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypdf import PdfReader

from app.core.database import Database
from app.core.settings import Settings
from app.evidence.builder import build_bundle
from app.evidence.scope import Scope
from app.evidence.verify import verify_bundle
from ledger._internal.local_tsa import LocalTSA
from ledger.log import Log
from tests.app.evidence.test_bundle_tamper import rezip
from tests.support.evidence import members, pins, standalone, write_story


def _links(pdf: bytes) -> list[str]:
    """Every URI a link annotation of the PDF points to."""
    out = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for annot in page.get("/Annots") or []:
            action = annot.get_object().get("/A")
            if action is not None and "/URI" in action:
                out.append(str(action["/URI"]))
    return out


async def test_the_bundle_carries_the_report_as_pdf(db: Database, log: Log, local_tsa: LocalTSA,
                                                    tmp_path: Path) -> None:
    await write_story(log)
    key = Ed25519PrivateKey.generate()
    built = await build_bundle(db, log, Scope("run", run="run_a"), evidence_key=key, settings=Settings.load())
    files = members(built.data)
    pdf = files["report.pdf"]
    assert pdf.startswith(b"%PDF-") and len(PdfReader(io.BytesIO(pdf)).pages) >= 1
    manifest = json.loads(files["manifest.json"])
    assert manifest["files"]["report.pdf"] == hashlib.sha256(pdf).hexdigest()
    assert manifest["report"] == ["report.json", "report.html", "report.pdf"]
    statement = json.loads(base64.b64decode(json.loads(files["attestation.dsse.json"])["payload"]))
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects["report.pdf"] == hashlib.sha256(pdf).hexdigest()
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "run_a" in text  # the same report: its scope
    assert not [u for u in _links(pdf) if "/log/v1/" in u]  # links lead into the bundle, not to a server

    p = pins(tmp_path, log, local_tsa, key)
    report = verify_bundle(built.data, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
    assert report.ok, report.text()
    proc = standalone(tmp_path, built.data, *p.files)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    files["report.pdf"] = pdf[:-40] + bytes([pdf[-40] ^ 1]) + pdf[-39:]  # one byte changed
    changed = rezip(files)
    report = verify_bundle(changed, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
    assert "files" in report.failed and "report.pdf" in report.text(), report.text()
    proc = standalone(tmp_path, changed, *p.files)
    assert proc.returncode == 1 and "FAIL  files" in proc.stdout and "report.pdf" in proc.stdout, proc.stdout

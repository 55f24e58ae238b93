#!/usr/bin/env python3
"""Standalone verifier for RLHF Audit Trail evidence bundles.

Needs only Python 3.11+ and the `cryptography` package (pip install cryptography): no code of
the product that wrote the bundle. It re-implements, from the public specifications:

- RFC 6962 / RFC 9162 Merkle inclusion and consistency proof verification;
- C2SP signed notes (Ed25519) and checkpoints, C2SP tlog-proof files;
- DSSE v1 (PAE) signature verification of the in-toto Statement;
- RFC 3161 timestamps: the message imprint (SHA-256 of the exact signed checkpoint bytes), the
  CMS SignerInfo signature over the signed attributes with the TSA certificate, the
  messageDigest attribute, the TSA certificate's timeStamping usage and validity at genTime,
  and its chain to a root. Also run `openssl ts -verify` (see README.md) for a second opinion.

It also checks that the key which signed the attestation is the one the log records (the
bundle's keys.evidence_key entry, proven below its tree size) and that every entry the report
cites is in the bundle, below its tree size; and it recomputes from the bundle's entries what
report.json states about them (check "report": each run's epsilon, delta and unit, the oversight
register, approvals before release, dataset roots, incident freezes, one tree size), so an edited
report fails even when re-signed with the evidence key.

A checkpoint without a timestamp fails unless --allow-untimestamped makes it a warning.

Usage:
    python verify.py BUNDLE.zip [--log-key VKEY|FILE] [--tsa-root PEM] [--evidence-key PEM]
                     [--allow-untimestamped]

Exit status 0 when every check passes, 1 when any fails (the account names which), 2 on usage,
including a pinned key that is empty, unreadable or not a key: a pin is never skipped.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
import sys
import zipfile
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

FORMAT = "https://rlhf-audit-trail.dev/evidence-bundle"
FORMAT_VERSION = 1
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://rlhf-audit-trail.dev/evidence/v1"
UNLISTED = ("manifest.json", "attestation.dsse.json")
EVIDENCE_KEY_EVENT = "keys.evidence_key"
CITATION = re.compile(rb"/log/v1/proof/(\d+)|entries/(\d+)\.json")
TLOG_PROOF_HEADER = b"c2sp.org/tlog-proof@v1"
DASH = "\u2014 ".encode()


class Fail(Exception):
    """One check failed."""


def b64d(s, what):
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise Fail(f"{what} is not standard padded base64") from e


def sha256(data):
    return hashlib.sha256(data).digest()


# -- RFC 6962 / RFC 9162 -------------------------------------------------------------------------

def leaf_hash(entry):
    return sha256(b"\x00" + entry)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        raise Fail(f"leaf index {index} is not in a tree of size {size}")
    if any(len(h) != 32 for h in proof):
        raise Fail("a proof hash is not 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Fail("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Fail("inclusion proof is shorter than the tree is deep")
    if r != root:
        raise Fail("inclusion proof does not lead to the checkpoint's root hash")


def verify_consistency(first, second, proof, first_root, second_root):  # noqa: C901 (RFC 9162)
    """RFC 9162 section 2.1.4.2."""
    if not 0 < first <= second:
        raise Fail(f"no consistency proof from size {first} to size {second}")
    if first == second:
        if proof or first_root != second_root:
            raise Fail("equal sizes need an empty proof and equal roots")
        return
    if not proof or any(len(h) != 32 for h in proof):
        raise Fail("consistency proof is empty or has a hash that is not 32 bytes")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Fail("consistency proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Fail("consistency proof is shorter than needed")
    if fr != first_root or sr != second_root:
        raise Fail("consistency proof does not lead to both checkpoints' roots")


# -- C2SP signed notes, checkpoints, tlog-proof ----------------------------------------------------

class NoteKey:
    """A C2SP verifier key: <name>+<hex key ID>+<base64(0x01 || Ed25519 public key)>."""

    def __init__(self, vkey):
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or len(parts[1]) != 8:
            raise Fail("a verifier key reads <name>+<8 hex digits>+<base64 key>")
        self.name, hex_id, b64 = parts
        raw = b64d(b64, "the verifier key")
        if len(raw) != 33 or raw[0] != 0x01:
            raise Fail("the verifier key is not an Ed25519 key")
        self.raw = raw[1:]
        self.key_id = sha256(self.name.encode() + b"\n\x01" + self.raw)[:4]
        if self.key_id.hex() != hex_id.lower():
            raise Fail("the verifier key's ID does not match its name and key")
        self.vkey = vkey.strip()
        self.key = ed25519.Ed25519PublicKey.from_public_bytes(self.raw)


def open_note(note, key):
    """The note's text, if a signature line from ``key`` verifies over it (C2SP signed-note)."""
    try:
        note.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Fail("the note is not UTF-8") from e
    split = note.rfind(b"\n\n")
    if split < 0 or not note.endswith(b"\n"):
        raise Fail("the note has no signature block")
    text, lines = note[: split + 1], note[split + 2 : -1].split(b"\n")
    good = False
    for line in lines:
        if not line.startswith(DASH):
            raise Fail("malformed signature line")
        name, _, b64 = line[len(DASH):].decode("utf-8", "replace").partition(" ")
        raw = b64d(b64, "a note signature")
        if name != key.name or raw[:4] != key.key_id:
            continue  # another key's signature (a witness, say): ignored, as the spec says
        try:
            key.key.verify(raw[4:], text)
            good = True
        except InvalidSignature as e:
            raise Fail(f"the signature of {key.name} does not verify") from e
    if not good:
        raise Fail(f"the note carries no signature of {key.name}")
    return text


def parse_checkpoint(text):
    lines = text.decode("utf-8").split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise Fail("a checkpoint needs an origin, a size and a root hash")
    origin, size, root = lines[0], lines[1], lines[2]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise Fail("the checkpoint size is not a decimal number")
    return origin, int(size), b64d(root, "the checkpoint root")


def parse_tlog_proof(text):
    head, sep, note = text.partition(b"\n\n")
    lines = head.split(b"\n")
    if not sep or lines[0] != TLOG_PROOF_HEADER:
        raise Fail("not a c2sp.org/tlog-proof@v1 file")
    rest = lines[1:]
    if rest and rest[0].startswith(b"extra "):
        rest = rest[1:]
    if not rest or not rest[0].startswith(b"index ") or not rest[0][6:].isdigit():
        raise Fail("the tlog-proof has no 'index <N>' line")
    return int(rest[0][6:]), [b64d(h, "a proof hash") for h in rest[1:]], note


# -- a minimal DER reader and RFC 3161 -----------------------------------------------------------

def tlv(data, pos=0):
    """(tag, content start, content end) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise Fail("truncated DER")
    tag, length, pos = data[pos], data[pos + 1], pos + 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise Fail("unsupported DER length")
        length, pos = int.from_bytes(data[pos : pos + n], "big"), pos + n
    if pos + length > len(data):
        raise Fail("truncated DER")
    return tag, pos, pos + length


def children(data, start, end):
    """The (tag, start, end, raw element) of each element inside [start, end)."""
    out, pos = [], start
    while pos < end:
        tag, s, e = tlv(data, pos)
        out.append((tag, s, e, data[pos:e]))
        pos = e
    return out


def oid(content):
    first = content[0]
    parts, value = [min(first // 40, 2), first - 40 * min(first // 40, 2)], 0
    for b in content[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def seq(raw, want=0x30):
    tag, s, e = tlv(raw)
    if tag != want:
        raise Fail(f"expected DER tag {want:#x}, found {tag:#x}")
    return children(raw, s, e)


SIGNED_DATA = "1.2.840.113549.1.7.2"
TST_INFO = "1.2.840.113549.1.9.16.1.4"
ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ATTR_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
HASHES = {"2.16.840.1.101.3.4.2.1": hashes.SHA256, "2.16.840.1.101.3.4.2.2": hashes.SHA384,
          "2.16.840.1.101.3.4.2.3": hashes.SHA512}


def content(raw):
    """The content octets of one DER element."""
    _, s, e = tlv(raw)
    return raw[s:e]


def parse_timestamp(der):
    """The parts of a TimeStampResp that the checks need."""
    resp = seq(der)
    status = seq(resp[0][3])
    if int.from_bytes(content(status[0][3]), "big") not in (0, 1):
        raise Fail("the timestamp was not granted")
    if len(resp) < 2:
        raise Fail("the response holds no timestamp token")
    content_info = seq(resp[1][3])
    if oid(content(content_info[0][3])) != SIGNED_DATA:
        raise Fail("the token is not CMS SignedData")
    signed_data = seq(seq(content_info[1][3], 0xA0)[0][3])
    encap = seq(signed_data[2][3])
    if oid(content(encap[0][3])) != TST_INFO:
        raise Fail("the token does not hold a TSTInfo")
    tst_der = content(seq(encap[1][3], 0xA0)[0][3])
    tst = seq(tst_der)
    imprint = seq(tst[2][3])
    signer_infos = [c for c in signed_data if c[0] == 0x31][-1]
    infos = seq(signer_infos[3], 0x31)
    if len(infos) != 1:
        raise Fail("the token must have exactly one SignerInfo")
    return {"tst_der": tst_der, "algorithm": oid(content(seq(imprint[0][3])[0][3])),
            "hashed": content(imprint[1][3]), "gen_time": content(tst[4][3]).decode(),
            "signer": seq(infos[0][3])}


def parse_gen_time(text):
    """GeneralizedTime ``YYYYMMDDHHMMSS[.fff]Z`` (fractions dropped)."""
    return dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)


def signer_parts(signer):
    """sid, digest algorithm, signed attributes (raw, tag [0]), signature algorithm, signature."""
    sid, digest_alg, attrs, sig_alg, signature = signer[1], signer[2], signer[3], signer[4], signer[5]
    if attrs[0] != 0xA0:
        raise Fail("the SignerInfo has no signed attributes")
    return (sid, oid(content(seq(digest_alg[3])[0][3])), attrs[3], oid(content(seq(sig_alg[3])[0][3])),
            content(signature[3]))


def find_certificate(sid, chain):
    if sid[0] == 0x30:  # issuerAndSerialNumber
        parts = seq(sid[3])
        issuer, serial = parts[0][3], int.from_bytes(content(parts[1][3]), "big", signed=True)
        for cert in chain:
            if cert.serial_number == serial and cert.issuer.public_bytes() == issuer:
                return cert
    else:  # [0] subjectKeyIdentifier
        ski = content(sid[3])
        for cert in chain:
            try:
                if cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest == ski:
                    return cert
            except x509.ExtensionNotFound:
                continue
    raise Fail("the TSA certificate that signed the token is not in keys/tsa-chain.pem")


def check_signature(cert, digest_oid, signed, signature):
    hash_cls = HASHES.get(digest_oid)
    if hash_cls is None:
        raise Fail(f"unsupported digest algorithm {digest_oid}")
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(hash_cls()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hash_cls())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signed)
        else:
            raise Fail("unsupported TSA key type: check this token with openssl ts -verify")
    except InvalidSignature as e:
        raise Fail("the CMS signature over the signed attributes does not verify") from e


def check_chain(cert, chain, roots, when):
    """TSA certificate: timeStamping usage, valid at genTime, issued up to one of ``roots``."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as e:
        raise Fail("the TSA certificate has no extended key usage") from e
    if ExtendedKeyUsageOID.TIME_STAMPING not in eku:
        raise Fail("the TSA certificate is not for timeStamping")
    current, seen = cert, 0
    while True:
        if not current.not_valid_before_utc <= when <= current.not_valid_after_utc:
            raise Fail(f"{current.subject.rfc4514_string()} was not valid at genTime")
        root = next((r for r in roots if r.subject == current.issuer), None)
        if root is not None:
            try:
                current.verify_directly_issued_by(root)
                return root
            except (ValueError, TypeError, InvalidSignature) as e:
                raise Fail(f"{current.subject.rfc4514_string()} is not signed by the root") from e
        parent = next((c for c in chain if c.subject == current.issuer and c.subject != c.issuer), None)
        seen += 1
        if parent is None or seen > 8:
            raise Fail(f"no path from {cert.subject.rfc4514_string()} to a trusted TSA root")
        try:
            current.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise Fail(f"{current.subject.rfc4514_string()} is not signed by its issuer") from e
        current = parent


def verify_timestamp(der, data, chain, roots):
    """RFC 3161 over ``data``: imprint, signed attributes, CMS signature, TSA certificate chain."""
    t = parse_timestamp(der)
    if t["algorithm"] not in HASHES:
        raise Fail(f"unsupported imprint hash {t['algorithm']}")
    h = hashes.Hash(HASHES[t["algorithm"]]())
    h.update(data)
    if t["hashed"] != h.finalize():
        raise Fail("the message imprint is not the hash of the checkpoint (the timestamp is for other bytes)")
    sid, digest_oid, attrs_raw, _, signature = signer_parts(t["signer"])
    attrs = {}
    for *_, raw in seq(attrs_raw, 0xA0):
        kind, values = seq(raw)
        attrs[oid(content(kind[3]))] = seq(values[3], 0x31)[0][3]
    if oid(content(attrs.get(ATTR_CONTENT_TYPE, b"\x06\x01\x00"))) != TST_INFO:
        raise Fail("the signed contentType attribute is not TSTInfo")
    if digest_oid not in HASHES:
        raise Fail(f"unsupported digest algorithm {digest_oid}")
    h = hashes.Hash(HASHES[digest_oid]())
    h.update(t["tst_der"])
    if content(attrs.get(ATTR_MESSAGE_DIGEST, b"\x04\x00")) != h.finalize():
        raise Fail("the signed messageDigest attribute is not the hash of the TSTInfo")
    cert = find_certificate(sid, chain)
    check_signature(cert, digest_oid, b"\x31" + attrs_raw[1:], signature)
    when = parse_gen_time(t["gen_time"])
    root = check_chain(cert, chain, roots, when)
    return when, cert, root


# -- the bundle ----------------------------------------------------------------------------------

def read_zip(path):
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise Fail("the archive holds two members with the same name")
            if any(n.startswith("/") or ".." in n.split("/") or "\\" in n for n in names):
                raise Fail("the archive has an unsafe member name")
            if sum(i.file_size for i in infos) > 4 << 30:
                raise Fail("the archive inflates to more than 4 GiB")
            return {i.filename: z.read(i) for i in infos if not i.is_dir()}
    except (zipfile.BadZipFile, OSError) as e:
        raise Fail(f"not a readable zip archive: {e}") from e


def load_json(data, what):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise Fail(f"{what} is not JSON: {e}") from e


class Verifier:
    def __init__(self, files, log_key, tsa_roots, evidence_key, allow_untimestamped=False):
        self.files, self.pin_log, self.pin_roots, self.pin_evidence = files, log_key, tsa_roots, evidence_key
        self.allow_untimestamped = allow_untimestamped
        self.m, self.key, self.notes, self.cps, self.warnings = {}, None, {}, {}, []
        self.signer, self.proven = None, set()  # the attestation's raw key; entries whose proof verified

    def manifest(self):
        if "manifest.json" not in self.files:
            raise Fail("manifest.json is missing")
        m = load_json(self.files["manifest.json"], "manifest.json")
        if not isinstance(m, dict) or m.get("format") != FORMAT or m.get("format_version") != FORMAT_VERSION:
            raise Fail(f"manifest.json is not a {FORMAT} v{FORMAT_VERSION} manifest")
        for key, kind in (("origin", str), ("files", dict), ("checkpoints", list), ("consistency", list),
                          ("tree_size", int), ("latest_tree_size", int), ("entries", int),
                          ("report", list), ("scope", dict), ("created_at", str)):
            if not isinstance(m.get(key), kind):
                raise Fail(f"manifest field {key!r} is missing or not a {kind.__name__}")
        self.m = m
        return (f"origin {m['origin']}, scope {json.dumps(m['scope'])}, created {m['created_at']}, "
                f"{m['entries']} entries, tree size {m['tree_size']}")

    def file_hashes(self):
        listed, problems, total = self.m["files"], [], 0
        problems += [f"{n} is listed but missing" for n in sorted(set(listed) - set(self.files))]
        problems += [f"{n} is in the archive but not in the manifest"
                     for n in sorted(set(self.files) - set(listed) - set(UNLISTED))]
        for name, digest in listed.items():
            if name in self.files:
                total += len(self.files[name])
                if hashlib.sha256(self.files[name]).hexdigest() != digest:
                    problems.append(f"{name} does not match its SHA-256 in the manifest")
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise Fail("; ".join(problems[:5]) + more)
        return f"{len(listed)} files match their SHA-256 in the manifest ({total:,} bytes)"

    def evidence_key(self):
        pinned = self.pin_evidence is not None  # an empty pin is a pin that matches nothing
        pem = self.pin_evidence if pinned else self.files.get("keys/evidence-key.pem", b"")
        if not pinned:
            self.warnings.append("the evidence key was taken from the bundle itself: "
                                 "pass --evidence-key to pin it")
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError) as e:
            raise Fail(f"the evidence key is not a PEM public key: {e}") from e
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise Fail("the evidence key is not Ed25519")
        return key

    def attestation(self):
        key = self.evidence_key()
        env = load_json(self.files.get("attestation.dsse.json", b""), "attestation.dsse.json")
        if not isinstance(env, dict) or env.get("payloadType") != PAYLOAD_TYPE:
            raise Fail(f"the DSSE envelope's payloadType is not {PAYLOAD_TYPE}")
        payload = b64d(str(env.get("payload", "")), "the DSSE payload")
        t = PAYLOAD_TYPE.encode()
        pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)
        ok = False
        for s in env.get("signatures") or []:
            try:
                key.verify(b64d(str(s.get("sig", "")), "a DSSE signature"), pae)
                ok = True
            except (InvalidSignature, AttributeError):
                pass
        if not ok:
            raise Fail("no DSSE signature verifies with the evidence key (payload or signature altered)")
        st = load_json(payload, "the DSSE payload")
        if st.get("_type") != STATEMENT_TYPE or st.get("predicateType") != PREDICATE_TYPE:
            raise Fail("the DSSE payload is not an in-toto Statement v1 of the evidence predicate")
        subjects = {s.get("name"): (s.get("digest") or {}).get("sha256") for s in st.get("subject", [])}
        for name in ["manifest.json", *self.m["report"]]:
            digest = hashlib.sha256(self.files.get(name, b"")).hexdigest()
            if subjects.get(name) is None or digest != subjects[name]:
                raise Fail(f"{name} does not match the SHA-256 the signed Statement gives it")
        pred = st.get("predicate") or {}
        for k in ("origin", "tree_size", "scope", "entries"):
            if pred.get(k) != self.m.get(k):
                raise Fail(f"the signed predicate's {k} differs from the manifest's")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.signer = raw
        source = "pinned" if self.pin_evidence is not None else "from the bundle"
        return (f"DSSE signature by evidence key {hashlib.sha256(raw).hexdigest()[:16]}… ({source}); "
                f"subjects {', '.join(sorted(map(str, subjects)))} match")

    def log_key(self):
        inside = self.files.get("keys/log.vkey", b"").decode("utf-8", "replace").strip()
        if self.pin_log is not None:
            key = NoteKey(self.pin_log)
            if inside and inside != key.vkey:
                raise Fail("the bundle's keys/log.vkey is not the pinned log key")
        else:
            key = NoteKey(inside)
            self.warnings.append("the log key was taken from the bundle itself: pin it with --log-key "
                                 "(get it from the operator out of band)")
        if key.name != self.m["origin"]:
            raise Fail(f"the log key is named {key.name!r}, the origin is {self.m['origin']!r}")
        self.key = key
        return f"{key.vkey} ({'pinned' if self.pin_log is not None else 'from the bundle'})"

    def checkpoints(self):
        if self.key is None:
            raise Fail("not checked: no usable log key")
        for c in self.m["checkpoints"]:
            path = str(c.get("note"))
            if path not in self.files:
                raise Fail(f"{path} is missing")
            try:
                origin, size, root = parse_checkpoint(open_note(self.files[path], self.key))
            except Fail as e:
                raise Fail(f"{path}: {e}") from e
            if origin != self.m["origin"] or size != c.get("size") or \
                    base64.b64encode(root).decode() != c.get("root_hash"):
                raise Fail(f"{path} does not say what the manifest says (origin, size or root)")
            self.notes[size], self.cps[size] = self.files[path], root
        for k in ("tree_size", "latest_tree_size"):
            if self.m[k] not in self.cps:
                raise Fail(f"no signed checkpoint of the manifest's {k}")
        return f"signed by {self.key.name}: sizes {', '.join(map(str, sorted(self.cps)))}"

    def consistency(self):
        first, last = self.m["tree_size"], self.m["latest_tree_size"]
        if first not in self.cps or last not in self.cps:
            raise Fail("not checked: the checkpoints did not verify")
        if first == last:
            return f"the proofs' checkpoint {first} is the newest: nothing to prove"
        item = next((c for c in self.m["consistency"]
                     if (c.get("first"), c.get("second")) == (first, last)), None)
        if item is None or str(item.get("proof")) not in self.files:
            raise Fail(f"no consistency proof from {first} to {last}")
        proof = load_json(self.files[str(item["proof"])], item["proof"])
        if (proof.get("first"), proof.get("second")) != (first, last):
            raise Fail(f"{item['proof']} is not a proof from {first} to {last}")
        hashes_ = [b64d(h, "a consistency hash") for h in proof.get("consistency", [])]
        verify_consistency(first, last, hashes_, self.cps[first], self.cps[last])
        return f"tree {first} is a prefix of tree {last} ({len(hashes_)} hashes)"

    def timestamps(self):
        chain = self._certs(self.files.get("keys/tsa-chain.pem", b""))
        if self.pin_roots:
            roots, source = [c for pem in self.pin_roots for c in self._certs(pem)], "pinned root"
        else:
            roots, source = [c for c in chain if c.subject == c.issuer], "root from the bundle"
            self.warnings.append("the TSA root was taken from the bundle itself: pin it with --tsa-root")
        out, unstamped = [], []
        for c in self.m["checkpoints"]:
            size, path = c.get("size"), c.get("timestamp")
            if path is None:
                unstamped.append(f"checkpoint {size} carries no RFC 3161 timestamp")
                continue
            if path not in self.files or size not in self.notes:
                raise Fail(f"{path} or its checkpoint is missing")
            if not roots:
                raise Fail("no TSA root certificate: pass --tsa-root (the bundle's chain has none)")
            try:
                when, cert, root = verify_timestamp(self.files[path], self.notes[size], chain, roots)
            except (Fail, IndexError, ValueError) as e:
                raise Fail(f"{path}: {e}") from e
            out.append(f"checkpoint {size} at {when.isoformat()} by {cert.subject.rfc4514_string()}")
        if unstamped and not self.allow_untimestamped:
            raise Fail("; ".join(unstamped)
                       + ": nothing dates it (pass --allow-untimestamped to accept that)")
        self.warnings += [f"{u}: accepted with --allow-untimestamped, so nothing dates it" for u in unstamped]
        if not out:
            return "no timestamps in the bundle (allowed with --allow-untimestamped)"
        return "; ".join(out) + f" ({source}: {root.subject.rfc4514_string()}); also run openssl ts -verify"

    @staticmethod
    def _certs(pem):
        try:
            return x509.load_pem_x509_certificates(pem) if pem.strip() else []
        except ValueError as e:
            raise Fail(f"unreadable TSA certificate: {e}") from e

    def entries(self):
        size = self.m["tree_size"]
        if size not in self.cps:
            raise Fail("not checked: the proofs' checkpoint did not verify")
        root, note, indices = self.cps[size], self.notes[size], []
        for name in (n for n in self.files if n.startswith("entries/")):
            stem = name[len("entries/"):].removesuffix(".json")
            if not name.endswith(".json") or not stem.isdigit() or (stem != "0" and stem.startswith("0")):
                raise Fail(f"{name} is not named entries/<index>.json")
            indices.append(int(stem))
        if len(indices) != self.m["entries"]:
            raise Fail(f"{len(indices)} entry files, the manifest says {self.m['entries']}")
        for index in sorted(indices):
            path = f"proofs/{index}.tlog-proof"
            if path not in self.files:
                raise Fail(f"entry {index} has no {path}")
            at, path_hashes, proof_note = parse_tlog_proof(self.files[path])
            if at != index:
                raise Fail(f"{path} proves entry {at}, not {index}")
            if proof_note != note:
                raise Fail(f"{path} is against another checkpoint than checkpoints/{size}.note")
            try:
                leaf = leaf_hash(self.files[f"entries/{index}.json"])
                verify_inclusion(index, size, leaf, path_hashes, root)
            except Fail as e:
                raise Fail(f"entry {index}: {e}") from e
        self.proven = set(indices)
        span = f"indices {min(indices)}..{max(indices)}" if indices else "none"
        return f"{len(indices)} entries are in checkpoint {size} ({span})"


    def evidence_key_entry(self):
        """The attestation's key is the one the bundle's keys.evidence_key entry records."""
        at, size = self.m.get("evidence_key_entry"), self.m["tree_size"]
        if at is None:
            self.warnings.append("the evidence key is not bound to the log: the bundle carries no "
                                 f"{EVIDENCE_KEY_EVENT} entry (a bundle made before keys were recorded "
                                 "on the log)")
            return "not bound to the log: the bundle names no keys.evidence_key entry"
        if self.signer is None:
            raise Fail("not checked: the attestation did not verify")
        if type(at) is not int or not 0 <= at < size:
            raise Fail(f"evidence_key_entry {at!r} is not a leaf index below the tree size {size}")
        if at not in self.proven:
            raise Fail(f"not checked: the evidence key's entry {at} is not in the bundle with a "
                       "verified proof")
        event = load_json(self.files[f"entries/{at}.json"], f"entries/{at}.json")
        if not isinstance(event, dict) or event.get("kind") != EVIDENCE_KEY_EVENT:
            raise Fail(f"entry {at} is not a {EVIDENCE_KEY_EVENT} event")
        try:
            recorded = serialization.load_pem_public_key(str(event.get("key", "")).encode())
        except (ValueError, TypeError) as e:
            raise Fail(f"the key of entry {at} is not a PEM public key: {e}") from e
        kid = hashlib.sha256(self.signer).hexdigest()
        raw = recorded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) \
            if isinstance(recorded, ed25519.Ed25519PublicKey) else None
        if raw != self.signer or event.get("key_id") != kid:
            raise Fail(f"the attestation was signed by key {kid[:16]}…, not by the key the log records at "
                       f"entry {at} ({str(event.get('key_id'))[:16]}…)")
        return f"the attestation's key {kid[:16]}… is the one the log records at entry {at}"

    def citations(self):
        """Every entry the report cites (links to entries/N.json or /log/v1/proof/N, and the integers
        of each "entries" list in report JSON) is in the bundle and below its tree size."""
        size, cited = self.m["tree_size"], set()

        def walk(node):
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "entries" and isinstance(value, list):
                        cited.update(v for v in value if type(v) is int)
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        for name in map(str, self.m["report"]):
            data = self.files.get(name, b"")
            cited.update(int(a or b) for a, b in CITATION.findall(data))
            if name.endswith(".json"):
                walk(load_json(data, name))
        problems = [f"#{i} lies at or beyond the tree size {size}" for i in sorted(cited) if i >= size]
        problems += [f"#{i} is not in the bundle" for i in sorted(cited)
                     if i < size and f"entries/{i}.json" not in self.files]
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise Fail("the report cites " + "; ".join(problems[:5]) + more)
        return f"the {len(cited)} entries the report cites are in the bundle, below tree size {size}"


# -- the report, recomputed from the bundle's entries ------------------------------------------------

INTERVENING = ("veto_release", "rollback")  # a later one of these withdraws an approval
# The sections whose prose states this report's tree size; the others quote what people wrote
# (justifications, datasheets, documentation) or other bundles' sizes (incident freezes).
SIZE_SECTIONS = ("log", "rules", "art12_log")
# A tree size in prose: "tree size N", and the self-audit's "the log's N integrated entries",
# "self-audit ... over N entries" (a count of the whole log is its tree size too).
TREE_SIZE_TEXT = re.compile(r"tree size (\d+)|(\d+) integrated entries|self-audit[^.;]*? over (\d+) entries")


def _number(v):
    """A JSON number as the report compares it (an int and its float are equal); None stays None."""
    return float(v) if type(v) in (int, float) else v


def _strings(node, path=""):
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            if not path and k not in SIZE_SECTIONS:
                continue
            yield from _strings(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")


def _target(e):
    return e.get("target") if isinstance(e.get("target"), dict) else {}


class _Report:
    """What report.json states, set beside what the bundle's proven entries say. Each ``_check_*``
    returns a short account or raises Fail naming the report field that disagrees."""

    def __init__(self, report, manifest, events):
        self.r, self.m, self.events = report, manifest, events  # events: {index: event dict}

    def of(self, kind, **fields):
        return [(i, e) for i, e in sorted(self.events.items())
                if e.get("kind") == kind and all(e.get(k) == v for k, v in fields.items())]

    def section(self, name, kind):
        value = self.r.get(name)
        if not isinstance(value, kind):
            raise Fail(f"report.json: {name} is missing or not a {kind.__name__}")
        return value

    def differ(self, field, stated, recomputed, why):
        if stated != recomputed:
            raise Fail(f"report.json {field} is {stated!r}, the bundle's entries give {recomputed!r} ({why})")

    def tree_size(self):
        size, log = self.m["tree_size"], self.section("log", dict)
        root = next((c.get("root_hash") for c in self.m["checkpoints"] if c.get("size") == size), None)
        self.differ("log.origin", log.get("origin"), self.m["origin"], "the manifest's origin")
        self.differ("log.root", log.get("root"), base64.b64decode(root or "").hex(),
                    f"the root of checkpoint {size}")
        stated = [("log.tree_size", log.get("tree_size")),
                  ("rules.evaluated_at_tree_size", self.section("rules", dict).get("evaluated_at_tree_size"))]
        art12 = self.r.get("art12_log")
        figures = art12.get("figures") if isinstance(art12, dict) else None
        if isinstance(figures, dict) and "tree_size" in figures:
            stated.append(("art12_log.figures.tree_size", figures["tree_size"]))
        stated += [(path, int("".join(m))) for path, text in _strings(self.r)
                   for m in TREE_SIZE_TEXT.findall(text)]
        for field, value in stated:
            self.differ(field, value, size, "the tree size of the bundle's proofs")
        return f"one tree size, {size} ({len(stated)} statements)"

    def dp_budget(self):
        runs = self.section("dp_budget", dict).get("runs")
        if not isinstance(runs, list):
            raise Fail("report.json: dp_budget.runs is missing or not a list")
        listed = set()
        for r in runs:
            name = r.get("run") if isinstance(r, dict) else None
            listed.add(name)
            where = f"dp_budget.runs[{name}]"
            starts = self.of("run.started", run=name)
            if not starts:
                raise Fail(f"report.json {where}: the bundle holds no run.started of run {name!r}")
            first = starts[-1][1]  # a resumed segment repeats the run's configuration
            dp = first.get("dp") if isinstance(first.get("dp"), dict) else {}
            done = self.of("run.completed", run=name)
            privacy = None
            for i, e in self.of("run.privacy", run=name):  # the highest step; a tie: the later entry
                if privacy is None or (privacy[1].get("step") or 0) <= (e.get("step") or 0):
                    privacy = (i, e)
            epsilon = delta = None
            if privacy is not None:
                epsilon, delta = _number(privacy[1].get("epsilon")), _number(privacy[1].get("delta"))
            if done and _number(done[-1][1].get("epsilon")) is not None:
                epsilon = _number(done[-1][1].get("epsilon"))
            if delta is None:
                delta = _number(dp.get("delta"))
            why = "run.completed's ε, else the run.privacy of the highest step, never a sum over segments"
            self.differ(f"{where}.epsilon", _number(r.get("epsilon")), epsilon, why)
            self.differ(f"{where}.delta", _number(r.get("delta")), delta,
                        "the run.privacy's δ, else run.started's")
            self.differ(f"{where}.unit", r.get("unit"), dp.get("unit"), "run.started's dp.unit")
            self.differ(f"{where}.dp_enabled", r.get("dp_enabled"), bool(dp.get("enabled")),
                        "run.started's dp.enabled")
            for key in ("dataset", "dataset_version"):
                self.differ(f"{where}.{key}", r.get(key), first.get(key), f"run.started's {key}")
        scope = self.m["scope"]
        if scope.get("kind") == "run" and self.of("run.started", run=scope.get("run")) \
                and scope.get("run") not in listed:
            raise Fail(f"report.json dp_budget.runs leaves out the bundle's run {scope.get('run')!r}")
        return f"ε, δ and the unit of {len(runs)} run(s)"

    def _in_scope(self, e):
        """Does an oversight decision target what the bundle is about?"""
        s, t = self.m["scope"], _target(e)
        if s.get("kind") == "run":
            return t.get("run") == s.get("run")
        if s.get("kind") == "model":
            return t.get("model") == s.get("model")
        if s.get("kind") == "dataset":
            return t.get("dataset") == s.get("dataset") and \
                (s.get("version") is None or t.get("dataset_version") == s.get("version"))
        return False  # a time range: which decisions belong is what the entries' times say

    def oversight(self):
        rows = self.section("art14_oversight", dict).get("rows")
        if not isinstance(rows, list):
            raise Fail("report.json: art14_oversight.rows is missing or not a list")
        listed, counts = set(), {}
        for row in rows:
            if not isinstance(row, dict):
                raise Fail("report.json: a row of art14_oversight.rows is not an object")
            i = row.get("index")
            where = f"art14_oversight.rows[#{i}]"
            e = self.events.get(i) if type(i) is int else None
            release = row.get("action") == "release"
            kind = "model.released" if release else "oversight.decision"
            if e is None or e.get("kind") != kind:
                raise Fail(f"report.json {where}: the bundle holds no {kind} entry #{i}")
            listed.add(i)
            self.differ(f"{where}.who", row.get("who"), e.get("actor"), f"the actor of entry {i}")
            if release:
                self.differ(f"{where}.decision_id", row.get("decision_id"), e.get("approval"),
                            f"the approval entry {i} names")
                self.approved(i, e, where)
            else:
                counts[e.get("action")] = counts.get(e.get("action"), 0) + 1
                self.differ(f"{where}.action", row.get("action"), e.get("action"), f"the action of entry {i}")
                self.differ(f"{where}.decision_id", row.get("decision_id"), e.get("decision_id"),
                            f"the decision id of entry {i}")
        missing = [i for i, e in self.of("oversight.decision") if self._in_scope(e) and i not in listed]
        if missing:
            raise Fail(f"report.json art14_oversight.rows leaves out the decision(s) "
                       f"{', '.join(f'#{i}' for i in missing)} the bundle holds for its scope")
        stats = self.r["art14_oversight"].get("statistics")
        if isinstance(stats, dict):
            self.differ("art14_oversight.statistics.decisions", stats.get("decisions"), sum(counts.values()),
                        "the decisions in the register")
            self.differ("art14_oversight.statistics.by_action", stats.get("by_action"), counts,
                        "the decisions in the register")
        return f"{len(rows)} register rows match their entries"

    def approved(self, at, release, where):
        """A release is preceded by the approve_release decision it names, not withdrawn since."""
        name, model = release.get("approval"), release.get("model")
        approvals = [(i, e) for i, e in self.of("oversight.decision", decision_id=name) if i < at]
        if not approvals or approvals[-1][1].get("action") != "approve_release":
            raise Fail(f"report.json {where}: release #{at} of {model} names approval {name!r}, and no "
                       "approve_release decision with that id precedes it in the bundle")
        since = approvals[-1][0]
        for i, e in self.of("oversight.decision"):
            if since < i < at and e.get("action") in INTERVENING and _target(e).get("model") in (None, model):
                raise Fail(f"report.json {where}: approval {name!r} (#{since}) was withdrawn by "
                           f"{e.get('action')} #{i} before release #{at}")

    def incidents(self):
        """Each evidence freeze the report lists (Art. 73) is an incident.frozen entry of the bundle."""
        section = self.r.get("art73_incidents", {})
        rows = section.get("incidents", []) if isinstance(section, dict) else None
        if not isinstance(rows, list):
            raise Fail("report.json: art73_incidents.incidents is not a list")
        for row in rows:
            if not isinstance(row, dict):
                raise Fail("report.json: a row of art73_incidents.incidents is not an object")
            i = row.get("index")
            e = self.events.get(i) if type(i) is int else None
            if e is None or e.get("kind") != "incident.frozen":
                raise Fail(f"report.json art73_incidents.incidents[#{i}]: the bundle holds no "
                           f"incident.frozen entry #{i}")
            for key in ("incident", "scope", "object_key"):
                self.differ(f"art73_incidents.incidents[#{i}].{key}", row.get(key), e.get(key), f"entry {i}")
        return f"{len(rows)} incident freeze(s)"

    def dataset_roots(self):
        sheets = self.r.get("art10_datasheets", [])
        if not isinstance(sheets, list):
            raise Fail("report.json: art10_datasheets is not a list")
        n = 0
        for d in sheets:
            version = d.get("version") if isinstance(d, dict) else None
            if not isinstance(version, dict) or version.get("root") is None:
                continue
            where = f"art10_datasheets[{d.get('dataset')} v{d.get('dataset_version')}].version"
            found = self.of("dataset.version", dataset=d.get("dataset"),
                            dataset_version=d.get("dataset_version"))
            if not found:
                raise Fail(f"report.json {where}: the bundle holds no dataset.version entry of it")
            for key, value in version.items():
                self.differ(f"{where}.{key}", value, found[-1][1].get(key), f"entry {found[-1][0]}")
            n += 1
        return f"the roots of {n} dataset version(s)"


def check_report(files, manifest, proven):
    """Recompute from the bundle's proven entries what report.json states about them (docs/evidence.md,
    check ``report``); Fail names the first field that disagrees."""
    if "report.json" not in manifest["report"]:
        raise Fail("the bundle has no report.json to check")
    if not proven:
        raise Fail("not checked: the entries did not verify")
    report = load_json(files["report.json"], "report.json")
    if not isinstance(report, dict):
        raise Fail("report.json is not a JSON object")
    events = {}
    for i in proven:
        e = load_json(files[f"entries/{i}.json"], f"entries/{i}.json")
        if isinstance(e, dict):
            events[i] = e
    r = _Report(report, manifest, events)
    done = [r.tree_size(), r.dp_budget(), r.oversight(), r.dataset_roots(), r.incidents()]
    return "recomputed from the entries and matching: " + "; ".join(done)


def verify(path, log_key=None, tsa_roots=(), evidence_key=None, allow_untimestamped=False):
    """[(check, ok, detail)], warnings."""
    results = []
    try:
        files = read_zip(path)
        results.append(("archive", True, f"{len(files)} members, {os.path.getsize(path):,} bytes"))
    except Fail as e:
        return [("archive", False, str(e))], []
    v = Verifier(files, log_key, list(tsa_roots), evidence_key, allow_untimestamped)
    steps = [("manifest", v.manifest), ("files", v.file_hashes), ("attestation", v.attestation),
             ("log-key", v.log_key), ("checkpoints", v.checkpoints), ("consistency", v.consistency),
             ("timestamps", v.timestamps), ("entries", v.entries),
             ("evidence-key", v.evidence_key_entry), ("citations", v.citations),
             ("report", lambda: check_report(files, v.m, v.proven))]
    for name, step in steps:
        try:
            results.append((name, True, step()))
        except Fail as e:
            results.append((name, False, str(e)))
            if name == "manifest":
                results += [(n, False, "not checked: the manifest is unusable") for n, _ in steps[1:]]
                break
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as e:
            results.append((name, False, f"malformed bundle: {type(e).__name__}: {e}"))
    return results, v.warnings


class PinError(Exception):
    """A pinned key that cannot be used: a usage error, never a reason to use the bundle's copy."""


def log_key_pin(value):
    """The pinned verifier key: the file's text when ``value`` names a file, else ``value``."""
    text, what = value, "the value"
    if os.path.isfile(value):
        try:
            text, what = Path(value).read_text(), f"the file {value}"
        except (OSError, UnicodeDecodeError) as e:
            raise PinError(f"--log-key: cannot read {value}: {e}") from e
    if not text.strip():
        raise PinError(f"--log-key: {what} is empty: a pinned key must be the key")
    try:
        NoteKey(text)
    except Fail as e:
        raise PinError(f"--log-key: {what} is not a C2SP verifier key: {e}") from e
    return text


def evidence_key_pin(path):
    """The pinned evidence key's PEM bytes, once they read as an Ed25519 public key."""
    try:
        pem = Path(path).read_bytes()
    except OSError as e:
        raise PinError(f"--evidence-key: cannot read {path}: {e}") from e
    if not pem.strip():
        raise PinError(f"--evidence-key: the file {path} is empty: a pinned key must be the key")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise PinError(f"--evidence-key: {path} is not a PEM public key: {e}") from e
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise PinError(f"--evidence-key: {path} is not an Ed25519 key")
    return pem


def main(argv=None):
    parser = argparse.ArgumentParser(description="Verify an RLHF Audit Trail evidence bundle offline.")
    parser.add_argument("bundle", help="the bundle .zip")
    parser.add_argument("--log-key", help="the log's C2SP verifier key (or a file holding it), "
                                          "obtained from the operator out of band")
    parser.add_argument("--tsa-root", action="append", default=[],
                        help="trusted TSA root certificate (PEM file); repeatable")
    parser.add_argument("--evidence-key", help="the operator's evidence-signing public key (PEM file)")
    parser.add_argument("--allow-untimestamped", action="store_true",
                        help="accept checkpoints without an RFC 3161 timestamp (a warning, not a failure)")
    args = parser.parse_args(argv)
    try:
        roots = [Path(p).read_bytes() for p in args.tsa_root]
        evidence = None if args.evidence_key is None else evidence_key_pin(args.evidence_key)
        log_key = None if args.log_key is None else log_key_pin(args.log_key)
    except OSError as e:
        print(f"error: --tsa-root: {e}", file=sys.stderr)
        return 2
    except PinError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results, warnings = verify(args.bundle, log_key, roots, evidence, args.allow_untimestamped)
    print(f"bundle: {args.bundle}")
    for name, ok, detail in results:
        print(f"{'OK' if ok else 'FAIL':<5} {name:<12} {detail}")
    for w in warnings:
        print(f"WARN  {w}")
    failed = [name for name, ok, _ in results if not ok]
    print(f"FAILED: {', '.join(failed)}" if failed else "VERIFIED: every check passed")
    print("Also check each timestamp with OpenSSL (see README.md):\n"
          "  openssl ts -verify -data checkpoints/<N>.note -in timestamps/<N>.tsr -CAfile <TSA root PEM>")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

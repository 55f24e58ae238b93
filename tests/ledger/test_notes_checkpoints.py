"""C2SP signed notes and checkpoints, byte for byte against the published vectors."""

from __future__ import annotations

import pytest

from ledger._internal.tree import edge_coords, extend, root_from_edge
from ledger.checkpoint import Checkpoint
from ledger.errors import NoteError
from ledger.merkle import leaf_hash, root_of
from ledger.note import Signer, Verifier, open_note, sign_note
from tests.support.vectors import load

NOTES = load("signed_note.json")
TESSERA = load("tessera_testlog.json")


def test_peter_neumann_signature_byte_for_byte() -> None:
    v = NOTES["vectors"][0]
    signer = Signer.from_skey(v["skey"])
    assert signer.skey == v["skey"]
    assert signer.verifier.vkey == v["vkey"]
    assert signer.verifier.key_id.hex() == v["key_id_hex"]
    assert signer.sign(v["text"].encode()).decode() == v["expected_signature_line"]
    note = sign_note(v["text"].encode(), [signer])
    assert note.decode() == v["expected_signed_note"]
    assert open_note(note, [Verifier.from_vkey(v["vkey"])]).text == v["text"].encode()


@pytest.mark.parametrize("v", NOTES["vectors"][1:], ids=lambda v: v["vkey"].split("+")[0])
def test_verify_only_vectors(v: dict) -> None:
    note = v["text"].encode() + b"\n" + v["expected_signature_line"].encode()
    opened = open_note(note, [Verifier.from_vkey(v["vkey"])])
    assert opened.text == v["text"].encode()
    tampered = note.replace(b"problem", b"Problem", 1) if b"problem" in note else b"X" + note
    with pytest.raises(NoteError):
        open_note(tampered, [Verifier.from_vkey(v["vkey"])])


PETER = NOTES["vectors"][0]
GOOD = PETER["expected_signed_note"].encode()
PETER_KEY = Verifier.from_vkey(PETER["vkey"])
SIG_LINE = PETER["expected_signature_line"].encode()
TEXT = PETER["text"].encode()

MALFORMED = {
    "text without blank line+sig": TEXT,
    "text + newline only": TEXT + b"\n",
    "sig line missing final newline": GOOD[:-1],
    "leading 0x01 byte": b"\x01" + GOOD,
    "leading 0xff byte": b"\xff" + GOOD,
    "key name with space": TEXT + b"\n" + SIG_LINE.replace(b"PeterNeumann", b"Bad Name"),
    "extra non-signature line after sigs": GOOD + b"not a signature\n",
    "more than 100 signatures": TEXT + b"\n" + SIG_LINE * 101,
    "unknown key only": TEXT + b"\n" + SIG_LINE.replace(b"PeterNeumann", b"Someone"),
    "bad signature from the known key": GOOD.replace(b"x08go", b"x08gp"),
    "unpadded base64": TEXT + b"\n" + SIG_LINE.rstrip(b"=\n") + b"\n",
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_notes_are_refused(name: str) -> None:
    with pytest.raises(NoteError):
        open_note(MALFORMED[name], [PETER_KEY])


@pytest.mark.parametrize("vkey", [
    "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "no-plus-signs",
])
def test_bad_verifier_keys(vkey: str) -> None:
    with pytest.raises(NoteError):
        Verifier.from_vkey(vkey)


def test_unknown_signatures_are_ignored_beside_a_good_one() -> None:
    other = Signer.generate("other.example/log")
    note = GOOD + other.sign(TEXT)
    opened = open_note(note, [PETER_KEY])
    assert [s.name for s in opened.verified] == ["PeterNeumann"]
    assert [s.name for s in opened.unverified] == ["other.example/log"]


def test_checkpoint_text_vectors() -> None:
    vectors = NOTES["checkpoint_text_vectors"]
    sumdb = Checkpoint.parse(vectors[0]["text"].encode())
    assert sumdb.size == 123456789012 and sumdb.root_hash == leaf_hash(b"hello world")
    assert sumdb.body() == vectors[0]["text"].encode()
    log = Checkpoint.parse(vectors[1]["text"].encode())
    assert (log.origin, log.size, log.root_hash) == ("Log", 123, b"bananas")
    assert log.body() == vectors[1]["text"].encode()


@pytest.mark.parametrize("text", [
    b"Head\n9944\n", b"\n9944\ndGhlIGFuc3dlcg==\n", b"Log\n123\nYmFuYW5hcw==",
    b"Log\nbananas\nYmFuYW5hcw==\n", b"Log\n-34\nYmFuYW5hcw==\n",
    b"Log\n3438945738945739845734895735\nYmFuYW5hcw==\n", b"Log\n123\nThisIsn'tBase64\n",
    b"Log\n0123\n" + b"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
])
def test_checkpoints_refused(text: bytes) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_tessera_checkpoints_reproduced_byte_for_byte() -> None:
    signer = Signer.from_skey(TESSERA["log_private_key_note_format"])
    assert signer.verifier.vkey == TESSERA["log_vkey"]
    leaves = [leaf_hash(x.encode()) for x in TESSERA["leaf_data_utf8"]]
    assert [h.hex() for h in leaves] == TESSERA["leaf_hashes_hex"]
    assert len(TESSERA["checkpoints_by_size"]) == 16
    for size_s, expected in TESSERA["checkpoints_by_size"].items():
        size = int(size_s)
        # Build the root the way the log does: from tiles, not from the leaf list.
        new_size, writes, _ = extend(0, {}, leaves[:size])
        edge = {k: writes[k] for k in edge_coords(new_size)}
        root = root_from_edge(size, edge)
        assert root == root_of(leaves[:size])
        body = Checkpoint(TESSERA["origin"], size, root).body()
        assert sign_note(body, [signer]) == expected.encode()
        assert open_note(expected.encode(), [signer.verifier]).text == body


def test_tessera_level0_tiles() -> None:
    leaves = [leaf_hash(x.encode()) for x in TESSERA["leaf_data_utf8"]]
    for width_s, hashes in TESSERA["tile_level0_partial_by_width_hex"].items():
        _, writes, _ = extend(0, {}, leaves[: int(width_s)])
        assert writes[(0, 0)] == b"".join(bytes.fromhex(x) for x in hashes)

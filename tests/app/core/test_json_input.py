"""JSON input: one parser and one validator at every entrance (issue 13, defects 3 and 11).

An event line gets the same answer over HTTP (``POST /api/v1/events``), through the CLI
(``rlhf-audit append``) and from Python (``ledger.canonical``, ``Log.append``): the same entry
bytes when it is accepted, a refusal for the same reason when it is not, and nothing stored.
The rule is RFC 8785 / I-JSON (numbers are doubles: no silent rounding of big integers; no
duplicate keys; no NaN or Infinity) plus the kind grammar; kinds the server records itself are
refused wherever events come from outside the product (HTTP, CLI), checked on the validated kind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from app.cli import cli
from app.events.recording import SYSTEM, record
from ledger.canonical import canonical_event, canonicalize, decode_event, encode_event
from ledger.errors import EntryError
from ledger.log import Log
from tests.support.accounts import auth as _auth
from tests.support.accounts import token as _token
from tests.support.asgi import serving
from tests.support.cli_run import cli_env

NESTED_300 = b'{"kind":"x","a":' + b"[" * 300 + b"]" * 300 + b"}"

# (event line, a fragment of the reason every entrance gives for refusing it)
REFUSED: list[tuple[bytes, str]] = [
    # defect 3: numbers beyond the I-JSON range are refused, never rounded to a nearby double
    (b'{"kind":"x","a":18446744073709551616}', "safe range"),
    (b'{"kind":"x","a":-9223372036854775809}', "safe range"),
    (b'{"kind":"x","a":9223372036854775808}', "safe range"),
    (b'{"kind":"x","a":9007199254740993}', "safe range"),
    (b'{"kind":"x","a":[1,{"b":-18446744073709551617}]}', "safe range"),
    (b'{"kind":"x","a":NaN}', "not valid JSON"),
    (b'{"kind":"x","a":Infinity}', "not valid JSON"),
    (b'{"kind":"x","a":-Infinity}', "not valid JSON"),
    (b'{"kind":"x","a":1e400}', "not valid JSON"),
    # defect 11: duplicate keys, wherever they are and however they are spelled
    (b'{"kind":"oversight.decision","kind":"x.y"}', "duplicate key"),
    (b'{"kind":"x.y","kind":"oversight.decision"}', "duplicate key"),
    (b'{"kind":"x.y","a":{"b":1,"b":2}}', "duplicate key"),
    (b'{"kind":"x.y","\\u0061":1,"a":2}', "duplicate key"),
    # defect 11: one kind grammar (lowercase dotted names), checked before the reserved kinds
    (b'{"kind":"Oversight.decision"}', "not a valid kind"),
    (b'{"kind":" oversight.decision"}', "not a valid kind"),
    (b'{"kind":"oversight.decision "}', "not a valid kind"),
    (b'{"kind":"OVERSIGHT.DECISION"}', "not a valid kind"),
    (b'{"kind":"\\uff4fversight.decision"}', "not a valid kind"),  # a fullwidth o
    (b'{"kind":"oversight.decision\\u0000"}', "not a valid kind"),
    (b'{"kind":"x..y"}', "not a valid kind"),
    (b'{"kind":""}', "not a valid kind"),
    (b'{"kind":5}', "must be a string"),
    (b'{"kind":null}', "must be a string"),
    (b'{"kind":["oversight.decision"]}', "must be a string"),
    # nesting beyond what RFC 8785 encoders handle (the ledger's limit is 254 levels)
    (NESTED_300, "nested"),
]

# Kinds the server records itself: refused from outside (HTTP, CLI), recorded by the product.
RESERVED: list[bytes] = [
    b'{"kind":"oversight.decision"}',
    b'{"kind":"oversight\\u002edecision"}',  # an escaped dot is still a dot
    b'{"kind":"oversight"}',
    b'{"kind":"model.released","a":1}',
    b'{"kind":"log.key_rotated"}',
    b'{"kind":"keys.records_kek_rotated"}',
]

# (event line, the entry it becomes: RFC 8785 bytes, written out here by hand)
ACCEPTED: list[tuple[bytes, bytes]] = [
    (b'{"kind":"x","a":9007199254740991}', b'{"a":9007199254740991,"kind":"x"}'),
    (b'{"kind":"x","a":-9007199254740991}', b'{"a":-9007199254740991,"kind":"x"}'),
    # exactly how RFC 8785 writes the double 6e18: it reads back as itself
    (b'{"kind":"x","a":6000000000000000000}', b'{"a":6000000000000000000,"kind":"x"}'),
    (b'{"kind":"x","a":1.8446744073709552e19}', b'{"a":18446744073709552000,"kind":"x"}'),
    (b'{"kind":"run.note","b":-0.0,"a":1.50}', b'{"a":1.5,"b":0,"kind":"run.note"}'),
    (b'{"kind":"after-backup.v2_x"}', b'{"kind":"after-backup.v2_x"}'),
    (b'{"kind":"x","nested":{"kind":"Anything Goes"}}', b'{"kind":"x","nested":{"kind":"Anything Goes"}}'),
    (b'{"no_kind":true}', b'{"no_kind":true}'),
]


def _unstamped(entry: bytes) -> bytes:
    """An entry appended over HTTP without the envelope the server stamps on it (as ``append`` does)."""
    doc = decode_event(entry)
    assert doc.pop("role") == "operator" and doc.pop("actor").startswith("pseud:")
    assert doc.pop("v") == 1 and doc.pop("at")
    return canonicalize(doc)


def _unenveloped(entry: bytes) -> bytes:
    """An entry appended by ``rlhf-audit append`` without the envelope it puts around each line."""
    doc = decode_event(entry)
    assert (doc.pop("actor"), doc.pop("role"), doc.pop("v")) == ("system", "system", 1) and doc.pop("at")
    return canonicalize(doc)


async def _post(client: httpx.AsyncClient, token: str, body: bytes) -> httpx.Response:
    return await client.post("/api/v1/events", content=body,
                             headers={**_auth(token), "Content-Type": "application/json"})


def _refused_over_http(r: httpx.Response, reason: str) -> str:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    detail = str(r.json()["detail"])
    assert reason in detail, detail
    # the events API says so; a body too deep for any decoder is refused before it runs
    assert "nothing was appended" in detail or detail.startswith("the body is nested"), detail
    return detail


async def test_http_refuses_what_the_rule_refuses_and_stores_nothing(log: Log) -> None:
    token = await _token(log, "op", "operator")
    async with serving(log) as client:
        size = await log.sequenced_size()
        for line, reason in [*REFUSED, *((line, "recorded by the server") for line in RESERVED)]:
            _refused_over_http(await _post(client, token, line), reason)
            batch = b'{"events":[{"kind":"ok"},' + line + b"]}"
            _refused_over_http(await _post(client, token, batch), reason)
        assert await log.sequenced_size() == size


async def test_http_duplicate_members_of_the_body_are_refused(log: Log) -> None:
    token = await _token(log, "op", "operator")
    async with serving(log) as client:
        size = await log.sequenced_size()
        body = b'{"events":[{"kind":"oversight.decision"}],"events":[{"kind":"ok"}]}'
        _refused_over_http(await _post(client, token, body), "duplicate key")
        assert await log.sequenced_size() == size


async def test_http_stores_exactly_what_the_rule_gives(log: Log) -> None:
    token = await _token(log, "op", "operator")
    async with serving(log) as client:
        for line, entry in ACCEPTED:
            r = await _post(client, token, line)
            assert r.status_code == 201, (line, r.text)
            [e] = r.json()["entries"]
            assert _unstamped(await log.entry(e["leaf_index"])) == entry


def _cli_append(runner: CliRunner, home: Path, line: bytes) -> Any:
    return runner.invoke(cli, ["--home", str(home), "append"], input=line + b"\n")


def test_cli_gives_the_same_answers(tmp_path: Path) -> None:
    """The real ``append`` command in this process (the error line is what ``rlhf-audit`` prints)."""
    runner = CliRunner()
    home = tmp_path / "home"
    assert runner.invoke(cli, ["--home", str(home), "init"]).exit_code == 0
    for line, reason in [*REFUSED, *((line, "recorded by the server") for line in RESERVED)]:
        result = _cli_append(runner, home, line)
        assert result.exit_code != 0, line
        assert isinstance(result.exception, EntryError), (line, result.exception)
        assert reason in str(result.exception) and "nothing was appended" in str(result.exception)
    for i, (line, entry) in enumerate(ACCEPTED):
        result = _cli_append(runner, home, line)
        assert result.exit_code == 0, (line, result.output, result.exception)
        assert orjson.loads(result.stdout)["leaf_index"] == i  # nothing refused was stored
        shown = runner.invoke(cli, ["--home", str(home), "entry", str(i)])
        assert _unenveloped(shown.stdout_bytes) == entry


def test_cli_process_prints_one_clear_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    subprocess.run([sys.executable, "-m", "app.cli", "init"], env=env, check=True, capture_output=True)
    lines = (b'{"kind":"ok"}\n{"kind":"x","a":18446744073709551616}\n'
             b'{"kind":"oversight.decision","kind":"x.y"}\n{"kind":"Oversight.decision"}\n')
    proc = subprocess.run([sys.executable, "-m", "app.cli", "append"], input=lines, env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.startswith(b"error: line 2: ") and b"safe range" in proc.stderr
    assert b"Traceback" not in proc.stderr and proc.stderr.count(b"\n") == 1


async def test_python_gives_the_same_answers(log: Log) -> None:
    """``canonical_event(..., submitted=True)`` is the outside entrances' rule; ``Log.append``
    (the product recording its own events) differs only in taking the reserved kinds."""
    for line, reason in REFUSED:
        with pytest.raises(EntryError, match=reason):
            canonical_event(line, submitted=True)
        with pytest.raises(EntryError, match=reason):
            canonical_event(bytearray(line))
        with pytest.raises(EntryError, match=reason):
            encode_event(decode_event(line))
    for line in RESERVED:
        with pytest.raises(EntryError, match="recorded by the server"):
            canonical_event(line, submitted=True)
        with pytest.raises(EntryError, match="recorded by the server"):
            encode_event(decode_event(line), submitted=True)
    size = await log.sequenced_size()
    parsed = [decode_event(line) for line, reason in REFUSED  # well-formed JSON, malformed kinds
              if reason in ("not a valid kind", "must be a string")]
    assert len(parsed) == 11
    for event in parsed:
        with pytest.raises(EntryError, match="kind"):
            await log.append([event])
    assert await log.sequenced_size() == size
    for line, entry in ACCEPTED:
        assert canonical_event(line, submitted=True) == entry
        (seq,) = await log.append([decode_event(line)])
        assert await log.entry(seq.leaf_index) == entry
    # The product records its own kinds; the kind grammar binds it too.
    for line in RESERVED:
        (seq,) = await log.append([decode_event(line)])
        assert await log.entry(seq.leaf_index) == canonical_event(line)
    await record(log, "oversight.decision", SYSTEM, decision="halt")
    for kind in ("Oversight.decision", " oversight.decision", "run..note"):
        with pytest.raises(EntryError, match="not a valid kind"):
            await record(log, kind, SYSTEM)

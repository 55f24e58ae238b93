"""The compiled fast path of canonical_event (ledger/_jcs.c) against the Python path.

The rule under test: whenever ``ledger._jcs.canonical`` returns bytes, they are exactly what the
Python path (``ledger.canonical._canonical_event``) returns for the same text, and RFC 8785's
reference implementation agrees; whenever the Python path refuses a text, the compiled path
returns None (so canonical_event's error messages are the Python path's).
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import ledger.canonical as canonical_module
from ledger.canonical import MAX_ENTRY_BYTES, MAX_SAFE_INTEGER, canonical_event
from ledger.errors import EntryError
from tests.support.rfc8785 import APPENDIX_B

try:
    from ledger._jcs import canonical as compiled_or_none
except ImportError:  # built by `pip install -e .` (setup.py) wherever a C compiler is at hand
    compiled_or_none = None

IN_CI = os.environ.get("CI", "").lower() == "true"
python_path = canonical_module._canonical_event


def test_compiled_path_is_built() -> None:
    if compiled_or_none is None:
        message = "ledger._jcs is not built: run `pip install -e .` with a C compiler at hand"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    assert canonical_module._compiled is compiled_or_none


@pytest.fixture(scope="module")
def compiled() -> Callable[[object], bytes | None]:
    if compiled_or_none is None:
        pytest.skip("ledger._jcs is not built (test_compiled_path_is_built says why)")
    return compiled_or_none


def outcome(fn: Callable[[bytes], bytes], line: bytes) -> bytes | str:
    """The bytes fn returns, or the message of the EntryError it raises."""
    try:
        return fn(line)
    except EntryError as e:
        return f"EntryError: {e}"


def check(compiled: Callable[[object], bytes | None], line: bytes, handled: bool = True) -> bytes | None:
    """The invariant for one text; ``handled``: the compiled path must return bytes for it."""
    fast = compiled(line)
    slow = outcome(python_path, line)
    if fast is not None:
        assert fast == slow, line
    elif handled:
        assert isinstance(slow, str), f"valid {line!r} was left to the Python path"
    assert outcome(canonical_event, line) == slow
    assert compiled(bytearray(line)) == fast
    return fast


def reference(line: bytes) -> bytes | None:
    """rfc8785's encoding of the standard library's parse, where both apply."""
    try:
        return rfc8785.dumps(json.loads(line))
    except (ValueError, rfc8785.CanonicalizationError):
        return None


# -- wiring: canonical_event really uses it ----------------------------------------------------


def test_canonical_event_calls_the_compiled_path(
    compiled: Callable[[object], bytes | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []

    def counting(line: object) -> bytes | None:
        calls.append(line)
        return compiled(line)

    monkeypatch.setattr(canonical_module, "_compiled", counting)
    line = b'{"b": [1, 2.5, "x"], "a": {"z": null, "y": true}}'
    assert canonical_event(line) == b'{"a":{"y":true,"z":null},"b":[1,2.5,"x"]}'
    assert calls == [line]
    # and what it returns is what canonical_event returns, without the Python path
    monkeypatch.setattr(canonical_module, "_compiled", lambda line: b"from C")
    monkeypatch.setattr(canonical_module, "_parse", None)  # the Python path would fail
    assert canonical_event(line) == b"from C"


def test_none_falls_back_to_the_python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(canonical_module, "_compiled", lambda line: None)
    assert canonical_event(b'{"b":1,"a":1.0}') == b'{"a":1,"b":1}'
    with pytest.raises(EntryError, match="duplicate key"):
        canonical_event(b'{"a":1,"a":2}')


def test_input_types(compiled: Callable[[object], bytes | None]) -> None:
    line = b' {"b": 1, "a": "\\u00e9"} '
    expected = '{"a":"\u00e9","b":1}'.encode()
    assert compiled(line) == compiled(bytearray(line)) == expected
    # everything else is the Python path's
    for other in (line.decode(), memoryview(line), 42, None, [line]):
        assert compiled(other) is None
    for other in (line.decode(), memoryview(line)):
        assert canonical_event(other) == expected  # type: ignore[arg-type]
    # a bytearray whose start moved (its buffer still ends with a NUL byte)
    moved = bytearray(b"xx" + line)
    del moved[:2]
    assert compiled(moved) == expected


# -- the repository's vectors, as text ---------------------------------------------------------


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_from_text(
    compiled: Callable[[object], bytes | None], bits: str, expected: str
) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits.rjust(16, "0")))[0]
    want = f'{{"n":{expected}}}'.encode()
    literals = [repr(value), f"{value:.17e}", f"{value:.16E}", f"{value:.20g}", expected]
    for literal in literals:
        if not any(c in literal for c in ".eE") and abs(int(literal)) > MAX_SAFE_INTEGER:
            continue  # an integer literal beyond 2**53-1 is the Python path's
        line = f'{{"n": {literal}}}'.encode()
        assert check(compiled, line) == want, literal


def test_rfc8785_examples_from_text(compiled: Callable[[object], bytes | None]) -> None:
    text = (
        b'{\n  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n'
        b'  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n'
        b'  "literals": [null, true, false]\n}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert check(compiled, text) == expected
    sorting = (
        b'{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With'
        b' Dagesh", "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
        b' "\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode()
    assert check(compiled, sorting) == expected == reference(sorting)


def event_lines(n: int) -> list[bytes]:
    """benchmarks/bench_ledger.py's typical events."""
    return [
        json.dumps({
            "kind": "training.step", "run": "run-2026-11-25-a", "step": i,
            "actor": "pseud:3f9a1c0e", "at": "2026-11-25T08:00:00.123Z",
            "metrics": {"loss": 0.6931 / (1 + i % 97), "reward_accuracy": 0.5 + (i % 50) / 100},
            "epsilon_spent": 0.0001 * (i % 1000), "dataset": "prefs@v3",
        }).encode()
        for i in range(n)
    ]


def test_typical_events(compiled: Callable[[object], bytes | None]) -> None:
    for line in event_lines(3000):
        assert check(compiled, line) == reference(line)


# -- edge cases it must get right --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        ' \t\r\n{ \t\r\n} \t\r\n',
        '{"a":[]}',
        '{"a":[{}, [], [[]], {"b": {}}]}',
        '{"a": -0, "b": -0.0, "c": 0e5, "d": -0E-5, "e": 0.000, "f": 0}',
        '{"max": 9007199254740991, "min": -9007199254740991, "n": [1, -1, 10, 123456789012345]}',
        '{"f": [1.0, 1.5, 100.0, 1e2, 1E+2, 1e-2, 12.50e-1, 0.1e1, 10e-1, 0.00001e5]}',
        '{"f": [1e21, 1e-7, 1e-6, 0.000001, 9.999999999999999e20, 999999999999999999999.0]}',
        '{"f": [5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e-400]}',
        '{"f": [0.1, 0.2, 0.30000000000000004, 0.10000000000000001, 0.1000000000000000055511]}',
        '{"f": [9007199254740993.0, 9007199254740992.5, 1e16, 1.5e16, 12345678901234567e5]}',
        '{"f": [4.35e-200, 1e23, 8.41e21, 5.764607523034235e39, 1.2345678901234567e-26]}',
        '{"f": [0.11551666666666667, 0.5700000000000001, 0.012300000000000002, 2.5e-05]}',
        # two 17-digit decimals equally near the double: repr takes the even last digit
        '{"f": [1125899906842624.2, 1125899906842624.3, 1125899906842624.7, 1125899906842624.8]}',
        # exactly between two doubles: the even one
        '{"f": [4503599627370496.5, 4503599627370497.5, 9007199254740993e0, 9007199254740995.0]}',
        '{"s":"\x7f"}',
        '{"s": "\\u0000\\u001f\\u007f\\u0080\\u2028\\u2029\\ufeff\\uffff\\b\\f\\n\\r\\t\\/\\"\\\\"}',
        '{"s": "\\uD83D\\uDE00 \\ud800\\udc00 \\udbff\\udfff \\u00E9\\u00e9"}',
        '{"s": "\x7f \u00e9 \u0800 \uffff \U00010000 \U0010ffff </script>"}',
        '{"\\ue000": 1, "\\ud800\\udc00": 2, "\\uffff": 3, "\\U0001f600": 4, "z": 5, "\\ud7ff": 6}'
        .replace("\\U0001f600", "\U0001f600"),
        '{"b": 1, "a": 2, "\\u0061b": 3, "ab\\u0000": 4, "": 5, "\\n": 6, "A": 7}',
        '{"aaaaaaaaX": 1, "aaaaaaaa": 2, "aaaaaaaaa": 3, "aaaaaaa\\u00e9": 4, "aaaaaaa\\u007f": 5}',
        '{"k": {"d": 1, "c": 2, "b": {"z": 1, "y": [{"q": 1, "p": 2}]}, "a": 3}}',
        '{"t": true, "f": false, "n": null, "l": [true, false, null]}',
    ],
)
def test_edge_cases(compiled: Callable[[object], bytes | None], text: str) -> None:
    line = text.encode()
    out = check(compiled, line)
    assert out is not None
    assert out == reference(line)


def test_key_order_is_utf16(compiled: Callable[[object], bytes | None]) -> None:
    # U+E000..U+FFFF after U+10000.., even when sharing a prefix, in small and large objects
    chars = ["a", "\u00ff", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0010ffff", "\U0001f600"]
    keys = sorted({p + c + s for p in ["", "x", "\U0001f600"] for c in chars for s in ["", "b"]})
    for members in (keys[:6], keys):  # insertion sort, and qsort beyond 24 members
        for rnd in range(5):
            random.Random(rnd).shuffle(members)
            line = json.dumps(dict.fromkeys(members, 0), ensure_ascii=bool(rnd % 2)).encode()
            out = check(compiled, line)
            assert out == reference(line)
            assert list(json.loads(out)) == sorted(members, key=lambda k: k.encode("utf-16-be"))


def test_many_members_and_duplicates_among_them(compiled: Callable[[object], bytes | None]) -> None:
    members = [f'"k{i}": {i}' for i in range(3000)]
    random.Random(1).shuffle(members)
    line = ("{" + ", ".join(members) + "}").encode()
    assert check(compiled, line) == reference(line)
    for dup in ('"k17": 0', '"k\\u0031\\u0037": 0'):
        line = ("{" + ", ".join([*members[:1500], dup, *members[1500:]]) + "}").encode()
        assert compiled(line) is None
        assert check(compiled, line, handled=False) is None


def test_nesting_limit(compiled: Callable[[object], bytes | None]) -> None:
    for depth, ok in [(254, True), (255, False), (1000, False)]:
        for open_, close in [('{"a":', "}"), ("[", "]")]:
            inner = open_ * (depth - 1) + "1" + close * (depth - 1)
            line = ('{"x":' + inner + "}").encode()
            out = compiled(line)
            assert (out is not None) == ok, (depth, open_)
            check(compiled, line, handled=ok)


def test_size_limit(compiled: Callable[[object], bytes | None]) -> None:
    filler = MAX_ENTRY_BYTES - len(b'{"x":""}')
    for extra, ok in [(0, True), (1, False), (1000, False)]:
        for text in [
            '{"x": "' + "a" * (filler + extra) + '"}',
            '{"x": "' + "\\n" * ((filler + extra) // 2) + "a" * ((filler + extra) % 2) + '"}',
            '{"x": "' + "\\u0001" * ((filler + extra) // 6) + "a" * ((filler + extra) % 6) + '"}',
            '{"x": "' + "\\u00e9" * ((filler + extra) // 2) + "a" * ((filler + extra) % 2) + '"}',
        ]:
            line = text.encode()
            out = compiled(line)
            assert (out is not None) == ok, (extra, text[:20])
            check(compiled, line, handled=ok)
    # numbers whose canonical form is longer than their literal, at the limit
    numbers = ",".join(["1e20"] * 2978)  # 21 bytes each once canonical
    pad = MAX_ENTRY_BYTES - len(b'{"n":[],"p":""}') - (2978 * 22 - 1)
    for extra, ok in [(0, True), (1, False)]:
        line = f'{{"p":"{"a" * (pad + extra)}","n":[{numbers}]}}'.encode()
        out = compiled(line)
        assert (out is not None) == ok
        assert out is None or len(out) == MAX_ENTRY_BYTES
        check(compiled, line, handled=ok)


# -- what it leaves to the Python path ---------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        # not JSON
        b"", b" ", b"{", b"}", b'{"a"}', b'{"a" 1}', b'{"a":}', b'{"a":1,}', b'{,"a":1}', b"{'a':1}",
        b'{"a":1}}', b'{"a":1} {}', b'{"a":1}x', b'{"a":[1,]}', b'{"a":[,1]}', b'{"a":[1 2]}',
        b'{a:1}', b'{"a":01}', b'{"a":-01}', b'{"a":1.}', b'{"a":.5}', b'{"a":+1}', b'{"a":1e}',
        b'{"a":1e+}', b'{"a":-}', b'{"a":1.e5}', b'{"a":0x10}', b'{"a":1_000}', b'{"a":--1}',
        b'{"a":tru}', b'{"a":True}', b'{"a":nul}', b'{"a":falsey}', b'{"a":undefined}',
        b'{"a":NaN}', b'{"a":Infinity}', b'{"a":-Infinity}', b'{"a":"x}', b'{"a":"x\\"}',
        b'{"a":"\\x41"}', b'{"a":"\\u12"}', b'{"a":"\\u12g4"}', b'{"a":"\\U0041"}', b'{"a":"\\\'"}',
        b'{"a":"\x00"}', b'{"a":"\x1f"}', b'{"a":"\t"}', b'{"a":"\n"}', b'{"a\n":1}',
        b'{"a":1}\x00', b'\x00{"a":1}', b'{"a":1\x00}', b'\x0c{}', b'{}\x0b', b'{\xc2\xa0}',
        b'{"a":1}\xe2\x80\xa8', b'{"a":/**/1}',
        # not UTF-8
        b'{"a":"\xff"}', b'{"a":"\xc3"}', b'{"a":"\xc3x"}', b'{"a":"\xc0\x80"}', b'{"a":"\xc1\xbf"}',
        b'{"a":"\xe0\x80\x80"}', b'{"a":"\xe0\x9f\xbf"}', b'{"a":"\xed\xa0\x80"}', b'{"\xed\xbf\xbf":1}',
        b'{"a":"\xf0\x80\x80\x80"}', b'{"a":"\xf0\x8f\xbf\xbf"}', b'{"a":"\xf4\x90\x80\x80"}',
        b'{"a":"\xf5\x80\x80\x80"}', b'{"a":"\xf8\x88\x80\x80\x80"}', b'{"a":"\x80"}', b'{"a":"\xbf"}',
        b'{"a":"\xe2\x82"}', b'{"a":"\xf0\x9f\x98"}', b'{"a":"\xf0\x9f\x98"', b'{"a":"\xe2',
        # a byte order mark, a top level that is not an object
        b"\xef\xbb\xbf{}", b"[]", b"[1]", b'"x"', b"1", b"-0.5", b"null", b"true", b"false",
        # lone surrogates
        b'{"a":"\\ud800"}', b'{"a":"\\udc00"}', b'{"a":"\\udfff\\ud800"}', b'{"a":"\\ud800x"}',
        b'{"a":"\\ud800\\u0041"}', b'{"a":"\\ud800\\ud800"}', b'{"a":"\\ud800\\"}', b'{"\\udbff":1}',
        b'{"a":"\\ud800\\n"}', b'{"a":"\\ud800', b'{"a":"\\udc00\\udc00"}', b'{"a":"\\udfff\\udfff"}',
        # duplicate keys, however spelled
        b'{"a":1,"a":1}', b'{"a":1,"b":2,"a":3}', b'{"b":1,"a":2,"a":3}', b'{"a":1,"\\u0061":2}',
        b'{"x":{"c":1,"c":2}}', b'{"x":[{"q":1},{"y":2,"y":3}]}',
        b'{"\\ud83d\\ude00":1,"\xf0\x9f\x98\x80":2}',
        b'{"\\n":1,"\\u000a":2}', b'{"\\/":1,"/":2}', b'{"":1,"":2}',
        # numbers: beyond the safe range, or not finite
        b'{"n":9007199254740992}', b'{"n":-9007199254740992}', b'{"n":9007199254740993}',
        b'{"n":12345678901234567}', b'{"n":18446744073709551616}', b'{"n":-9223372036854775809}',
        b'{"n":6000000000000000000}', b'{"n":295147905179352830000}', b'{"n":1' + b"0" * 400 + b"}",
        b'{"n":1e400}', b'{"n":-1e400}', b'{"n":1.8e308}', b'{"n":1e999999999999999999}',
        b'{"n":' + b"1" * 500 + b'.5}',
    ],
)
def test_left_to_the_python_path(compiled: Callable[[object], bytes | None], line: bytes) -> None:
    assert compiled(line) is None
    slow = outcome(python_path, line)
    assert outcome(canonical_event, line) == slow
    if isinstance(slow, bytes):  # big integer literals that are exactly a double's rendering
        assert line.startswith(b'{"n":')


# -- generated text: every kind of value, every way of writing it ------------------------------

TRICKY_CHARS = st.sampled_from(
    ["a", "B", "\x00", "\x1f", "\x7f", "\b", "\t", "\n", "\f", "\r", '"', "\\", "/", ":", "\u0080",
     "\u00e9", "\u07ff", "\u0800", "\u2028", "\u2029", "\ud7ff", "\ue000", "\uf8ff", "\ufb33",
     "\ufeff", "\uffff", "\U00010000", "\U0001f600", "\U0010ffff"]
)
STRINGS = st.one_of(st.text(max_size=12), st.text(TRICKY_CHARS, max_size=6))
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(0, 2**64 - 1).map(lambda b: struct.unpack("<d", b.to_bytes(8, "little"))[0])
    .filter(math.isfinite),  # subnormals and every exponent
    st.floats(min_value=1e-8, max_value=1e-4),
    st.floats(min_value=1e15, max_value=1e22),
    st.floats(min_value=0, max_value=1),
    st.integers(-(2**60), 2**60).map(float),  # integral floats
    st.integers(-330, 308).map(lambda e: float(f"1e{e}")),
    st.integers(-1074, 1023).map(lambda e: math.ldexp(1.0, e)),  # powers of two: uneven gaps
    st.integers(-1022, 1023).map(lambda e: math.nextafter(math.ldexp(1.0, e), 0)),
    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, 0.1]),
)
INTS = st.one_of(
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
    st.integers(-1000, 1000),
    st.integers(-(2**70), 2**70),  # mostly beyond the safe range: the Python path's
    st.sampled_from([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 2**53, -(2**53), 2**63, 2**64]),
)
DECIMALS = st.tuples(  # arbitrary literals: sign, digits, where the point goes, exponent
    st.booleans(), st.text("0123456789", min_size=1, max_size=24), st.integers(0, 24),
    st.one_of(st.none(), st.integers(-40, 40), st.integers(-400, 400)),
)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), INTS, FLOATS, STRINGS, DECIMALS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(STRINGS, inner, max_size=6)
    ),
    max_leaves=30,
)
EVENTS = st.dictionaries(STRINGS, JSON, max_size=10)

SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                 "\r": "\\r", "\t": "\\t"}


class Writer:
    """Writes a generated value as JSON text, spacing and escaping it at random."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.big_integers = False  # a literal beyond ±(2**53-1): the Python path's to handle

    def space(self) -> str:
        return self.rnd.choice(["", "", "", " ", "\n", "\t", "\r\n", "  "])

    def string(self, s: str) -> str:
        style = self.rnd.random()
        if style < 0.3:
            return json.dumps(s, ensure_ascii=style < 0.15)
        parts = []
        for ch in s:
            code = ord(ch)
            must = ch in '"\\' or code < 0x20
            if not must and self.rnd.random() < 0.7:
                parts.append(ch)
            elif ch in SHORT_ESCAPES and self.rnd.random() < 0.5:
                parts.append(SHORT_ESCAPES[ch])
            elif code >= 0x10000:
                hi, lo = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
                parts.append(self.hex_escape(hi) + self.hex_escape(lo))
            else:
                parts.append(self.hex_escape(code))
        return '"' + "".join(parts) + '"'

    def hex_escape(self, code: int) -> str:
        text = f"\\u{code:04x}"
        return text.upper().replace("\\U", "\\u") if self.rnd.random() < 0.5 else text

    def number(self, v: float | int) -> str:
        if isinstance(v, int):
            if abs(v) > MAX_SAFE_INTEGER:
                self.big_integers = True
            return "-0" if v == 0 and self.rnd.random() < 0.2 else str(v)
        choice = self.rnd.random()
        if choice < 0.5:
            return repr(v)  # shortest digits: the compiled path's proof, mostly
        if choice < 0.7:
            return f"{v:.{self.rnd.randint(0, 20)}e}"  # other digits: other doubles, or not shortest
        # the same value written another way: the point moved, zeros added, an exponent
        sign, digit_tuple, exp = Decimal(repr(v)).as_tuple()
        assert isinstance(exp, int)
        zeros = self.rnd.randint(0, 2)
        digits = "".join(map(str, digit_tuple)) + "0" * zeros
        point = self.rnd.randint(0, len(digits))
        whole, frac = digits[:point].lstrip("0") or "0", digits[point:]
        e = exp - zeros + len(digits) - point
        mark = self.rnd.choice(["e", "E", "e+", "E+", "e0"]) if e >= 0 else self.rnd.choice(["e", "E"])
        text = ("-" if sign else "") + whole + ("." + frac if frac else "") + mark + str(e)
        assert float(text) == v or v != v, (text, v)
        return text

    def decimal(self, sign: bool, digits: str, point: int, exp: int | None) -> str:
        whole, frac = digits[:point].lstrip("0") or "0", digits[point:]
        text = ("-" if sign else "") + whole + ("." + frac if frac else "")
        if exp is not None:
            text += self.rnd.choice(["e", "E", "e+"]) + str(exp) if exp >= 0 else f"e{exp}"
        if not frac and exp is None and abs(int(text)) > MAX_SAFE_INTEGER:
            self.big_integers = True
        return text

    def value(self, v: object) -> str:
        if v is None or isinstance(v, bool):
            return json.dumps(v)
        if isinstance(v, str):
            return self.string(v)
        if isinstance(v, (int, float)):
            return self.number(v)
        if isinstance(v, tuple):
            return self.decimal(*v)
        sp = self.space
        if isinstance(v, list):
            return "[" + sp() + ("," + sp()).join(self.value(x) + sp() for x in v) + "]"
        assert isinstance(v, dict)
        members = [self.string(k) + sp() + ":" + sp() + self.value(x) + sp() for k, x in v.items()]
        return "{" + sp() + ("," + sp()).join(members) + "}"


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS, st.randoms(use_true_random=False))
@example({"a": 0.1, "b": [1e21, 1e-7]}, random.Random(0))
def test_generated_text(
    compiled: Callable[[object], bytes | None], event: dict[str, object], rnd: random.Random
) -> None:
    writer = Writer(rnd)
    line = (writer.space() + writer.value(event) + writer.space()).encode()
    fast = check(compiled, line, handled=not writer.big_integers)
    if fast is not None:
        assert fast == reference(line)


@settings(max_examples=1500, deadline=None)
@given(st.lists(FLOATS, min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_generated_floats(
    compiled: Callable[[object], bytes | None], floats: list[float], rnd: random.Random
) -> None:
    writer = Writer(rnd)
    line = ('{"f":[' + ",".join(writer.number(f) for f in floats) + "]}").encode()
    out = check(compiled, line)
    assert out == reference(line)


@settings(max_examples=1500, deadline=None)
@given(st.integers(10**15, 10**17 - 1), st.integers(-30, 30), st.booleans())
def test_sixteen_and_seventeen_digit_literals(
    compiled: Callable[[object], bytes | None], digits: int, exp: int, negative: bool
) -> None:
    # what repr writes for most computed floats, and the neighbours it never writes
    sign = "-" if negative else ""
    for d in (digits, digits + 1, digits - 1, digits // 10 * 10 + 5):
        line = f'{{"x":{sign}{d}e{exp}}}'.encode()
        assert check(compiled, line) == reference(line)
    value = float(f"{digits}e{exp}")
    line = f'{{"x":{sign}{value!r}}}'.encode()
    assert check(compiled, line) == reference(line)


def near(value: Decimal, digits: int) -> list[str]:
    """The decimals of ``digits`` significant digits on either side of value."""
    out = []
    for rounding in (ROUND_FLOOR, ROUND_CEILING):
        with localcontext() as ctx:
            ctx.prec, ctx.rounding = digits, rounding
            out.append(str(+value))
    return out


def midpoint_literals(x: float) -> list[str]:
    """Literals at and around the reals halfway between x and its neighbours, where the choice of
    double (ties to even; half the gap below a power of two) and of digits is decided."""
    literals = []
    for other in (math.nextafter(x, math.inf), math.nextafter(x, -math.inf)):
        if not math.isfinite(other):
            continue
        with localcontext() as ctx:
            ctx.prec = 2000  # exact
            mid = (Decimal(x) + Decimal(other)) / 2
        literals.append(str(mid))
        for digits in (15, 16, 17, 18):
            literals.extend(near(mid, digits))
    return literals


@settings(max_examples=600, deadline=None)
@given(FLOATS.filter(lambda f: f != 0))
def test_literals_between_doubles(compiled: Callable[[object], bytes | None], x: float) -> None:
    literals = midpoint_literals(abs(x))
    line = ('{"f":[' + ",".join(lit.replace("E", "e") for lit in literals) + "]}").encode()
    assert check(compiled, line) == reference(line)


def test_literals_around_powers_of_two(compiled: Callable[[object], bytes | None]) -> None:
    # below a power of two the gap between doubles is half the gap above it
    for e in range(-90, 150):
        literals = midpoint_literals(math.ldexp(1.0, e))
        line = ('{"f":[' + ",".join(lit.replace("E", "e") for lit in literals) + "]}").encode()
        assert check(compiled, line) == reference(line)

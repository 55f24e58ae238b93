"""RFC 8785 canonicalisation: the RFC's samples, the reference implementation, refusals."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import json
import math
import struct
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ledger.canonical as canonical_module
from ledger.canonical import (
    MAX_ENTRY_BYTES,
    MAX_SAFE_INTEGER,
    RESERVED_KINDS,
    canonical_event,
    canonicalize,
    check_kind,
    decode_event,
    encode_event,
)
from ledger.errors import EntryError, LedgerError
from tests.support.rfc8785 import APPENDIX_B


def ieee(hex_bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(hex_bits.rjust(16, "0")))[0]


def assert_no_chained_traceback(error: BaseException) -> None:
    """The message stands alone: no orjson/json/codec exception chained below it."""
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


# -- RFC 8785 examples -------------------------------------------------------------------------


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    value = ieee(bits)
    assert canonicalize(value) == expected.encode()
    assert canonicalize([value]) == f"[{expected}]".encode()
    assert canonicalize({"n": value}) == f'{{"n":{expected}}}'.encode()
    assert rfc8785.dumps(value) == expected.encode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (333333333.3333333, "333333333.3333333"),
        (333333333.33333329, "333333333.3333333"),
        (4.5, "4.5"),
        (4.50, "4.5"),
        (2e-3, "0.002"),
        (0.000001, "0.000001"),
        (1.0, "1"),
        (-0.0, "0"),
        (0.0, "0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740991, "9007199254740991"),
        (-9007199254740991, "-9007199254740991"),
        (1e30, "1e+30"),
        (1e-27, "1e-27"),
        (1e16, "10000000000000000"),
        (1.5e20, "150000000000000000000"),
        (1e-5, "0.00001"),
        (1.5e-6, "0.0000015"),
        (9.99e-7, "9.99e-7"),
        (123e-20, "1.23e-18"),
        (100.0, "100"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (0, "0"),
    ],
)
def test_rfc8785_number_and_literal_samples(value: object, expected: str) -> None:
    assert canonicalize(value) == expected.encode()
    assert canonicalize({"v": [value]}) == f'{{"v":[{expected}]}}'.encode()


def test_rfc8785_sorting_example() -> None:
    # RFC 8785 section 3.2.3.
    event = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode()
    assert canonicalize(event) == expected == rfc8785.dumps(event)
    # and from text, with the emoji written as the surrogate pair \ud83d\ude00
    assert canonical_event(json.dumps(event)) == expected
    assert canonical_event(json.dumps(event).encode()) == expected


def test_rfc8785_main_example_from_text() -> None:
    # RFC 8785 section 3.2.2 / cyberphone testdata/input/values.json
    text = (
        '{\n  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n'
        '  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n'
        '  "literals": [null, true, false]\n}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_event(text) == expected
    assert encode_event(decode_event(text.encode())) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # cyberphone testdata structures.json
            '{"1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0}, "10": { }, "": "empty", "a": { },'
            ' "111": [ { } ], "A": { }}',
            '{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}',
        ),
        (  # weird.json
            '{"\\u20ac": "Euro Sign", "1": "One", "\\u0080": "Control\\u007f",'
            ' "\\ud83d\\ude02": "Smiley", "\\u00f6": "Latin Small Letter O With Diaeresis",'
            ' "\\ufb33": "Hebrew Letter Dalet With Dagesh", "</script>": "Browser Challenge"}',
            '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",'
            '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
            '"\U0001f602":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
        ),
        (  # french.json: no locale, just code units
            '{"peach": "This sorting order", "p\u00e9ch\u00e9": "is wrong according to French",'
            ' "p\u00eache": "but canonicalization MUST", "sin":   "ingnore locale"}',
            '{"peach":"This sorting order","p\u00e9ch\u00e9":"is wrong according to French",'
            '"p\u00eache":"but canonicalization MUST","sin":"ingnore locale"}',
        ),
    ],
)
def test_reference_testdata(text: str, expected: str) -> None:
    assert canonical_event(text.encode()) == expected.encode()


# -- strings and keys --------------------------------------------------------------------------


def test_escapes() -> None:
    named = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    for code in range(0x20):
        char = chr(code)
        want = named.get(char, f"\\u{code:04x}")  # lowercase hex
        assert canonicalize(char) == f'"{want}"'.encode()
    assert canonicalize('"') == b'"\\""'
    assert canonicalize("\\") == b'"\\\\"'
    # written as they are: DEL, '/', non-ASCII, U+2028/2029, astral characters
    for char in ["\x7f", "/", "\u00e9", "\u2028", "\u2029", "\ufeff", "\uffff", "\U0001f600"]:
        assert canonicalize(char) == b'"' + char.encode() + b'"'
    everything = "".join(chr(c) for c in range(0x800)) + "\ue000\uffff\U00010000\U0010ffff"
    assert canonicalize(everything) == rfc8785.dumps(everything)


def test_keys_sort_by_utf16_code_units() -> None:
    # U+E000..U+FFFF sort after the surrogate pairs of U+10000 and above in UTF-16.
    event = {"\ue000": 1, "\U0001f600": 2, "\uffff": 3, "\U00010000": 4, "z": 5, "\ud7ff": 6}
    out = canonicalize(event)
    assert out == rfc8785.dumps(event)
    order = ["z", "\ud7ff", "\U00010000", "\U0001f600", "\ue000", "\uffff"]
    assert list(orjson.loads(out)) == order
    # nested, inside arrays, next to floats, with an escaped quote after the astral character
    nested = {"a": [{"\ufb33": 1.0, '\U0001f602"': 0.5, "x": {"\U0001f602": 1e16, "\uff01": 2}}]}
    assert canonicalize(nested) == rfc8785.dumps(nested)
    assert canonical_event(orjson.dumps(nested)) == rfc8785.dumps(nested)
    # astral characters in values only change nothing
    values_only = {"\ue000": "\U0001f600", "b": 1}
    assert canonicalize(values_only) == '{"b":1,"\ue000":"\U0001f600"}'.encode()


# -- the reference implementation, on generated values ----------------------------------------

SAFE_INTS = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-7, max_value=1e-4),  # where ECMAScript switches to exponents
    st.floats(min_value=-1e-5, max_value=-1e-6),
    st.floats(min_value=1e15, max_value=1e22),  # and back
    st.floats(min_value=-1e22, max_value=-1e15),
    st.integers(min_value=-(2**60), max_value=2**60).map(float),  # integral floats
    st.integers(min_value=-1022, max_value=1023).map(lambda e: math.ldexp(1.0, e)),
    st.integers(min_value=-330, max_value=308).map(lambda e: float(f"1e{e}")),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, 2.2250738585072014e-308]),
)
TRICKY_KEY_CHARS = st.sampled_from(
    ["a", "B", "\r", "\u0080", "\u00f6", "\ud7ff", "\ue000", "\ufb33", "\uffff", "\U00010000",
     "\U0001f600", "\U0010ffff", '"', "\\", ":", "\u2028"]
)
KEYS = st.one_of(st.text(max_size=8), st.text(TRICKY_KEY_CHARS, max_size=4))
SCALARS = st.one_of(
    st.none(), st.booleans(), SAFE_INTS, FLOATS, st.text(), st.text(TRICKY_KEY_CHARS)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(KEYS, inner, max_size=6)
    ),
    max_leaves=40,
)
EVENTS = st.dictionaries(KEYS, JSON, max_size=12)


@contextmanager
def orjson_floats_distrusted() -> Iterator[None]:
    """Run with the fallback that formats every float itself (as if orjson had changed)."""
    saved = canonical_module._ORJSON_FLOATS_OK
    canonical_module._ORJSON_FLOATS_OK = False
    try:
        yield
    finally:
        canonical_module._ORJSON_FLOATS_OK = saved


def test_installed_orjson_formats_floats_as_expected() -> None:
    # If this fails, a new orjson formats floats differently: still correct, just slower.
    assert canonical_module._ORJSON_FLOATS_OK


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_matches_reference_implementation(value: object) -> None:
    expected = rfc8785.dumps(value)
    assert canonicalize(value) == expected
    with orjson_floats_distrusted():
        assert canonicalize(value) == expected


@settings(max_examples=300, deadline=None)
@given(FLOATS)
def test_floats_match_reference(value: float) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)
    assert canonicalize({"x": [value, -value]}) == rfc8785.dumps({"x": [value, -value]})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS, st.booleans(), st.sampled_from([None, 2]))
def test_events_from_text_match_reference(
    event: dict[str, object], ascii_: bool, indent: int | None
) -> None:
    expected = rfc8785.dumps(event)
    text = json.dumps(event, ensure_ascii=ascii_, indent=indent)  # \ud83d\ude00, spaces, newlines
    assert canonical_event(text) == expected
    assert canonical_event(text.encode()) == expected
    assert canonical_event(orjson.dumps(event)) == expected
    decoded = decode_event(text.encode())
    assert encode_event(decoded) == expected
    with orjson_floats_distrusted():
        assert canonical_event(text) == expected
        assert encode_event(decode_event(text)) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_idempotent(value: object) -> None:
    once = canonicalize({"v": value})
    assert canonicalize(decode_event(once)) == once
    assert encode_event(decode_event(once)) == once
    assert canonical_event(once) == once
    assert canonical_event(once.decode()) == once


# -- duplicate keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":2}',
        '{"a":1,"a":1}',
        '{"a": 1, "b": {"c": 1, "c": 2}}',
        '{"a": [{"x": 1}, {"y": 2, "y": 3}]}',
        '{"a":1,"\\u0061":2}',  # the same name, spelled differently
        '{"t":"12:00","a":"\\u003a","a":"x"}',  # an escaped colon must not hide the duplicate
        '{"k\\u003a":1,"k:":2}',
    ],
)
def test_duplicate_keys_refused(text: str) -> None:
    for parse in (decode_event, canonical_event):
        with pytest.raises(EntryError, match="duplicate key"):
            parse(text)
        with pytest.raises(EntryError, match="duplicate key"):
            parse(text.encode())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(KEYS, JSON), min_size=1, max_size=8),
    st.data(),
)
def test_duplicates_found_however_written(
    pairs: list[tuple[str, object]], data: st.DataObject
) -> None:
    names = [k for k, _ in pairs]
    victim = data.draw(st.sampled_from(names))
    pairs.insert(data.draw(st.integers(0, len(pairs))), (victim, data.draw(JSON)))

    def string(s: str) -> str:
        out = json.dumps(s, ensure_ascii=data.draw(st.booleans()))
        return out.replace(":", "\\u003a") if data.draw(st.booleans()) else out

    body = ", ".join(f"{string(k)}: {json.dumps(v)}" for k, v in pairs)
    nest = data.draw(st.booleans())
    text = f'{{"outer": {{{body}}}}}' if nest else f"{{{body}}}"
    with pytest.raises(EntryError, match="duplicate key"):
        canonical_event(text.encode())
    with pytest.raises(EntryError, match="duplicate key"):
        decode_event(text)


def test_colons_in_strings_are_not_duplicates() -> None:
    text = '{"ts": "2025-03-01T12:34:56Z", "url": "https://x/a:b", "k:": ":", "\\u003a": 1}'
    assert canonical_event(text) == rfc8785.dumps(json.loads(text))
    assert decode_event(text)["\u003a"] == 1


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, r"^\$: NaN is not a JSON number"),
        (math.inf, r"^\$: Infinity is not a JSON number"),
        ({"metrics": {"loss": -math.inf}}, r"^\$\.metrics\.loss: -Infinity is not a JSON number"),
        ({"a": [1, 2, {"b": math.nan}]}, r"^\$\.a\[2\]\.b: NaN"),
        (2**53, r"^\$: integer 9007199254740992 is outside the safe range ±\(2\*\*53-1\)"),
        (-(2**53), r"integer -9007199254740992 .*IEEE-754 double"),
        ({"n": [2**64]}, r"^\$\.n\[0\]: integer 18446744073709551616 .*RFC 8785"),
        ({"n": 10**400}, r"^\$\.n: integer a 1329-bit integer is outside"),
        ({1: "x"}, r"^\$: key 1 \(int\) is not a string"),
        ({"a": {None: 1}}, r"^\$\.a: key None \(NoneType\) is not a string"),
        ({"a": "ok\ud800"}, r"^\$\.a: string has a lone surrogate U\+D800 at index 2"),
        ({"a\udc00": 1}, r"^\$: key has a lone surrogate U\+DC00"),
        ({"\U0001f600": 1, "\udc00": 2}, r"lone surrogate U\+DC00"),
        ({"when": datetime.datetime(2025, 1, 1)}, r"^\$\.when: type 'datetime' is not a JSON type"),
        ({"a b": {1, 2}}, r'^\$\["a b"\]: type \'set\' is not a JSON type'),
        ({"raw": b"bytes"}, r"type 'bytes'"),
        ({"d": decimal.Decimal("1.5")}, r"type 'Decimal'"),
        ({"f": orjson.Fragment(b"[1,2]")}, r"type 'Fragment'"),
        (object(), r"type 'object'"),
    ],
)
def test_canonicalize_refuses(value: object, message: str) -> None:
    with pytest.raises(EntryError, match=message) as info:
        canonicalize(value)
    assert_no_chained_traceback(info.value)


def test_safe_integer_bounds() -> None:
    assert canonicalize(MAX_SAFE_INTEGER) == b"9007199254740991"
    assert canonicalize(-MAX_SAFE_INTEGER) == b"-9007199254740991"
    for bad in (MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**63, 2**64 - 1):
        with pytest.raises(EntryError, match="IEEE-754"):
            canonicalize({"n": bad})


def test_enum_refused_but_str_and_int_enums_written_as_values() -> None:
    class Colour(enum.Enum):
        RED = 1

    class Level(enum.IntEnum):
        HIGH = 3

    class Kind(enum.StrEnum):
        PREF = "preference"

    with pytest.raises(EntryError, match=r"^\$\.c: type 'Colour'"):
        canonicalize({"c": Colour.RED})
    mixed = {"l": Level.HIGH, Kind.PREF: Kind.PREF}
    assert canonicalize(mixed) == b'{"l":3,"preference":"preference"}'


def test_tuples_and_subclasses() -> None:
    class Ratio(float):
        pass

    ordered = collections.OrderedDict([("b", (1, 2.0)), ("a", [(), ("x",)])])
    assert canonicalize(ordered) == b'{"a":[[],["x"]],"b":[1,2]}' == rfc8785.dumps(ordered)
    assert canonicalize((1, Ratio(0.5))) == b"[1,0.5]"
    assert canonicalize(collections.defaultdict(list, {"k": []})) == b'{"k":[]}'


def test_cycles_and_depth() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(EntryError, match=r"^\$\.self: refers back"):
        canonicalize(loop)
    deep: list[object] = []
    for _ in range(253):
        deep = [deep]
    assert canonicalize(deep) == b"[" * 254 + b"]" * 254
    with pytest.raises(EntryError, match="nested more than 254"):
        canonicalize([deep])
    text = '{"a":' * 300 + "1" + "}" * 300
    for parse in (decode_event, canonical_event):
        with pytest.raises(EntryError, match="nested more than 254"):
            parse(text)


def test_encode_event_needs_an_object() -> None:
    for value, kind in [([1], "an array"), ("x", "a string"), (1.5, "a number"), (None, "null"),
                        ((1,), "an array"), (True, "a boolean")]:
        with pytest.raises(EntryError, match=f"must be a JSON object, not {kind}"):
            encode_event(value)
    assert encode_event({}) == b"{}"


def test_size_limit() -> None:
    assert MAX_ENTRY_BYTES == 65535
    filler = MAX_ENTRY_BYTES - len(b'{"x":""}')
    at_limit = {"x": "a" * filler}
    assert len(encode_event(at_limit)) == MAX_ENTRY_BYTES
    assert len(canonical_event(orjson.dumps(at_limit))) == MAX_ENTRY_BYTES
    over = {"x": "a" * (filler + 1)}
    for encode in (lambda: encode_event(over), lambda: canonical_event(orjson.dumps(over))):
        with pytest.raises(EntryError, match=r"event is 65536 bytes .* the limit is 65535"):
            encode()
    # the limit is on the canonical bytes: escapes count, insignificant whitespace does not
    with pytest.raises(EntryError, match="65536 bytes"):
        encode_event({"x": "\n" * (filler // 2 + 1)})
    assert canonical_event(json.dumps(at_limit, indent=8).encode()) == encode_event(at_limit)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"a": "\xff"}', r"^not valid UTF-8: byte 0xff at offset 7$"),
        (b'{"a": "\xc3"}', r"^not valid UTF-8: byte 0xc3 at offset 7$"),
        (b'{"a": "\xed\xa0\x80"}', r"^not valid UTF-8: byte 0xed at offset 7$"),  # CESU surrogate
        ('{"a": "\ud800"}', r"^not valid Unicode: lone surrogate at index 7$"),
        (b'{"a": "\\ud800"}', r"^not valid JSON: .*surrogate"),
        (b'{"a": 1', r"^not valid JSON: "),
        (b'{"a": 1} {"b": 2}', r"^not valid JSON: "),
        (b"", r"^not valid JSON: "),
        (b"\xef\xbb\xbf{}", r"^not valid JSON: .*BOM"),
        (b'{"a": NaN}', r"^not valid JSON: "),
        (b'{"a": Infinity}', r"^not valid JSON: "),
        (b'{"a": 1e400}', r"^not valid JSON: .*infinity"),
        (b"{'a': 1}", r"^not valid JSON: "),
        (b"[1, 2]", r"^an event must be a JSON object, not an array$"),
        (b'"event"', r"^an event must be a JSON object, not a string$"),
        (b"null", r"^an event must be a JSON object, not null$"),
        (b"3.5", r"^an event must be a JSON object, not a number$"),
        (b'{"n": 9007199254740993}', r"^\$\.n: integer 9007199254740993 is outside the safe range"),
        (b'{"n": [-9007199254740993]}', r"^\$\.n\[0\]: integer -9007199254740993 .*IEEE-754"),
        (b'{"n": 1152921504606846976}', r"^\$\.n: integer 1152921504606846976"),  # 2**60
        # beyond 64 bits orjson would make these floats; they are integers all the same
        (b'{"n": 18446744073709551616}', r"^integer 18446744073709551616 is outside the safe"),
        (b'{"n": -9223372036854775809}', r"^integer -9223372036854775809 is outside the safe"),
        (b'{"n": 1' + b"0" * 40 + b"}", r"^integer 10000000000000000000000000000000000000000 is"),
    ],
)
def test_text_refused(line: bytes | str, message: str) -> None:
    for parse in (decode_event, canonical_event):
        with pytest.raises(EntryError, match=message) as info:
            parse(line)
        assert isinstance(info.value, LedgerError)
        assert_no_chained_traceback(info.value)
        assert "Traceback" not in str(info.value)


def test_large_numbers_in_text() -> None:
    # In text every number is a double (RFC 8785's model): float literals of any size are fine,
    text = b'{"a": 1e19, "b": 18446744073709551616.0, "c": 1.5e300, "d": -2E+20, "e": "e+"}'
    out = canonical_event(text)
    assert out == (
        b'{"a":10000000000000000000,"b":18446744073709552000,"c":1.5e+300,'
        b'"d":-200000000000000000000,"e":"e+"}'
    )
    assert decode_event(text)["b"] == 2.0**64
    # and so are integer literals beyond the safe range written exactly as RFC 8785 writes a
    # double (the canonical output above reads back as itself)...
    assert canonical_event(out) == out
    assert decode_event(out) == {"a": 1e19, "b": 2.0**64, "c": 1.5e300, "d": -2e20, "e": "e+"}
    for literal in [b"9007199254740992", b"-6000000000000000000", b"295147905179352830000"]:
        line = b'{"n":' + literal + b"}"
        assert canonical_event(line) == line
        assert decode_event(line) == {"n": float(literal)}
    # ...but not those that canonicalisation would change (9007199254740993 is no double).
    for literal in [b"9007199254740993", b"18446744073709551616", b"12345678901234567890"]:
        with pytest.raises(EntryError, match=f"integer {literal.decode()} is outside"):
            canonical_event(b'{"n":' + literal + b"}")


def test_whitespace_and_input_types() -> None:
    expected = b'{"a":[1,2],"b":{"c":null}}'
    text = ' \n{ "b" : { "c" : null } ,\t"a" : [ 1 , 2 ] }\r\n'
    assert canonical_event(text) == expected
    assert canonical_event(text.encode()) == expected
    assert canonical_event(bytearray(text.encode())) == expected
    assert canonical_event(memoryview(text.encode())) == expected
    assert decode_event(memoryview(text.encode())) == {"b": {"c": None}, "a": [1, 2]}
    with pytest.raises(EntryError, match="not valid JSON"):
        decode_event(42)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(EVENTS)
def test_decode_event_round_trip(event: dict[str, object]) -> None:
    assume(len(rfc8785.dumps(event)) <= MAX_ENTRY_BYTES)
    assert decode_event(orjson.dumps(event)) == event


def test_input_is_not_modified() -> None:
    event = {"a": 1.0, "b": [2.0, {"c": -0.0}], "\U0001f600": {"\ue000": 1e-6}}
    snapshot = repr(event)
    assert canonicalize(event) == rfc8785.dumps(event)
    assert repr(event) == snapshot
    assert type(event["a"]) is float and type(event["b"][1]["c"]) is float  # type: ignore[index]


# -- kinds: one grammar at every entrance, reserved kinds refused from outside -----------------

GOOD_KINDS = ["x", "run.started", "run.checkpoint_saved", "after-backup", "a1.b2.c_3-d", "fuzz.seed"]
BAD_KINDS = ["", "Run.started", "run.Started", " run.started", "run.started ", "run..started", ".run",
             "run.", "1run", "run.2fa", "run started", "run\tstarted", "r\u00fcn", "\uff52un", "run\x00",
             "run.started\n", "_run", "-run", "run/started", "run:started"]


@pytest.mark.parametrize("kind", GOOD_KINDS)
def test_well_formed_kinds_pass_everywhere(kind: str) -> None:
    line = orjson.dumps({"kind": kind, "n": 1})
    expected = rfc8785.dumps({"kind": kind, "n": 1})
    assert check_kind(kind, submitted=True) == kind
    assert encode_event({"kind": kind, "n": 1}, submitted=True) == expected
    for text in (line, line.decode(), bytearray(line)):
        assert canonical_event(text, submitted=True) == expected


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_malformed_kinds_are_refused_not_normalised(kind: str) -> None:
    line = orjson.dumps({"kind": kind})
    for submitted in (False, True):
        with pytest.raises(EntryError, match="is not a valid kind"):
            encode_event({"kind": kind}, submitted=submitted)
        for text in (line, line.decode(), bytearray(line)):
            with pytest.raises(EntryError, match="is not a valid kind") as caught:
                canonical_event(text, submitted=submitted)
            assert_no_chained_traceback(caught.value)
    for other in (None, 5, 1.5, True, ["run.x"], {"kind": "run.x"}):
        with pytest.raises(EntryError, match="must be a string"):
            encode_event({"kind": other})
        with pytest.raises(EntryError, match="must be a string"):
            canonical_event(orjson.dumps({"kind": other}))


@pytest.mark.parametrize("word", sorted(RESERVED_KINDS))
def test_reserved_kinds_are_refused_only_from_outside(word: str) -> None:
    for kind in (word, f"{word}.x", f"{word}.decision.more"):
        event = {"kind": kind, "n": 1}
        assert encode_event(event) == canonical_event(orjson.dumps(event)) == rfc8785.dumps(event)
        with pytest.raises(EntryError, match="recorded by the server itself"):
            encode_event(event, submitted=True)
        with pytest.raises(EntryError, match="recorded by the server itself"):
            canonical_event(orjson.dumps(event), submitted=True)
    # a word that only starts like one is not reserved
    assert canonical_event(orjson.dumps({"kind": f"{word}s.x"}), submitted=True)


def test_only_the_top_level_kind_is_the_events_kind() -> None:
    """Nested "kind" members and keys that merely contain it are data (the fast path's scan of
    the output may doubt them; the answer is the exact one)."""
    accepted = [
        {"kind": "run.x", "scope": {"kind": "oversight.decision"}},
        {"kind": "run.x", "a": [{"kind": "Not A Kind"}, {"kind": 5}]},
        {"a": {"kind": "oversight.x"}},
        {'x"kind': "Oversight", "kind": "run.x"},
        {"job_kind": "DPO", "kinds": ["oversight.decision"]},
        {"kind\u0000": "Oversight"},
    ]
    for event in accepted:
        expected = rfc8785.dumps(event)
        assert encode_event(event, submitted=True) == expected
        assert canonical_event(orjson.dumps(event), submitted=True) == expected
    with pytest.raises(EntryError, match="recorded by the server itself"):
        canonical_event(b'{"a":{"kind":"run.x"},"kind":"oversight.x"}', submitted=True)
    # an escaped dot is a dot: still the reserved kind
    with pytest.raises(EntryError, match="recorded by the server itself"):
        canonical_event(b'{"kind":"oversight\\u002edecision"}', submitted=True)
    with pytest.raises(EntryError, match="is not a valid kind"):
        canonical_event(b'{"kind":"Oversight\\u002edecision"}')


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12), st.booleans(), st.booleans())
def test_every_entrance_gives_check_kind_s_answer(kind: str, submitted: bool, nested: bool) -> None:
    event: dict[str, object] = {"kind": kind, "n": 1}
    if nested:
        event["inner"] = {"kind": kind}
    try:
        check_kind(kind, submitted=submitted)
        expected: str | bytes = rfc8785.dumps(event)
    except EntryError as e:
        expected = str(e)

    def answer(encode: object) -> str | bytes:
        try:
            return encode()  # type: ignore[operator, no-any-return]
        except EntryError as e:
            return str(e)

    assume(isinstance(expected, str) or len(expected) <= MAX_ENTRY_BYTES)
    try:
        line = orjson.dumps(event)
    except orjson.JSONEncodeError:  # a lone surrogate: not JSON text at all
        return
    assert answer(lambda: encode_event(event, submitted=submitted)) == expected
    assert answer(lambda: canonical_event(line, submitted=submitted)) == expected
    assert answer(lambda: canonical_event(line.decode(), submitted=submitted)) == expected

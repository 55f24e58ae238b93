"""RFC 8785 (JSON Canonicalization Scheme) encoding of audit events.

Every event goes on the log as its JCS bytes, so that the same event always hashes the same
way, whoever wrote it and whichever JSON library parsed it. The append path canonicalises every
event, so this has to cost microseconds, not the tens of microseconds a pure-Python JCS
encoder (such as ``rfc8785``, which the tests use as the reference) costs.

How: ``orjson.dumps(value, option=OPT_SORT_KEYS)`` already *is* JCS for most values. It escapes
strings exactly as JCS does (only ``"``, ``\\``, ``\\b \\f \\n \\r \\t``, and ``\\u00xx`` in
lowercase hex for the other controls; non-ASCII, U+2028/2029, DEL and ``/`` are written as they
are), writes integers without exponent, and refuses (OPT_STRICT_INTEGER) integers beyond
±(2**53-1). It differs in two places only:

* floats: JCS writes numbers as ECMAScript's ``Number.prototype.toString``. orjson 3.13 agrees
  (same shortest round-trip digits, same layout) except for integral values (``1.0`` for ``1``,
  ``-0.0`` for ``0``, ``1e+16`` for ``10000000000000000`` up to 1e21) and for 1e-6 <= |x| < 1e-5
  (``1e-6`` for ``0.000001``). Only those floats are swapped for an ``orjson.Fragment`` holding the
  ECMAScript text, which is built from Python's ``repr`` (the same digits). An import-time check
  sends every float that way should a future orjson format floats differently.
* key order: JCS sorts by UTF-16 code units, orjson by code point. The two orders agree except
  between a character at or above U+10000 (a surrogate pair, D800..DFFF) and one in U+E000..U+FFFF,
  so only output that has a key with such a character (found with ``isascii`` and a regex, in C) is
  redone with those objects sorted here by their UTF-16-BE bytes.

So the fast path is one walk that stops only at containers and floats (``map(type, ...)`` checks
the rest in C), plus one ``orjson.dumps``. Anything unusual (tuples, subclasses, non-str keys,
NaN, big integers, ...) takes a slower exact path that converts or refuses it, naming the JSON
path (``$.metrics.loss``) in the :class:`~ledger.errors.EntryError`.

Compiled fast path: :func:`canonical_event` on ``bytes`` or ``bytearray`` first calls
``ledger._jcs.canonical`` (``ledger/_jcs.c``, built by ``setup.py`` where a C compiler is at hand),
which parses, checks and writes the JCS bytes in one pass without making a Python object per
value: about 0.4 µs for a typical event line where the Python code here takes about 4 µs (the
ledger's append rate needs about 0.5). It returns None whenever it is not certain: for any text
the Python path refuses, and for rare valid ones it leaves alone (integer literals beyond
±(2**53-1), output over MAX_ENTRY_BYTES, ...). canonical_event then runs the Python path, which
stays the reference and the only source of error messages. The rule, tested differentially
against this module and ``rfc8785`` in tests/ledger/test_canonical_compiled.py: whatever bytes the
compiled path returns are the bytes the Python path returns for that text. Where it is not built
(no compiler at install time), everything takes the Python path, with the same results.

Choices:

* Python integers must lie within the I-JSON safe range ±(2**53-1): RFC 8785 numbers are IEEE-754
  doubles, and a larger integer would not survive canonicalisation exactly.
* In text, every number is a double (RFC 8785's model), so integer literals beyond that range are
  refused too, even those orjson would quietly turn into floats (beyond 64 bits), unless the
  literal is exactly how RFC 8785 writes a double (``6000000000000000000`` for ``6e18``), which
  it then is: canonical output always reads back as itself.
* Duplicate keys in text are refused (I-JSON), at the cost of two ``bytes.count`` calls.
* Tuples are written as arrays (as ``json`` and ``rfc8785`` do); subclasses of str, int, float,
  dict and list (``StrEnum``, ``IntEnum``, ``OrderedDict``) are written as their base value. Any
  other type (``Enum``, ``datetime``, ``bytes``, ``Decimal``, ...) is refused: convert it first.
* Nesting is limited by orjson's recursion limit: 254 levels of arrays and objects.

Kinds: an event's ``kind``, where it has one, is a lowercase dotted name (:data:`KIND_PATTERN`,
``run.started``), checked by every function here that makes an entry (:func:`encode_event`,
:func:`canonical_event`) on the parsed value, so ``"Oversight.decision"``, ``" oversight.x"`` or
a fullwidth letter are refused, not normalised. The kinds the server records itself
(:data:`RESERVED_KINDS`: ``oversight.*`` and the rest, written through the services that enforce
their rules) are refused from outside the product: ``submitted=True``, which the HTTP API and
``rlhf-audit append`` pass (and any later entrance must); the product's own recording
(``Log.append``) leaves it False. One parser (:func:`decode_event`) and these checks are the rule
at every entrance.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn, cast

import orjson

from ledger.errors import EntryError

try:
    from ledger._jcs import canonical as _compiled  # ledger/_jcs.c, built where a compiler is
except ImportError:  # pragma: no cover - an install without a C compiler

    def _compiled(line: object, /) -> bytes | None:
        return None


__all__ = [
    "KIND_PATTERN",
    "MAX_DEPTH",
    "MAX_ENTRY_BYTES",
    "MAX_SAFE_INTEGER",
    "RESERVED_KINDS",
    "canonical_event",
    "canonicalize",
    "check_kind",
    "decode_event",
    "encode_event",
]

MAX_ENTRY_BYTES = 65535
"""Largest canonical event: C2SP tlog-tiles entry bundles prefix each entry with 2 length bytes."""

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer magnitude a JSON integer may have (I-JSON, RFC 7493 section 2.2)."""

KIND_PATTERN = r"[a-z][a-z0-9_-]*(?:\.[a-z][a-z0-9_-]*)*"
"""An event kind: lowercase ASCII words (letters, digits, ``_``, ``-``) joined by single dots."""

RESERVED_KINDS = frozenset({
    "account", "token", "config", "dataset", "privacy", "job", "oversight", "model", "compliance",
    "report", "bundle", "incident", "keys", "log",
})
"""First words of the kinds the server records itself (``oversight.decision``, ``oversight``):
only its services write them, as they enforce the rules (four eyes, approvals, budgets)."""

_KIND = re.compile(KIND_PATTERN)
# In canonical output, a '"kind":' (at any depth, or the tail of a key such as 'a\\"kind') NOT
# followed by a certainly well-formed kind (no escape can hide in one: the classes exclude '"'
# and '\\'), or, for submitted events, by a reserved one. No match: every kind passes.
_WORDS = rb'[a-z][a-z0-9_-]*(?:\.[a-z][a-z0-9_-]*)*"'
_DOUBTFUL_KIND = re.compile(rb'"kind":(?!"' + _WORDS + rb')')
_DOUBTFUL_SUBMITTED_KIND = re.compile(
    rb'"kind":(?!"(?!(?:' + b"|".join(sorted(w.encode() for w in RESERVED_KINDS)) + rb')[."])'
    + _WORDS + rb')')

MAX_DEPTH = 254
"""Deepest nesting of arrays and objects in a JSON value (orjson.dumps refuses deeper: its
recursion limit); the server bounds every JSON body by it too (``app.core.json_body``)."""
_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_dumps = orjson.dumps
_Fragment = orjson.Fragment
_PLAIN = frozenset({str, int, bool, type(None)})  # orjson writes these exactly as JCS does

# A key holding a character >= U+10000 (UTF-8 lead byte F0..F4), in orjson's output: the rest of
# that string, then '":' (in compact output only a key's closing quote is followed by ':').
_ASTRAL_KEY = re.compile(rb'[\xf0-\xf4](?:[^"\\]|\\.)*":', re.DOTALL)

# Bumped whenever a float of magnitude >= 1e18 is formatted. orjson parses an integer literal
# beyond 64 bits as a float (>= 2**63 in magnitude); canonical_event compares this counter before
# and after encoding and, only if it moved, rescans the text for such literals. The counter only
# ever grows, so other threads can cause a needless rescan but never a missed one.
_huge_floats = [0]


class _Slow(Exception):
    """The fast path met something it does not handle; the exact path will convert or refuse it."""


# -- the fast path: exact JSON types only ------------------------------------------------------


def _value(v: Any) -> Any:
    """Return ``v``, or a copy in which the floats orjson would write wrongly are Fragments."""
    t = type(v)
    if t is float:
        a = abs(v)  # NaN and infinities fail both range tests and reach _number, which refuses them
        if (1e-5 <= a < 1e16 or a < 1e-6) and not v.is_integer() and _ORJSON_FLOATS_OK:
            return v
        return _Fragment(_number(v))
    if t is dict:
        out = v
        if not _PLAIN.issuperset(map(type, v.values())):
            for key, item in v.items():
                if type(item) not in _PLAIN and (new := _value(item)) is not item:
                    if out is v:
                        out = v.copy()
                    out[key] = new
        return out
    if t is list:
        if _PLAIN.issuperset(map(type, v)):
            return v
        return [_value(item) for item in v]
    if t in _PLAIN:
        return v
    raise _Slow


def _number(f: float) -> str:
    """ECMAScript Number.prototype.toString of a finite float, from Python's shortest repr."""
    r = repr(f)
    if r[-2:] == ".0":  # integral and below 1e16: '12.0' -> '12', '-0.0' -> '0'
        return r[:-2] if r != "-0.0" else "0"
    if "e" in r:
        return _exponent(r)
    if r[-1] in "nf":  # 'nan', 'inf', '-inf'
        raise _Slow
    return r  # 1e-4 <= |f| < 1e16: repr and ECMAScript agree


def _exponent(r: str) -> str:
    # repr chose exponent form (|f| < 1e-4 or >= 1e16); ECMAScript's differs (ECMA-262 6.1.6.1.20).
    mantissa, _, exp = r.partition("e")
    sign = ""
    if mantissa[0] == "-":
        sign, mantissa = "-", mantissa[1:]
    digits = mantissa.replace(".", "")  # the k significant digits; value = 0.digits * 10**n
    k, n = len(digits), int(exp) + 1
    if n >= 19:
        _huge_floats[0] += 1
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    point = "." + digits[1:] if k > 1 else ""
    return f"{sign}{digits[0]}{point}e{'+' if e > 0 else '-'}{abs(e)}"


def _utf16_sorted(v: Any) -> Any:
    """``v`` (already through _value) with every object's keys in UTF-16 order, as Fragments."""
    if type(v) is dict:
        # str.encode raises UnicodeEncodeError (a ValueError) for a lone surrogate.
        items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        members = [_dumps(k) + b":" + _dumps(_utf16_sorted(x), option=_OPTS) for k, x in items]
        return _Fragment(b"{" + b",".join(members) + b"}")
    if type(v) is list:
        return [_utf16_sorted(x) for x in v]
    return v


def _fast(value: Any) -> bytes:
    prepared = _value(value)
    out = _dumps(prepared, option=_OPTS)
    if not out.isascii() and _ASTRAL_KEY.search(out):
        out = _dumps(_utf16_sorted(prepared), option=_OPTS)
    return out


# orjson's errors are TypeErrors; a lone surrogate in a key sorted here raises a ValueError.
_FAST_PATH_ERRORS = (_Slow, TypeError, ValueError, RecursionError)


def _encode(value: object, text: bool = False) -> bytes:
    """The JCS bytes of ``value``: the fast path, else the exact one (see _normalize for text)."""
    try:
        return _fast(value)
    except _FAST_PATH_ERRORS:
        pass
    clean = _normalize(value, "$", 0, set(), text)  # raises EntryError for what JSON cannot hold
    try:
        return _fast(clean)
    except _FAST_PATH_ERRORS as e:  # not expected: _normalize checks what orjson would refuse
        raise EntryError(f"cannot canonicalise: {e}") from None


def _orjson_floats_ok() -> bool:
    """Whether orjson formats floats as this module expects (checked once, at import).

    Non-integral floats outside 1e-6..1e-5 exactly as ECMAScript does (else every float becomes a
    Fragment), and every float of magnitude >= 1e16 with 'e+' (else decode_event always rescans).
    """
    probes = [
        *(0.875, -0.5, 0.1, 0.30000000000000004, 1234.5678, 333333333.3333333, 4503599627370495.5),
        *(123456789012345.67, 1.234e-05, -1e-05, 0.0001, 1.5e-4, 9.99e-07, 1e-07, 7e-10),
        *(-4.35e-200, 2.2250738585072014e-308, 5e-324),
    ]
    big = [1e16, -9.223372036854776e18, 1.8446744073709552e19, 1e20, 1e21, 1.5e300]
    return all(_dumps(f) == _number(f).encode() for f in probes) and all(
        b"e+" in _dumps(f) for f in big
    )


_ORJSON_FLOATS_OK = _orjson_floats_ok()


# -- the exact path: convert what JSON can hold, refuse the rest, say where --------------------


def _normalize(v: object, path: str, depth: int, parents: set[int], text: bool) -> object:  # noqa: C901
    """Return ``v`` rebuilt from exact JSON types, or raise EntryError naming the path.

    ``text``: ``v`` was parsed from JSON text, where an integer beyond ±(2**53-1) that is exactly
    how RFC 8785 writes a double stands for that double.
    """
    if v is None or v is True or v is False:
        return v
    if isinstance(v, str):
        return _checked(str.__str__(v), path, "string")
    if isinstance(v, int):
        n = int.__int__(v)
        if -MAX_SAFE_INTEGER <= n <= MAX_SAFE_INTEGER:
            return n
        if text and _double_literal(str(n)):
            return float(n)
        shown = str(n) if n.bit_length() <= 256 else f"a {n.bit_length()}-bit integer"
        raise EntryError(f"{path}: {_unsafe_integer(shown)}")
    if isinstance(v, float):
        f = float.__float__(v)
        if math.isfinite(f):
            return f
        name = "NaN" if f != f else "Infinity" if f > 0 else "-Infinity"
        raise EntryError(f"{path}: {name} is not a JSON number (RFC 8785 refuses NaN and Infinity)")
    if not isinstance(v, (dict, list, tuple)):
        raise EntryError(
            f"{path}: type {type(v).__name__!r} is not a JSON type "
            "(use dict, list, tuple, str, int, float, bool or None)"
        )
    if depth >= MAX_DEPTH:
        raise EntryError(f"{path}: nested more than {MAX_DEPTH} arrays/objects deep")
    if id(v) in parents:
        raise EntryError(f"{path}: refers back to a containing array/object (a cycle)")
    parents.add(id(v))
    if isinstance(v, dict):
        out: dict[str, object] = {}
        for k, item in v.items():
            if not isinstance(k, str):
                shown = repr(k) if len(repr(k)) <= 60 else repr(k)[:57] + "..."
                raise EntryError(f"{path}: key {shown} ({type(k).__name__}) is not a string")
            key = _checked(str.__str__(k), path, "key")
            where = _member(path, key)
            if key in out:
                raise EntryError(f"{where}: duplicate key")
            out[key] = _normalize(item, where, depth + 1, parents, text)
        result: object = out
    else:
        result = [_normalize(x, f"{path}[{i}]", depth + 1, parents, text) for i, x in enumerate(v)]
    parents.discard(id(v))
    return result


def _checked(s: str, path: str, what: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise EntryError(
            f"{path}: {what} has a lone surrogate U+{ord(s[e.start]):04X} at index {e.start} "
            "(JSON text must be valid Unicode)"
        ) from None
    return s


def _member(path: str, key: str) -> str:
    if key.isidentifier() and len(key) <= 64:
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key[:64] + ('...' if len(key) > 64 else ''))}]"


def _double_literal(literal: str) -> bool:
    """Whether an integer literal is exactly RFC 8785's rendering of a double."""
    if len(literal) > 330:  # beyond any finite double, and int() limits digits
        return False
    f = float(literal)
    return math.isfinite(f) and _number(f) == literal


def _unsafe_integer(shown: str) -> str:
    return (
        f"integer {shown} is outside the safe range ±(2**53-1): RFC 8785 numbers are IEEE-754 "
        "doubles, so it would not survive canonicalisation exactly (send it as a string)"
    )


def _kind(v: object) -> str:
    if isinstance(v, (list, tuple)):
        return "an array"
    if isinstance(v, str):
        return "a string"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    return f"a {type(v).__name__}"


# -- text: parse, and the checks orjson does not make ------------------------------------------


def _parse(line: bytes | str) -> dict[str, Any]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise EntryError(_decode_failure(line, e)) from None
    if type(obj) is not dict:
        raise EntryError(f"an event must be a JSON object, not {_kind(obj)}")
    return obj


def _decode_failure(line: object, e: orjson.JSONDecodeError) -> str:
    if "UTF-8" in e.msg or "surrogate" in e.msg:
        try:
            if isinstance(line, str):
                line.encode("utf-8")
            elif isinstance(line, (bytes, bytearray, memoryview)):
                bytes(line).decode("utf-8")
        except UnicodeEncodeError as u:
            return f"not valid Unicode: lone surrogate at index {u.start}"
        except UnicodeDecodeError as u:
            return f"not valid UTF-8: byte 0x{u.object[u.start]:02x} at offset {u.start}"
    return f"not valid JSON: {e}"


def _check_text(line: bytes | str, colons: int, rescan: bool) -> None:
    """Refuse duplicate keys and out-of-range integer literals that parsing silently absorbed.

    ``colons`` is the number of ':' in a re-encoding of the parsed value (orjson and JCS never
    escape ':'). Each key in the text brings one ':' and strings bring theirs, so unless the text
    spells a colon as an escape, it has exactly as many colons as the re-encoding if and only if
    no key was repeated (a repeated key's pair is dropped, with its colons). That costs two
    ``count`` calls and a search for ``\\u003``; only a mismatch, an escaped colon or ``rescan``
    pays for the exact scan.
    """
    if isinstance(line, str):
        rescan = rescan or line.count(":") != colons or "\\u003" in line
    else:
        if type(line) is not bytes:
            line = bytes(line)  # bytearray, memoryview
        rescan = rescan or line.count(b":") != colons or b"\\u003" in line
    if rescan:
        _scan(line)


def _scan(line: bytes | str) -> None:
    """Exact and slow: re-parse with the standard library, watching every key and integer."""

    def pairs(items: list[tuple[str, Any]]) -> None:
        seen = set()
        for k, _ in items:
            if k in seen:
                raise EntryError(f"duplicate key {json.dumps(k)} in an object (RFC 8785, I-JSON)")
            seen.add(k)

    def integer(literal: str) -> int:
        safe = len(literal) <= 17 and abs(int(literal)) <= MAX_SAFE_INTEGER
        if not safe and not _double_literal(literal):
            shown = literal if len(literal) <= 80 else f"{literal[:40]}... ({len(literal)} chars)"
            raise EntryError(_unsafe_integer(shown))
        return 0

    try:
        json.loads(line, object_pairs_hook=pairs, parse_int=integer, parse_float=lambda _: 0)
    except (ValueError, RecursionError) as e:  # orjson accepted the text, so this should not happen
        raise EntryError(f"could not check the JSON text for duplicate keys: {e}") from None


def _checked_kinds(out: bytes, submitted: bool) -> None:
    """check_kind on the top-level ``kind`` of canonical output, parsing it only when in doubt.

    Typically one regex search in C (a fifth of a microsecond): only output in which some
    ``"kind":`` is doubtful goes to the parsed value, which decides.
    """
    doubtful = _DOUBTFUL_SUBMITTED_KIND if submitted else _DOUBTFUL_KIND
    if doubtful.search(out) is not None:
        doc = orjson.loads(out)
        if "kind" in doc:
            check_kind(doc["kind"], submitted=submitted)


def _too_big(size: int) -> str:
    return (
        f"event is {size} bytes once canonicalised; the limit is {MAX_ENTRY_BYTES} "
        "(tlog-tiles entry bundles give each entry a 2-byte length)"
    )


def _fail(error: Exception) -> NoReturn:
    raise EntryError(f"cannot decode: {error}") from None


# -- public API --------------------------------------------------------------------------------


def canonicalize(value: object) -> bytes:
    """Return the RFC 8785 (JCS) bytes of a JSON value.

    ``value`` is a dict with str keys, list, tuple (written as an array), str, int, float, bool or
    None, nested freely. Raises EntryError, naming the JSON path, for NaN and infinities,
    integers beyond ±(2**53-1), non-str keys, strings with lone surrogates, other types, cycles and
    nesting deeper than 254 levels.
    """
    return _encode(value)


def check_kind(kind: object, *, submitted: bool = False) -> str:
    """Return ``kind`` if it is a well-formed event kind (and, ``submitted``, not reserved).

    Raises EntryError saying why not: not a string, outside :data:`KIND_PATTERN` (case, spaces,
    empty words and non-ASCII letters are refused, never normalised), or, for an event submitted
    from outside the product, one of the :data:`RESERVED_KINDS` the server records itself.
    """
    if not isinstance(kind, str):
        raise EntryError(f'$.kind: must be a string such as "run.started", not {_kind(kind)}')
    if not _KIND.fullmatch(kind):
        shown = json.dumps(kind[:64] + ("..." if len(kind) > 64 else ""))
        raise EntryError(f"$.kind: {shown} is not a valid kind: a kind is lowercase ASCII words "
                         '(a-z, 0-9, "_", "-") joined by dots, such as "run.started"')
    if submitted and kind.partition(".")[0] in RESERVED_KINDS:
        raise EntryError(f"$.kind: events of kind {kind!r} are recorded by the server itself "
                         "(use the datasets, jobs or oversight endpoints)")
    return kind


def encode_event(value: object, *, submitted: bool = False) -> bytes:
    """Return the canonical bytes of an event: a JSON object of at most MAX_ENTRY_BYTES bytes,
    whose ``kind``, if it has one, passes :func:`check_kind` (with ``submitted``)."""
    if not isinstance(value, dict):
        raise EntryError(f"an event must be a JSON object, not {_kind(value)}")
    out = _encode(value)
    if len(out) > MAX_ENTRY_BYTES:
        raise EntryError(_too_big(len(out)))
    if "kind" in value:
        check_kind(value["kind"], submitted=submitted)
    return out


def decode_event(line: bytes | str) -> dict[str, Any]:
    """Parse one JSON text (one line of the CLI's input) into an event.

    Refuses, with EntryError: text that is not JSON or not UTF-8 (or, for ``str``, holds lone
    surrogates), a byte order mark, a top-level value that is not an object, duplicate keys
    anywhere, nesting deeper than 254 levels, and integer literals beyond ±(2**53-1) unless
    written exactly as RFC 8785 writes a double (those come back as floats). So whatever this
    returns, :func:`encode_event` can encode unless it is too large.
    """
    obj = _parse(line)
    try:
        text = _dumps(obj, option=orjson.OPT_STRICT_INTEGER)
    except TypeError:  # a big integer (or deep nesting): convert it or say where, below
        text = b""
    if not text:
        obj = cast("dict[str, Any]", _normalize(obj, "$", 0, set(), True))
        try:
            text = _dumps(obj, option=orjson.OPT_STRICT_INTEGER)
        except TypeError as e:  # not expected
            _fail(e)
    # orjson writes every float of magnitude >= 1e16 with 'e+': only those can be big literals.
    _check_text(line, text.count(b":"), b"e+" in text or not _ORJSON_FLOATS_OK)
    return obj


def canonical_event(line: bytes | str, *, submitted: bool = False) -> bytes:
    """``encode_event(decode_event(line), submitted=submitted)``, with the same checks, in one
    pass: the hot path.

    The compiled path when it is built and sure (bytes and bytearray), else the Python path.
    """
    out = _compiled(line)
    if out is None:
        out = _canonical_event(line)
    _checked_kinds(out, submitted)
    return out


def _canonical_event(line: bytes | str) -> bytes:
    """canonical_event without the compiled fast path: the reference, and the error reporter."""
    obj = _parse(line)
    mark = _huge_floats[0]
    out = _encode(obj, text=True)
    if len(out) > MAX_ENTRY_BYTES:
        raise EntryError(_too_big(len(out)))
    _check_text(line, out.count(b":"), _huge_floats[0] != mark)
    return out

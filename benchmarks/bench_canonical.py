"""Microseconds per call of ledger.canonical on a typical event line, against rfc8785.

Run: ``.venv/bin/python benchmarks/bench_canonical.py`` (``--quick`` for fewer rounds).
The "rfc8785" rows time ``rfc8785.dumps(orjson.loads(line))``, the same job done with the
pure-Python reference encoder, so the two are comparable end to end. Times are the best of
several rounds of this process's CPU time (``time.process_time``), which other work on a busy
machine disturbs much less than it does wall-clock time.

canonical_event takes the compiled path (ledger/_jcs.c) where it is built; the "[Python path]"
rows time the same function without it, on the same lines. The last rows do both over the
varied typical events of bench_ledger.py (event_lines), one pass over all of them per round.
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable

import orjson
from bench_ledger import event_lines

from ledger import canonical as canonical_module
from ledger.canonical import canonical_event, canonicalize, decode_event, encode_event

try:
    from ledger._jcs import canonical as compiled
except ImportError:  # no C compiler at install time: canonical_event is the Python path
    compiled = None

python_path = canonical_module._canonical_event  # canonical_event without the compiled path

try:
    import rfc8785
except ImportError:  # the test extra is not installed
    rfc8785 = None

# A typical 10-field event: strings, ints, a boolean, two floats and a nested object.
WITH_FLOATS = {
    "type": "feedback.preference",
    "ts": "2025-03-01T12:34:56.789Z",
    "annotator": "ann-0042",
    "session": "3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b",
    "prompt_id": 123456,
    "response_id": 789012,
    "score": 0.875,
    "loss": 1.234e-05,
    "approved": True,
    "meta": {"model": "llama-3-8b", "step": 1500, "tags": ["helpful", "safe"]},
}
# The same event with its floats as integers (basis points and micro-units).
WITHOUT_FLOATS = {**WITH_FLOATS, "score": 8750, "loss": 12}

# Keys in a different order and spaces after separators, as a producer might write it.
LINES = {
    "with floats": orjson.dumps(dict(reversed(WITH_FLOATS.items()))).replace(b'":', b'": '),
    "without floats": orjson.dumps(dict(reversed(WITHOUT_FLOATS.items()))).replace(b'":', b'": '),
}


def per_call_us(fn: Callable[[], object], rounds: int) -> float:
    number = 2_000
    best = min(timeit.repeat(fn, number=number, repeat=rounds, timer=time.process_time))
    return best / number * 1e6


def main() -> None:
    rounds = 10 if "--quick" in sys.argv else 60
    print(f"{'case':<16} {'function':<38} {'µs/call':>8}")
    for case, line in LINES.items():
        event = orjson.loads(line)
        assert canonical_event(line) == encode_event(decode_event(line))
        if rfc8785 is not None:
            assert canonical_event(line) == rfc8785.dumps(event)
        assert python_path(line) == canonical_event(line)
        rows: list[tuple[str, Callable[[], object]]] = [
            ("canonical_event(line)", lambda: canonical_event(line)),
            ("canonical_event(line) [Python path]", lambda: python_path(line)),
            ("encode_event(decode_event(line))", lambda: encode_event(decode_event(line))),
            ("canonicalize(event)", lambda: canonicalize(event)),
            (
                "orjson.loads + dumps(SORT_KEYS) [floor]",
                lambda: orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS),
            ),
        ]
        if rfc8785 is not None:
            ref = rfc8785
            rows.append(
                ("rfc8785.dumps(orjson.loads(line))", lambda: ref.dumps(orjson.loads(line)))
            )
        if compiled is not None:
            rows.insert(1, ("_jcs.canonical(line) [compiled alone]", lambda: compiled(line)))
        for name, fn in rows:
            print(f"{case:<16} {name:<38} {per_call_us(fn, rounds):8.2f}")
    size = len(LINES["with floats"])
    print(f"({size}-byte line; best of {rounds} rounds of 2000 calls, process CPU time)")
    typical_events(rounds)


def typical_events(rounds: int) -> None:
    """canonical_event, compiled and Python path, over bench_ledger's varied typical events."""
    lines = event_lines(2_000)
    for line in lines:
        assert canonical_event(line) == python_path(line)
    print(f"\n{'typical events':<16} {'function':<38} {'µs/event':>8}")
    timings = {}
    for name, fn in [("canonical_event [compiled path]", canonical_event),
                     ("canonical_event [Python path]", python_path)]:
        if fn is canonical_event and compiled is None:
            print(f"{'':<16} {name:<38} {'not built':>8}")
            continue
        best = min(timeit.repeat(lambda: [fn(x) for x in lines], number=1, repeat=rounds,
                                 timer=time.process_time))
        timings[name] = best / len(lines) * 1e6
        print(f"{'':<16} {name:<38} {timings[name]:8.2f}")
    if len(timings) == 2:
        fast, slow = timings.values()
        print(f"({len(lines)} distinct lines of about {sum(map(len, lines)) // len(lines)} bytes; "
              f"the compiled path is {slow / fast:.1f}x the speed of the Python path)")


if __name__ == "__main__":
    main()

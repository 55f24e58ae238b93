"""The datasheet of a dataset version (EU AI Act Art. 10), recorded as a ``dataset.datasheet`` event.

What people know (origin, collection process, purpose, guideline version, known gaps, anything
else) comes from the ``--datasheet`` file; what can be measured is computed from the data and
cannot be overridden: record and annotator counts, inter-annotator agreement, label distribution.
Without a datasheet file the version still gets one, saying what was not stated, so the
compliance checks can point at the gap instead of finding nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import TYPE_CHECKING, Any

from ledger.canonical import canonicalize
from ledger.errors import EntryError

from .errors import DatasetError

if TYPE_CHECKING:
    from .importer import RawRecord

__all__ = ["COMPUTED", "NOT_STATED", "REQUIRED", "agreement", "build_datasheet", "check_datasheet",
           "label_distribution"]

REQUIRED = ("origin", "collection_process", "purpose")
COMPUTED = ("records", "annotator_count", "agreement", "label_distribution")
NOT_STATED = "not stated"
_MAX_VALUES = 50  # distinct values listed per label; beyond, only the count
_MAX_LABELS = 50
_MAX_VALUE_CHARS = 64


def check_datasheet(given: object) -> dict[str, Any]:
    """A given datasheet, checked: a JSON object with the required fields, no computed ones."""
    if not isinstance(given, Mapping):
        raise DatasetError("the datasheet must be a JSON object")
    missing = [f for f in REQUIRED if not isinstance(given.get(f), str) or not given[f].strip()]
    if missing:
        raise DatasetError(f"the datasheet lacks {', '.join(missing)} (required, non-empty text: "
                           f"{', '.join(REQUIRED)})")
    computed = [f for f in COMPUTED if f in given]
    if computed:
        raise DatasetError(f"the datasheet gives {', '.join(computed)}, which are computed from the "
                           "data: leave them out")
    gaps = given.get("known_gaps")
    if gaps is not None and not isinstance(gaps, str) and not (
            isinstance(gaps, list) and all(isinstance(g, str) for g in gaps)):
        raise DatasetError("known_gaps must be text or a list of texts")
    try:
        canonicalize(dict(given))
    except EntryError as e:
        raise DatasetError(f"the datasheet is not valid JSON for the log: {e}") from None
    return dict(given)


def agreement(records: Sequence[RawRecord]) -> dict[str, Any]:
    """Pairwise agreement on the preferred response between different annotators of one item.

    An item is a prompt with its (unordered) pair of responses; two judgments agree when they
    prefer the same response.
    """
    items: dict[tuple[str, frozenset[str]], list[tuple[str, str]]] = defaultdict(list)
    by_prompt: dict[str, set[str]] = defaultdict(set)
    for r in records:
        items[(r.prompt, frozenset((r.chosen, r.rejected)))].append((r.identity, r.chosen))
        by_prompt[r.prompt].add(r.identity)
    pairs = agreeing = compared = 0
    for judgments in items.values():
        counted = False
        for (who_a, pick_a), (who_b, pick_b) in combinations(judgments, 2):
            if who_a == who_b:
                continue
            counted = True
            pairs += 1
            agreeing += pick_a == pick_b
        compared += counted
    several = sum(1 for who in by_prompt.values() if len(who) > 1)
    method = ("pairwise: judgments by different annotators of the same prompt and response pair agree "
              "when they prefer the same response")
    if not pairs:
        return {"status": "not measurable", "method": method, "prompts_with_several_annotators": several,
                "reason": "no prompt and response pair was rated by more than one annotator"}
    return {"status": "measured", "method": method, "prompts_with_several_annotators": several,
            "items_compared": compared, "pairs": pairs, "agreeing_pairs": agreeing,
            "rate": round(agreeing / pairs, 4)}


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else canonicalize(value).decode()


def _categorical(counts: Counter[str]) -> bool:
    """Values safe to put on the log: few, short, each shared by several records on average.

    Free text in a label (an annotator's comment) is record content and must stay off the log;
    it shows up as many distinct or long values, and is then summarised by its counts only."""
    return (len(counts) <= _MAX_VALUES and 2 * len(counts) <= sum(counts.values())
            and all(len(v) <= _MAX_VALUE_CHARS for v in counts))


def label_distribution(records: Sequence[RawRecord]) -> dict[str, Any]:
    """Per label key, how often each value occurs; for labels that look like free text (many,
    long or mostly unique values), only how many values and records there are."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        for key, value in r.labels.items():
            counts[key][_shown(value)] += 1
    out: dict[str, Any] = {}
    for key in sorted(counts)[:_MAX_LABELS]:
        c = counts[key]
        if _categorical(c):
            out[key] = dict(sorted(c.items()))
        else:
            out[key] = {"distinct_values": len(c), "records": sum(c.values())}
    if len(counts) > _MAX_LABELS:
        out["further_labels"] = len(counts) - _MAX_LABELS
    return out


def _guideline(records: Sequence[RawRecord], given: Mapping[str, Any]) -> Any:
    if given.get("guideline_version") is not None:
        return given["guideline_version"]
    seen = sorted({_shown(r.labels["guideline_version"]) for r in records if "guideline_version" in r.labels})
    if not seen:
        return NOT_STATED
    return seen[0] if len(seen) == 1 else seen


def build_datasheet(records: Sequence[RawRecord], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The datasheet for the log: the given fields plus what is computed from ``records``."""
    sheet: dict[str, Any] = dict(given or {})
    gaps: list[str] = []
    if given is None:
        sheet.update({f: NOT_STATED for f in REQUIRED})
        gaps.append("no datasheet was given at import: origin, collection process and purpose are "
                    "not stated")
    sheet["guideline_version"] = _guideline(records, sheet)
    if sheet["guideline_version"] == NOT_STATED:
        gaps.append("the annotation guideline version is not stated")
    sheet["records"] = len(records)
    sheet["annotator_count"] = len({r.identity for r in records})
    sheet["agreement"] = agreement(records)
    if sheet["agreement"]["status"] != "measured":
        gaps.append("inter-annotator agreement is not measurable: no item has several annotators")
    sheet["label_distribution"] = label_distribution(records)
    stated = sheet.get("known_gaps")
    stated_list = [] if stated is None else [stated] if isinstance(stated, str) else list(stated)
    sheet["known_gaps"] = stated_list + gaps
    return sheet

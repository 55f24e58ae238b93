"""The pack file (``packs/eu.toml``): each obligation's article, the legal text it follows, the date
from which it applies, and the rules and report sections that cover it.

Data rather than code, so a change of the law (the 2026 Digital Omnibus moved the AI Act's high-risk
dates) is a reviewed edit of one file, and the report states which text and dates it assumed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["EU_PACK_FILE", "Obligation", "PackFile", "load_pack_file"]

EU_PACK_FILE = Path(__file__).resolve().parent / "packs" / "eu.toml"


@dataclass(frozen=True)
class Obligation:
    id: str
    regulation: str  # the legal text's title
    text_version: str  # which version of it the pack follows
    article: str
    title: str
    applies_from: date
    date_note: str
    covered_by: tuple[str, ...]  # "rule:<id>" and "section:<report key>"

    def rules(self) -> list[str]:
        return [c.removeprefix("rule:") for c in self.covered_by if c.startswith("rule:")]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "regulation": self.regulation, "text_version": self.text_version,
                "article": self.article, "title": self.title, "applies_from": self.applies_from.isoformat(),
                "date_note": self.date_note, "covered_by": list(self.covered_by)}


@dataclass(frozen=True)
class PackFile:
    name: str
    version: str
    description: str
    obligations: tuple[Obligation, ...]


@lru_cache(maxsize=4)
def load_pack_file(path: Path = EU_PACK_FILE) -> PackFile:
    """The pack file at ``path``; a malformed one is a ValueError naming the obligation."""
    with path.open("rb") as f:
        doc = tomllib.load(f)
    texts = doc.get("texts", {})
    out = []
    for i, o in enumerate(doc.get("obligation", [])):
        try:
            text = texts[o["text"]]
            out.append(Obligation(str(o["id"]), str(text["title"]), str(text["version"]), str(o["article"]),
                                  str(o["title"]), date.fromisoformat(str(o["applies_from"])),
                                  str(o.get("date_note", "")), tuple(str(c) for c in o["covered_by"])))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path.name}: obligation {i + 1} ({o.get('id', '?')}) is malformed: "
                             f"{e!r}") from None
    pack = doc["pack"]
    return PackFile(str(pack["name"]), str(pack["version"]), str(pack["description"]).strip(), tuple(out))

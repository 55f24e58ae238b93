"""The pack file (app/compliance/packs/eu.toml): every rule of the default pack is covered by an
obligation, everything an obligation names exists, and each states its text version and date."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from app.compliance import DEFAULT_PACK
from app.compliance.obligations import EU_PACK_FILE, load_pack_file
from app.compliance.reports import build_report
from app.core.database import Database
from app.core.settings import Settings
from ledger.log import Log
from tests.support.compliance_log import build_log


def test_every_rule_is_covered_and_every_cover_exists() -> None:
    ids = {r.id for r in DEFAULT_PACK.rules}
    covering = {rule for o in DEFAULT_PACK.obligations for rule in o.rules()}
    assert covering == ids  # no rule without its obligation, no obligation naming a missing rule
    for o in DEFAULT_PACK.obligations:
        assert o.article and o.text_version and o.covered_by, o
        assert date(2018, 5, 25) <= o.applies_from <= date(2028, 8, 2), o
    by_id = {o.id: o for o in DEFAULT_PACK.obligations}
    # the high-risk dates as moved by Regulation (EU) 2026/1744; GPAI and the GDPR unchanged
    art12 = by_id["ai-act.art12"]
    assert art12.applies_from == date(2027, 12, 2) and "2028" in art12.date_note
    assert by_id["ai-act.art53"].applies_from == date(2025, 8, 2)
    assert by_id["gdpr.art35"].applies_from == date(2018, 5, 25)
    assert DEFAULT_PACK.version == load_pack_file(EU_PACK_FILE).version


async def test_sections_named_by_the_pack_are_in_the_report(db: Database, log: Log) -> None:
    await build_log(log)
    data = (await build_report(db, log, None, {"kind": "all"}, settings=Settings.load())).data
    for o in DEFAULT_PACK.obligations:
        for c in o.covered_by:
            if c.startswith("section:"):
                assert c.removeprefix("section:") in data, (o.id, c)


def test_a_malformed_pack_file_names_the_obligation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[pack]\nname = "p"\nversion = "1"\ndescription = "d"\n'
                   '[texts.t]\ntitle = "T"\nversion = "v"\n'
                   '[[obligation]]\nid = "x.1"\ntext = "t"\narticle = "Art. 1"\ntitle = "one"\n'
                   'applies_from = "2026-13-01"\ncovered_by = []\n')
    with pytest.raises(ValueError, match=r"obligation 1 \(x.1\)"):
        load_pack_file(bad)

"""The compliance PDF is a tagged PDF: a structure tree of headings, paragraphs and the rule table
as a real table (TR, TH, TD), read back with pypdf, independent of the library that wrote it."""

from __future__ import annotations

import io
import re
from collections import Counter
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from app.compliance.reports import build_report
from app.core.database import Database
from app.core.settings import Settings
from app.events.index import EventIndex
from ledger.log import Log
from tests.support.compliance_log import build_log


def _resolve(obj: Any) -> Any:
    return obj.get_object() if isinstance(obj, IndirectObject) else obj


def _walk(elem: Any, out: list[tuple[str, Any, Any]], parent: str = "") -> None:
    """(type, element, parent type) for every structure element under ``elem``."""
    elem = _resolve(elem)
    kids = _resolve(elem.get("/K"))
    if kids is None:
        return
    for kid in kids if isinstance(kids, ArrayObject) else [kids]:
        kid = _resolve(kid)
        if isinstance(kid, DictionaryObject) and kid.get("/Type") != "/MCR" and "/S" in kid:
            out.append((str(kid["/S"]), kid, str(elem.get("/S", ""))))
            _walk(kid, out, str(kid["/S"]))


def _mcids(elem: Any) -> list[tuple[Any, int]]:
    """The marked-content references of one element: (page, MCID)."""
    kids = _resolve(elem.get("/K"))
    out = []
    for kid in kids if isinstance(kids, ArrayObject) else [kids]:
        kid = _resolve(kid)
        if isinstance(kid, int):
            out.append((_resolve(elem.get("/Pg")), kid))
        elif isinstance(kid, DictionaryObject) and kid.get("/Type") == "/MCR":
            out.append((_resolve(kid.get("/Pg", elem.get("/Pg"))), int(kid["/MCID"])))
    return out


async def test_the_pdf_is_tagged_with_a_real_rule_table(db: Database, log: Log) -> None:
    await build_log(log)
    report = await build_report(db, log, EventIndex(db, log), {"model": "model_a"}, settings=Settings.load())
    reader = PdfReader(io.BytesIO(report.pdf_bytes()))
    root = reader.trailer["/Root"]
    assert root["/MarkInfo"]["/Marked"].value is True
    assert str(root["/Lang"]) == "en"
    tree = root["/StructTreeRoot"]
    elems: list[tuple[str, Any, Any]] = []
    _walk(tree, elems)
    kinds = Counter(kind for kind, _, _ in elems)
    assert kinds["/Document"] == 1 and kinds["/H1"] == 1 and kinds["/H2"] >= 9 and kinds["/P"] >= 20
    assert kinds["/Table"] == 1
    rules = report.data["rules"]["results"]
    assert kinds["/TR"] == len(rules) + 1  # the header row and one row per rule
    assert kinds["/TH"] == 4 and kinds["/TD"] == 4 * len(rules)
    assert all(parent == "/TR" for kind, _, parent in elems if kind in ("/TH", "/TD"))
    assert all(parent == "/Table" for kind, _, parent in elems if kind == "/TR")
    headers = [e for kind, e, _ in elems if kind == "/TH"]
    assert all(_resolve(h["/A"])["/Scope"] == "/Column" for h in headers)
    # every leaf element's content is marked on its page with that MCID, and the parent tree maps back
    pages = {p.indirect_reference.idnum: p for p in reader.pages}
    parent_tree = _resolve(tree["/ParentTree"])
    nums = _resolve(parent_tree["/Nums"])
    by_key = {int(nums[i]): _resolve(nums[i + 1]) for i in range(0, len(nums), 2)}
    for kind, elem, _ in elems:
        for page, mcid in _mcids(elem):
            page = pages[page.indirect_reference.idnum]
            content = page.get_contents().get_data().decode("latin-1")
            assert re.search(rf"/{kind[1:]} <</MCID {mcid}>> BDC", content), (kind, mcid)
            owner = _resolve(by_key[int(page["/StructParents"])][mcid])
            assert owner == elem
    # the text stays extractable: the table's cells, the headings, the citations
    text = "\n".join(page.extract_text() for page in reader.pages)
    for words in ("Rule results", "Status", "Article", "ai-act.art12.log-integrity", "PASS",
                  "Art. 73 serious incidents", "What this report does not cover", "epsilon = 2.9"):
        assert words in text, words

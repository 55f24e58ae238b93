"""The PDF form of a compliance report: a tagged PDF of the same data, with fpdf2.

Pure Python, no system libraries or fonts: the built-in Helvetica covers Latin-1, so the few
other characters the reports use are spelled out (ε -> epsilon) and anything else becomes "?".
The text stays extractable (auditors search and quote it).

Tagged (ISO 32000-1, 14.7-14.8): a structure tree (Document > H1, H2, H3, P, and the rule results
as Table > TR > TH/TD with column scope), every piece of content marked with its MCID, the page
footer and repeated table headings as artifacts, /MarkInfo /Marked true and /Lang. fpdf2 2.8 tags
only images and links, flat under /Document; :class:`_Tags` extends its structure builder (an
internal module of fpdf2, pinned in pyproject.toml) with nesting and content that spans pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from fpdf.prefs import ViewerPreferences
from fpdf.structure_tree import StructElem, StructureTreeBuilder
from fpdf.syntax import PDFObject
from fpdf.table import Table

__all__ = ["render_pdf"]

_SPELLED = {"ε": "epsilon", "δ": "delta", "≥": ">=", "≤": "<=", "—": "-", "–": "-", "“": '"', "”": '"',
            "’": "'", "‘": "'", "…": "...", "·": "-", "→": "->", "×": "x"}
BODY, SMALL = 9.5, 8
CELL_CHARS = 1600  # a table row must fit on one page; longer results are cut (full text in HTML/JSON)
HEADER_CELL = "<</O /Table /Scope /Column>>"


def _latin1(text: Any) -> str:
    s = str(text)
    for char, spelled in _SPELLED.items():
        s = s.replace(char, spelled)
    return s.encode("latin-1", "replace").decode("latin-1")


def _cite(entries: Iterable[int]) -> str:
    ids = list(entries)
    if not ids:
        return ""
    shown = ", ".join(f"#{i}" for i in ids[:50])
    return f" [entries {shown}{f' and {len(ids) - 50} more' if len(ids) > 50 else ''}]"


# -- the structure tree ---------------------------------------------------------------------------


class _ContentRef:
    """A marked-content reference: content of an element on a given page (its /Pg may differ)."""

    def __init__(self, page: PDFObject, mcid: int) -> None:
        self.page, self.mcid = page, mcid

    def serialize(self, _security_handler: Any = None, _obj_id: Any = None) -> str:
        return f"<</Type /MCR /Pg {self.page.ref} /MCID {self.mcid}>>"


class _Elem(StructElem):
    """A structure element that can hold elements and content on several pages."""

    def __init__(self, kind: str, parent: PDFObject, page: PDFObject, page_number: int,
                 attributes: str | None = None) -> None:
        super().__init__(struct_type=kind, parent=parent, kids=[], page_number=page_number)
        self.pg = page
        self.a = attributes  # serialised as /A

    def elements(self) -> Iterator[_Elem]:
        for kid in self.k:
            if isinstance(kid, _Elem):
                yield kid
                yield from kid.elements()


class _Tags(StructureTreeBuilder):
    """fpdf2's builder, with nested elements serialised too and MCIDs counted per page."""

    def next_mcid_for_page(self, page_number: int) -> int:
        spid = self.spid_per_page_number.get(page_number)
        return 0 if spid is None else len(self.struct_tree_root.parent_tree.nums[spid])

    def mark(self, elem: _Elem, page_number: int, page: PDFObject) -> tuple[int, int]:
        """A new MCID for ``elem``'s content on a page; (MCID, the page's /StructParents)."""
        mcid = self.next_mcid_for_page(page_number)
        spid = self.spid_per_page_number.setdefault(page_number, len(self.spid_per_page_number))
        self.struct_tree_root.parent_tree.nums[spid].append(elem)
        elem.k.append(_ContentRef(page, mcid))
        return mcid, spid

    def __iter__(self) -> Iterator[PDFObject]:
        yield self.struct_tree_root
        yield self.doc_struct_elem
        yield self.struct_tree_root.parent_tree
        for elem in self.doc_struct_elem.k:
            yield elem
            if isinstance(elem, _Elem):
                yield from elem.elements()


class _Doc(FPDF):
    def __init__(self, title: str, footer_text: str) -> None:
        super().__init__(format="A4")
        self.struct_builder = _Tags()
        self._parents: list[StructElem] = [self.struct_builder.doc_struct_elem]
        self._content: _Elem | None = None  # the element whose content is being written
        self.title_text = _latin1(title)
        self.footer_text = _latin1(footer_text)
        self.set_auto_page_break(True, margin=15)
        self.set_margins(18, 16, 18)
        self.set_title(self.title_text)
        self.set_lang("en")
        self.viewer_preferences = ViewerPreferences(display_doc_title=True)
        self.set_creator("rlhf-audit-trail")
        self.add_page()

    # structure: grouping elements (tag) and elements with content (marked)

    def _elem(self, kind: str, attributes: str | None = None) -> _Elem:
        elem = _Elem(kind, self._parents[-1], self.pages[self.page], self.page, attributes)
        self._parents[-1].k.append(elem)
        return elem

    @contextmanager
    def tag(self, kind: str, attributes: str | None = None) -> Iterator[_Elem]:
        elem = self._elem(kind, attributes)
        self._parents.append(elem)
        try:
            yield elem
        finally:
            self._parents.pop()

    def _begin(self, elem: _Elem) -> None:
        mcid, spid = self.struct_builder.mark(elem, self.page, self.pages[self.page])
        self.pages[self.page].struct_parents = spid
        self._set_min_pdf_version("1.4")
        self._out(f"{elem.s} <</MCID {mcid}>> BDC")

    @contextmanager
    def marked(self, kind: str, attributes: str | None = None) -> Iterator[_Elem]:
        elem = self._elem(kind, attributes)
        self._content = elem
        self._begin(elem)
        try:
            yield elem
        finally:
            self._out("EMC")
            self._content = None

    @contextmanager
    def artifact(self) -> Iterator[None]:
        self._out("/Artifact BMC")
        try:
            yield
        finally:
            self._out("EMC")

    def header(self) -> None:
        if self._content is not None:  # content broke across pages: it goes on under a new MCID
            self._begin(self._content)

    def footer(self) -> None:
        if self._content is not None:
            self._out("EMC")
        with self.artifact():
            self.set_y(-12)
            self.set_font("Helvetica", size=7)
            self.cell(0, 5, f"{self.footer_text} - page {self.page_no()}", align="C")

    # the report's blocks

    def text(self, text: str, size: float = BODY, style: str = "", gap: float = 1.2,  # type: ignore[override]
             kind: str = "/P") -> None:
        self.set_font("Helvetica", style=style, size=size)
        with self.marked(kind):
            self.multi_cell(0, size * 0.5, _latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(gap)

    def heading(self, text: str, level: int = 1) -> None:
        if self.get_y() > self.h - 40:
            self.add_page()
        self.ln(3 if level == 1 else 1.5)
        self.text(text, size=14 if level == 1 else 11, style="B", gap=2, kind=f"/H{level + 1}")

    def statements(self, items: Iterable[dict[str, Any]]) -> None:
        for s in items:
            self.text("- " + s["text"] + _cite(s.get("entries", ())))

    def pairs(self, items: Iterable[tuple[Any, Any]]) -> None:
        for key, value in items:
            self.text(f"{str(key).replace('_', ' ')}: {_value(value)}", size=SMALL, gap=0.4)
        self.ln(1)


class _TaggedTable(Table):
    """fpdf2's table, each row a TR and each cell a TH or TD; headings repeated after a page break
    are artifacts (the structure has them once)."""

    def __init__(self, pdf: _Doc, **kwargs: Any) -> None:
        super().__init__(pdf, **kwargs)
        self._doc = pdf
        self._rendered: set[int] = set()
        self._repeat = False

    def _render_table_row(self, i: int, row_layout_info: Any, cell_x_positions: Any, **kwargs: Any) -> None:
        self._repeat = i < self._num_heading_rows and i in self._rendered
        self._rendered.add(i)
        if self._repeat:
            with self._doc.artifact():
                super()._render_table_row(i, row_layout_info, cell_x_positions, **kwargs)
            return
        with self._doc.tag("/TR"):
            super()._render_table_row(i, row_layout_info, cell_x_positions, **kwargs)

    def _render_table_cell(self, i: int, j: int, cell: Any, row_height: float,
                           cell_height_info: Any = None, cell_x_positions: Any = None,
                           **kwargs: Any) -> Any:
        args = (i, j, cell, row_height, cell_height_info, cell_x_positions)
        if cell_height_info is None or self._repeat:  # measuring, or inside an artifact
            return super()._render_table_cell(*args, **kwargs)
        header = i < self._num_heading_rows
        with self._doc.marked("/TH" if header else "/TD", HEADER_CELL if header else None):
            return super()._render_table_cell(*args, **kwargs)


def _value(v: Any) -> str:
    if v is None:
        return "not recorded"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {x}" for k, x in v.items())
    if isinstance(v, list):
        return "; ".join(str(x) for x in v)
    return str(v)


def _front(pdf: _Doc, r: dict[str, Any]) -> None:
    pdf.text(f"RLHF Audit Trail - {r['pack']['id']}", size=SMALL)
    pdf.text(r["title"], size=17, style="B", gap=3, kind="/H1")
    pdf.pairs([("Scope", r["scope_description"]), ("Log", r["log"]["origin"]),
               ("Tree size", f"{r['log']['tree_size']} entries"),
               ("Generated", r["generated_at"] + ", from the log alone")])
    pdf.text("Every statement cites the log entries behind it as #index; fetch /log/v1/proof/<index> for the "
             "inclusion proof of each against this signed checkpoint:", size=SMALL)
    pdf.set_font("Courier", size=7)
    with pdf.marked("/P"):
        pdf.multi_cell(0, 3.5, _latin1(r["log"]["checkpoint"]), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _cell(text: str) -> str:
    text = _latin1(text)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 40] + "... (full text in the HTML form)"


def _rules(pdf: _Doc, r: dict[str, Any]) -> None:
    pdf.heading("1. Rule results")
    pdf.statements(r["rules"]["statements"])
    pdf.set_font("Helvetica", size=SMALL)
    table = _TaggedTable(pdf, col_widths=(16, 46, 30, 82), text_align="LEFT", line_height=SMALL * 0.5,
                         headings_style=FontFace(emphasis="BOLD"), padding=1.2)
    header = table.row()
    for name in ("Status", "Rule", "Article", "Result and the entries behind it"):
        header.cell(name)
    for res in r["rules"]["results"]:
        row = table.row()
        row.cell(res["status"].replace("_", " ").upper())
        row.cell(_cell(f"{res['title']} ({res['rule']})"))
        row.cell(_cell(res["article"]))
        row.cell(_cell(res["summary"] + _cite(res["entries"])))
    with pdf.tag("/Table"):
        table.render()
    pdf.ln(2)
    pdf.heading("Obligations, articles and application dates", 2)
    pdf.statements(r["obligations"]["statements"])


def _register(pdf: _Doc, reg: dict[str, Any]) -> None:
    pdf.heading("4. Art. 14 human oversight register")
    pdf.statements(reg["statements"])
    pdf.heading("Intervention statistics", 2)
    stats = reg["statistics"]
    pdf.pairs([(k, v) for k, v in stats.items() if k != "by_action"]
              + [(f"decisions: {a}", n) for a, n in stats["by_action"].items()])
    pdf.heading("Register", 2)
    for row in reg["rows"]:
        resumes = f" (resumes {row['halted_by']})" if row.get("halted_by") else ""
        pdf.text(f"#{row['index']}  {row['at']}  {row['action']}{resumes} of {row['target']}",
                 style="B", gap=0.2)
        pdf.text(f"by {row['who']} ({row['role']}): {row['why']}", size=SMALL, gap=1.2)
    if not reg["rows"]:
        pdf.text("No oversight decision or release in this scope.")


def render_pdf(r: dict[str, Any]) -> bytes:
    """The report data (``Report.data``) as a PDF document."""
    pdf = _Doc(r["title"], f"{r['format']} - {r['pack']['id']} - tree size {r['log']['tree_size']}")
    _front(pdf, r)
    _rules(pdf, r)
    pdf.heading("2. Annex IV technical documentation (draft)")
    pdf.text("A draft from what the log records; points marked 'Not recorded on the log' must be completed "
             "by the provider.", size=SMALL)
    for s in r["annex_iv"]:
        pdf.heading(f"2.{s['number']} {s['title']}", 2)
        pdf.statements(s["statements"])
    pdf.heading("3. Art. 12 record-keeping: log summary and completeness")
    pdf.statements(r["art12_log"]["statements"])
    pdf.pairs([(k, v) for k, v in r["art12_log"]["figures"].items() if k != "problems"])
    pdf.pairs([(f"events: {k}", n) for k, n in r["art12_log"]["events_by_kind"].items()])
    _register(pdf, r["art14_oversight"])
    pdf.heading("5. Art. 10 data governance: datasheets")
    for ds in r["art10_datasheets"]:
        pdf.heading(f"{ds['dataset']} version {ds['dataset_version']}", 2)
        pdf.statements(ds["statements"])
        pdf.pairs(list(ds["version"].items()) + list(ds["datasheet"].items()))
    if not r["art10_datasheets"]:
        pdf.text("No dataset version in this scope. Not recorded on the log.")
    pdf.heading("6. Differential-privacy budget statement")
    pdf.text(f"Unit of privacy: one {r['dp_budget']['unit']}.")
    pdf.statements(r["dp_budget"]["statements"])
    pdf.heading("7. Art. 19 retention attestation")
    pdf.statements(r["retention"]["statements"])
    pdf.heading("8. Art. 73 serious incidents: evidence freezes")
    pdf.text("What the product tracks for Art. 73: each incident's evidence freeze (incident.frozen). The "
             "notification deadlines and the report to the authority are not tracked (section 9).",
             size=SMALL)
    pdf.statements(r["art73_incidents"]["statements"])
    pdf.heading("9. What this report does not cover")
    pdf.statements({"text": t} for t in r["not_covered"])
    return bytes(pdf.output())

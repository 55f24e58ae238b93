"""The PDF form of a compliance report: a plain text layout of the same data, with fpdf2.

Pure Python, no system libraries or fonts: the built-in Helvetica covers Latin-1, so the few
other characters the reports use are spelled out (ε -> epsilon) and anything else becomes "?".
The text stays extractable (auditors search and quote it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

__all__ = ["render_pdf"]

_SPELLED = {"ε": "epsilon", "δ": "delta", "≥": ">=", "≤": "<=", "—": "-", "–": "-", "“": '"', "”": '"',
            "’": "'", "‘": "'", "…": "...", "·": "-", "→": "->", "×": "x"}
BODY, SMALL = 9.5, 8


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


class _Doc(FPDF):
    def __init__(self, title: str, footer_text: str) -> None:
        super().__init__(format="A4")
        self.title_text = _latin1(title)
        self.footer_text = _latin1(footer_text)
        self.set_auto_page_break(True, margin=15)
        self.set_margins(18, 16, 18)
        self.set_title(self.title_text)
        self.set_creator("rlhf-audit-trail")
        self.add_page()

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.cell(0, 5, f"{self.footer_text} - page {self.page_no()}", align="C")

    def text(self, text: str, size: float = BODY, style: str = "", gap: float = 1.2) -> None:  # type: ignore[override]
        self.set_font("Helvetica", style=style, size=size)
        self.multi_cell(0, size * 0.5, _latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(gap)

    def heading(self, text: str, level: int = 1) -> None:
        if self.get_y() > self.h - 40:
            self.add_page()
        self.ln(3 if level == 1 else 1.5)
        self.text(text, size=14 if level == 1 else 11, style="B", gap=2)

    def statements(self, items: Iterable[dict[str, Any]]) -> None:
        for s in items:
            self.text("- " + s["text"] + _cite(s.get("entries", ())))

    def pairs(self, items: Iterable[tuple[Any, Any]]) -> None:
        for key, value in items:
            self.text(f"{str(key).replace('_', ' ')}: {_value(value)}", size=SMALL, gap=0.4)
        self.ln(1)


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
    pdf.text(r["title"], size=17, style="B", gap=3)
    pdf.pairs([("Scope", r["scope_description"]), ("Log", r["log"]["origin"]),
               ("Tree size", f"{r['log']['tree_size']} entries"),
               ("Generated", r["generated_at"] + ", from the log alone")])
    pdf.text("Every statement cites the log entries behind it as #index; fetch /log/v1/proof/<index> for the "
             "inclusion proof of each against this signed checkpoint:", size=SMALL)
    pdf.set_font("Courier", size=7)
    pdf.multi_cell(0, 3.5, _latin1(r["log"]["checkpoint"]), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _rules(pdf: _Doc, r: dict[str, Any]) -> None:
    pdf.heading("1. Rule results")
    pdf.statements(r["rules"]["statements"])
    for res in r["rules"]["results"]:
        status = res["status"].replace("_", " ").upper()
        pdf.text(f"[{status}] {res['title']} ({res['article']}; {res['rule']})", style="B", gap=0.3)
        pdf.text(res["summary"] + _cite(res["entries"]), size=SMALL, gap=1.5)


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
    pdf.heading("8. What this report does not cover")
    pdf.statements({"text": t} for t in r["not_covered"])
    return bytes(pdf.output())

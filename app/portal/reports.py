"""Reports and evidence: run the compliance checks, generate a report, build an evidence bundle.

Everything is ``app.compliance``'s and ``app.evidence``'s: the page only collects the scope (a
model release, a run, a dataset, a time range or the whole log) and the format, and shows the
newest check and the open alerts. Each action is recorded on the log by those modules with the
signed-in account as actor (``compliance.checked``, ``report.generated``, ``bundle.created``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from ledger.errors import LedgerError

from .explorer import event_index
from .sources import optional
from .web import Req, actor_of, log_of, page, redirect, role_guard, signed_in

__all__ = ["REPORT_ROLES", "ReportsController", "scope_of"]

REPORT_ROLES = ("admin", "auditor", "overseer")  # as app.compliance.api allows
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
SCOPE_FIELDS = {"model": ("model",), "run": ("run",), "dataset": ("dataset", "version"),
                "time": ("since", "until"), "all": ()}


def scope_of(form: dict[str, str]) -> dict[str, Any]:
    """The scope JSON the compliance and evidence modules take, from the form's fields."""
    kind = form.get("kind", "all")
    if kind not in SCOPE_FIELDS:
        raise ValueError(f"choose a scope: {', '.join(SCOPE_FIELDS)}")
    scope: dict[str, Any] = {"kind": kind}
    for name in SCOPE_FIELDS[kind]:
        value = form.get(name, "").strip()
        if not value:
            if name == "version":
                continue
            raise ValueError(f"a {kind} scope needs a {name}")
        if name == "version":
            if not value.isdigit():
                raise ValueError("the dataset version must be a number")
            scope[name] = int(value)
        elif name in ("since", "until"):
            scope[name] = value if value.endswith("Z") or "+" in value else value + (
                "Z" if len(value) > 16 else ":00Z")
        else:
            scope[name] = value
    return scope


async def _context(request: Req) -> dict[str, Any]:
    compliance = optional("app.compliance")
    if compliance is None:
        return {"check": None, "alerts": None, "bundles": optional("app.evidence.builder") is not None}
    log = log_of(request)
    return {"check": await compliance.latest_check(log),
            "alerts": await compliance.list_alerts(log, "open"),
            "bundles": optional("app.evidence.builder") is not None}


class ReportsController(Controller):
    path = "/reports"
    guards = [signed_in]

    @get("/")
    async def reports(self, request: Req) -> Template:
        return page(request, "reports.html", title="Reports & evidence", **await _context(request),
                    may_report=_may(request), form={})

    @post("/checks", guards=[role_guard(*REPORT_ROLES)])
    async def check(self, request: Req) -> Redirect:
        """Run the regulation pack now (recorded as ``compliance.checked``)."""
        from app.compliance import run_checks

        run = await run_checks(log_of(request), event_index(request), actor=actor_of(request))
        c = run.counts()
        message = (f"Checks done: {c['pass']} passed, {c['fail']} failed, {c['not_applicable']} not "
                   f"applicable (log entry {run.leaf_index}).")
        return redirect("/reports", message, "success" if run.ok else "error", request)

    @post("/report", guards=[role_guard(*REPORT_ROLES)], status_code=200)
    async def report(self, request: Req, data: Form) -> Response[bytes] | Template:
        """A report for the scope, in the format asked for (HTML shown, PDF and JSON downloaded)."""
        from app.compliance.reports import FORMATS, MEDIA_TYPES, build_report, render_report

        fmt = data.get("format", "html")
        try:
            if fmt not in FORMATS:
                raise ValueError(f"format must be one of {', '.join(FORMATS)}")
            log = log_of(request)
            report = await build_report(log, event_index(request), scope_of(data))
            document = await render_report(log, report, fmt, actor_of(request),
                                           objects=getattr(request.app.state, "objects", None))
        except (ValueError, LedgerError) as e:
            return page(request, "reports.html", status_code=400, **await _context(request),
                        may_report=True, form=data, error=f"The report could not be made: {e}")
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", report.scope.describe())[:80]
        disposition = "inline" if fmt == "html" else "attachment"
        return Response(document, media_type=MEDIA_TYPES[fmt], headers={
            "Content-Disposition": f'{disposition}; filename="compliance-report-{label}.{fmt}"',
            "Cache-Control": "no-store"})


    @post("/bundle", status_code=200)
    async def bundle(self, request: Req, data: Form) -> Response[bytes] | Template:
        """Build the evidence bundle of a scope and download it (``bundle.created`` on the log)."""
        from app.evidence.builder import build_bundle
        from app.evidence.scope import Scope
        from app.jobs.api import keyring_of

        try:
            scope = scope_of(data)
            if scope["kind"] == "all":
                raise ValueError("a bundle covers a model, a run, a dataset or a time range: choose one")
            built = await build_bundle(log_of(request), Scope.from_json(scope),
                                       evidence_key=keyring_of(request).evidence_signer,
                                       actor=actor_of(request), index=event_index(request),
                                       objects=getattr(request.app.state, "objects", None))
        except (ValueError, LedgerError) as e:
            return page(request, "reports.html", status_code=400, **await _context(request),
                        may_report=_may(request), form=data, error=f"The bundle could not be built: {e}")
        return Response(built.data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{built.filename}"',
            "X-Manifest-SHA256": built.manifest_sha256, "Cache-Control": "no-store"})


def _may(request: Req) -> bool:
    from .web import viewer

    who = viewer(request)
    return bool(who and who.may(*REPORT_ROLES))

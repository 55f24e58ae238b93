"""Reports and evidence: run the compliance checks, generate a report, build an evidence bundle,
freeze the evidence of a serious incident (Art. 73).

Everything is ``app.compliance``'s, ``app.evidence``'s and ``app.incidents``'s: the page only
collects the scope (a model release, a run, a dataset, a time range or the whole log) and the
format, and shows the newest check, the open alerts and the recorded freezes. Each action is
recorded on the log by those modules with the signed-in account as actor (``compliance.checked``,
``report.generated``, ``bundle.created``, ``incident.frozen``).

The freeze is an oversight act (it puts a legal hold on evidence and may halt runs): its form is
shown to overseers and admins only, the endpoint refuses everyone else (403), and it asks, like
the oversight forms, for a written reason and a confirmation. Frozen bundles are downloaded from
the object store, checked first against the SHA-256 the log recorded for them.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Body, PathParameter
from litestar.response import Redirect, Template

from ledger.errors import LedgerError, NotFound

from ..compliance import latest_check, list_alerts, run_checks
from ..compliance.reports import FORMATS, MEDIA_TYPES, build_report, render_report
from ..compliance.scope import ReportScope
from ..core.deps import app_settings_of, keyring_of, objects_of
from ..core.errors import AppError, Forbidden, Missing
from ..core.params import QueryIndex
from ..core.problems import client_detail
from ..core.roles import COMPLIANCE_READERS
from ..evidence.builder import build_bundle
from ..evidence.scope import Scope
from ..incidents.freeze import MIN_REASON, freeze_evidence, list_incidents
from .explorer import event_index
from .pickers import scope_pickers
from .web import (
    OVERSIGHT_ROLES,
    Req,
    actor_of,
    db_of,
    flash,
    log_of,
    page,
    redirect,
    role_guard,
    signed_in,
    viewer,
)

__all__ = ["FREEZE_KINDS", "MAX_REASON", "ReportsController", "scope_of"]

FREEZE_KINDS = ("run", "model", "time")  # what `rlhf-audit incident freeze` offers
# The form's bound on a freeze's reason, stated next to the field: the reason goes into one log
# entry (at most 65,535 bytes, with the scope and the rest), so a longer text would be refused there
# with words about entry bundles; here it is refused first, in words about its length.
MAX_REASON = 10_000
INCIDENT_ID = re.compile(r"inc_[0-9A-Z]{26}")
IncidentId = Annotated[str, PathParameter()]  # a malformed id names no incident: 404, in the handler
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
            local = re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?", value)  # datetime-local
            scope[name] = value if not local else value + ("Z" if len(value) > 16 else ":00Z")
        else:
            scope[name] = value
    return scope


async def _context(request: Req) -> dict[str, Any]:
    db = db_of(request)
    return {"check": await latest_check(db), "alerts": await list_alerts(db, "open"), "bundles": True,
            "pickers": await scope_pickers(db), **await _incidents(request)}


def _scope_text(scope: Any) -> str:
    try:
        return ReportScope.parse(scope).describe()
    except (LedgerError, AppError, TypeError, ValueError):
        return str(scope)


async def _incidents(request: Req) -> dict[str, Any]:
    """The recorded freezes (newest first), and whether the viewer may freeze."""
    who = viewer(request)
    index = event_index(request)
    await index.catch_up()  # a freeze just recorded is listed at once
    found = await list_incidents(index, limit=100)
    for i in found:
        i["scope_text"] = _scope_text(i.get("scope"))
    return {"incidents": found, "may_freeze": bool(who and who.may(*OVERSIGHT_ROLES)),
            "min_reason": MIN_REASON, "max_reason": MAX_REASON,
            "downloads": objects_of(request) is not None}


def _freeze_status(e: Exception) -> int:
    return 403 if isinstance(e, Forbidden) else 404 if isinstance(e, NotFound | Missing) else 400


class ReportsController(Controller):
    path = "/reports"
    guards = [signed_in]

    @get("/")
    async def reports(self, request: Req,
                      frozen: QueryIndex = None) -> Template:
        return page(request, "reports.html", title="Reports & evidence", **await _context(request),
                    may_report=_may(request), form={}, freeze_form={}, frozen=frozen)

    @post("/checks", guards=[role_guard(*COMPLIANCE_READERS)])
    async def check(self, request: Req) -> Redirect:
        """Run the regulation pack now (recorded as ``compliance.checked``)."""
        run = await run_checks(db_of(request), log_of(request), event_index(request), actor=actor_of(request),
                               settings=app_settings_of(request))
        c = run.counts()
        message = (f"Checks done: {c['pass']} passed, {c['fail']} failed, {c['not_applicable']} not "
                   f"applicable (log entry {run.leaf_index}).")
        return redirect("/reports", message, "success" if run.ok else "error", request)

    @post("/report", guards=[role_guard(*COMPLIANCE_READERS)], status_code=200)
    async def report(self, request: Req, data: Form) -> Response[bytes] | Template:
        """A report for the scope, in the format asked for (HTML shown, PDF and JSON downloaded)."""
        fmt = data.get("format", "html")
        try:
            if fmt not in FORMATS:
                raise ValueError(f"format must be one of {', '.join(FORMATS)}")
            log = log_of(request)
            report = await build_report(db_of(request), log, event_index(request), scope_of(data),
                                        settings=app_settings_of(request))
            document = await render_report(log, report, fmt, actor_of(request),
                                           objects=objects_of(request))
        except (ValueError, LedgerError, AppError) as e:
            return page(request, "reports.html", status_code=400, **await _context(request),
                        may_report=True, form=data, error=f"The report could not be made: {client_detail(e)}")
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", report.scope.describe())[:80]
        disposition = "inline" if fmt == "html" else "attachment"
        return Response(document, media_type=MEDIA_TYPES[fmt], headers={
            "Content-Disposition": f'{disposition}; filename="compliance-report-{label}.{fmt}"',
            "Cache-Control": "no-store"})

    @post("/bundle", status_code=200)
    async def bundle(self, request: Req, data: Form) -> Response[bytes] | Template:
        """Build the evidence bundle of a scope and download it (``bundle.created`` on the log)."""
        try:
            scope = scope_of(data)
            if scope["kind"] == "all":
                raise ValueError("a bundle covers a model, a run, a dataset or a time range: choose one")
            built = await build_bundle(db_of(request), log_of(request), Scope.from_json(scope),
                                       evidence_key=keyring_of(request).evidence_signer,
                                       actor=actor_of(request), index=event_index(request),
                                       objects=objects_of(request), settings=app_settings_of(request))
        except (ValueError, LedgerError, AppError) as e:
            return page(request, "reports.html", status_code=400, **await _context(request),
                        may_report=_may(request), form=data,
                        error=f"The bundle could not be built: {client_detail(e)}")
        return Response(built.data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{built.filename}"',
            "X-Manifest-SHA256": built.manifest_sha256, "Cache-Control": "no-store"})


    @post("/incidents", guards=[role_guard(*OVERSIGHT_ROLES)], status_code=200)
    async def freeze(self, request: Req, data: Form) -> Template | Redirect:
        """Freeze a scope's evidence (Art. 73, ``incident.frozen``); on a refusal, the page again
        with the reason and nothing written."""
        index = event_index(request)
        try:
            if data.get("kind") not in FREEZE_KINDS:
                raise ValueError("choose what to freeze: a training run, a model release or a time range")
            if len(reason := data.get("reason", "")) > MAX_REASON:
                raise ValueError(f"the reason is {len(reason):,} characters long; a reason may have at most "
                                 f"{MAX_REASON:,} characters")
            scope = Scope.from_json(scope_of(data))
            if data.get("confirm") != "yes":
                raise ValueError("tick the confirmation box to freeze (it goes on the permanent log)")
            objects = objects_of(request)
            if objects is None:
                raise ValueError("this server has no object store to keep the frozen bundle in")
            await index.catch_up()  # events recorded a moment ago are in scope
            frozen = await freeze_evidence(
                db_of(request), log_of(request), scope, data.get("reason"), actor_of(request),
                objects=objects, evidence_key=keyring_of(request).evidence_signer, index=index,
                halt=data.get("halt") == "yes", settings=app_settings_of(request))
        except (ValueError, LedgerError, AppError) as e:
            return page(request, "reports.html", status_code=_freeze_status(e), **await _context(request),
                        may_report=_may(request), form={}, freeze_form=data, frozen=None,
                        freeze_error=f"The evidence was not frozen: {client_detail(e).rstrip('.')}.")
        halted = f", {len(frozen.halted)} run(s) halted" if frozen.halted else ""
        redirect_to = f"/reports?frozen={frozen.leaf_index}#incidents"
        done = redirect(redirect_to, f"Evidence frozen as incident {frozen.incident} (log entry "
                                     f"{frozen.leaf_index}): bundle {frozen.object_key}, {len(frozen.held)} "
                                     f"artefact(s) on legal hold{halted}.", "success", request)
        if frozen.missing or frozen.changed:
            flash(request, f"{len(frozen.missing)} artefact(s) the log names are missing from the store "
                           f"and {len(frozen.changed)} differ from the log: `rlhf-audit verify` names them.",
                  "error")
        return done

    @get("/incidents/{incident:str}/bundle")
    async def frozen_bundle(self, request: Req, incident: IncidentId) -> Response[bytes]:
        """The frozen bundle of a recorded incident, if the store still has it as the log says."""
        if not INCIDENT_ID.fullmatch(incident):
            raise NotFoundException(f"no incident {incident[:64]}: incident ids look like inc_ and 26 "
                                    "letters and digits")
        found = next((i for i in await list_incidents(event_index(request), limit=1000)
                      if i.get("incident") == incident), None)
        objects = objects_of(request)
        if found is None or objects is None or not isinstance(found.get("object_key"), str):
            raise NotFoundException(f"no frozen bundle of incident {incident} on the log")
        try:
            data, digest = await asyncio.to_thread(_read_checked, objects, found["object_key"])
        except AppError as e:  # the store's: no such object, unreachable, misconfigured
            raise NotFoundException(f"the frozen bundle of {incident} is not in the object store: "
                                    f"{client_detail(e)}") from e
        if digest != found.get("sha256"):
            raise HTTPException(status_code=409, detail=(
                f"the stored bundle of {incident} does not have the SHA-256 the log recorded for it "
                f"(log entry {found['leaf_index']}); `rlhf-audit verify` reports it"))
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{incident}-bundle.zip"',
            "X-Bundle-SHA256": digest, "Cache-Control": "no-store"})


def _read_checked(objects: Any, key: str) -> tuple[bytes, str]:
    import hashlib

    data: bytes = objects.read(key)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def _may(request: Req) -> bool:
    who = viewer(request)
    return bool(who and who.may(*COMPLIANCE_READERS))

"""The compliance endpoints under ``/api/v1``: run checks, read results and alerts, get reports.

Admins, auditors and overseers may use them (a token with the ``read`` scope and one of those
roles). Checks and reports are recorded on the log under the caller's pseudonym.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import QueryParameter

from ..auth.principal import authorized
from ..core.deps import AppSettingsDep, CallerDep, DbDep, IndexDep, LogDep, objects_of
from ..core.roles import COMPLIANCE_READERS
from .alerts import list_alerts
from .engine import latest_check, run_checks
from .reports import FORMATS, MEDIA_TYPES, build_report, render_report

__all__ = ["ComplianceController"]

Req = Request[Any, Any, Any]
_OPT = {"scope": "read", "roles": COMPLIANCE_READERS}


def _report_request(raw: bytes) -> tuple[Any, str]:
    try:
        doc = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as e:
        raise ClientException(f"the body is not JSON: {e}") from None
    if not isinstance(doc, dict) or set(doc) - {"scope", "format"}:
        raise ClientException('the body must be {"scope": {...}, "format": "html" | "pdf" | "json"}')
    fmt = doc.get("format", "html")
    if fmt not in FORMATS:
        raise ClientException(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return doc.get("scope"), fmt


class ComplianceController(Controller):
    path = "/api/v1"
    guards = [authorized]

    @post("/compliance/checks", opt=_OPT, status_code=201)
    async def check(self, db: DbDep, log: LogDep, event_index: IndexDep, caller: CallerDep,
                    app_settings: AppSettingsDep) -> dict[str, Any]:
        """Run the regulation pack now, under the server's settings; the result is recorded on the
        log (``compliance.checked``)."""
        run = await run_checks(db, log, event_index, actor=caller, settings=app_settings)
        return run.to_json()

    @get("/compliance/checks/latest", opt=_OPT)
    async def latest(self, db: DbDep) -> dict[str, Any]:
        """The most recent check's results."""
        run = await latest_check(db)
        if run is None:
            raise NotFoundException("no compliance check has run yet: POST /api/v1/compliance/checks")
        return run.to_json()

    @get("/compliance/alerts", opt=_OPT)
    async def alerts(
        self, db: DbDep,
        which: Annotated[Literal["open", "resolved"] | None, QueryParameter(name="state")] = None,
    ) -> dict[str, Any]:
        """Alerts raised by failing rules, newest first (``state=open`` for the unresolved)."""
        return {"alerts": [a.to_json() for a in await list_alerts(db, which)]}

    @post("/reports", opt=_OPT, status_code=200)
    async def report(self, request: Req, db: DbDep, log: LogDep, event_index: IndexDep,
                     caller: CallerDep, app_settings: AppSettingsDep) -> Response[bytes]:
        """A compliance report for a scope (model release, run, dataset, time range, or the whole log)
        as HTML, PDF or JSON; generating it is recorded on the log (``report.generated``)."""
        scope, fmt = _report_request(await request.body())
        report = await build_report(db, log, event_index, scope, settings=app_settings)
        document = await render_report(log, report, fmt, caller,
                                       objects=objects_of(request))
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", report.scope.describe())[:80]
        return Response(document, media_type=MEDIA_TYPES[fmt], headers={
            "Content-Disposition": f'attachment; filename="compliance-report-{label}.{fmt}"',
            "X-Tree-Size": str(report.tree_size), "Cache-Control": "no-store"})

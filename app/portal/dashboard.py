"""The dashboard: what needs attention now, refreshing itself with htmx polling.

The overseer's "needs attention" panels (``partials/attention.html``): halted runs waiting for a
second overseer, models waiting for approval or release, failing compliance rules and the age of
the check, privacy budgets per dataset, timestamps behind and witnesses; then the activity and the
log health. Each panel says how many items it has, links to where to act, and says plainly when
nothing waits. Each group is a partial rendered both in the full page and by its own endpoint
that htmx polls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, get
from litestar.response import Template

from ledger.errors import LedgerError

from ..core.problems import client_detail
from . import sources
from .web import Req, log_of, page, signed_in

__all__ = ["DashboardController", "log_health"]


async def log_health(request: Req) -> dict[str, Any]:
    """Size, age of the newest checkpoint and TSA status, as ``rlhf-audit status`` shows them."""
    log = log_of(request)
    try:
        size, _ = await log.tree_head()
        cp = await log.latest_checkpoint()
        gaps = await log.timestamp_gaps()
    except LedgerError as e:
        return {"error": client_detail(e)}
    age = None
    if cp is not None and cp.published_at is not None:
        published = cp.published_at if cp.published_at.tzinfo else cp.published_at.replace(tzinfo=UTC)
        age = max(0.0, (datetime.now(UTC) - published).total_seconds())
    return {
        "size": size, "checkpoint_size": None if cp is None else cp.size, "age": age,
        "tsas": [t.name for t in log.tsas], "gaps": gaps,
        "stale": age is not None and age > 60 and size > (cp.size if cp else 0),
    }


class DashboardController(Controller):
    path = "/"

    @get("/", guards=[signed_in])
    async def index(self, request: Req) -> Template:
        """The dashboard (the guard sends people not signed in to the sign-in page)."""
        return page(request, "dashboard.html", title="Dashboard", health=await log_health(request),
                    attention=await sources.attention(request), **await sources.dashboard(request))

    @get("/dashboard/attention", guards=[signed_in])
    async def attention(self, request: Req) -> Template:
        return page(request, "partials/attention.html", health=await log_health(request),
                    attention=await sources.attention(request))

    @get("/dashboard/health", guards=[signed_in])
    async def health(self, request: Req) -> Template:
        return page(request, "partials/health.html", health=await log_health(request))

    @get("/dashboard/activity", guards=[signed_in])
    async def activity(self, request: Req) -> Template:
        return page(request, "partials/activity.html", **await sources.dashboard(request))

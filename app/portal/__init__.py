"""The human-oversight portal: server-rendered pages (Jinja2) refreshed in parts by htmx 2.

One controller module per area; templates live in ``templates/`` (``partials/`` are shared by a
full page and the htmx endpoint that refreshes that part), static files in ``static/``.
``create_app`` installs :func:`portal_router`, :func:`template_config`, :func:`static_files` and
wraps the API's exception handlers with :func:`error_pages` (HTML for browsers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Router
from litestar.file_system import BaseLocalFileSystem
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from . import charts
from .admin import AdminController
from .dashboard import DashboardController
from .datasets import DatasetsController
from .errors import error_pages
from .explorer import ExplorerController
from .job_form import JobFormController
from .oversight import OversightController
from .reports import ReportsController
from .runs import RunsController
from .signin import SignInController
from .web import before_request

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "error_pages", "portal_router", "static_files", "template_config"]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"


def _filters(engine: JinjaTemplateEngine) -> None:
    env: Any = engine.engine
    env.filters["sparkline"] = charts.line_chart
    env.globals["line_chart"] = charts.line_chart


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=_filters)


class _StaticDirectory(BaseLocalFileSystem):
    """The static files' directory: a path the OS refuses to look up (a name too long) is a file
    that is not there, a 404, where Litestar would answer 500."""

    async def info(self, path: Any, **kwargs: Any) -> Any:
        try:
            return await super().info(path, **kwargs)
        except (FileNotFoundError, PermissionError):
            raise
        except OSError as e:
            raise FileNotFoundError(e.errno, "no such static file") from None


def static_files() -> Router:
    return create_static_files_router(path="/static", directories=[STATIC_DIR], name="static",
                                      file_system=_StaticDirectory())


def portal_router() -> Router:
    return Router(path="/", include_in_schema=False, before_request=before_request, route_handlers=[
        DashboardController, ExplorerController, SignInController, JobFormController, RunsController,
        OversightController, DatasetsController, ReportsController, AdminController])

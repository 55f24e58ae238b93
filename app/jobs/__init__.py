"""Training jobs: specs submitted, budgets reserved, queued for a worker, tracked to their end.

See ``service`` (submit, cancel, job rows), ``queue`` (ARQ or the local worker), ``api``
(``/api/v1/jobs``) and ``commands`` (``rlhf-audit jobs``). What runs a queued job (the job
function, the local and ARQ workers) is :mod:`app.worker`.
"""

from __future__ import annotations

from .errors import Conflict, Forbidden, JobError, JobNotFound
from .service import Job, cancel, get_job, list_jobs, submit

__all__ = ["Conflict", "Forbidden", "Job", "JobError", "JobNotFound", "cancel", "get_job", "list_jobs",
           "submit"]

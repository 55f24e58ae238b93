"""Datasets: versions, datasheets, annotator pseudonym statistics and agreement, budget left.

Read from ``app.datasets`` (``list_datasets``, ``describe_dataset``); overseers get the forms to
reject a version or one annotator's records (posted to the oversight endpoints).
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import PathParameter
from litestar.response import Template

from ..datasets import describe_dataset, list_datasets
from ..oversight.service import MAX_JUSTIFICATION, MIN_JUSTIFICATION
from .web import OVERSIGHT_ROLES, Req, db_of, page, signed_in, viewer

__all__ = ["DatasetsController"]


class DatasetsController(Controller):
    path = "/datasets"
    guards = [signed_in]

    @get("/")
    async def datasets(self, request: Req) -> Template:
        return page(request, "datasets.html", datasets=await list_datasets(db_of(request)))

    @get("/{dataset:str}")
    async def dataset(self, request: Req, dataset: Annotated[str, PathParameter(max_length=128)],
                      ) -> Template:
        described = await describe_dataset(db_of(request), dataset)  # UnknownDataset -> 404 page
        who = viewer(request)
        return page(request, "dataset.html", d=described, may_oversee=bool(who and who.may(*OVERSIGHT_ROLES)),
                    min_justification=MIN_JUSTIFICATION, max_justification=MAX_JUSTIFICATION)

"""Human-feedback datasets: import, pseudonyms, encrypted records, datasheets, budgets, erasure.

The log carries per record a salted commitment and the annotator's pseudonym, per version a
Merkle root and a datasheet; the records themselves, encrypted per data subject, and the keys
that erasure destroys live in the database (see :mod:`app.datasets.records`).
"""

from __future__ import annotations

from .budget import Budget, Reservation, get_budget, release, remaining, reserve, set_budget, settle
from .erasure import Erasure, erase_subject
from .errors import (
    BudgetError,
    BudgetExceeded,
    DatasetError,
    DatasetRejected,
    RecordsUnreadable,
    UnknownDataset,
    UnknownReservation,
    UnknownSubject,
)
from .importer import ImportResult, import_dataset, parse_records
from .records import dataset_id, find_subject
from .versions import (
    DatasetVersion,
    PreferenceRecord,
    describe_dataset,
    is_rejected,
    list_datasets,
    load_version,
    reject_annotator,
    reject_version,
)

__all__ = [
    "Budget",
    "BudgetError",
    "BudgetExceeded",
    "DatasetError",
    "DatasetRejected",
    "DatasetVersion",
    "Erasure",
    "ImportResult",
    "PreferenceRecord",
    "RecordsUnreadable",
    "Reservation",
    "UnknownDataset",
    "UnknownReservation",
    "UnknownSubject",
    "dataset_id",
    "describe_dataset",
    "erase_subject",
    "find_subject",
    "get_budget",
    "import_dataset",
    "is_rejected",
    "list_datasets",
    "load_version",
    "parse_records",
    "reject_annotator",
    "reject_version",
    "release",
    "remaining",
    "reserve",
    "set_budget",
    "settle",
]

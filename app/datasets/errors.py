"""Errors of the datasets package, as kinds of :mod:`app.core.errors` (their HTTP status; the CLI
exits 3 for a missing thing, 1 for the others)::

    Invalid (400)
    ├── DatasetError          a malformed file or datasheet, a bad name, a conflicting request
    │   └── DatasetRejected   a version rejected by an overseer, refused for training
    └── BudgetError           no budget, a budget below what is spent, a reservation in the wrong state
        └── BudgetExceeded    a planned epsilon over what remains (the message gives the numbers)
    Missing (404)
    ├── UnknownDataset        no such dataset or version
    ├── UnknownSubject        no data subject (annotator) with that pseudonym, or already erased
    └── UnknownReservation    no budget reservation for that run
    Unavailable (503)
    └── RecordsUnreadable     stored records or record keys that do not check out: a tampered
                              row, or a keys directory that does not belong to this database
"""

from __future__ import annotations

from app.core.errors import Invalid, Missing, Unavailable

__all__ = [
    "BudgetError",
    "BudgetExceeded",
    "DatasetError",
    "DatasetRejected",
    "RecordsUnreadable",
    "UnknownDataset",
    "UnknownReservation",
    "UnknownSubject",
]


class DatasetError(Invalid):
    """A dataset request that cannot be done as asked."""


class DatasetRejected(DatasetError):
    """The dataset version was rejected by an overseer: no future job may train on it."""


class BudgetError(Invalid):
    """A privacy-budget request that cannot be done."""


class BudgetExceeded(BudgetError):
    """A job's planned epsilon does not fit in what remains of the dataset's budget."""

    def __init__(self, dataset: str, planned: float, total: float, spent: float, reserved: float) -> None:
        self.dataset, self.planned, self.total, self.spent, self.reserved = (
            dataset, planned, total, spent, reserved)
        self.remaining = max(0.0, total - spent - reserved)
        super().__init__(
            f"the planned epsilon {planned:g} exceeds what remains of the privacy budget of {dataset}: "
            f"total {total:g}, spent {spent:g}, reserved by running jobs {reserved:g}, "
            f"remaining {self.remaining:g}")


class UnknownDataset(Missing):
    """No dataset, or no version, of that name."""


class UnknownSubject(Missing):
    """No data subject with that pseudonym (never seen, or already erased)."""


class UnknownReservation(Missing):
    """No privacy-budget reservation for that run."""


class RecordsUnreadable(Unavailable):
    """Stored records, their keys or their roots do not check out: nothing is served from them
    until the right keys directory is back or the rows are restored."""

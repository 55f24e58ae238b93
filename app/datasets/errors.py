"""Errors of the datasets package, as ledger errors so the CLI and the API already map them::

    EntryError (400 / exit 1)
    ├── DatasetError          a malformed file or datasheet, a bad name, a conflicting request
    │   └── DatasetRejected   a version rejected by an overseer, refused for training
    └── BudgetError           no budget, a budget below what is spent, a reservation in the wrong state
        └── BudgetExceeded    a planned epsilon over what remains (the message gives the numbers)
    NotFound (404 / exit 3)
    ├── UnknownDataset        no such dataset or version
    └── UnknownSubject        no data subject (annotator) with that pseudonym, or already erased
"""

from __future__ import annotations

from ledger.errors import EntryError, NotFound

__all__ = [
    "BudgetError",
    "BudgetExceeded",
    "DatasetError",
    "DatasetRejected",
    "UnknownDataset",
    "UnknownSubject",
]


class DatasetError(EntryError):
    """A dataset request that cannot be done as asked."""


class DatasetRejected(DatasetError):
    """The dataset version was rejected by an overseer: no future job may train on it."""


class BudgetError(EntryError):
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


class UnknownDataset(NotFound):
    """No dataset, or no version, of that name."""


class UnknownSubject(NotFound):
    """No data subject with that pseudonym (never seen, or already erased)."""

"""Privacy budgets: a total epsilon per dataset, reserved before a job starts, settled after.

An admin sets a dataset's total (epsilon, delta) budget (``dataset.budget_set`` on the log). A DP
job reserves its planned epsilon before it starts: :func:`reserve` refuses with BudgetExceeded,
giving the numbers, when the plan does not fit in what is neither spent nor reserved. The check
and the reservation are one conditional UPDATE, so concurrent reservations cannot both pass when
only one fits (PostgreSQL re-checks the condition on the locked row; SQLite serialises writers).
When the job ends, :func:`settle` turns the reservation into what the accountant actually spent
(which may be less); a job refused or failed before it started is :func:`release`\\ d. A halted
run that is resumed keeps its reservation; should its plan need more, :func:`reserve_more` raises
it, under the same atomic check.

The spend itself is on the log in the training events (``run.privacy``, ``run.completed``);
these rows are the working state that makes the check fast and atomic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.core.database import Database
from app.events.recording import Actor, record
from ledger.log import Log

from .errors import BudgetError, BudgetExceeded, UnknownReservation
from .records import dataset_id, now
from .schema import budget_reservations, dataset_budgets
from .versions import version_row

__all__ = ["Budget", "Reservation", "get_budget", "get_reservation", "release", "remaining", "reserve",
           "reserve_more", "set_budget", "settle"]

_SLACK = 1e-9  # floating-point slack when comparing epsilons


@dataclass(frozen=True)
class Budget:
    dataset: str
    epsilon_total: float
    delta: float
    spent: float
    reserved: float

    @property
    def remaining(self) -> float:
        return max(0.0, self.epsilon_total - self.spent - self.reserved)


@dataclass(frozen=True)
class Reservation:
    run: str
    dataset: str
    planned: float
    state: str  # reserved, settled, released
    spent: float | None


def _budget(row: Any) -> Budget:
    return Budget(row.dataset, row.epsilon_total, row.delta, row.spent, row.reserved)


def _reservation(row: Any) -> Reservation:
    return Reservation(row.run, row.dataset, row.planned, row.state, row.spent)


def _epsilon(value: float, what: str, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or (
            value < 0 if zero else value <= 0):
        raise BudgetError(f"{what} must be a finite number {'>= 0' if zero else '> 0'}, not {value!r}")
    return float(value)


def _run(run: str) -> str:
    if not isinstance(run, str) or not 0 < len(run) <= 40:
        raise BudgetError("a run id is 1-40 characters")
    return run


async def get_budget(db: Database, dataset: str) -> Budget:
    name = dataset_id(dataset)
    async with db.connect("reading a budget") as conn:
        query = sa.select(dataset_budgets).where(dataset_budgets.c.dataset == name)
        row = (await conn.execute(query)).first()
    if row is None:
        raise BudgetError(f"no privacy budget is set for {name}: an admin sets one with "
                          "`rlhf-audit datasets budget set` or PUT /api/v1/datasets/{name}/budget")
    return _budget(row)


async def remaining(db: Database, dataset: str) -> float:
    """Epsilon neither spent nor reserved."""
    return (await get_budget(db, dataset)).remaining


async def set_budget(db: Database, log: Log, dataset: str, epsilon_total: float, delta: float,
                     actor: Actor) -> Budget:
    """Set (or change) a dataset's total budget; it may not drop below what is spent and reserved."""
    name = (await version_row(db, dataset)).dataset
    total = _epsilon(epsilon_total, "epsilon_total")
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 <= delta < 1:
        raise BudgetError(f"delta must be a number in [0, 1), not {delta!r}")
    b = dataset_budgets.c
    for _ in range(3):
        try:
            async with db.transaction("setting a budget") as conn:
                changed = await conn.execute(sa.update(dataset_budgets).where(
                    b.dataset == name, b.spent + b.reserved <= total + _SLACK).values(
                    epsilon_total=total, delta=float(delta), updated_at=now()))
                if changed.rowcount == 0:
                    row = (await conn.execute(sa.select(dataset_budgets).where(b.dataset == name))).first()
                    if row is not None:
                        raise BudgetError(f"epsilon_total {total:g} is below what {name} has spent "
                                          f"({row.spent:g}) and reserved ({row.reserved:g})")
                    await conn.execute(sa.insert(dataset_budgets).values(
                        dataset=name, epsilon_total=total, delta=float(delta), spent=0.0, reserved=0.0,
                        updated_at=now()))
            break
        except IntegrityError:
            continue  # set at the same moment by another admin: update theirs
    await record(log, "dataset.budget_set", actor, dataset=name, epsilon_total=total, delta=float(delta))
    return await get_budget(db, name)


async def reserve(db: Database, dataset: str, run: str, planned_epsilon: float) -> Reservation:
    """Reserve ``planned_epsilon`` for ``run``, or raise BudgetExceeded (atomic under concurrency)."""
    name = dataset_id(dataset)
    planned = _epsilon(planned_epsilon, "planned epsilon")
    try:
        async with db.transaction("reserving budget") as conn:
            await conn.execute(sa.insert(budget_reservations).values(
                run=_run(run), dataset=name, planned=planned, state="reserved", created_at=now(),
                updated_at=now()))
            await _take(conn, name, planned)
    except IntegrityError:
        raise BudgetError(f"run {run} already has a budget reservation") from None
    except _Refused:
        budget = await get_budget(db, name)
        raise BudgetExceeded(name, planned, budget.epsilon_total, budget.spent, budget.reserved) from None
    return Reservation(run, name, planned, "reserved", None)


class _Refused(Exception):
    pass


async def _take(conn: Any, dataset: str, epsilon: float) -> None:
    """Add ``epsilon`` to the dataset's reserved ε if it fits in what is neither spent nor reserved:
    one conditional UPDATE, so concurrent takers cannot both pass when only one fits."""
    b = dataset_budgets.c
    took = await conn.execute(sa.update(dataset_budgets).where(
        b.dataset == dataset, b.epsilon_total - b.spent - b.reserved >= epsilon - _SLACK).values(
        reserved=b.reserved + epsilon, updated_at=now()))
    if took.rowcount != 1:
        raise _Refused


async def get_reservation(db: Database, run: str) -> Reservation:
    """The run's reservation (any state), or UnknownReservation."""
    async with db.connect("reading a reservation") as conn:
        row = (await conn.execute(sa.select(budget_reservations).where(
            budget_reservations.c.run == _run(run)))).first()
    if row is None:
        raise UnknownReservation(f"run {run} has no budget reservation")
    return _reservation(row)


async def reserve_more(db: Database, run: str, planned_epsilon: float) -> Reservation:
    """Raise ``run``'s standing reservation to ``planned_epsilon`` (no change when it holds that
    much already), taking the difference from its dataset's budget in one transaction: BudgetExceeded
    when the difference does not fit, BudgetError when the reservation is no longer ``reserved``."""
    planned = _epsilon(planned_epsilon, "planned epsilon")
    r = budget_reservations.c
    try:
        async with db.transaction("reserving more budget") as conn:
            # Write before reading: this locks the reservation's row (PostgreSQL) or takes the write
            # lock (SQLite, where a read lock upgraded later fails as "database is locked").
            touch = sa.update(budget_reservations).where(r.run == _run(run)).values(updated_at=now())
            await conn.execute(touch)
            row = (await conn.execute(sa.select(budget_reservations).where(r.run == run))).first()
            if row is None:
                raise UnknownReservation(f"run {run} has no budget reservation")
            if row.state != "reserved":
                raise BudgetError(f"the reservation of run {run} is {row.state}, not reserved")
            dataset, extra = row.dataset, planned - row.planned
            if extra <= _SLACK:
                return _reservation(row)
            await conn.execute(sa.update(budget_reservations).where(r.run == run).values(planned=planned))
            await _take(conn, dataset, extra)
    except _Refused:
        budget = await get_budget(db, dataset)
        raise BudgetExceeded(dataset, extra, budget.epsilon_total, budget.spent, budget.reserved) from None
    return Reservation(run, dataset, planned, "reserved", None)


async def _close(db: Database, run: str, state: str, spent: float | None) -> Reservation:
    r, b = budget_reservations.c, dataset_budgets.c
    async with db.transaction("closing a reservation") as conn:
        done = await conn.execute(sa.update(budget_reservations).where(
            r.run == run, r.state == "reserved").values(state=state, spent=spent, updated_at=now()))
        row = (await conn.execute(sa.select(budget_reservations).where(r.run == run))).first()
        if row is None:
            raise UnknownReservation(f"run {run} has no budget reservation")
        if done.rowcount != 1:
            raise BudgetError(f"the reservation of run {run} is already {row.state}")
        await conn.execute(sa.update(dataset_budgets).where(b.dataset == row.dataset).values(
            reserved=b.reserved - row.planned, spent=b.spent + (spent or 0.0), updated_at=now()))
    return _reservation(row)


async def settle(db: Database, run: str, spent_epsilon: float) -> Reservation:
    """The job ended: its reservation becomes ``spent_epsilon`` (what its accountant reports)."""
    return await _close(db, _run(run), "settled", _epsilon(spent_epsilon, "spent epsilon", zero=True))


async def release(db: Database, run: str) -> Reservation:
    """The job never ran (refused, failed before its first step): give its reservation back."""
    return await _close(db, _run(run), "released", None)

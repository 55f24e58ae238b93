"""Recording the product's own events on the log, in one envelope.

Every event the product writes (accounts, datasets, training runs, oversight, compliance,
evidence) is built here so that the compliance engine, the reports and the log explorer can
read them all the same way. The vocabulary is in ``docs/events.md``.

Envelope fields: ``kind`` (a lowercase dotted name, ``ledger.canonical.KIND_PATTERN``, checked
when appended; only the product records ``ledger.canonical.RESERVED_KINDS``), ``v`` (schema
version of that kind), ``at`` (RFC 3339 UTC, milliseconds), ``actor`` (a pseudonym, or
``system``/``worker``), ``role`` (the actor's role at that moment, Art. 14 asks "in which
role"). Staff account names never go on the log: an :class:`Actor` carries the account's
pseudonym, keyed by :class:`app.core.keyring.Keyring`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.events import Pseudonymizer
from ledger.log import Log, SequencedEntries, SequencedEntry

__all__ = ["SYSTEM", "Actor", "event", "record", "record_many", "stamped", "utc_now"]


@dataclass(frozen=True)
class Actor:
    """Who did something, as the log shows it."""

    pseudonym: str  # "pseud:<hex>" for accounts; "system" or "worker" for the product itself
    role: str  # admin, overseer, operator, auditor, service, system

    @classmethod
    def of_account(cls, pseudonymizer: Pseudonymizer, account: str, role: str) -> Actor:
        return cls(pseudonymizer.pseudonym("account:" + account), role)


SYSTEM = Actor("system", "system")


def utc_now() -> str:
    """RFC 3339 UTC with milliseconds, the one time format on the log."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(kind: str, actor: Actor, /, v: int = 1, **fields: Any) -> dict[str, Any]:
    """The envelope around ``fields``; ``None`` values are left out (canonical JSON has no
    "absent", and readers should not have to tell null from missing)."""
    body = {k: val for k, val in fields.items() if val is not None}
    return {"kind": kind, "v": v, "at": utc_now(), "actor": actor.pseudonym, "role": actor.role, **body}


def stamped(submitted: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """An event from outside the product (a line of ``rlhf-audit append``) in the envelope: ``at``,
    ``actor`` and ``role`` are when it was recorded and by whom, whatever the line said; ``v`` is
    the line's, else 1. Its kind is left to the ledger's check for submitted events."""
    return {**submitted, "v": submitted.get("v", 1), "at": utc_now(), "actor": actor.pseudonym,
            "role": actor.role}


async def record(log: Log, kind: str, actor: Actor, /, **fields: Any) -> SequencedEntry:
    """Append one event durably; returns its index and leaf hash."""
    (sequenced,) = await log.append([event(kind, actor, **fields)])
    return sequenced


async def record_many(log: Log, events: Sequence[dict[str, Any]]) -> SequencedEntries:
    """Append events built with :func:`event` in one durable batch (all or nothing)."""
    return await log.append(list(events))

"""The roles table: every account role, what it means, what its tokens may hold, whether it needs a
second factor, and the named groups that the API, the portal and the CLI check.

This is the one place role names are written out (``tests/app/core/test_roles_table.py`` keeps it so, and
checks the groups against the permission matrix of ``docs/security.md``). Standard library only:
``app.cli`` imports it at start-up.

- ``admin``: administers accounts, tokens, run-time config and privacy; may decide oversight.
  Tokens: all seven scopes. Second factor: required.
- ``overseer``: takes the human-oversight decisions (Art. 14). Tokens: ``events:write events:read
  read oversight:decide``. Second factor: required.
- ``operator``: runs training (events, dataset imports, jobs). Tokens: ``events:write events:read
  jobs:submit read``.
- ``auditor``: reads the log, compliance reports and evidence. Tokens: ``read events:read``.
- ``service``: a machine; tokens only, no password, no second factor. Tokens: what each was
  given at creation, never a scope of :data:`HUMAN_SCOPES`.

Groups (the order is the one refusals and declared permissions show):

- :data:`OVERSIGHT_ROLES` (overseer, admin): halt, resume, rejections, rollback, approve, veto,
  release, incident freezes; the API's :data:`DECIDERS` adds the ``oversight:decide`` scope.
- :data:`FREEZERS`: the oversight roles, and ``system`` (the CLI at the home's shell, no ``--as``).
- :data:`COMPLIANCE_READERS` (admin, auditor, overseer): compliance checks, alerts, reports.
- :data:`JOB_SUBMITTERS` (operator, admin): the portal's job submission form.
- :data:`DATASET_IMPORTERS` (admin, operator): ``rlhf-audit datasets import --as``.
- :data:`ADMINS` / :data:`PRIVACY_ADMINS` (admin): administration; privacy budgets and erasure.
- :data:`TOTP_ROLES` (admin, overseer): a second factor is expected before a session may act.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "ADMIN",
    "ADMINS",
    "ALL_SCOPES",
    "COMPLIANCE_READERS",
    "DATASET_IMPORTERS",
    "DECIDERS",
    "FREEZERS",
    "HUMAN_SCOPES",
    "JOB_SUBMITTERS",
    "OVERSIGHT_ROLES",
    "PRIVACY_ADMINS",
    "ROLES",
    "ROLE_SCOPES",
    "SERVICE",
    "SYSTEM_ROLE",
    "TABLE",
    "TOTP_ROLES",
    "Role",
    "RoleInfo",
    "Scope",
    "is_service",
]

Role = Literal["admin", "overseer", "operator", "auditor", "service"]
ROLES: tuple[Role, ...] = get_args(Role)  # in this order: CLI --role choices, portal selects, errors
ADMIN: Role = "admin"
SERVICE: Role = "service"
SYSTEM_ROLE = "system"  # not an account's: the role of app.events.recording.SYSTEM, the CLI at the shell

Scope = Literal["events:write", "events:read", "read", "jobs:submit", "oversight:decide", "privacy:admin",
                "accounts:admin"]
ALL_SCOPES: tuple[Scope, ...] = get_args(Scope)
# Scopes that act for a person in a role (decisions, erasure, administration): never granted to a
# service account, and a token of a person carries them only if asked for (or by default).
HUMAN_SCOPES = frozenset({"oversight:decide", "privacy:admin", "accounts:admin"})


@dataclass(frozen=True)
class RoleInfo:
    """One row of the table."""

    name: Role
    meaning: str
    scopes: frozenset[str]  # the most a token (or a session) of the role holds; service: see HUMAN_SCOPES
    totp: bool  # a second factor is expected before a session may act


TABLE: tuple[RoleInfo, ...] = (
    RoleInfo("admin", "administers accounts, tokens, run-time config and privacy; may decide oversight",
             frozenset(ALL_SCOPES), totp=True),
    RoleInfo("overseer", "takes the human-oversight decisions (Art. 14 EU AI Act)",
             frozenset({"events:write", "events:read", "read", "oversight:decide"}), totp=True),
    RoleInfo("operator", "runs training: appends events, imports datasets, submits jobs",
             frozenset({"events:write", "events:read", "jobs:submit", "read"}), totp=False),
    RoleInfo("auditor", "reads the log, compliance reports and evidence",
             frozenset({"read", "events:read"}), totp=False),
    RoleInfo("service", "a machine: signs in with tokens only (no password, no second factor)",
             frozenset(), totp=False),  # its tokens hold what is asked for at creation
)
assert tuple(r.name for r in TABLE) == ROLES

# by name, in the order the accounts service has always listed them
ROLE_SCOPES: dict[str, frozenset[str]] = {r.name: r.scopes for r in sorted(TABLE, key=lambda r: r.name)}
TOTP_ROLES = frozenset(r.name for r in TABLE if r.totp)

OVERSIGHT_ROLES: tuple[Role, ...] = ("overseer", "admin")
# the handler opt of every API decision: an overseer or admin, and (for tokens) the scope to decide
DECIDERS = {"roles": OVERSIGHT_ROLES, "scope": "oversight:decide"}
FREEZERS: tuple[str, ...] = (*OVERSIGHT_ROLES, SYSTEM_ROLE)
COMPLIANCE_READERS: tuple[Role, ...] = ("admin", "auditor", "overseer")
JOB_SUBMITTERS: tuple[Role, ...] = ("operator", "admin")
DATASET_IMPORTERS: tuple[Role, ...] = ("admin", "operator")
ADMINS: tuple[Role, ...] = (ADMIN,)
PRIVACY_ADMINS: tuple[Role, ...] = ADMINS


def is_service(role: str) -> bool:
    """A service account: tokens only, no password, no second factor, no :data:`HUMAN_SCOPES`."""
    return role == SERVICE

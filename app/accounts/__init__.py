"""Accounts and API tokens of the authenticated API; every change is itself an event on the log."""

from .service import (
    ALL_SCOPES,
    ROLE_SCOPES,
    AccountError,
    CreatedToken,
    Principal,
    UnknownAccount,
    authenticate_token,
    create_account,
    create_token,
    revoke_token,
    set_password,
    verify_password,
)

__all__ = [
    "ALL_SCOPES",
    "ROLE_SCOPES",
    "AccountError",
    "CreatedToken",
    "Principal",
    "UnknownAccount",
    "authenticate_token",
    "create_account",
    "create_token",
    "revoke_token",
    "set_password",
    "verify_password",
]

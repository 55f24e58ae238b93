"""The application's errors: one root, each kind carrying the HTTP status it is answered with.

Domains raise these (or subclasses next to the code that raises them); the API turns any of them
into a problem detail in one place (:mod:`app.core.problems`), the CLI into a one-line message.
The ledger's own errors are a separate family (:mod:`ledger.errors`), mapped at that same
boundary, never subclassed here::

    AppError (500)
    ├── Invalid        400  the request or input is wrong: fix it and ask again
    ├── Unauthorized   401  who is asking is not known
    ├── Forbidden      403  known, but not allowed to do this
    ├── Missing        404  no such thing (account, job, dataset, run...)
    ├── Conflict       409  allowed and well-formed, but not in the state things are in now
    ├── TooMany        429  slow down
    ├── Unavailable    503  the database or another dependency cannot answer right now
    └── Misconfigured  503  the configuration is wrong: nothing works until an operator fixes it

A 5xx never shows its message to a client (it may hold SQL); 4xx messages are written for the
person who made the request.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["AppError", "Conflict", "Forbidden", "Invalid", "Misconfigured", "Missing", "TooMany",
           "Unauthorized", "Unavailable"]


class AppError(Exception):
    """Root of every error the application raises."""

    status: ClassVar[int] = 500


class Invalid(AppError):
    """The input cannot be used as given."""

    status = 400


class Unauthorized(AppError):
    status = 401


class Forbidden(AppError):
    status = 403


class Missing(AppError):
    """The thing named does not exist (here, or any more)."""

    status = 404


class Conflict(AppError):
    """Not possible in the present state (already halted, name taken, still running...)."""

    status = 409


class TooMany(AppError):
    status = 429


class Unavailable(AppError):
    """A database or service the application needs failed; the same request may work later."""

    status = 503


class Misconfigured(AppError):
    """The configuration cannot be used (a bad setting, an unreadable key file, S3 named without
    credentials): the server cannot serve until an operator fixes it."""

    status = 503

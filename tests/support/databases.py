"""Which application database each test's log shares its engine with.

The app needs both (its own tables, and the log): the fixtures that make a log over a
:class:`~app.core.database.Database` pair them here, and helpers that start an app for a log
look the database up instead of asking every test for both.
"""

from __future__ import annotations

import weakref

from app.core.database import Database
from ledger.log import Log

_PAIRED: weakref.WeakKeyDictionary[Log, Database] = weakref.WeakKeyDictionary()


def pair(log: Log, db: Database) -> Log:
    _PAIRED[log] = db
    return log


def database_of(log: Log) -> Database:
    try:
        return _PAIRED[log]
    except KeyError:
        raise LookupError("this log was not made over an app Database: build it with the `log` "
                          "fixture, or pair(log, db) from tests/support/databases.py") from None

"""Opening the database a log lives in: the public face of the ledger's storage seam.

An application that keeps tables of its own next to the log opens the engine here, owns it
(disposes it last) and builds the log over it, as an httpx ``Client`` takes a transport::

    engine = open_engine("sqlite:///home/ledger.db")
    log = Log(Store(engine), signer)

The ledger never runs migrations: whoever owns the database brings its schema up to date
(in this repository: ``migrations/``, run by the product's ``rlhf-audit init``).
"""

from __future__ import annotations

from ._internal.schema import metadata
from ._internal.store import Store, async_url, open_engine

__all__ = ["Store", "async_url", "metadata", "open_engine"]

# ``metadata``: the ledger's tables, for the owner's migrations to compare against.

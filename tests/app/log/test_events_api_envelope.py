"""``POST /api/v1/events`` puts what it appends in the log's envelope, as ``rlhf-audit append``
does (``app.events.recording.stamped``): ``at`` and ``actor``/``role`` are the server's, ``v``
the event's own, else 1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from ledger.log import Log
from tests.support.accounts import auth, token
from tests.support.asgi import serving


async def test_posted_events_carry_at_and_v(log: Log) -> None:
    key = await token(log, "op", "operator")
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with serving(log) as client:
        body = {"events": [{"kind": "run.note", "note": "plain"},
                           {"kind": "run.note", "v": 3, "at": "1999-01-01T00:00:00Z"}]}
        r = await client.post("/api/v1/events", headers=auth(key), json=body)
        assert r.status_code == 201, r.text
        plain, versioned = [orjson.loads(await log.entry(e["leaf_index"])) for e in r.json()["entries"]]
    for entry in (plain, versioned):
        at = datetime.fromisoformat(entry["at"])
        assert entry["at"].endswith("Z") and before <= at <= datetime.now(UTC) + timedelta(seconds=1)
        assert entry["role"] == "operator" and entry["actor"].startswith("pseud:")
    assert plain["v"] == 1 and plain["note"] == "plain"
    assert versioned["v"] == 3  # the sender's schema version stays; its clock does not

"""``rlhf-audit append`` records who appended what, when (issue 16): each line goes on the log in
the product's envelope (``at``, ``actor``, ``role``, ``v``), as ``system`` or, with ``--as``, as
an existing account allowed to write events; whatever envelope a line claims is replaced."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from tests.app.cli.test_cli import run


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    return {**env, "RLHF_AUDIT_HOME": str(tmp_path / "home")}


def _entry(env: dict[str, str], index: int) -> dict[str, object]:
    return json.loads(run(env, "entry", str(index)).stdout)


def _subject(env: dict[str, str], index: int) -> str:
    created = _entry(env, index)
    assert created["kind"] == "account.created"
    return str(created["subject"])


def test_append_records_at_actor_and_role(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run(env, "init")
    run(env, "users", "create", "op", "--role", "operator", "--password-stdin", input=b"pw-op-1234567\n")
    run(env, "users", "create", "aud", "--role", "auditor", "--password-stdin", input=b"pw-aud-1234567\n")
    size = json.loads(run(env, "status").stdout)["sequenced"]
    line = (b'{"kind":"feedback.note","n":1,"actor":"pseud:forged","role":"admin",'
            b'"at":"1999-01-01T00:00:00Z"}\n')

    [row] = [json.loads(x) for x in run(env, "append", input=line).stdout.splitlines()]
    assert row["leaf_index"] == size
    e = _entry(env, size)
    assert (e["kind"], e["n"], e["actor"], e["role"], e["v"]) == ("feedback.note", 1, "system", "system", 1)
    assert str(e["at"]).endswith("Z") and datetime.fromisoformat(str(e["at"])).year > 2000

    run(env, "append", "--as", "op", input=b'{"kind":"feedback.note","n":2}\n')
    e = _entry(env, size + 1)
    assert (e["actor"], e["role"]) == (_subject(env, size - 2), "operator")
    assert "at" in e and e["n"] == 2

    for who, says in (("nobody", "nobody"), ("aud", "auditor")):
        err = run(env, "append", "--as", who, input=b'{"kind":"feedback.note"}\n', ok=False).stderr.decode()
        assert says in err
    assert json.loads(run(env, "status").stdout)["sequenced"] == size + 2  # nothing else was appended

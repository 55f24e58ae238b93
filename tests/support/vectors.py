"""Load the published test vectors copied into tests/vectors/ (sources in its README)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from tests.support.paths import VECTORS


@cache
def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def h(hexstr: str | None) -> bytes:
    return bytes.fromhex(hexstr or "")

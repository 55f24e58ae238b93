"""What a report covers: a model release, a training run, a dataset (version), a time range, or
the whole log.

JSON: ``{"kind": "run" | "model" | "dataset" | "time" | "all", ...}``; ``release`` and ``range``
are accepted as names for ``model`` and ``time``. An evidence bundle's scope
(``app.evidence.scope.Scope``) is a ``ReportScope`` without ``all``, so one object serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..core.errors import Invalid

__all__ = ["KINDS", "ReportScope", "ScopeError"]

KINDS = ("model", "run", "dataset", "time", "all")
_ALIASES = {"release": "model", "range": "time"}
_FIELDS = ("kind", "model", "run", "dataset", "version", "since", "until")


class ScopeError(Invalid):
    """A report or bundle scope that is malformed or names nothing (a 400 on the API)."""


def _time(value: Any, what: str) -> datetime:
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ScopeError(f"{what} is not an RFC 3339 time: {value!r}") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass(frozen=True)
class ReportScope:
    kind: str
    model: str | None = None
    run: str | None = None
    dataset: str | None = None
    version: int | None = None
    since: str | None = None
    until: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ScopeError(f"the scope kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        need = {"model": ("model",), "run": ("run",), "dataset": ("dataset",), "time": ("since", "until"),
                "all": ()}[self.kind]
        for name in need:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ScopeError(f"a {self.kind} scope needs a non-empty {name!r}")
        if self.version is not None and (isinstance(self.version, bool) or not isinstance(self.version, int)
                                         or self.version < 1 or self.kind != "dataset"):
            raise ScopeError("'version' is a positive integer, and only for a dataset scope")
        if self.kind == "time" and self.bounds()[0] >= self.bounds()[1]:
            raise ScopeError("'since' must be earlier than 'until'")

    @classmethod
    def parse(cls, obj: Any) -> ReportScope:
        """From a JSON object or a ``ReportScope`` (a bundle's ``Scope`` included)."""
        if isinstance(obj, ReportScope):
            return obj
        if obj is None:
            return cls("all")
        if not isinstance(obj, dict):
            raise ScopeError('the scope must be a JSON object, e.g. {"kind": "model", "model": "..."}')
        unknown = set(obj) - set(_FIELDS)
        if unknown:
            raise ScopeError(f"unknown scope field(s): {', '.join(sorted(unknown))}")
        kind = obj.get("kind")
        if kind is None:  # shorthand: {"model": ...}, {"run": ...}, {"since": ..., "until": ...}
            kind = next((k for k in ("model", "run", "dataset") if k in obj),
                        "time" if "since" in obj or "until" in obj else "all")
        kind = _ALIASES.get(str(kind), str(kind))
        return cls(kind, **{k: v for k, v in obj.items() if k != "kind"})

    def bounds(self) -> tuple[datetime, datetime]:
        return _time(self.since, "'since'"), _time(self.until, "'until'")

    def to_json(self) -> dict[str, Any]:
        fields = {"model": self.model, "run": self.run, "dataset": self.dataset, "version": self.version,
                  "since": self.since, "until": self.until}
        return {"kind": self.kind, **{k: v for k, v in fields.items() if v is not None}}

    def describe(self) -> str:
        """The scope in words, for titles."""
        if self.kind == "model":
            return f"model release {self.model}"
        if self.kind == "run":
            return f"training run {self.run}"
        if self.kind == "dataset":
            return f"dataset {self.dataset}" + (f" version {self.version}" if self.version else "")
        if self.kind == "time":
            return f"the period {self.since} to {self.until}"
        return "the whole log"

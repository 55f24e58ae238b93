"""Which Ed25519 key signs which checkpoints: the log key's history.

The origin is the log's name and the C2SP key name, and never changes; the key under it can.
``<home>/log.vkeys`` lists every key the log has used, oldest first, one per line as
``<first size> <verifier key>``: a key signs the checkpoints from its first size up to the next
key's. The first checkpoint of a new key (the transition) carries the previous key's signature
too, so an auditor who pinned the old key verifies the new one from the log itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import NoteError
from .note import Verifier

__all__ = ["KeyEpoch", "KeyHistory"]

HEADER = "# rlhf-audit log key history: <first checkpoint size it signs> <verifier key>\n"


@dataclass(frozen=True)
class KeyEpoch:
    first_size: int
    verifier: Verifier


@dataclass(frozen=True)
class KeyHistory:
    """The log's keys, oldest first; the last is the one signing now."""

    epochs: tuple[KeyEpoch, ...]

    def __post_init__(self) -> None:
        if not self.epochs or self.epochs[0].first_size != 0:
            raise NoteError("a key history starts with a key that signs from size 0")
        names = {e.verifier.name for e in self.epochs}
        if len(names) != 1:
            raise NoteError(f"every key of a log has the log's name; the history has {sorted(names)}")
        for before, after in zip(self.epochs, self.epochs[1:], strict=False):
            if after.first_size <= before.first_size:
                raise NoteError("the key history's first sizes must increase")
        if len({e.verifier.vkey for e in self.epochs}) != len(self.epochs):
            raise NoteError("the key history lists a key twice")

    @classmethod
    def single(cls, verifier: Verifier) -> KeyHistory:
        return cls((KeyEpoch(0, verifier),))

    @classmethod
    def parse(cls, text: str) -> KeyHistory:
        epochs = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            size, _, vkey = line.strip().partition(" ")
            if not size.isdigit():
                raise NoteError(f"line {number}: expected <first size> <verifier key>")
            epochs.append(KeyEpoch(int(size), Verifier.from_vkey(vkey)))
        return cls(tuple(epochs))

    def format(self) -> str:
        return HEADER + "".join(f"{e.first_size} {e.verifier.vkey}\n" for e in self.epochs)

    @property
    def current(self) -> Verifier:
        return self.epochs[-1].verifier

    def verifiers(self) -> list[Verifier]:
        return [e.verifier for e in self.epochs]

    def required(self, size: int) -> list[Verifier]:
        """The keys that must have signed a checkpoint of ``size``: the key of its epoch, and at
        the first size of a rotated key the key before it as well."""
        at = max(i for i, e in enumerate(self.epochs) if e.first_size <= size)
        keys = [self.epochs[at].verifier]
        if at > 0 and self.epochs[at].first_size == size:
            keys.append(self.epochs[at - 1].verifier)
        return keys

    def transitions(self) -> Sequence[int]:
        """The sizes where a new key took over: each must be a published checkpoint."""
        return [e.first_size for e in self.epochs[1:]]

    def rotated(self, new: Verifier, first_size: int) -> KeyHistory:
        return KeyHistory((*self.epochs, KeyEpoch(first_size, new)))

    def to_json(self) -> list[dict[str, Any]]:
        return [{"first_size": e.first_size, "vkey": e.verifier.vkey} for e in self.epochs]

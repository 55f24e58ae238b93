"""C2SP tlog-checkpoint bodies: the signed tree head of the log."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from .errors import NoteError

__all__ = ["Checkpoint"]


@dataclass(frozen=True)
class Checkpoint:
    """``<origin>\\n<size>\\n<base64 root>\\n[extension lines]``, byte for byte."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> bytes:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return ("\n".join([*lines, *self.extensions]) + "\n").encode()

    @classmethod
    def parse(cls, text: bytes) -> Checkpoint:
        """Parse a checkpoint body (the text of a signed note, ending in a newline)."""
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteError("checkpoint is not UTF-8") from e
        if not decoded.endswith("\n"):
            raise NoteError("checkpoint does not end in a newline")
        lines = decoded[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint needs an origin, a size and a root hash")
        origin, size_s, root_s, *extensions = lines
        if not origin:
            raise NoteError("checkpoint origin is empty")
        if not size_s.isascii() or not size_s.isdigit() or (size_s != "0" and size_s[0] == "0"):
            raise NoteError(f"checkpoint size {size_s!r} is not a decimal number")
        size = int(size_s)
        if size >= 1 << 64:
            raise NoteError("checkpoint size does not fit 64 bits")
        try:
            root = base64.b64decode(root_s, validate=True)
        except (binascii.Error, ValueError) as e:
            raise NoteError("checkpoint root hash is not valid base64") from e
        if not root:  # any hash length parses, as in transparency-dev/formats; proofs check 32
            raise NoteError("checkpoint root hash is empty")
        if any(not line for line in extensions):
            raise NoteError("checkpoint has an empty extension line")
        return cls(origin, size, root, tuple(extensions))

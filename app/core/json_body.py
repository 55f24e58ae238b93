"""Bounded request bodies: one mechanism for every route, before any decoder runs.

Handlers read JSON three ways: Litestar decodes a handler's ``data`` with msgspec, others call
orjson or the ledger's parser on ``request.body()``. msgspec recurses once per level, so a body
of 100,000 ``[`` raised RecursionError: a 500. :class:`BodyLimits` wraps the ASGI ``receive``
of every HTTP request, so that when anything first reads the body (a handler, after routing and
the guards; or the CSRF gate reading a form) it is read whole and refused:

* with 413 if it is over :data:`MAX_BODY_BYTES`, as announced in ``Content-Length`` (at once,
  reading nothing) or as it arrives (chunked); Litestar's ``request_max_body_size`` is the same;
* with 400 if it is nested more than :data:`MAX_DEPTH` arrays/objects deep (the ledger's limit
  for an event, ``ledger.canonical.MAX_DEPTH``), unless it is a form (urlencoded or multipart:
  parsed without recursion). Every other body can reach a JSON decoder (Litestar decodes ``data``
  whatever the ``Content-Type`` says), so JSON Lines and ``text/plain`` are checked as well.

NaN, Infinity and numbers that overflow a double need nothing here: orjson, msgspec and
``ledger.canonical.decode_event``, the parsers the app uses, all refuse them (400).
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate

from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPRequestEvent, Receive, ReceiveMessage, Scope, Send

from ledger.canonical import MAX_DEPTH

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "BodyLimits", "too_deep"]

MAX_BODY_BYTES = 10_000_000
"""Largest request body (Litestar's default, kept explicit): a batch of 1,000 typical events
is well under it; a dataset version larger than this is imported through the CLI."""

_FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")
_NOT_MARKS = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_STRING = re.compile(rb'"[^"]*"')  # a string once escapes and all but brackets and quotes are gone
_PARENS = bytes.maketrans(b"[{]}", b"(())")  # one alphabet: a decoder's depth is blind to the kind
_STEPS = bytes.maketrans(b"()", b"\x01\xff")  # +1 and, as a signed byte, -1


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``body`` nests arrays and objects more than ``limit`` deep (brackets in strings
    left out), read as a decoder reads it, left to right.

    Free unless the body has more opening brackets than ``limit``. Then, on the brackets alone,
    each round of ``replace`` takes the innermost level off every group (a round is a peak of
    the nesting gone), and ``limit`` - rounds + 1 opening brackets in a row settle it early; what
    is left (nothing, for valid JSON of a few levels) is walked. All steps run in C: tens of
    milliseconds for 10 MB. Invalid text may count deeper than a decoder would (an unclosed bracket,
    text after an error): that only refuses what is refused anyway.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # Escapes first (pairing backslashes left to right, as JSON does): every quote left delimits
    # a string. Then brackets and quotes only, and '""' (an empty string, or two strings made one)
    # gone: what strings remain hold brackets, rare, and the regex removes them.
    marks = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_MARKS)
    walk = _STRING.sub(b"", marks.replace(b'""', b"")).translate(_PARENS)
    row = b"(" * (limit + 1)
    for peeled in range(limit + 1):
        if not walk:
            return False
        if row[peeled:] in walk:
            return True
        shorter = walk.replace(b"()", b"")
        if len(shorter) == len(walk):
            break
        walk = shorter
    else:
        return True
    return peeled + max(accumulate(array("b", walk.translate(_STEPS))), default=0) > limit


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


def _too_large() -> RequestEntityTooLarge:
    return RequestEntityTooLarge(detail=f"the body is larger than {MAX_BODY_BYTES} bytes")


class BodyLimits(ASGIMiddleware):
    """Refuse oversized (413) and, forms aside, too deeply nested (400) request bodies."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        announced = (_header(scope, b"content-length") or b"").strip()
        if announced.isdigit() and int(announced) > MAX_BODY_BYTES:
            raise _too_large()  # before Litestar's own check, which says less
        form = (_header(scope, b"content-type") or b"").lower().startswith(_FORMS)
        read = False

        async def bounded() -> ReceiveMessage:
            nonlocal read
            if read:
                return await receive()
            read = True
            body = bytearray()
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message  # the client went away
                body += message.get("body", b"")
                if len(body) > MAX_BODY_BYTES:
                    raise _too_large()
                if not message.get("more_body", False):
                    break
            if not form and too_deep(bytes(body)):
                raise ClientException(f"the body is nested more than {MAX_DEPTH} arrays/objects deep")
            whole: HTTPRequestEvent = {"type": "http.request", "body": bytes(body), "more_body": False}
            return whole

        await next_app(scope, bounded, send)

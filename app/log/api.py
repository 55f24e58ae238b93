"""The public, read-only API auditors use: no login, nothing here changes the log.

Two families, both from other people's specs so that existing tools work unchanged:

- C2SP tlog-tiles under ``/log/``: the newest checkpoint, Merkle tiles and entry bundles. A
  client rebuilds and checks the whole tree from these alone.
- Certificate Transparency style JSON under ``/log/v1/`` (RFC 6962 section 4 shapes) for proofs
  and entries, plus what CT lacks: C2SP tlog-proof files, every published checkpoint, its
  RFC 3161 timestamp, the keys to check them and a lookup by leaf hash or commitment.

Every bad parameter answers a 4xx problem detail (see ``app.core.problems``), never a 5xx.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Response, get
from litestar import Request as _Request
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import PathParameter, QueryParameter

from ledger.errors import VerificationError
from ledger.events import Commitment
from ledger.proofs import b64
from ledger.tiles import parse_tile_path
from ledger.timestamp_verify import parse_timestamp
from ledger.timestamping import is_local
from ledger.tlog_proof import format_tlog_proof

from ..core.deps import IndexDep, KeyringDep, LogDep
from ..core.params import MAX_INT  # what the databases store: larger numbers are refused as 400
from ..keys.public import signing_keys

__all__ = ["LogController", "healthz"]

Req = _Request[Any, Any, Any]

PAGE_SIZE = 1000  # most entries one get-entries answers (CT logs cap pages the same way)
TEXT = "text/plain"  # Litestar adds "; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
# Litestar 2.25 wants each parameter's source spelled out (inferred ones are deprecated).
QuerySize = Annotated[int, QueryParameter(ge=0, le=MAX_INT)]
PathSize = Annotated[int, PathParameter(ge=0, le=MAX_INT)]


def _hash(value: str, name: str) -> bytes:
    """A base64 SHA-256 hash from a query parameter, or a 400 that says what is wrong."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ClientException(f"{name} is not standard padded base64") from None
    if len(raw) != 32:
        raise ClientException(f"{name} must be a 32-byte SHA-256 hash, not {len(raw)} bytes")
    return raw


def _text(body: bytes, cache: str = "no-cache") -> Response[bytes]:
    return Response(body, media_type=TEXT, headers={"Cache-Control": cache})


def _tile_response(request: Req, body: bytes, full: bool) -> Response[bytes]:
    """Tile bytes with an ETag; full tiles never change, so caches may keep them for good."""
    etag = '"' + hashlib.sha256(body).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE if full else "public, max-age=1"}
    wanted = {t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")}
    if etag in wanted or "*" in wanted:
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type="application/octet-stream", headers=headers)


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    """Liveness for load balancers and the ``serve`` smoke test; answers once the log is open."""
    return {"status": "ok"}


class LogController(Controller):
    path = "/log"

    @get("/checkpoint")
    async def checkpoint(self, log: LogDep) -> Response[bytes]:
        """The newest signed checkpoint note, byte for byte as signed (tlog-tiles)."""
        return _text((await log.checkpoint()).note)

    @get("/tile/{rest:path}")
    async def tile(self, request: Req, log: LogDep, rest: Annotated[str, PathParameter()]) -> Response[bytes]:
        """``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``.

        Parsed from the raw request path: Litestar normalises ``//`` and ``..``, and a tile must
        have exactly one URL, so anything non-canonical is a 404.
        """
        raw = request.scope.get("raw_path", b"").decode("latin-1")
        prefix = "/log/tile/"
        try:
            if not raw.startswith(prefix):
                raise ValueError("not a tile path")
            level, index, width = parse_tile_path(raw[len(prefix):])
        except ValueError as e:
            raise NotFoundException(f"no such tile: {e}") from None
        if level is None:
            body = await log.entry_bundle(index, width)
        else:
            body = await log.tile(level, index, width)
        return _tile_response(request, body, full=width == 256)

    @get("/v1/get-proof-by-hash")
    async def proof_by_hash(
        self, log: LogDep,
        hash_b64: Annotated[str, QueryParameter(name="hash")],
        tree_size: Annotated[int, QueryParameter(ge=1, le=MAX_INT)],
    ) -> dict[str, Any]:
        """RFC 6962 4.5: the audit path of the entry with this leaf hash in a tree of ``tree_size``."""
        proof = await log.inclusion_proof_by_hash(_hash(hash_b64, "hash"), tree_size)
        return {"leaf_index": proof.leaf_index, "audit_path": [b64(h) for h in proof.audit_path]}

    @get("/v1/get-sth-consistency")
    async def consistency(self, log: LogDep, first: QuerySize, second: QuerySize) -> dict[str, Any]:
        """RFC 6962 4.4, between two published checkpoint sizes (the roots an auditor can hold)."""
        if first > second:
            raise ClientException("first must not exceed second")
        await log.checkpoint(first)
        await log.checkpoint(second)
        proof = await log.consistency_proof(first, second)
        return {"consistency": [b64(h) for h in proof.hashes]}

    @get("/v1/get-entries")
    async def entries(self, log: LogDep, start: QuerySize, end: QuerySize) -> dict[str, Any]:
        """RFC 6962 4.6: integrated entries ``start..end`` inclusive, at most PAGE_SIZE of them."""
        if start > end:
            raise ClientException("start must not exceed end")
        size = (await log.tree_head()).size
        if start >= size:
            raise NotFoundException(f"the tree has {size} integrated entries; start must be below that")
        rows = await log.entries(start, min(end + 1, size, start + PAGE_SIZE))
        return {"entries": [{"leaf_input": b64(e)} for e in rows]}

    @get("/v1/proof/{index:int}")
    async def tlog_proof(self, log: LogDep, index: PathSize) -> Response[bytes]:
        """A C2SP tlog-proof file for entry ``index`` against the newest checkpoint."""
        cp = await log.checkpoint()
        proof = await log.inclusion_proof(index, cp.size)
        return _text(format_tlog_proof(index, proof, cp.note))

    @get("/v1/checkpoints/{size:int}")
    async def checkpoint_of_size(self, log: LogDep, size: PathSize) -> Response[bytes]:
        """The signed note published at ``size``; it never changes."""
        return _text((await log.checkpoint(size)).note, IMMUTABLE)

    @get("/v1/checkpoints/{size:int}/timestamp")
    async def timestamp(
        self, log: LogDep, size: PathSize,
        tsa: Annotated[str | None, QueryParameter(max_length=2000)] = None,
    ) -> Response[bytes]:
        """The RFC 3161 TimeStampResp (DER) over that checkpoint's note bytes: an independent
        TSA's by preference, the local TSA's only when it is the only one; or the stamp of
        ``tsa`` (a name that ``.../timestamps`` lists, or ``local``)."""
        der = await log.timestamp(size, tsa=tsa)
        return Response(der, media_type="application/timestamp-reply", headers={"Cache-Control": "no-cache"})

    @get("/v1/checkpoints/{size:int}/timestamps")
    async def timestamps(self, log: LogDep, size: PathSize) -> dict[str, Any]:
        """Every stamp the checkpoint has, best first (the order ``.../timestamp`` prefers): each
        TSA's name, whether it is the log's own local TSA, the stamp's genTime and its URL."""
        stamps = []
        for name, der in await log.timestamps(size):
            try:
                gen_time: str | None = parse_timestamp(der).gen_time.isoformat()
            except VerificationError:  # an unreadable stored stamp: listed; `verify` reports it
                gen_time = None
            stamps.append({"tsa": name, "local": is_local(name), "gen_time": gen_time,
                           "url": f"/log/v1/checkpoints/{size}/timestamp?tsa={quote(name, safe='')}"})
        return {"size": size, "timestamps": stamps}

    @get("/v1/keys")
    async def keys(self, request: Req, log: LogDep, keyring: KeyringDep) -> dict[str, Any]:
        """Origin, current log verifier key, every key the log has used (``log_vkey_history``: the
        first checkpoint size each signs), TSA chain, and the evidence- and release-signing public
        keys with their ids (:func:`app.keys.public.signing_keys`; a key not made yet is left out):
        the JSON of ``rlhf-audit public-keys``. Every key is read as it is now, so a rotation made
        by another process shows at once."""
        log.follow_key()
        keys: dict[str, Any] = {**request.app.state.public_keys, "log_vkey": log.signer.verifier.vkey,
                                "log_vkey_history": log.key_history.to_json()}
        return keys | signing_keys(keyring)

    @get("/v1/lookup")
    async def lookup(
        self, log: LogDep, event_index: IndexDep,
        leaf_hash: Annotated[str | None, QueryParameter()] = None,
        commitment: Annotated[str | None, QueryParameter()] = None,
    ) -> dict[str, list[int]]:
        """Indices of integrated entries with this leaf hash, or carrying this commitment
        (``sha256:<base64>``, as in the events); empty when there is none."""
        if (leaf_hash is None) == (commitment is None):
            raise ClientException("give exactly one of leaf_hash=<base64> or commitment=sha256:<base64>")
        if leaf_hash is not None:
            return {"leaf_indices": await log.find(_hash(leaf_hash, "leaf_hash"))}
        assert commitment is not None
        try:
            digest = Commitment.parse(commitment).digest
        except VerificationError:
            raise ClientException("commitment must read sha256:<padded base64 of 32 bytes>") from None
        found = await event_index.by_commitment(digest)
        size = (await log.tree_head()).size  # like leaf hashes: provable entries only
        return {"leaf_indices": [i for i in found if i < size]}

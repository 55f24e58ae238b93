"""Getting RFC 3161 timestamps for checkpoints (the writing side).

Every published checkpoint, a signed note, is sent to a time-stamp authority as the SHA-256 of its
exact bytes; the whole DER TimeStampResp that comes back is what the ledger stores, because
rfc3161-client (and so the auditor's side, :mod:`ledger.timestamp_verify`) parses only full
responses, not bare tokens.

Two authorities share one interface, :class:`TimestampAuthority`:

* :class:`HttpTSA` speaks RFC 3161 over HTTP to any TSA by URL (a public or qualified service);
* :class:`LocalTSAClient` asks the built-in :class:`~ledger._internal.local_tsa.LocalTSA`, the
  default for a log that has no third party configured. Its name says ``local:`` so no report
  passes it off as independent.

Both build the same request and make the same checks on the answer (granted, nonce echoed, imprint
equal to SHA-256 of the data, TSA certificate embedded). They do not check the signature chain:
that needs the operator's choice of trusted roots, and is the job of
:func:`ledger.timestamp_verify.verify_timestamp`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

import rfc3161_client

from ledger._internal.local_tsa import LocalTSA, TimeStampResp
from ledger.errors import ConfigError, TimestampError
from ledger.timestamp_verify import decode_response

if TYPE_CHECKING:  # imported by HttpTSA only: a home with just the local TSA never needs it
    import httpx

__all__ = [
    "HttpTSA", "LocalTSAClient", "TimestampAuthority", "is_local", "token_certificates", "tsa_from_url",
]

_SHA256_OID = "2.16.840.1.101.3.4.2.1"
_MAX_RESPONSE_BYTES = 1 << 20  # real responses are a few KiB; refuse to buffer a runaway body


class TimestampAuthority(Protocol):
    """Something that timestamps bytes. ``name`` is for reports and error messages."""

    name: str

    async def timestamp(self, data: bytes) -> bytes:
        """Return the DER TimeStampResp for SHA-256(``data``); raise TimestampError on failure."""
        ...


class HttpTSA:
    """An RFC 3161 TSA reached by HTTP POST (RFC 3161 section 3.4)."""

    def __init__(
        self, url: str, *, timeout: float = 10.0, client: httpx.AsyncClient | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"TSA URL must be http:// or https:// with a host, not {url!r}")
        self.url = url
        # Reports and errors show the URL without any user:password in it.
        self.name = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self._timeout = timeout
        self._owns_client = client is None
        if client is None:
            import httpx

            client = httpx.AsyncClient(timeout=timeout)
        self._client = client

    async def timestamp(self, data: bytes) -> bytes:
        request = _build_request(data)
        body = await self._post(request.as_bytes())
        return _check_response(body, request, data, f"TSA {self.name}")

    async def _post(self, query: bytes) -> bytes:
        import httpx

        headers = {
            "Content-Type": "application/timestamp-query",
            "Accept": "application/timestamp-reply",
        }
        try:
            async with self._client.stream(
                "POST", self.url, content=query, headers=headers, timeout=self._timeout
            ) as response:
                if response.status_code != 200:
                    raise TimestampError(
                        f"TSA {self.name} answered HTTP {response.status_code} "
                        f"{response.reason_phrase}"
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > _MAX_RESPONSE_BYTES:
                        raise TimestampError(f"TSA {self.name} sent more than 1 MiB; not a TSA?")
                return bytes(body)
        except httpx.TimeoutException as e:
            raise TimestampError(
                f"TSA {self.name} did not answer within {self._timeout:g}s ({type(e).__name__})"
            ) from e
        except httpx.HTTPError as e:
            raise TimestampError(f"cannot reach TSA {self.name}: {type(e).__name__}: {e}") from e

    async def aclose(self) -> None:
        """Close the HTTP client if this object made it (a client passed in is the caller's)."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> HttpTSA:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def token_certificates(response: bytes) -> list[bytes]:
    """The certificates (DER) a granted TimeStampResp's token embeds, in their stored order:
    what a bundle ships so that its stamps can be checked without the TSA at hand."""
    token = TimeStampResp.load(response)["time_stamp_token"]
    return [cert.chosen.dump() for cert in token["content"]["certificates"] or []]


def is_local(name: str) -> bool:
    """Whether a TSA name (as stamps are stored under) is the built-in local TSA's."""
    return name.startswith("local:")


class LocalTSAClient:
    """The built-in local TSA behind the same interface as :class:`HttpTSA`, with no network."""

    def __init__(self, tsa: LocalTSA) -> None:
        self.tsa = tsa
        self.name = f"local:{tsa.label}"

    async def timestamp(self, data: bytes) -> bytes:
        # Same request and checks as over HTTP, so the local path exercises the real protocol.
        request = _build_request(data)
        body = self.tsa.respond(request.as_bytes())
        return _check_response(body, request, data, f"TSA {self.name}")

    async def aclose(self) -> None:
        """Nothing to release; present so callers can close any authority alike."""


def tsa_from_url(url: str, *, local_dir: Path | None) -> TimestampAuthority:
    """Pick an authority from a setting: ``local`` (or ``local:``) or an http(s) URL."""
    if url.strip().lower() in ("local", "local:"):
        if local_dir is None:
            raise ConfigError("the local TSA needs a directory (local_dir) for its keys")
        return LocalTSAClient(LocalTSA.load(local_dir))
    if urlsplit(url).scheme.lower() in ("http", "https"):
        return HttpTSA(url)
    raise ConfigError(f"unknown TSA {url!r}: use 'local' or an http(s):// URL of an RFC 3161 TSA")


def _build_request(data: bytes) -> rfc3161_client.TimeStampRequest:
    """A SHA-256 TimeStampReq with a fresh random nonce that asks for the TSA certificate."""
    if not data:
        raise ValueError("cannot timestamp empty data")  # rfc3161-client refuses it too
    return (
        rfc3161_client.TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(rfc3161_client.HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )


def _check_response(
    body: bytes, request: rfc3161_client.TimeStampRequest, data: bytes, source: str
) -> bytes:
    """Return ``body`` if it is a granted answer to ``request`` about ``data``, else raise.

    ``body`` is returned as the TSA sent it, also when its certificates are in BER order
    (see :func:`ledger.timestamp_verify.decode_response`): ``openssl ts -verify`` checks those bytes.
    """
    try:
        response = decode_response(body)
        if response.status != rfc3161_client.PKIStatus.GRANTED:
            raise TimestampError(_refusal(body, source))
        tst = response.tst_info  # the Rust core parses the token lazily: raises here if absent
        certificates = response.signed_data.certificates
    except (ValueError, TypeError) as e:
        raise TimestampError(
            f"{source} sent no usable TimeStampResp ({len(body)} bytes): {e}"
        ) from e
    problems = []
    if tst.nonce != request.nonce:
        problems.append("nonce not echoed (a replayed or misdirected answer)")
    algorithm = tst.message_imprint.hash_algorithm.dotted_string
    if algorithm != _SHA256_OID:
        problems.append(f"imprint uses hash {algorithm}, not SHA-256")
    elif tst.message_imprint.message != hashlib.sha256(data).digest():
        problems.append("message imprint is not SHA-256 of the data sent")
    if not certificates:
        problems.append("no TSA certificate embedded despite certReq")
    if problems:
        raise TimestampError(f"{source} answered badly: {'; '.join(problems)}")
    return body


def _refusal(body: bytes, source: str) -> str:
    """Describe a TimeStampResp whose status is not granted: status, text and failInfo."""
    try:
        status = TimeStampResp.load(body)["status"]
        code = status["status"].native
        texts = status["status_string"].native or []
        failures = sorted(status["fail_info"].native or ())
    except (ValueError, TypeError, KeyError) as e:
        return f"{source} did not grant a timestamp (unreadable status: {e})"
    detail = "; ".join([*texts, *(f"failInfo {f}" for f in failures)])
    return f"{source} did not grant a timestamp ({code}){': ' + detail if detail else ''}"

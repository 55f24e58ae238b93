"""The ledger's ``rlhf-audit`` commands. Output shapes here are a contract auditors and scripts rely on.

The ledger owns no command group: :data:`COMMANDS` are mounted by the product's group
(``app.cli``), whose ``--home`` option each command reads from ``ctx.obj["home"]``. Every command
honours ``RLHF_AUDIT_DATABASE_URL`` (:class:`ledger.home.Settings`). Errors are left to the caller's
entry point, which turns them into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from .canonical import canonical_event
from .errors import EntryError

if TYPE_CHECKING:  # SQLAlchemy, cryptography and httpx come with these: imported where a command runs
    from .home import LogHome
    from .log import Log, TimestampGap

__all__ = ["COMMANDS", "TSA_WAIT", "append", "checkpoint", "consistency", "entry", "inclusion",
           "integrate", "proof", "public_keys", "reindex", "status", "tiles", "timestamp",
           "timestamp_briefly", "verify"]

T = TypeVar("T")


def _out(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _json_line(obj: Any) -> None:
    _out(orjson.dumps(obj) + b"\n")


def _home(ctx: click.Context) -> LogHome:
    from .home import LogHome

    return LogHome.resolve(ctx.obj.get("home"))


def _with_log(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Run an async command body with the home's log open, closing it afterwards."""

    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx: click.Context, /, *args: Any, **kwargs: Any) -> T:
        async def main() -> T:
            log = await _home(ctx).open_log()
            try:
                return await fn(log, *args, **kwargs)
            finally:
                await log.close()

        return asyncio.run(main())

    return wrapper


def _read_events(stream: Any) -> list[bytes]:
    entries = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            entries.append(canonical_event(line, submitted=True))  # as POST /api/v1/events
        except EntryError as e:
            raise EntryError(f"line {number}: {e} (nothing was appended)") from e
    return entries


@click.command()
@click.argument("file", type=click.File("rb"), default="-")
@_with_log
async def append(log: Log, file: Any) -> None:
    """Append JSON Lines events from FILE (or stdin); print each entry's index and leaf hash.

    The entries are integrated into a checkpoint before the command exits, and timestamped by
    TSAs that answer within a couple of seconds; a slower TSA's stamp is left, with a warning,
    to the background timestamper of `serve` or `integrate`.
    """
    entries = _read_events(file)
    sequenced = await log.append_entries(entries)
    _out(b"".join(
        orjson.dumps({"leaf_index": s.leaf_index, "leaf_hash": base64.b64encode(s.leaf_hash).decode()})
        + b"\n" for s in sequenced))
    await log.integrate()
    await timestamp_briefly(log)


TSA_WAIT = 2.0  # seconds a one-shot command waits for TSAs after it integrated


async def timestamp_briefly(log: Log) -> None:
    """Timestamp what is unstamped, waiting at most TSA_WAIT; warn, once per TSA, of stamps due."""
    missing: dict[str, list[TimestampGap]] = {}
    for gap in await log.timestamp_pending(force=True, within=TSA_WAIT):
        missing.setdefault(gap.tsa, []).append(gap)
    for tsa, gaps in missing.items():
        newest = max(gaps, key=lambda g: g.size)
        tried = [g for g in gaps if g.attempts] or [newest]
        error = max(tried, key=lambda g: g.last_attempt_at).last_error
        what = (f"checkpoint {newest.size} has" if len(gaps) == 1 else
                f"{len(gaps)} checkpoints up to {newest.size} have")
        click.echo(f"warning: {what} no timestamp from {tsa} yet ({error}); "
                   "`serve` or `integrate` will retry", err=True)


@click.command()
@click.option("--size", type=click.IntRange(min=0), default=None, help="A published tree size.")
@_with_log
async def checkpoint(log: Log, size: int | None) -> None:
    """Print the signed checkpoint note, exactly as stored."""
    _out((await log.checkpoint(size)).note)


@click.command()
@click.option("--size", type=click.IntRange(min=0), default=None, help="A published tree size.")
@_with_log
async def timestamp(log: Log, size: int | None) -> None:
    """Write the checkpoint's RFC 3161 TimeStampResp (DER) to stdout."""
    if sys.stdout.isatty():
        raise click.UsageError("the timestamp is binary DER: redirect stdout to a file")
    _out(await log.timestamp(size))


@click.group()
def tiles() -> None:
    """The public read path as static files (C2SP tlog-tiles), for a CDN or object store."""


@tiles.command("export")
@click.argument("directory", type=click.Path(file_okay=False))
@_with_log
async def tiles_export(log: Log, directory: str) -> None:
    """Write the newest checkpoint, its tiles and entry bundles under DIRECTORY.

    Incremental (files already there are kept: their names say what they hold) and safe to
    serve while it runs (`checkpoint` is written last). Prints what it wrote as JSON.
    """
    from .tile_export import export_tiles

    done = await export_tiles(log, directory)
    _json_line({"tree_size": done.size, "files_written": done.files_written,
                "files_kept": done.files_kept, "bytes_written": done.bytes_written})


@click.command("public-keys")
@click.pass_context
def public_keys(ctx: click.Context) -> None:
    """Print the log's verifier key and the TSA certificate chain as JSON."""
    _json_line(_home(ctx).public_keys())


@click.command()
@click.argument("index", type=click.IntRange(min=0))
@_with_log
async def entry(log: Log, index: int) -> None:
    """Print an entry's canonical bytes."""
    _out(await log.entry(index))


@click.group()
def proof() -> None:
    """Inclusion and consistency proofs (RFC 9162), as JSON."""


@proof.command()
@click.argument("index", type=click.IntRange(min=0), required=False)
@click.option("--size", type=click.IntRange(min=1), default=None, help="Tree size (default: newest).")
@click.option("--leaf-hash", default=None, help="Find the entry by its base64 leaf hash instead.")
@_with_log
async def inclusion(log: Log, index: int | None, size: int | None, leaf_hash: str | None) -> None:
    """Inclusion proof for the entry at INDEX (or with --leaf-hash)."""
    if (index is None) == (leaf_hash is None):
        raise click.UsageError("give either INDEX or --leaf-hash")
    if leaf_hash is not None:
        try:
            raw = base64.b64decode(leaf_hash, validate=True)
        except (binascii.Error, ValueError):
            raise click.BadParameter("not standard padded base64", param_hint="--leaf-hash") from None
        if len(raw) != 32:
            raise click.BadParameter("a leaf hash is 32 bytes", param_hint="--leaf-hash")
        result = await log.inclusion_proof_by_hash(raw, size)
    else:
        assert index is not None
        result = await log.inclusion_proof(index, size)
    _json_line(result.to_json())


@proof.command()
@click.argument("first", type=click.IntRange(min=1))
@click.argument("second", type=click.IntRange(min=1))
@_with_log
async def consistency(log: Log, first: int, second: int) -> None:
    """Consistency proof from tree size FIRST to SECOND."""
    if first > second:
        raise click.BadParameter("FIRST must not exceed SECOND")
    _json_line((await log.consistency_proof(first, second)).to_json())


@click.command()
@click.option("--once", is_flag=True, help="Integrate and timestamp once, then exit.")
@_with_log
async def integrate(log: Log, once: bool) -> None:
    """Integrate sequenced entries, publish checkpoints and timestamp them, every interval.

    Run it as its own process beside appenders (servers, `append`, scripts): it takes the
    hashing and signing off their cores, and any number may run against one database.
    """
    if once:
        cp = await log.integrate()
        await log.timestamp_pending(force=True)
        click.echo(f"tree size {cp.size}" if cp else "nothing to integrate", err=True)
        return
    click.echo(f"integrating every {log.interval} s; Ctrl-C or SIGTERM stops", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await log.start()
    await stop.wait()


@click.command()
@_with_log
async def status(log: Log) -> None:
    """Sizes, the newest checkpoint's age and any timestamp gaps."""
    size, _ = await log.store.tree_head()
    latest = await log.latest_checkpoint()
    age = None
    if latest is not None and latest.published_at is not None:
        published = latest.published_at
        if published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
        age = round((datetime.now(UTC) - published).total_seconds(), 3)
    gaps = await log.timestamp_gaps()
    _json_line({
        "origin": log.origin,
        "sequenced": await log.store.sequenced_size(),
        "tree_size": size,
        "checkpoints": await log.store.checkpoint_count(),
        "newest_checkpoint_age_s": age,
        "tsas": [t.name for t in log.tsas],
        "timestamp_gaps": [{"size": g.size, "tsa": g.tsa, "attempts": g.attempts,
                            "last_error": g.last_error} for g in gaps[:20]],
        "timestamp_gap_count": len(gaps),
    })


@click.command()
@click.option("--checkpoint", "kept", multiple=True, type=click.File("rb"), metavar="FILE",
              help="A signed checkpoint note someone kept; the stored log must still hold it "
                   "(repeatable). Catches a restore from an older backup, or a rewrite.")
@click.option("--tsa-root", "tsa_roots", multiple=True, type=click.Path(exists=True, dir_okay=False),
              metavar="PEM", help="Also trust this TSA root certificate (PEM file; repeatable), beyond "
                                  "the local TSA's and those in RLHF_AUDIT_TSA_ROOTS.")
@click.pass_context
def verify(ctx: click.Context, kept: tuple[Any, ...], tsa_roots: tuple[str, ...]) -> None:
    """Self-audit: recompute the tree and check every checkpoint, signature and timestamp, and the
    leaf-hash index against the entries. Exits 1 naming each kind of problem found."""
    from .audit import audit_log
    from .home import load_tsa_roots

    home = _home(ctx)
    kept_notes = [f.read() for f in kept]
    roots = home.tsa_roots(extra=load_tsa_roots(tsa_roots, "--tsa-root"))

    async def main() -> bool:
        log = await home.open_log()
        try:
            report = await audit_log(
                log, tsa_roots=roots, required_tsas=[t.name for t in log.tsas],
                progress=lambda m: click.echo(f"… {m}", err=True), kept_checkpoints=kept_notes,
            )
        finally:
            await log.close()
        click.echo(f"entries checked:     {report.entries_checked} (tree size {report.tree_size}, "
                   f"sequenced {report.sequenced})")
        click.echo(f"tiles checked:       {report.tiles_checked}")
        click.echo(f"checkpoints checked: {report.checkpoints_checked}")
        click.echo(f"timestamps checked:  {report.timestamps_checked}")
        click.echo(f"leaf index checked:  {report.leaf_index_checked} entries")
        if kept_notes:
            click.echo(f"kept checkpoints:    {report.kept_checked} of {len(kept_notes)} held")
        for p in report.problems:
            click.echo(f"FAIL: {p}")
        click.echo("OK: the log is intact" if report.ok else
                   f"FAILED: {len(report.findings)} problem(s)")
        return report.ok

    if not asyncio.run(main()):
        sys.exit(1)


@click.command()
@_with_log
async def reindex(log: Log) -> None:
    """Rebuild the derived lookup indexes from the log (what `verify` reports as wrong there).

    The leaf-hash index (lookups by hash, `proof inclusion --leaf-hash`) is replaced in one
    transaction from the level-0 tiles, which `verify` checks against the entries.
    """
    size = await log.rebuild_leaf_index()
    click.echo(f"leaf-hash index rebuilt: {size} entries", err=True)


# What the product's group mounts, in no particular order (``--help`` sorts them).
COMMANDS: tuple[click.Command, ...] = (
    append, checkpoint, timestamp, tiles, public_keys, entry, proof, integrate, status, verify, reindex,
)

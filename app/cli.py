"""The ``rlhf-audit`` console script: the product's command group.

The group is built here and every command is mounted explicitly: the ledger's (``ledger.cli``:
append, proofs, checkpoints...; ``ledger.cli_keys``), the product's ``verify`` and ``reindex``
(``app.audit.commands``, which run the ledger's and then check the app's derived tables and
artefacts), the keys' commands, the ones below, and those of :data:`LAZY_COMMANDS`, whose modules
are imported only when one of them runs. Nothing registers itself by being imported.

The web stack is imported inside ``serve`` only, so ``rlhf-audit append`` and the other ledger
commands start fast and work where Litestar is not installed.
"""

from __future__ import annotations

import importlib
from gettext import gettext
from typing import Any

import click

from ledger import cli as ledger_cli
from ledger import cli_keys as ledger_keys

from .audit import commands as audit_commands
from .core.commands import Opened, on_home, run, settings_of
from .core.roles import ROLES as ROLE_NAMES  # the roles table (app/core/roles.py): light, no SQLAlchemy
from .core.roles import is_service
from .events import commands as event_commands
from .keys import commands as key_commands

__all__ = ["LAZY_COMMANDS", "cli", "main"]

# Commands whose modules are imported only when one of them runs (their packages import SQLAlchemy
# and more): name -> (module exporting the command under that name, dashes as underscores; its
# help's first paragraph, which `--help` shows without the import; a test compares them).
LAZY_COMMANDS = {
    "datasets": ("app.datasets.commands", "Human-feedback datasets: import, list, show, privacy budgets."),
    "privacy": ("app.datasets.commands", "Data subjects' rights (GDPR)."),
    "incident": ("app.incidents.commands",
                 "Incident response (EU AI Act Art. 73): freeze the evidence of a serious incident."),
    "worker": ("app.worker.commands",
               "Run training jobs: an ARQ worker on RLHF_AUDIT_REDIS_URL, or the local worker."),
    "jobs": ("app.jobs.commands", "Training jobs: submit a spec, follow it, cancel it."),
    "oversight": ("app.oversight.commands",
                  "Human oversight (AI Act Article 14): each decision justified and recorded on the log."),
    "models": ("app.oversight.commands", "Trained models."),
    "releases": ("app.releases.commands",
                 "Released models: model signature, SLSA provenance and COSE receipt of the release."),
    "verify-bundle": ("app.evidence.commands",
                      "Check an evidence bundle offline (no database, no server) and print every check."),
}


class LazyGroup(click.Group):
    """A group some of whose commands live in modules imported only when the command is used.

    ``lazy``: name -> (module, help), as :data:`LAZY_COMMANDS`; the module exports the command as
    the attribute ``name`` (dashes as underscores), and ``help`` is the command's help up to its
    first blank line, which ``--help`` shows without the import."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module = importlib.import_module(self.lazy_commands[cmd_name][0])
            command = getattr(module, cmd_name.replace("-", "_"), None)
            if isinstance(command, click.Command):
                self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with a stand-in carrying the tabled help for a command not imported yet."""
        commands: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None and name in self.lazy_commands:
                cmd = click.Command(name, help=self.lazy_commands[name][1])
            if cmd is not None and not cmd.hidden:
                commands.append((name, cmd))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section(gettext("Commands")):  # as click says it
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in commands])


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), default=None,
              help="Log home directory (default: $RLHF_AUDIT_HOME, else the user data directory).")
@click.version_option(package_name="rlhf-audit-trail")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """RLHF Audit Trail: a verifiable log of human feedback, training and oversight."""
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


# The ledger's commands, with the product's `verify` and `reindex` mounted where the ledger's would
# be (they run the ledger's, then check what the app derives and stores), its `public-keys`
# (the ledger's keys and the evidence-signing key) and its `append` (each event in the product's
# envelope: who appended it, when).
_PRODUCT_AUDIT = {c.name: c for c in (audit_commands.verify, audit_commands.reindex,
                                      key_commands.public_keys, event_commands.append)}
for _command in ledger_cli.COMMANDS:
    cli.add_command(_PRODUCT_AUDIT.get(_command.name, _command))
cli.add_command(click.Group(
    "keys", help=ledger_keys.keys.help,
    commands=[*ledger_keys.keys.commands.values(), key_commands.rotate_records_kek_command,
              key_commands.rotate_evidence_key_command]))


@cli.command()
@click.option("--origin", default=None, help="The log's origin (its public name); set once.")
@click.pass_context
def init(ctx: click.Context, origin: str | None) -> None:
    """Create the home: settings, database, log key and local TSA. Safe to run again."""
    import asyncio

    from ledger.home import LogHome

    from .core.database import migrate_home

    home = LogHome.resolve(ctx.obj.get("home"))
    signer = home.init(origin)
    asyncio.run(migrate_home(home))
    click.echo(f"home:   {home.path}", err=True)
    click.echo(f"origin: {signer.name}", err=True)
    click.echo(f"log key (verifier): {signer.verifier.vkey}", err=True)


def _trusted_proxies(value: str) -> list[str]:
    """``a, b/n, ...`` as uvicorn's ``forwarded_allow_ips``; each an IP address or network."""
    import ipaddress

    proxies = [p.strip() for p in value.split(",") if p.strip()]
    for p in proxies:
        try:  # as uvicorn reads them (it would take anything else as a name, silently)
            ipaddress.ip_network(p) if "/" in p else ipaddress.ip_address(p)
        except ValueError:
            raise click.BadParameter(f"{p!r} is not an IP address or network (e.g. 10.0.0.5, "
                                     "172.16.0.0/12)", param_hint="--trusted-proxies") from None
    return proxies


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="TCP port to listen on.")
@click.option("--no-worker", is_flag=True,
              help="Do not start the local training worker (started when RLHF_AUDIT_REDIS_URL is unset).")
@click.option("--trusted-proxies", envvar="RLHF_AUDIT_TRUSTED_PROXIES", default="", metavar="ADDRESSES",
              callback=lambda _ctx, _param, value: _trusted_proxies(value),
              help="Comma-separated addresses or networks (10.0.0.0/8) of the reverse proxies whose "
                   "X-Forwarded-For and X-Forwarded-Proto are believed (default: none; also "
                   "$RLHF_AUDIT_TRUSTED_PROXIES).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, no_worker: bool, trusted_proxies: list[str]) -> None:
    """Serve the oversight portal (at /) and the APIs: the public log API and /api/v1/.

    Creates the home first if it does not exist, and integrates appends from any process.
    Without Redis it also starts one local worker process that runs submitted training jobs.
    """
    import asyncio

    import uvicorn

    from ledger.home import LogHome

    from .core.database import migrate_home
    from .server.core import create_app
    from .server.observability import configure_logging

    configure_logging()  # JSON lines on stderr (uvicorn's too); the app's middleware logs each request
    home = LogHome.resolve(ctx.obj.get("home"))
    settings = settings_of(ctx, trusted_proxies=tuple(trusted_proxies) or None)
    trusted_proxies = list(settings.trusted_proxies)
    child = None
    if not no_worker and not settings.redis_url:
        from .worker.local import start_local_worker_process

        if not home.exists():
            home.init()
        asyncio.run(migrate_home(home))  # now, so that the worker and the server do not both migrate at once
        child = start_local_worker_process(str(home.path))
    try:
        # The client address is what sign-in throttling and the request log go by: uvicorn's
        # default would believe X-Forwarded-For from 127.0.0.1, i.e. from anyone on this host.
        uvicorn.run(create_app(home, settings=settings), host=host, port=port,
                    log_level="info", lifespan="on", access_log=False, log_config=None,
                    proxy_headers=bool(trusted_proxies), forwarded_allow_ips=trusted_proxies or None)
    finally:
        if child is not None:
            child.terminate()
            child.wait(timeout=30)


@cli.group()
def users() -> None:
    """Accounts of the authenticated API (each change is an event on the log)."""


@users.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLE_NAMES),
              help="admin, overseer, operator, auditor or service (no password).")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of stdin instead of prompting.")
@click.pass_context
def users_create(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Create account NAME with ROLE; asks for a password unless it is a service account."""
    import sys

    password: str | None = None
    if is_service(role):
        if password_stdin:
            raise click.UsageError("service accounts have no password; create a token for them")
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on stdin")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def body(opened: Opened) -> None:
        from .accounts import create_account

        await create_account(opened.db, opened.log, name, role, password,
                             pseudonymizer=opened.keyring.pseudonymizer)

    on_home(ctx, body, settle=False)
    click.echo(f"created {role} account {name}", err=True)


@cli.group()
def tokens() -> None:
    """API tokens (shown once, stored hashed, each change an event on the log)."""


@tokens.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True,
              help="A scope to grant (repeatable); default: all of the role's scopes.")
@click.option("--expires-in", type=click.FloatRange(min=0, max=3650), default=None, metavar="DAYS",
              help="Days until the token expires (default: never).")
@click.pass_context
def tokens_create(ctx: click.Context, name: str, scopes: tuple[str, ...], expires_in: float | None) -> None:
    """Create a token for account NAME and print it once on stdout."""
    from datetime import timedelta

    async def body(opened: Opened) -> None:
        from .accounts import create_token

        created = await create_token(opened.db, opened.log, name, scopes or None,
                                     None if expires_in is None else timedelta(days=expires_in),
                                     pseudonymizer=opened.keyring.pseudonymizer)
        click.echo(created.token)
        until = created.expires_at.isoformat() if created.expires_at else "never"
        click.echo(f"token {created.prefix} for {name}: scopes {' '.join(created.scopes)}; "
                   f"expires {until}. It is shown only once.", err=True)

    on_home(ctx, body, settle=False)


@tokens.command("revoke")
@click.argument("prefix")
@click.pass_context
def tokens_revoke(ctx: click.Context, prefix: str) -> None:
    """Revoke the token whose prefix (as shown at creation, `rat_` optional) is PREFIX."""

    async def body(opened: Opened) -> None:
        from .accounts import revoke_token

        await revoke_token(opened.db, opened.log, prefix, pseudonymizer=opened.keyring.pseudonymizer)

    on_home(ctx, body, settle=False)
    click.echo(f"revoked token {prefix}", err=True)


@cli.group()
def bundle() -> None:
    """Evidence bundles: one zip an auditor verifies offline (creating one is logged)."""


@bundle.command("create")
@click.option("--run", default=None, help="A training run's id.")
@click.option("--model", default=None, help="A released model's id.")
@click.option("--dataset", default=None, help="A dataset's id (with --version: one version).")
@click.option("--version", type=click.IntRange(min=1), default=None, help="The dataset version.")
@click.option("--since", default=None, help="Start of a time range (RFC 3339, inclusive).")
@click.option("--until", default=None, help="End of a time range (RFC 3339, exclusive).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Where to write the zip (default: its own name in the current directory).")
@click.pass_context
def bundle_create(ctx: click.Context, output: str | None, **given: Any) -> None:
    """Build the evidence bundle of one scope: --run R | --model M | --dataset D [--version V] |
    --since T --until T."""
    from pathlib import Path

    from ledger.home import LogHome

    from .evidence.builder import build_bundle
    from .evidence.scope import Scope
    from .objects import object_store

    chosen = [k for k in ("run", "model", "dataset") if given[k]]
    timed = given["since"] is not None or given["until"] is not None
    if len(chosen) + timed != 1:
        raise click.UsageError("give exactly one scope: --run, --model, --dataset or --since/--until")
    if given["version"] is not None and chosen != ["dataset"]:
        raise click.UsageError("--version goes with --dataset")
    scope = Scope.from_json({"kind": chosen[0] if chosen else "time",
                             **{k: v for k, v in given.items() if v is not None}})

    async def body(opened: Opened) -> None:
        log = opened.log
        built = await build_bundle(opened.db, log, scope, evidence_key=opened.keyring.evidence_signer,
                                   objects=object_store(LogHome.resolve(ctx.obj.get("home")),
                                                        settings_of(ctx)), settings=settings_of(ctx))
        path = Path(output or built.filename)
        path.write_bytes(built.data)
        click.echo(f"wrote {path}: {built.entries} entries proved against checkpoint {built.tree_size} "
                   f"(newest {built.latest_tree_size}), {len(built.data):,} bytes, manifest sha256 "
                   f"{built.manifest_sha256}", err=True)
        click.echo(f"check it offline: rlhf-audit verify-bundle {path} --log-key "
                   f"'{log.signer.verifier.vkey}'", err=True)

    on_home(ctx, body, settle=False)


@cli.command()
@click.option("--password", default=None, metavar="TEXT",
              help="Password for every demo account created now (default: a random one each, shown once).")
@click.pass_context
def demo(ctx: click.Context, password: str | None) -> None:
    """Fill the home with a small audited RLHF story (tiny model, dataset, two runs, oversight)
    for `rlhf-audit serve` to show. Running it again reuses the model, dataset and accounts."""
    import os
    import time
    import warnings

    from ledger.home import LogHome

    from .demo.story import run_demo, summary

    if password is not None and len(password) < 8:
        raise click.BadParameter("passwords must be at least 8 characters", param_hint="--password")
    os.environ.setdefault("TQDM_DISABLE", "1")  # the ML libraries' progress bars would bury the story
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", category=UserWarning, module="opacus")
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    started = time.monotonic()
    result = run_demo(LogHome.resolve(ctx.obj.get("home")), password, say=click.echo,
                      settings=settings_of(ctx))
    for line in summary(result):
        click.echo(line)
    click.echo(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    if any(job.status != "completed" for job in result.runs.values()):
        raise SystemExit(1)


def main() -> None:
    """The console script: errors become one line on stderr (:func:`app.core.commands.run`)."""
    run(cli)


if __name__ == "__main__":
    main()

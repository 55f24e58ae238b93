"""The CLI starts light (issue #14): heavy packages are imported only by the commands that need them.

Pinned by which modules a fresh process has loaded, not by timing (``benchmarks/bench_cli.py``
measures the time; ``docs/performance.md`` quotes it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT

HEAVY = ("sqlalchemy", "litestar", "torch", "trl", "transformers", "uvicorn", "httpx", "rfc3161_client",
         "cryptography")

LOADED = f"sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**clean, **env}, check=True, timeout=120)


def _as_console_script(*argv: str) -> str:
    """Run ``rlhf-audit ARGV`` in this process as the console script does; print the heavy
    packages it loaded as the last line of stderr."""
    return (f"import runpy, sys\nsys.argv = ['rlhf-audit', *{list(argv)!r}]\n"
            "try:\n    runpy.run_module('app.cli', run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            f"print(__import__('json').dumps({LOADED}), file=sys.stderr)\n")


def test_importing_the_cli_loads_no_heavy_package() -> None:
    out = _python(f"import sys, app.cli\nprint(__import__('json').dumps({LOADED}))")
    assert json.loads(out.stdout) == []


def test_help_loads_no_heavy_package() -> None:
    done = _python(_as_console_script("--help"))
    assert "Commands:" in done.stdout
    assert json.loads(done.stderr.splitlines()[-1]) == []


def test_append_into_a_home_with_the_local_tsa_needs_no_http_client(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    _python(_as_console_script("--home", home, "init"))
    code = _as_console_script("--home", home, "append").replace(
        "import runpy, sys\n", "import io, runpy, sys\n"
        "sys.stdin = io.TextIOWrapper(io.BytesIO(b'{\"kind\": \"feedback.preference\", \"a\": 1}\\n'))\n")
    done = _python(code)
    assert json.loads(done.stdout)["leaf_index"] == 0
    loaded = json.loads(done.stderr.splitlines()[-1])
    assert "sqlalchemy" in loaded and "httpx" not in loaded and "litestar" not in loaded


def test_the_lazy_table_matches_the_commands() -> None:
    """Each tabled command is exported by its module, and its help's first paragraph is the table's."""
    probe = """
import click, json
from app.cli import LAZY_COMMANDS, cli
found = {}
for name, (module, help) in LAZY_COMMANDS.items():
    cmd = cli.get_command(click.Context(cli), name)
    found[name] = [cmd.callback.__module__, (cmd.help or '').split('\\n\\n')[0].strip(), cmd.short_help]
print(json.dumps(found))
"""
    found = json.loads(_python(probe).stdout)
    from app.cli import LAZY_COMMANDS

    assert found == {name: [module, help, None] for name, (module, help) in LAZY_COMMANDS.items()}


def test_help_is_the_same_before_and_after_the_lazy_modules_load() -> None:
    """`--help` lists every command with the same short help as when every module is imported
    (also at a narrow width, where click shortens it)."""
    probe = """
import importlib, json
from click.testing import CliRunner
from app.cli import LAZY_COMMANDS, cli
lazy = [CliRunner().invoke(cli, ['--help'], terminal_width=w).output for w in (60, 200)]
for module, _ in LAZY_COMMANDS.values():
    importlib.import_module(module)
print(json.dumps([lazy, [CliRunner().invoke(cli, ['--help'], terminal_width=w).output for w in (60, 200)]]))
"""
    lazy, eager = json.loads(_python(probe).stdout)
    assert lazy == eager
    from app.cli import LAZY_COMMANDS

    for name in (*LAZY_COMMANDS, "append", "serve", "verify", "keys"):
        assert f"\n  {name} " in lazy[1]

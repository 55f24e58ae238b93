"""CLI start-up figures (issue #14): whole-process wall time of ``rlhf-audit``. Prints them; asserts nothing.

    python benchmarks/bench_cli.py               # median of 10 runs of each (about 30 s here)
    python benchmarks/bench_cli.py --runs 3      # quicker, noisier

Measured: ``rlhf-audit --help``, ``rlhf-audit --version`` and ``rlhf-audit append`` of one event
into an existing SQLite home (made once with ``init``, outside the timing), each as a whole new
process, as a user or a script would start it; and the cumulative import time of ``app.cli``
from ``python -X importtime`` (median over the same number of runs).

Targets (issue #14): ``--help`` <= 0.3 s, ``append`` of one event <= 0.6 s. This machine is
shared and noisy: compare figures from one run, not across runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVENT = b'{"kind": "feedback.preference", "actor": "pseud:3f9a1c0e", "prompt": "p", "chosen": "a"}\n'


def rlhf_audit() -> list[str]:
    """The console script next to this interpreter (the venv's), else ``python -c`` on ``app.cli``."""
    script = Path(sys.executable).with_name("rlhf-audit")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from app.cli import main; main()"]


def wall(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> float:
    """Seconds one whole process takes, start to exit; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, env=env, cwd=ROOT, capture_output=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return took


def median_wall(argv: list[str], env: dict[str, str], runs: int, stdin: bytes = b"") -> float:
    wall(argv, env, stdin)  # warm the page cache and the .pyc files first
    return statistics.median(wall(argv, env, stdin) for _ in range(runs))


def import_time(module: str, env: dict[str, str]) -> float:
    """Cumulative import time of ``module`` in seconds, as ``-X importtime`` reports it."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          env=env, cwd=ROOT, capture_output=True, check=True)
    for line in done.stderr.decode().splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module and not parts[2].startswith("  "):
            return int(parts[1]) / 1e6
    raise SystemExit(f"no import time for {module}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per figure (median reported)")
    args = parser.parse_args()
    cmd = rlhf_audit()
    home = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    env.update(RLHF_AUDIT_HOME=str(home / "home"), PYTHONPATH=str(ROOT))
    try:
        subprocess.run([*cmd, "init", "--origin", "bench.example/cli"], env=env, cwd=ROOT,
                       capture_output=True, check=True)
        has_version = subprocess.run([*cmd, "--version"], env=env, cwd=ROOT,
                                     capture_output=True).returncode == 0
        print(f"rlhf-audit CLI start-up, whole process, median of {args.runs} ({' '.join(cmd)})")
        helped = median_wall([*cmd, "--help"], env, args.runs)
        print(f"  --help                        {helped:6.3f} s   (target <= 0.3 s)")
        if has_version:
            versioned = median_wall([*cmd, "--version"], env, args.runs)
            print(f"  --version                     {versioned:6.3f} s")
        appended = median_wall([*cmd, "append"], env, args.runs, EVENT)
        print(f"  append (1 event, SQLite home) {appended:6.3f} s   (target <= 0.6 s)")
        imports = statistics.median(import_time("app.cli", env) for _ in range(args.runs))
        print(f"  import app.cli (-X importtime) {imports:5.3f} s")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

"""CLI start-up figures (issue #14): whole-process wall time of ``rlhf-audit``. Prints them; asserts nothing.

    python benchmarks/bench_cli.py               # median of 10 runs of each (about 30 s here)
    python benchmarks/bench_cli.py --runs 3      # quicker, noisier
    python benchmarks/bench_cli.py --baseline DIR  # also another checkout (git worktree/archive),
                                                   # its runs interleaved with ours: one load for both

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
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAIN = "from app.cli import main; main()"
EVENT = b'{"kind": "feedback.preference", "actor": "pseud:3f9a1c0e", "prompt": "p", "chosen": "a"}\n'


def rlhf_audit() -> list[str]:
    """The console script next to this interpreter (the venv's), else ``python -c`` on ``app.cli``."""
    script = Path(sys.executable).with_name("rlhf-audit")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", MAIN]


def wall(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[float, float]:
    """Seconds one whole process takes, start to exit, and the CPU seconds it used (user + system:
    less sensitive to a loaded machine), in the tree ``env``'s PYTHONPATH names; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, env=env, cwd=env["PYTHONPATH"], capture_output=True)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_time(module: str, env: dict[str, str]) -> float:
    """Cumulative import time of ``module`` in seconds, as ``-X importtime`` reports it."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          env=env, cwd=env["PYTHONPATH"], capture_output=True, check=True)
    for line in done.stderr.decode().splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module and not parts[2].startswith("  "):
            return int(parts[1]) / 1e6
    raise SystemExit(f"no import time for {module}")


Figures = dict[str, dict[str, tuple[float, float]]]


def _figures(trees: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> Figures:
    """Median wall and CPU seconds of each measurement for each tree, the trees' runs interleaved."""
    measured = {"--help": ["--help"], "--version": ["--version"], "append": ["append"]}
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {t: {m: [] for m in measured} for t in trees}
    for cmd, env in trees.values():  # warm the page cache and the .pyc files first
        for args in measured.values():
            wall([*cmd, *args], env, EVENT if args == ["append"] else b"")
    for _ in range(runs):
        for tree, (cmd, env) in trees.items():
            for name, args in measured.items():
                samples[tree][name].append(wall([*cmd, *args], env, EVENT if args == ["append"] else b""))
    return {t: {m: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
                for m, v in by.items()} for t, by in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per figure (median reported)")
    parser.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                        help="another checkout of this repository, measured the same way, interleaved")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    trees: dict[str, tuple[list[str], dict[str, str]]] = {}
    # With a baseline both start as `python -c` (one launcher for both), else as the console script.
    ours = rlhf_audit() if args.baseline is None else [sys.executable, "-c", MAIN]
    for name, root, cmd in (("baseline", args.baseline, ours), ("this tree", ROOT, ours)):
        if root is None:
            continue
        env = {**base, "RLHF_AUDIT_HOME": str(home / name.replace(" ", "-")),
               "PYTHONPATH": str(Path(root).resolve())}
        subprocess.run([*cmd, "init", "--origin", "bench.example/cli"], env=env, cwd=root,
                       capture_output=True, check=True)
        trees[name] = (cmd, env)
    try:
        figures = _figures(trees, args.runs)
        targets = {"--help": "(target <= 0.3 s)", "append": "(target <= 0.6 s)"}
        print(f"rlhf-audit CLI start-up, whole process, median of {args.runs} (wall, and CPU user+sys)")
        for tree, by in figures.items():
            print(f"  {tree}:")
            for name, (took, cpu) in by.items():
                label = "append (1 event, SQLite home)" if name == "append" else name
                print(f"    {label:30} {took:6.3f} s  cpu {cpu:6.3f} s   {targets.get(name, '')}")
            env = trees[tree][1]
            imports = statistics.median(import_time("app.cli", env) for _ in range(args.runs))
            print(f"    {'import app.cli (-X importtime)':30} {imports:6.3f} s")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

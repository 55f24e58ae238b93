"""HTTP speed of the server (issue #3), measured by wrk in a separate process. Prints figures.

    python benchmarks/bench_http.py                 # 1,000,000 entries (build takes a few minutes)
    python benchmarks/bench_http.py --entries 100000 --duration 5

Needs `wrk` (Debian package `wrk`). The server is `rlhf-audit serve` (one uvicorn process) on a
temporary home on the embedded defaults (SQLite, local TSA); the load generator is wrk with a
small Lua script. Both share this machine's two cores, so the figures are a floor.

Targets: get-proof-by-hash >= 1,000 req/s with p99 < 10 ms; full tiles >= 3,000 req/s;
32 clients appending single events >= 1,000 events/s; with wait=true, median < 1.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.database import migrate_home  # noqa: E402
from ledger.canonical import canonical_event  # noqa: E402
from ledger.home import LogHome  # noqa: E402
from ledger.tiles import tile_path  # noqa: E402

CLI = str(Path(sys.executable).with_name("rlhf-audit"))

GET_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
math.randomseed(os.time())
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""

POST_SCRIPT = """
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = '{"kind":"bench.step","run":"run_bench","step":' .. n .. ',"loss":0.5}'
  return wrk.format(nil, os.getenv("WRK_PATH"), nil, body)
end
"""


def _line(i: int) -> bytes:
    return json.dumps({"kind": "run.metrics", "v": 1, "run": "run_bench", "actor": "worker",
                       "role": "system", "at": "2026-11-25T08:00:00.123Z",
                       "steps": [{"step": i, "loss": 0.69 / (1 + i % 97)}]}).encode()


async def build(home: LogHome, n: int, sample: int) -> tuple[int, list[str]]:
    """Append ``n`` entries; return the checkpoint size and ``sample`` random leaf hashes (b64)."""
    await migrate_home(home)
    log = await home.open_log()
    rng = random.Random(7)
    picked = set(rng.sample(range(n), min(sample, n)))
    hashes = []
    try:
        for k in range(0, n, 20_000):
            entries = [canonical_event(_line(i)) for i in range(k, min(n, k + 20_000))]
            await log.append_entries(entries)
            hashes += [base64.b64encode(hashlib.sha256(b"\0" + e).digest()).decode()
                       for i, e in enumerate(entries, k) if i in picked]
            if k % 200_000 == 0:
                await log.integrate()
        cp = await log.integrate()
        return cp.checkpoint.size if cp else n, hashes
    finally:
        await log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_idle(pid: int, limit: float = 600) -> float:
    """Wait until the server's process is idle (it indexes the whole log once after start);
    return the seconds that took."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        before = cpu()
        time.sleep(1.0)
        if cpu() - before < 0.05:
            break
    return time.perf_counter() - t0


def wrk(url: str, script: str, duration: int, connections: int, env: dict[str, str]) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", f.name, url],
                         env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    figures = {"req_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            figures[f"p{pct}_ms"] = float(m.group(1)) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")

    tmp = Path(tempfile.mkdtemp(prefix="bench-http-"))
    env = {**os.environ, "RLHF_AUDIT_HOME": str(tmp / "home"), "RLHF_AUDIT_SQLITE_SYNCHRONOUS": "NORMAL"}
    os.environ.update(env)
    home = LogHome(tmp / "home")
    home.init()
    t0 = time.perf_counter()
    size, hashes = asyncio.run(build(home, args.entries, 20_000))
    print(f"built a log of {size:,} entries in {time.perf_counter() - t0:.0f} s")

    subprocess.run([CLI, "users", "create", "bench", "--role", "service"], env=env, check=True,
                   capture_output=True)
    token = subprocess.run([CLI, "tokens", "create", "bench", "--scope", "events:write"], env=env,
                           check=True, capture_output=True, text=True).stdout.strip().split()[-1]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([CLI, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        print(f"server idle after {wait_idle(server.pid):.0f} s (event index caught up)")
        rng = random.Random(3)
        paths = tmp / "proofs.txt"
        paths.write_text("".join(f"/log/v1/get-proof-by-hash?hash={quote(h, safe='')}&tree_size={size}\n"
                                 for h in hashes))
        tiles = tmp / "tiles.txt"
        full = [(lvl, size // 256 ** (lvl + 1)) for lvl in range(3)]
        tiles.write_text("".join(f"/log/{tile_path(lvl, rng.randrange(count))}\n"
                                 for lvl, count in full if count for _ in range(3000)))
        results = {
            # 4 clients: the rate a p99 target is meant at; 16: the saturated throughput
            "get-proof-by-hash (4 clients)": wrk(base, GET_SCRIPT, args.duration, 4,
                                                 {"WRK_PATHS": str(paths)}),
            "get-proof-by-hash (16 clients)": wrk(base, GET_SCRIPT, args.duration, 16,
                                                  {"WRK_PATHS": str(paths)}),
            "full tiles (16 clients)": wrk(base, GET_SCRIPT, args.duration, 16, {"WRK_PATHS": str(tiles)}),
            "append, 32 clients": wrk(base, POST_SCRIPT, args.duration, 32,
                                      {"WRK_TOKEN": token, "WRK_PATH": "/api/v1/events"}),
            "append wait=true, 32 clients": wrk(base, POST_SCRIPT, args.duration, 32,
                                                {"WRK_TOKEN": token, "WRK_PATH": "/api/v1/events?wait=true"}),
        }
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"log size {size:,}; wrk -t1, {args.duration} s per run; server: one uvicorn process")
    for name, fig in results.items():
        lat = "  ".join(f"{k} {v:.2f}" for k, v in fig.items() if k.startswith("p"))
        print(f"{name:34s} {fig['req_s']:9,.0f} req/s  {lat}  non-2xx {fig['non_2xx']:.0f}")


if __name__ == "__main__":
    main()

"""The read path served without the app, and the ingest rate for training runs (issue #7).

    python benchmarks/bench_tiles_static.py                          # 1,000,000 entries, 10 s per load
    python benchmarks/bench_tiles_static.py --entries 100000 --duration 5

1. Builds a log on PostgreSQL (database ``rlhf_bench_tiles``, created here and dropped at the end,
   on an error and on Ctrl-C/SIGTERM) and exports it as C2SP tlog-tiles files: every full tile,
   the partial tiles at the checkpoint's size, the entry bundles and ``checkpoint``. Full tiles
   never change and a partial tile at a given width never changes either, so the export only
   ever adds files (``checkpoint`` is the one file replaced).
2. Serves the same random tile and entry-bundle paths with wrk (a separate process, 16
   connections) from the app's own ``/log/tile/`` route (``rlhf-audit serve``, one uvicorn
   process, on that PostgreSQL), from nginx over the export (one worker process, if nginx is
   installed), and from Python's ``http.server`` as a floor. A sample of paths is compared byte
   for byte between the app and the export first.
3. Drives ``POST /api/v1/events`` of that server with training-callback-shaped traffic as
   ``trainers.sinks.HttpSink`` sends it: one ``run.metrics`` event of 50 logged steps per request
   (what ``AuditCallback`` sends every 50 steps or 5 s), single ``run.privacy`` events (a DP run
   sends one per logged step) and 500-event backlogs (the sink's largest batch), with 1 to 64
   concurrent senders.

Only 127.0.0.1. The machine's two cores are shared by the server, PostgreSQL, nginx and wrk,
so every figure is a floor; compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_http import CLI, GET_SCRIPT, build, free_port, wait_idle, wrk  # noqa: E402
from bench_ledger import PG_ADMIN  # noqa: E402

from ledger import tile_export  # noqa: E402
from ledger.home import LogHome  # noqa: E402
from ledger.log import Log  # noqa: E402
from ledger.tiles import TILE_WIDTH, entries_path, tile_path, tiles_for_size  # noqa: E402

DB_NAME = "rlhf_bench_tiles"

POST_BODY_SCRIPT = """
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("WRK_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
wrk.path = os.getenv("WRK_PATH")
"""

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=20000 inactive=60s;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /tile/ {{ add_header Cache-Control "public, max-age=31536000, immutable"; }}
        location = /checkpoint {{ add_header Cache-Control "no-cache"; default_type text/plain; }}
    }}
}}
"""


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(sql)


async def export_tiles(log: Log, root: Path) -> dict[str, float]:
    """``rlhf-audit tiles export``'s function (ledger.tile_export), timed."""
    t0 = time.perf_counter()
    done = await tile_export.export_tiles(log, root)
    return {"files": done.files_written, "bytes": done.bytes_written,
            "seconds": time.perf_counter() - t0, "size": done.size}


def wait_ready(url: str, what: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start")


def step(i: int) -> dict[str, object]:
    """What a TRL trainer's log line becomes in ``run.metrics`` (AuditCallback.on_log)."""
    return {"step": i, "epoch": round(i / 3200, 4), "loss": 0.6931 / (1 + i % 97),
            "grad_norm": 1.2345 + i % 7, "learning_rate": 5e-05 * (1 - i / 10000),
            "accuracy": 0.5 + (i % 50) / 100, "margin": 0.01 * (i % 13), "num_tokens": 4096 * i}


def bodies(tmp: Path) -> dict[str, tuple[Path, int, int]]:
    """Request bodies: (file, events per request, logged steps per request)."""
    at = "2026-12-06T08:00:00.123Z"
    metrics = {"events": [{"kind": "run.metrics", "v": 1, "at": at, "run": "run_bench",
                           "steps": [step(i) for i in range(1000, 1050)]}]}
    privacy = {"kind": "run.privacy", "v": 1, "at": at, "run": "run_bench", "step": 1000,
               "epsilon": 2.3456, "delta": 1e-05, "accountant": "prv"}
    out = {}
    for name, body, events, steps in (
        ("run.metrics, 50 steps per request", metrics, 1, 50),
        ("run.privacy, 1 event per request", privacy, 1, 1),
        ("backlog, 500 events per request", {"events": [privacy] * 500}, 500, 0),
    ):
        path = tmp / f"body-{len(out)}.json"
        path.write_bytes(json.dumps(body).encode())
        out[name] = (path, events, steps)
    return out


def replicas(args: argparse.Namespace, env: dict[str, str], token: str, first: str, body: Path,
             procs: list[subprocess.Popen[bytes]]) -> None:
    """A second ``rlhf-audit serve`` on the same PostgreSQL: both take single-event appends at
    once (two wrk processes, 16 senders each); then the tree must cover every sequenced entry
    and stay consistent with the checkpoint from before."""
    home = LogHome(Path(env["RLHF_AUDIT_HOME"]))

    async def head() -> tuple[int, bytes, int]:
        log = await home.open_log()
        try:
            cp = await log.latest_checkpoint()
            assert cp is not None
            return cp.size, cp.checkpoint.root_hash, await log.sequenced_size()
        finally:
            await log.close()

    before, root_before, seq_before = asyncio.run(head())
    port = free_port()
    second = subprocess.Popen([CLI, "serve", "--port", str(port), "--no-worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(second)
    wait_ready(f"http://127.0.0.1:{port}/readyz", "the second server")
    wait_idle(second.pid, 120)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(POST_BODY_SCRIPT)
    runs = [subprocess.Popen(["wrk", "-t1", "-c16", f"-d{args.duration}s", "-s", f.name, base],
                             env={**os.environ, "WRK_TOKEN": token, "WRK_BODY": str(body),
                                  "WRK_PATH": "/api/v1/events"},
                             stdout=subprocess.PIPE, text=True)
            for base in (first, f"http://127.0.0.1:{port}")]
    outs = [r.communicate()[0] for r in runs]
    os.unlink(f.name)
    rates = [float(o.split("Requests/sec:")[1].split()[0]) for o in outs]
    time.sleep(3)  # both integrators publish
    size, root, sequenced = asyncio.run(head())

    async def consistent() -> None:
        log = await home.open_log()
        try:
            (await log.consistency_proof(before, size)).verify(root_before, root)
        finally:
            await log.close()

    asyncio.run(consistent())
    print(f"two server processes on one PostgreSQL, 16 senders each, single run.privacy events: "
          f"{rates[0]:,.0f} + {rates[1]:,.0f} = {sum(rates):,.0f} events/s; {sequenced - seq_before:,} "
          f"appended; tree {before:,} -> {size:,} (sequenced {sequenced:,}), consistency proof "
          f"verified ({load()})", flush=True)
    second.terminate()
    second.wait(10)


def main() -> None:  # noqa: C901 (one linear script)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--senders", default="1,8,32,64", help="concurrent senders for the ingest runs")
    parser.add_argument("--steps-per-s", type=float, default=2.0,
                        help="a training run's logged steps per second, for the runs-per-server figure")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    print(f"start {now()}, {load()}, {os.cpu_count()} CPUs", flush=True)

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    tmp = Path(tempfile.mkdtemp(prefix="bench-tiles-"))
    tmp.chmod(0o755)  # nginx's worker runs as an unprivileged user and must read the export
    procs: list[subprocess.Popen[bytes]] = []
    admin_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{DB_NAME}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + DB_NAME
    env = {**os.environ, "RLHF_AUDIT_HOME": str(tmp / "home"), "RLHF_AUDIT_DATABASE_URL": url}
    os.environ.update(env)
    try:
        home = LogHome(tmp / "home")
        home.init()
        t0 = time.perf_counter()
        size, _ = asyncio.run(build(home, args.entries, 0))
        print(f"built a log of {size:,} entries on PostgreSQL in {time.perf_counter() - t0:.0f} s",
              flush=True)

        async def do_export() -> dict[str, float]:
            log = await home.open_log()
            try:
                return await export_tiles(log, tmp / "export")
            finally:
                await log.close()

        ex = asyncio.run(do_export())
        print(f"exported {ex['files']:,.0f} files, {ex['bytes'] / 2**20:,.1f} MiB, in {ex['seconds']:.1f} s "
              f"({ex['files'] / ex['seconds']:,.0f} files/s) at size {ex['size']:,.0f}", flush=True)

        subprocess.run([CLI, "users", "create", "bench", "--role", "service"], env=env, check=True,
                       capture_output=True)
        token = subprocess.run([CLI, "tokens", "create", "bench", "--scope", "events:write"], env=env,
                               check=True, capture_output=True, text=True).stdout.strip().split()[-1]

        app_port, nginx_port, py_port = free_port(), free_port(), free_port()
        app = subprocess.Popen([CLI, "serve", "--port", str(app_port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(app)
        servers = {"app /log/tile/ (1 uvicorn process)": (f"http://127.0.0.1:{app_port}", "/log")}
        if nginx:
            conf = tmp / "nginx.conf"
            conf.write_text(NGINX_CONF.format(tmp=tmp, port=nginx_port, root=tmp / "export"))
            procs.append(subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            servers["nginx over the export (1 worker)"] = (f"http://127.0.0.1:{nginx_port}", "")
        else:
            print("nginx not installed: static figures from http.server only")
        procs.append(subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                       "--directory", str(tmp / "export"), str(py_port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        servers["python -m http.server over the export"] = (f"http://127.0.0.1:{py_port}", "")
        wait_ready(f"http://127.0.0.1:{app_port}/readyz", "the app")
        for base, _ in servers.values():
            wait_ready(base + "/checkpoint", base)
        print(f"app idle after {wait_idle(app.pid):.0f} s (event index caught up)", flush=True)

        rng = random.Random(5)
        tiles = [tile_path(lvl, rng.randrange(full)) for lvl in range(3)
                 if (full := tiles_for_size(size, lvl)[0]) for _ in range(3000)]
        bundles = [entries_path(rng.randrange(size // TILE_WIDTH)) for _ in range(3000)]
        app_base = servers["app /log/tile/ (1 uvicorn process)"][0]
        with httpx.Client(timeout=10) as client:
            for rel in rng.sample(tiles, 20) + rng.sample(bundles, 20):
                served = client.get(f"{app_base}/log/{rel}")
                exported = (tmp / "export" / rel).read_bytes()
                assert served.status_code == 200 and served.content == exported, rel
        print("40 random tiles and bundles: the app's bytes equal the exported files")

        results: dict[str, dict[str, float]] = {}
        for what, rels in (("full tiles", tiles), ("entry bundles", bundles)):
            for name, (base, prefix) in servers.items():
                listing = tmp / f"paths-{len(results)}.txt"
                listing.write_text("".join(f"{prefix}/{rel}\n" for rel in rels))
                results[f"{what}: {name}"] = wrk(base, GET_SCRIPT, args.duration, 16,
                                                  {"WRK_PATHS": str(listing)})
                r = results[f"{what}: {name}"]
                print(f"{what + ': ' + name:62s} {r['req_s']:9,.0f} req/s  p50 {r.get('p50_ms', 0):6.2f} ms"
                      f"  p99 {r.get('p99_ms', 0):6.2f} ms  non-2xx {r['non_2xx']:.0f}  ({load()})",
                      flush=True)
        for what in ("full tiles", "entry bundles"):
            base_rate = results[f"{what}: app /log/tile/ (1 uvicorn process)"]["req_s"]
            print(f"{what}: " + ", ".join(
                f"{name.split(': ')[1].split(' ')[0]} {r['req_s'] / base_rate:.1f}x the app"
                for name, r in results.items() if name.startswith(what) and "app" not in name))

        print(f"== ingest: POST /api/v1/events on the same server and PostgreSQL ({now()}, {load()})")
        senders = [int(x) for x in args.senders.split(",")]
        best: dict[str, float] = {}
        for name, (body, events, steps) in bodies(tmp).items():
            counts = senders if events == 1 else [8]
            for c in counts:
                r = wrk(app_base, POST_BODY_SCRIPT, args.duration, c,
                        {"WRK_TOKEN": token, "WRK_BODY": str(body), "WRK_PATH": "/api/v1/events"})
                best[name] = max(best.get(name, 0.0), r["req_s"])
                print(f"{name:36s} {c:3d} senders: {r['req_s']:8,.0f} req/s = {r['req_s'] * events:9,.0f} "
                      f"events/s = {r['req_s'] * steps:9,.0f} steps/s; p50 {r.get('p50_ms', 0):6.1f} ms "
                      f"p99 {r.get('p99_ms', 0):6.1f} ms; non-2xx {r['non_2xx']:.0f}  ({load()})", flush=True)
        replicas(args, env, token, app_base, bodies(tmp)["run.privacy, 1 event per request"][0], procs)
        x = args.steps_per_s
        metrics = best["run.metrics, 50 steps per request"]
        privacy = best["run.privacy, 1 event per request"]
        per_run = max(x / 50, 1 / 5)  # the callback sends every 50 logged steps or 5 s
        print(f"runs logging every step at {x:g} steps/s: {per_run:.2f} requests/s each without DP -> "
              f"{metrics / per_run:,.0f} concurrent runs; with DP (one run.privacy per step as well, "
              f"worst case one request each) {x + per_run:.2f} requests/s -> "
              f"{1 / ((x + per_run) / privacy):,.0f} runs")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        admin_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"end {now()}, {load()}; database {DB_NAME} dropped", flush=True)


if __name__ == "__main__":
    main()

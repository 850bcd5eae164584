"""What the embedded server's HTTP parser costs: uvicorn with h11 (the choice: it keeps the application's header
names, which Exosite's C library needs) against uvicorn with httptools (its default: lower-cases every name), same
flags otherwise, on the embedded default (SQLite).

Two endpoints: ``/healthz`` (no database) and a refused activation (``POST /provision/activate`` for an unknown
vendor/model: a read and an attempt-log write). wrk drives each server in interleaved rounds (the machine is noisy);
prints req/s and p50/p99 per parser and the ratio h11 / httptools.

    .venv/bin/python bench/embedded_http.py [--rounds 3] [--duration 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, free_port, stop_processes, wait_port

LUA = """wrk.method = "POST"
wrk.body = "vendor=nobody&model=nothing&sn=X"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""
ENDPOINTS = {"healthz": ("/healthz", None), "activation-refused": ("/provision/activate", LUA)}


def start(parser: str, var_dir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env |= {"PORTAL_VAR_DIR": var_dir, "ACTIVATION_RATE_LIMIT_IP": "0", "ACTIVATION_RATE_LIMIT_SERIAL": "0"}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "portal.asgi:application",
        "--port",
        str(port),
        "--http",
        parser,
        "--no-proxy-headers",
        "--no-server-header",
        "--no-date-header",
        "--no-access-log",
        "--lifespan",
        "off",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, port


def wrk(port: int, path: str, script: str | None, duration: int, connections: int) -> tuple[float, float, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    args += ["-s", lua.name, f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    return rps, _latency(out, "50%"), _latency(out, "99%")


def _latency(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk")
        return 2
    var_dir = tempfile.mkdtemp(prefix="portal-bench-http-")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}} | {"PORTAL_VAR_DIR": var_dir}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for _ in range(args.rounds):
        for http in ("h11", "httptools"):
            proc, port = start(http, var_dir)
            try:
                for name, (path, script) in ENDPOINTS.items():
                    figures = wrk(port, path, script, args.duration, args.connections)
                    results.setdefault((name, http), []).append(figures)
            finally:
                stop_processes([proc])
    for name in ENDPOINTS:
        row = {http: [median(f[i] for f in results[(name, http)]) for i in range(3)] for http in ("h11", "httptools")}
        h11, tools = row["h11"], row["httptools"]
        print(
            f"{name}: h11 {h11[0]:.0f} req/s (p50 {h11[1]:.1f} ms, p99 {h11[2]:.1f} ms); "
            f"httptools {tools[0]:.0f} req/s (p50 {tools[1]:.1f} ms, p99 {tools[2]:.1f} ms); "
            f"ratio h11/httptools {h11[0] / tools[0]:.2f}"
        )
    shutil.rmtree(var_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

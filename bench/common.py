"""What the benchmark scripts share: a throwaway PostgreSQL database, the production server started as gunicorn,
its peak memory, and latency percentiles."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

REPO = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin_sql(*statements: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def fresh_database(db: str) -> None:
    admin_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"CREATE DATABASE {db}")


def drop_database(db: str) -> None:
    admin_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def server_env(db: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "REDIS", "CELERY"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"{PG}/{db}",
        REDIS_URL=REDIS,
        SECURE_SSL_REDIRECT="false",
        PORTAL_VAR_DIR=str(REPO / "var" / "bench"),
    )
    # Production names its head-end explicitly; the benchmarks use the simulator unless they give their own.
    env.update({"CAS_GATEWAY_URL": "inprocess:", **extra})
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True)


def start_server(port: int, workers: int, threads: int, env: dict[str, str]) -> subprocess.Popen:
    """gunicorn, code preloaded: sync workers (gthread when ``threads`` > 1), as production runs the HTTP APIs."""
    worker_class = ["--worker-class", "sync"]
    if threads > 1:
        worker_class = ["--worker-class", "gthread", "--threads", str(threads)]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            *worker_class,
            "--backlog",
            "2048",
            "--preload",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


class MemorySampler(threading.Thread):
    """Peak total memory (PSS) of a process and its children, sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kib, self._stop_event = pid, 0, threading.Event()

    @staticmethod
    def _pss_kib(pid: int) -> int:
        """Proportional set size: pages shared by the preloaded workers count once in the sum, not per worker."""
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            return 0
        match = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def _tree(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            children = []
        return [self.pid, *map(int, children)]

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak_kib = max(self.peak_kib, sum(self._pss_kib(pid) for pid in self._tree()))
            time.sleep(0.1)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak_kib


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else float("nan")


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Until something listens on 127.0.0.1:``port``; SystemExit if ``proc`` dies or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process {proc.args[:4]} exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port} after {timeout:.0f} s")


def stop_processes(procs: list[subprocess.Popen], timeout: float = 30) -> None:
    """SIGTERM to each (those still running), then wait; whatever is left after ``timeout`` is killed."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

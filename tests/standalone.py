"""What the simulators' standalone tests share: run ``python -m <package>`` as a newcomer would (no
DJANGO_SETTINGS_MODULE, no portal variable), and check that importing a module loads no Django."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.conftest import REPO, clean_env

FRAMEWORKS = ("django", "rest_framework", "celery", "channels")


def run_module(module: str, *args: str) -> subprocess.Popen:
    env = clean_env()
    assert "DJANGO_SETTINGS_MODULE" not in env
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def frameworks_loaded_by(module: str) -> tuple[int, str]:
    """(exit code, stderr) of a fresh interpreter that imports ``module`` and fails naming any framework it loaded."""
    script = (
        f"import sys, {module}; "
        f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & {set(FRAMEWORKS)!r}); "
        "assert not loaded, loaded"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=60
    )
    return proc.returncode, proc.stderr


def sigterm(proc: subprocess.Popen) -> tuple[int, str, str]:
    """SIGTERM, then (exit code, the rest of stdout, stderr); killed if it does not stop within 15 s."""
    try:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rest, errors = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    return code, rest, errors

"""docs/getting-started.md does what it says: its shell blocks, run in order in one shell as a reader pastes them,
against ``make run`` itself (a fresh folder, a free port), with a real webhook receiver on another free port."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import REPO, clean_env, free_port
from tests.portal.test_embedded import ctrl_c, start_run, wait_ready

pytestmark = pytest.mark.slow
PAGE = REPO / "docs" / "getting-started.md"


def shell_blocks() -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", PAGE.read_text(), re.S | re.M)


def test_the_page_has_a_block_per_step():
    assert len(shell_blocks()) == 7


def test_every_command_of_the_getting_started_page_works_against_make_run(tmp_path):
    port, hook_port = free_port(), free_port()
    proc = start_run(tmp_path / "var", port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        script = "set -euo pipefail\n" + "\n".join(shell_blocks())
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=clean_env(PORTAL=f"http://127.0.0.1:{port}", HOOK_PORT=str(hook_port)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        ctrl_c(proc)

    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert re.search(r'"created":2,"existing":0', out)
    assert re.search(r'"state":"notactivated"', out)
    assert re.search(r"^CIK: [0-9a-f]{40}$", out, re.M)
    assert re.search(r"^409$", out, re.M)
    assert "reprovision: SUCCEEDED" in out
    assert re.search(r"^request \d+: COMPLETED$", out, re.M)
    assert re.search(
        r'^device\.disabled \{"data":\{"device_id":\d+,"serial_number":"SN-\d+-1","state":"disabled"\}', out, re.M
    )
    assert "delivery: DELIVERED" in out

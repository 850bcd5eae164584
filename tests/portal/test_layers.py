"""The import-linter contracts (pyproject.toml) name the shell's modules one by one: this keeps that list whole, so
that a new module of portal/ is either in the shell layer, in the kernel or in the pure helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_every_shell_module_is_in_the_layer_contract():
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    shell = {name.strip() for name in layers[0].split(":")}
    on_disk = {
        f"portal.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "portal").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    assert on_disk - {"portal.kernel", "portal.lib"} == shell


@pytest.mark.slow
def test_a_wrong_import_breaks_the_contracts(tmp_path):
    """The contracts bite: a kernel module importing an app is reported (on a copy of the tree, not the checkout)."""
    for package in ("portal", "devices", "provisioning", "conax", "components", "webhooks", "campaigns"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "portal" / "kernel" / "probe.py").write_text("import devices.models  # noqa: F401\n")
    (tmp_path / "portal" / "lib" / "probe.py").write_text("import django.db  # noqa: F401\n")
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run([str(lint), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout
    assert "portal.kernel.probe -> devices.models" in run.stdout
    assert "portal.lib.probe -> django (l.1)" in run.stdout

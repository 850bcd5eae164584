"""The two settings profiles, checked the way operators start the portal: a fresh process per environment."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, clean_env

STRONG_KEY = "k3J9-vQx7_Lp2Zr8Tb5Nw1Yd6Hc4Mf0Gs-Ua3Ee7Ri9Oo2Pl5Kj8Hg1Fd4Sa6Qw"
PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "portal.example.net",
    "DATABASE_URL": "postgres://portal:secret@db.example.net:5432/portal",
    "REDIS_URL": "redis://cache.example.net:6379/0",
}


def manage(*args: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=clean_env(PORTAL_VAR_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_default_needs_no_variables(tmp_path):
    result = manage("check", tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_production_profile_passes_check_deploy_at_warning_level(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path, **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        pytest.param({"DEBUG": "true"}, "DEBUG must be off in production", id="debug-on"),
        pytest.param({"SECRET_KEY": ""}, "SECRET_KEY is missing or weak", id="secret-missing"),
        pytest.param({"SECRET_KEY": "short-key"}, "SECRET_KEY is missing or weak", id="secret-short"),
        pytest.param({"SECRET_KEY": "a" * 60}, "SECRET_KEY is missing or weak", id="secret-repetitive"),
        pytest.param(
            {"SECRET_KEY": "django-insecure-" + STRONG_KEY}, "SECRET_KEY is missing or weak", id="secret-insecure"
        ),
        pytest.param({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must name the hosts", id="hosts-empty"),
        pytest.param({"DATABASE_URL": ""}, "DATABASE_URL is required in production", id="database-missing"),
    ],
)
def test_production_profile_refuses_insecure_settings(tmp_path, override, message):
    result = manage("check", tmp_path=tmp_path, **{**PRODUCTION, **override})

    assert result.returncode != 0
    assert message in result.stderr


def test_unknown_profile_is_refused(tmp_path):
    result = manage("check", tmp_path=tmp_path, DJANGO_ENV="staging")

    assert result.returncode != 0
    assert "DJANGO_ENV must be 'embedded' or 'production'" in result.stderr


def test_demo_data_is_refused_in_production(tmp_path):
    result = manage("demo_load", tmp_path=tmp_path, **PRODUCTION)

    assert result.returncode != 0
    assert "demo data is for the embedded default only" in result.stderr


def test_every_variable_the_settings_read_is_listed_in_env_example():
    source = (REPO / "portal" / "settings.py").read_text()
    read = set(re.findall(r'env\.(?:str|bool|int|float|list|db_url)\(\s*"([A-Z_]+)"', source))
    listed = set(re.findall(r"^([A-Z_]+)=", (REPO / ".env.example").read_text(), flags=re.MULTILINE))

    assert len(read) > 20
    assert read - listed == set()

"""One structured line per request, never a secret."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from portal.kernel.logging import KeyValueFormatter
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def lines(caplog) -> list[str]:
    formatter = KeyValueFormatter()
    return [formatter.format(record) for record in caplog.records]


def test_one_line_per_request_with_path_but_not_query_string(client, caplog):
    caplog.set_level(logging.INFO, logger="portal.request")

    client.get("/healthz?token=s3cr3t-in-query", REMOTE_ADDR="10.1.2.3")

    [line] = [line for line in lines(caplog) if "logger=portal.request" in line]
    assert " msg=request method=GET path=/healthz status=200 duration_ms=" in line
    assert line.endswith(" user_id=- remote=10.1.2.3")
    assert "s3cr3t" not in line


def test_login_logs_neither_password_nor_token(api_client, staff_user, caplog):
    caplog.set_level(logging.DEBUG)

    response = api_client.post(reverse("api-v1:auth-token"), {"username": "staff", "password": PASSWORD}, format="json")

    token = response.json()["token"]
    output = "\n".join(lines(caplog))
    assert "path=/api/v1/auth/token/ status=201" in output
    assert PASSWORD not in output
    assert token not in output


def test_values_with_spaces_and_quotes_are_quoted():
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": 'say "hi"', "detail": "a b"})

    line = KeyValueFormatter().format(record)

    assert line.endswith(' level=INFO logger=x msg="say \\"hi\\"" detail="a b"')

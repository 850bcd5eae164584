"""POST /v1/Login/ — the /v1/ API's login on the shared token store."""

from __future__ import annotations

import pytest

from portal import services
from portal.choices import TokenPurpose
from portal.exceptions import TokenInvalid
from portal.models import ApiToken
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
URL = "/v1/Login/"
FORM = "application/x-www-form-urlencoded"


def login(client, body: str, content_type: str = FORM):
    return client.generic("POST", URL, body, content_type=content_type)


def test_success_returns_a_components_token(client, staff_user):
    response = login(client, f"username=staff&password={PASSWORD}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "userid", "userrole", "status", "error"}
    assert (body["userid"], body["userrole"], body["status"], body["error"]) == (
        staff_user.pk,
        "support",
        "SUCCESS",
        "NO_ERROR",
    )
    token = services.token_authenticate(raw=body["token"], purpose=TokenPurpose.COMPONENTS)
    assert token.user == staff_user
    with pytest.raises(TokenInvalid):  # not a staff REST API token
        services.token_authenticate(raw=body["token"], purpose=TokenPurpose.STAFF_API)


def test_multipart_form_is_accepted(client, customer_user):
    response = client.post(URL, {"username": "carol", "password": PASSWORD})  # the test client sends multipart

    assert (response.json()["status"], response.json()["userrole"]) == ("SUCCESS", "customer")


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        pytest.param(
            "username=staff&password=wrong-password-9", FORM, "ACCOUNT_PASSWORD_INCORRECT", id="wrong-password"
        ),
        pytest.param(f"username=nobody&password={PASSWORD}", FORM, "ACCOUNT_DOES_NOT_EXIST", id="no-such-user"),
        pytest.param("password=x", FORM, "ACCOUNT_DOES_NOT_EXIST", id="no-username"),
        pytest.param("username=" + "x" * 300 + "&password=x", FORM, "ACCOUNT_DOES_NOT_EXIST", id="huge-username"),
        pytest.param(
            '{"username": "staff", "password": "x"}', "application/json", "INVALID_CONTENT_TYPE_HEADER", id="json"
        ),
        pytest.param(f"username=staff&password={PASSWORD}", "", "MISSING_CONTENT_TYPE_HEADER", id="no-content-type"),
    ],
)
def test_failures_are_http_200_with_a_code_and_no_token(client, staff_user, body, content_type, error):
    response = login(client, body, content_type)

    assert response.status_code == 200
    assert response.json() == {"status": "FAILURE", "error": error}
    assert ApiToken.objects.count() == 0


def test_repeated_failures_lock_the_account_in_the_dialect(client, staff_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "username=staff&password=wrong-password-9")

    response = login(client, f"username=staff&password={PASSWORD}")

    assert response.status_code == 200
    assert response.json() == {"status": "FAILURE", "error": "ACCOUNT_LOCKED"}
    assert ApiToken.objects.count() == 0

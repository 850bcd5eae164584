"""The staff REST API login and DRF's ``Authorization: Token`` authentication."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt
from django.urls import reverse

from portal.models import ApiToken
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
URL = reverse("api-v1:auth-token")


def login(client, username, password=PASSWORD, **kwargs):
    return client.post(URL, {"username": username, "password": password}, format="json", **kwargs)


def test_login_returns_a_token_once_and_the_token_authenticates(api_client, staff_user):
    response = login(api_client, "staff")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "expires_at", "idle_timeout", "user"}
    assert body["user"] == {"id": staff_user.pk, "username": "staff", "is_staff": True}
    assert body["idle_timeout"] == 7200
    me = api_client.get(URL, HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert me.status_code == 200
    assert "token" not in me.json()
    assert me.json()["user"]["username"] == "staff"


def test_login_accepts_a_form_body(api_client, staff_user):
    body = urlencode({"username": "staff", "password": PASSWORD})

    response = api_client.post(URL, body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"username": "staff", "password": "wrong-password-1"}, id="wrong-password"),
        pytest.param({"username": "nobody", "password": PASSWORD}, id="unknown-user"),
    ],
)
def test_bad_credentials_get_400_and_no_token(api_client, staff_user, body):
    response = api_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "Unable to log in with the provided credentials."}
    assert ApiToken.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param("{}", "application/json", id="empty-object"),
        pytest.param("[1, 2]", "application/json", id="array"),
        pytest.param("{not json", "application/json", id="malformed-json"),
        pytest.param('{"username": "x" , "password": 5}', "text/plain", id="unsupported-type"),
        pytest.param('{"username": "' + "x" * 10_000 + '", "password": "p"}', "application/json", id="huge-username"),
    ],
)
def test_malformed_logins_are_client_errors(api_client, staff_user, body, content_type):
    response = api_client.generic("POST", URL, body, content_type=content_type)

    assert 400 <= response.status_code < 500
    assert ApiToken.objects.count() == 0


def test_repeated_failures_lock_the_login_out_even_with_the_right_password(api_client, staff_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(api_client, "staff", "wrong-password-1").status_code == 400
    assert login(api_client, "staff", "wrong-password-1").status_code == 429

    response = login(api_client, "staff")

    assert response.status_code == 429
    assert response.json() == {"detail": "Too many failed login attempts. Try again later."}
    assert response["Retry-After"] == str(settings.AXES_COOLOFF_TIME.seconds)
    assert ApiToken.objects.count() == 0
    # The attempt with the right password made while locked out counts as one more failure.
    assert AccessAttempt.objects.get(username="staff").failures_since_start == settings.AXES_FAILURE_LIMIT + 1


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Token", id="no-token"),
        pytest.param("Token a b", id="two-parts"),
        pytest.param("Token " + "0" * 64, id="unknown"),
        pytest.param("Token caf\xe9", id="non-ascii"),
    ],
)
def test_bad_token_headers_get_401_with_the_scheme(api_client, header):
    response = api_client.get(URL, HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_logout_revokes_the_token(api_client, staff_user):
    token = login(api_client, "staff").json()["token"]
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}

    assert api_client.delete(URL, **auth).status_code == 204
    response = api_client.get(URL, **auth)

    assert response.status_code == 401
    assert response.json() == {"detail": "Token has been revoked."}


def test_a_session_does_not_stand_in_for_a_token(api_client, staff_user):
    api_client.force_login(staff_user)

    assert api_client.get(URL).status_code == 401


def test_customers_get_no_staff_api_token(api_client, customer_user):
    response = login(api_client, "carol")

    assert response.status_code == 400
    assert ApiToken.objects.count() == 0

"""The staff REST API login and DRF's ``Authorization: Token`` authentication."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from portal.kernel import services
from portal.kernel.choices import TokenPurpose
from portal.kernel.models import ApiToken
from tests.factories import PASSWORD, UserFactory

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


# --- password changes and deactivation end every dialect's tokens ----------------------------------------------------

CRM_LIST = "/crmapi/rest/v2/conax_web_services/provisioning_requests/list"
V1 = "/v1/DeviceProvisioningComponents/"
NEW_PASSWORD = "An0ther-long-passphrase"


def accepted_by_each_dialect(tokens: dict[TokenPurpose, str]) -> dict[str, bool]:
    api = Client()
    staff = api.get(URL, HTTP_AUTHORIZATION=f"Token {tokens[TokenPurpose.STAFF_API]}")
    crm = api.get(CRM_LIST, {"token": tokens[TokenPurpose.CRM], "type": "ADD_SUBSCRIPTIONS"}).json()
    v1 = api.post(
        V1,
        json.dumps({"action": "select"}),
        content_type="application/json",
        HTTP_TOKEN=tokens[TokenPurpose.COMPONENTS],
    ).json()
    return {
        "staff-api": staff.status_code == 200,
        "crm": crm["status"]["code"] != "INVALID_TOKEN",
        "v1": v1.get("error") != "INVALID_TOKEN",
    }


def admin_change_form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "groups": [g.pk for g in user.groups.all()],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "initial-date_joined_0": "",
        "initial-date_joined_1": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def by_admin_password_form(client, user):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    return client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})


def by_own_password_change(client, user):
    client.force_login(user)
    body = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    return client.post(reverse("admin:password_change"), body)


def by_admin_deactivation(client, user):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    return client.post(reverse("admin:auth_user_change", args=[user.pk]), admin_change_form(user, is_active=None))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(by_admin_password_form, id="admin-sets-password"),
        pytest.param(by_own_password_change, id="user-changes-own-password"),
        pytest.param(by_admin_deactivation, id="admin-deactivates"),
    ],
)
def test_a_credentials_change_in_the_admin_ends_the_tokens_of_every_dialect(client, staff_user, change):
    tokens = {purpose: services.token_issue(user=staff_user, purpose=purpose).raw for purpose in TokenPurpose}
    assert accepted_by_each_dialect(tokens) == {"staff-api": True, "crm": True, "v1": True}

    response = change(client, staff_user)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert accepted_by_each_dialect(tokens) == {"staff-api": False, "crm": False, "v1": False}
    revoked = LogEntry.objects.filter(content_type__model="apitoken", action=LogEntry.Action.UPDATE)
    assert revoked.count() == 3
    assert {entry.actor.username for entry in revoked} == {"root" if change is not by_own_password_change else "staff"}


def test_an_unrelated_admin_edit_keeps_the_tokens(client, staff_user):
    tokens = {purpose: services.token_issue(user=staff_user, purpose=purpose).raw for purpose in TokenPurpose}
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)

    url = reverse("admin:auth_user_change", args=[staff_user.pk])
    response = client.post(url, admin_change_form(staff_user, first_name="Stella"))

    assert response.status_code == 302
    assert accepted_by_each_dialect(tokens) == {"staff-api": True, "crm": True, "v1": True}

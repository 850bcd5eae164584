"""POST /v1/Login/: login and logout of the /v1/ API on the shared token store, answered as the original
``Login/index.php`` (Htun88/api) answers: seven fields on every login answer, a ``token`` field meaning logout."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt

from portal.kernel import services
from portal.kernel.choices import TokenPurpose
from portal.kernel.exceptions import TokenInvalid, TokenRevoked
from portal.kernel.models import ApiToken
from tests.components.support import URL as COMPONENTS_URL
from tests.factories import PASSWORD, CustomerFactory

pytestmark = pytest.mark.django_db
URL = "/v1/Login/"
FORM = "application/x-www-form-urlencoded"
FIELDS = ["token", "userid", "userrole", "status", "error", "username", "CONTENT_TYPE"]  # the original's order


def post(client, body: str, content_type: str = FORM):
    return client.generic("POST", URL, body, content_type=content_type)


def components_token(user) -> str:
    return services.token_issue(user=user, purpose=TokenPurpose.COMPONENTS).raw


# --- login ---------------------------------------------------------------------------------------------------------


def test_success_has_the_originals_fields_and_types(client, staff_user):
    response = post(client, f"username=staff&password={PASSWORD}")

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == FIELDS
    assert {k: v for k, v in body.items() if k != "token"} == {
        "userid": staff_user.pk,
        "userrole": "support",
        "status": "SUCCESS",
        "error": "NO_ERROR",
        "username": "staff",
        "CONTENT_TYPE": FORM,
    }
    assert isinstance(body["userid"], int)  # a number, as PDO returns it with native prepares (Includes/db.php)
    token = services.token_authenticate(raw=body["token"], purpose=TokenPurpose.COMPONENTS)
    assert token.user == staff_user
    with pytest.raises(TokenInvalid):  # not a staff REST API token
        services.token_authenticate(raw=body["token"], purpose=TokenPurpose.STAFF_API)


def test_multipart_form_is_accepted(client, customer_user):
    response = client.post(URL, {"username": "carol", "password": PASSWORD})  # the test client sends multipart

    body = response.json()
    assert (body["status"], body["userrole"], body["username"]) == ("SUCCESS", "customer", "carol")
    assert body["CONTENT_TYPE"].startswith("multipart/form-data; boundary=")


@pytest.mark.parametrize(
    ("body", "content_type", "error", "echo"),
    [
        pytest.param(
            "username=staff&password=wrong-password-9", FORM, "ACCOUNT_PASSWORD_INCORRECT", "staff", id="wrong-password"
        ),
        pytest.param(
            f"username=nobody&password={PASSWORD}", FORM, "ACCOUNT_DOES_NOT_EXIST", "nobody", id="no-such-user"
        ),
        pytest.param("password=x", FORM, "ACCOUNT_DOES_NOT_EXIST", "", id="no-username"),
        pytest.param(
            f"username=+staff&password={PASSWORD}",
            FORM,
            "ACCOUNT_DOES_NOT_EXIST",
            "",
            id="username-with-a-space-around",
        ),
        pytest.param("username=" + "x" * 300 + "&password=x", FORM, "ACCOUNT_DOES_NOT_EXIST", "", id="huge-username"),
        pytest.param(
            '{"username": "staff", "password": "x"}', "application/json", "INVALID_CONTENT_TYPE_HEADER", "", id="json"
        ),
        pytest.param(
            f"username=staff&password={PASSWORD}", "", "MISSING_CONTENT_TYPE_HEADER", "", id="no-content-type"
        ),
    ],
)
def test_failures_have_the_originals_fields_and_no_token(client, staff_user, body, content_type, error, echo):
    response = post(client, body, content_type)

    assert response.status_code == 200
    assert response.json() == {
        "token": "ERROR",
        "userid": "",
        "userrole": "",
        "status": "FAILURE",
        "error": error,
        "username": echo,
        "CONTENT_TYPE": content_type,
    }
    assert ApiToken.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("username=a%00b&password=x", id="nul-in-username"),
        pytest.param("username=staff%00&password=x", id="nul-after-a-real-username"),
        pytest.param("username=%ED%A0%80&password=x", id="utf8-encoded-surrogate"),
    ],
)
def test_unstorable_usernames_are_accounts_that_do_not_exist_and_write_nothing(client, staff_user, body):
    response = post(client, body)

    assert response.status_code == 200
    assert (response.json()["error"], response.json()["status"]) == ("ACCOUNT_DOES_NOT_EXIST", "FAILURE")
    assert ApiToken.objects.count() == 0
    assert AccessAttempt.objects.count() == (1 if "ED%A0" in body else 0)  # U+FFFD after decoding: storable


def test_a_password_with_a_nul_is_a_wrong_password(client, staff_user):
    response = post(client, f"username=staff&password={PASSWORD}%00")

    assert (response.status_code, response.json()["error"]) == (200, "ACCOUNT_PASSWORD_INCORRECT")
    assert ApiToken.objects.count() == 0


def test_a_body_django_cannot_parse_is_a_login_without_username(client, staff_user):
    response = post(client, "--x\r\nbroken", "multipart/form-data; boundary=x")

    assert response.status_code == 200
    assert response.json()["error"] == "ACCOUNT_DOES_NOT_EXIST"


def test_repeated_failures_lock_the_account_in_the_dialect(client, staff_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        post(client, "username=staff&password=wrong-password-9")

    response = post(client, f"username=staff&password={PASSWORD}")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["error"]) == ("FAILURE", "ACCOUNT_LOCKED")
    assert ApiToken.objects.count() == 0


# --- logout --------------------------------------------------------------------------------------------------------


def test_logout_revokes_the_token_and_the_components_api_refuses_it(client, customer_user):
    raw = components_token(customer_user)
    assert client.get(COMPONENTS_URL, HTTP_TOKEN=raw).json() == {"error": "NO_DATA"}

    response = post(client, f"token={raw}")

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.content == b'{"status": "LOGGED_OUT", "error": "NO_ERROR"}'
    with pytest.raises(TokenRevoked):
        services.token_authenticate(raw=raw, purpose=TokenPurpose.COMPONENTS)
    assert client.get(COMPONENTS_URL, HTTP_TOKEN=raw).json() == {"error": "INVALID_TOKEN"}


def test_a_token_field_means_logout_even_with_credentials(client, customer_user):
    raw = components_token(customer_user)

    response = post(client, f"username=carol&password={PASSWORD}&token={raw}")

    assert response.json() == {"status": "LOGGED_OUT", "error": "NO_ERROR"}
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 0  # no new token either


def test_logout_revokes_only_that_token(client, customer_user):
    raw, other = components_token(customer_user), components_token(customer_user)

    post(client, f"token={raw}")

    assert services.token_authenticate(raw=other, purpose=TokenPurpose.COMPONENTS).user == customer_user


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda user: "f" * 64, id="unknown"),
        pytest.param(lambda user: "", id="empty"),
        pytest.param(lambda user: "a%00b", id="nul"),
        pytest.param(lambda user: "x" * 5000, id="huge"),
        pytest.param(lambda user: services.token_issue(user=user, purpose=TokenPurpose.STAFF_API).raw, id="staff-api"),
        pytest.param(lambda user: services.token_issue(user=user, purpose=TokenPurpose.CRM).raw, id="crm"),
    ],
)
def test_logout_of_a_token_that_is_not_a_live_v1_token_is_invalid_token1(client, staff_user, token):
    live = components_token(staff_user)
    before = list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at"))

    response = post(client, f"token={token(staff_user)}")

    assert response.status_code == 200
    assert response.content == b'{"error": "INVALID_TOKEN1"}'
    assert (
        list(ApiToken.objects.filter(pk__in=[p for p, _ in before]).order_by("pk").values_list("pk", "revoked_at"))
        == before
    )
    assert services.token_authenticate(raw=live, purpose=TokenPurpose.COMPONENTS)


def test_logout_twice_and_of_an_inactive_users_token(client):
    user = CustomerFactory(username="dora")
    raw, inactive_raw = components_token(user), components_token(CustomerFactory(username="ed", is_active=False))

    first, second = post(client, f"token={raw}"), post(client, f"token={raw}")
    inactive = post(client, f"token={inactive_raw}")

    assert first.json() == {"status": "LOGGED_OUT", "error": "NO_ERROR"}
    assert second.json() == inactive.json() == {"error": "INVALID_TOKEN1"}

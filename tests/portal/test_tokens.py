"""The token store shared by every API login."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import update_last_login
from django.db import connection

from portal.kernel import services
from portal.kernel.choices import TokenPurpose
from portal.kernel.exceptions import TokenExpired, TokenInvalid, TokenRevoked
from portal.kernel.models import ApiToken
from portal.kernel.permissions import is_support_staff
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def issue(user=None, purpose=TokenPurpose.STAFF_API, **kwargs):
    return services.token_issue(user=user or UserFactory(), purpose=purpose, **kwargs)


def test_issued_token_has_256_random_bits_and_only_its_digest_is_stored():
    issued = issue()

    assert re.fullmatch(r"[0-9a-f]{64}", issued.raw)
    assert issued.token.digest == hashlib.sha256(issued.raw.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM portal_apitoken")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert issued.raw not in stored


def test_two_tokens_differ():
    user = UserFactory()

    assert issue(user).raw != issue(user).raw


def test_authenticate_returns_the_token_and_its_user():
    issued = issue()

    token = services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)

    assert token.pk == issued.token.pk
    assert token.user == issued.token.user


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_the_token_and_user_read_in_one_statement_are_what_the_orm_reads():
    """Every column through the ORM's converters (SQLite: text datetimes and JSON, integer durations and booleans)."""
    issued = issue(StaffFactory(first_name="Ada", email="ada@example.com"), metadata={"unit": "U1", "n": [1, 2]})

    token = services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)

    stored = ApiToken.objects.select_related("user").get(pk=issued.token.pk)
    assert _fields(token) == _fields(stored) and _fields(token.user) == _fields(stored.user)
    assert token.idle_timeout == stored.idle_timeout and token.metadata["n"] == [1, 2]
    assert not token._state.adding and token.user._state.db == stored.user._state.db


@pytest.mark.parametrize(
    ("factory", "support"),
    [
        pytest.param(StaffFactory, True, id="support-staff"),
        pytest.param(lambda: UserFactory(is_staff=True), False, id="staff-outside-support"),
    ],
)
def test_the_token_check_answers_the_support_question_without_a_query(factory, support, django_assert_num_queries):
    issued = issue(factory())

    with django_assert_num_queries(1):  # the token, its user and their support membership
        token = services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)
        assert is_support_staff(token.user) is support


def test_a_user_not_read_by_the_token_check_still_asks_for_the_support_group(django_assert_num_queries):
    user = get_user_model().objects.get(pk=StaffFactory().pk)

    with django_assert_num_queries(1):
        assert is_support_staff(user) is True
    user.groups.clear()
    with django_assert_num_queries(1):  # nothing remembered: asked again
        assert is_support_staff(user) is False


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("0" * 64, id="unknown"),
        pytest.param("f" * 10_000, id="huge"),
        pytest.param("\x00" * 64, id="nul"),
        pytest.param("\udcff" * 8, id="lone-surrogate"),
    ],
)
def test_unknown_or_malformed_tokens_are_invalid(raw):
    issue()

    with pytest.raises(TokenInvalid):
        services.token_authenticate(raw=raw, purpose=TokenPurpose.STAFF_API)


def test_a_token_only_authenticates_its_own_dialect():
    issued = issue(purpose=TokenPurpose.CRM)

    with pytest.raises(TokenInvalid):
        services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)


def test_token_of_a_deactivated_user_is_invalid():
    issued = issue()
    issued.token.user.is_active = False
    issued.token.user.save()

    with pytest.raises(TokenInvalid):
        services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)


def test_absolute_expiry_even_when_used_continuously():
    with time_machine.travel(START, tick=False) as clock:
        issued = issue(absolute_ttl=3600, idle_ttl=1800)
        for _ in range(3):  # used every 15 minutes for 45 minutes: never idle
            clock.shift(timedelta(minutes=15) - timedelta(seconds=1))
            services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)
        clock.move_to(START + timedelta(seconds=3600))

        with pytest.raises(TokenExpired):
            services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)


def test_idle_expiry():
    with time_machine.travel(START, tick=False) as clock:
        issued = issue(absolute_ttl=36000, idle_ttl=600)
        clock.shift(timedelta(seconds=599))
        services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)  # resets the idle clock
        clock.shift(timedelta(seconds=599))
        services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)
        clock.shift(timedelta(seconds=600))

        with pytest.raises(TokenExpired):
            services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)


def test_idle_clock_is_written_at_most_once_a_minute():
    with time_machine.travel(START, tick=False) as clock:
        issued = issue()
        clock.shift(timedelta(seconds=30))
        services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)
        assert ApiToken.objects.get().last_used_at == START

        clock.shift(timedelta(seconds=31))
        services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)
        assert ApiToken.objects.get().last_used_at == START + timedelta(seconds=61)


def test_revoked_token_stops_working_and_revoking_twice_reports_it():
    issued = issue()

    assert services.token_revoke(token=issued.token) is True
    assert services.token_revoke(token=issued.token) is False
    with pytest.raises(TokenRevoked):
        services.token_authenticate(raw=issued.raw, purpose=TokenPurpose.STAFF_API)


def test_revoke_all_of_one_user_and_purpose_leaves_the_others():
    user = UserFactory()
    mine, crm, other = issue(user), issue(user, purpose=TokenPurpose.CRM), issue()

    assert services.token_revoke_all(user=user, purpose=TokenPurpose.STAFF_API) == 1

    with pytest.raises(TokenRevoked):
        services.token_authenticate(raw=mine.raw, purpose=TokenPurpose.STAFF_API)
    services.token_authenticate(raw=crm.raw, purpose=TokenPurpose.CRM)
    services.token_authenticate(raw=other.raw, purpose=TokenPurpose.STAFF_API)


def test_purge_deletes_only_long_dead_tokens():
    with time_machine.travel(START, tick=False) as clock:
        expired_long_ago = issue(absolute_ttl=60)
        revoked_long_ago = issue()
        services.token_revoke(token=revoked_long_ago.token)
        clock.shift(timedelta(days=8))
        live = issue()
        revoked_now = issue()
        services.token_revoke(token=revoked_now.token)

        assert services.tokens_purge() == 2

    assert set(ApiToken.objects.values_list("pk", flat=True)) == {live.token.pk, revoked_now.token.pk}
    assert expired_long_ago.token.pk not in ApiToken.objects.values_list("pk", flat=True)


# --- a token lives no longer than the credentials it was issued against ----------------------------------------------

DIALECTS = [TokenPurpose.STAFF_API, TokenPurpose.CRM, TokenPurpose.COMPONENTS]


def issue_every_dialect(user) -> dict[TokenPurpose, str]:
    return {purpose: issue(user, purpose=purpose).raw for purpose in DIALECTS}


def refusal(raw: str, purpose: TokenPurpose) -> type[Exception] | None:
    try:
        services.token_authenticate(raw=raw, purpose=purpose)
    except (TokenInvalid, TokenRevoked, TokenExpired) as exc:
        return type(exc)
    return None


def revocation_reasons(user) -> list[str]:
    entries = LogEntry.objects.filter(content_type__model="apitoken", object_id__in=user.api_tokens.values("pk"))
    return sorted(e.additional_data["reason"] for e in entries.filter(action=LogEntry.Action.UPDATE))


def test_set_password_and_save_revokes_the_tokens_of_every_dialect_at_once():
    user = UserFactory()
    tokens = issue_every_dialect(user)
    other = issue().raw

    user.set_password("An0ther-long-passphrase")
    user.save()

    assert ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() == 0
    assert {purpose: refusal(raw, purpose) for purpose, raw in tokens.items()} == dict.fromkeys(DIALECTS, TokenRevoked)
    assert revocation_reasons(user) == ["password_changed"] * 3
    assert refusal(other, TokenPurpose.STAFF_API) is None


def test_a_password_changed_behind_save_revokes_each_token_when_it_is_next_used():
    user = UserFactory()
    tokens = issue_every_dialect(user)

    get_user_model().objects.filter(pk=user.pk).update(password=make_password("An0ther-long-passphrase"))

    assert {purpose: refusal(raw, purpose) for purpose, raw in tokens.items()} == dict.fromkeys(DIALECTS, TokenRevoked)
    assert ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() == 0
    assert revocation_reasons(user) == ["password_changed"] * 3


def test_a_token_issued_after_the_change_works():
    user = UserFactory()
    issue(user)
    user.set_password("An0ther-long-passphrase")
    user.save()

    fresh = issue(user)

    assert refusal(fresh.raw, TokenPurpose.STAFF_API) is None


def test_deactivating_by_save_revokes_and_reactivating_does_not_bring_them_back():
    user = UserFactory()
    tokens = issue_every_dialect(user)

    user.is_active = False
    user.save()
    assert {purpose: refusal(raw, purpose) for purpose, raw in tokens.items()} == dict.fromkeys(DIALECTS, TokenInvalid)
    user.is_active = True
    user.save()

    assert {purpose: refusal(raw, purpose) for purpose, raw in tokens.items()} == dict.fromkeys(DIALECTS, TokenRevoked)
    assert revocation_reasons(user) == ["deactivated"] * 3


def test_deactivated_behind_save_the_tokens_are_refused_and_revoked_on_use():
    user = UserFactory()
    tokens = issue_every_dialect(user)
    users = get_user_model().objects.filter(pk=user.pk)

    users.update(is_active=False)
    refused = {purpose: refusal(raw, purpose) for purpose, raw in tokens.items()}
    users.update(is_active=True)

    assert refused == dict.fromkeys(DIALECTS, TokenInvalid)
    assert {purpose: refusal(raw, purpose) for purpose, raw in tokens.items()} == dict.fromkeys(DIALECTS, TokenRevoked)
    assert revocation_reasons(user) == ["user_inactive"] * 3


def test_reactivating_by_save_after_a_deactivation_behind_save_revokes():
    user = UserFactory()
    tokens = issue_every_dialect(user)
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    user.refresh_from_db()

    user.is_active = True
    user.save()

    assert {purpose: refusal(raw, purpose) for purpose, raw in tokens.items()} == dict.fromkeys(DIALECTS, TokenRevoked)
    assert revocation_reasons(user) == ["reactivated"] * 3


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda user: setattr(user, "email", "new@example.com") or user.save(), id="email"),
        pytest.param(lambda user: update_last_login(None, user), id="last-login"),
        pytest.param(lambda user: user.save(), id="unchanged"),
    ],
)
def test_other_changes_keep_the_tokens(change):
    user = UserFactory()
    tokens = issue_every_dialect(user)

    change(user)

    assert {purpose: refusal(raw, purpose) for purpose, raw in tokens.items()} == dict.fromkeys(DIALECTS)
    assert revocation_reasons(user) == []

"""The branded admin, its two groups, and brute-force protection of the staff login."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = reverse("admin:login")


def test_login_page_is_branded(client):
    response = client.get(LOGIN)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Log in | Provisioning portal</title>" in html
    assert '<div id="site-name"><a href="/admin/">Provisioning portal</a></div>' in html


def test_migrations_create_support_and_customers_groups_with_their_permissions():
    support = Group.objects.get(name="support")
    customers = Group.objects.get(name="customers")

    codenames = set(support.permissions.values_list("content_type__app_label", "codename"))
    assert {("devices", "change_device"), ("devices", "add_vendor"), ("auditlog", "view_logentry")} <= codenames
    assert ("auth", "change_user") not in codenames
    assert customers.permissions.count() == 0


def test_support_staff_see_the_device_inventory(client, staff_user):
    client.force_login(staff_user)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert reverse("admin:devices_device_changelist") in response.content.decode()


def test_customers_cannot_log_in_to_the_admin(client, customer_user):
    response = client.post(LOGIN, {"username": "carol", "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 200
    assert "Please enter the correct username and password for a staff account" in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302


def test_staff_login_is_locked_after_repeated_failures(client, staff_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(LOGIN, {"username": "staff", "password": "wrong-password-1"}).status_code == 200

    locked = client.post(LOGIN, {"username": "staff", "password": "wrong-password-1"})
    after = client.post(LOGIN, {"username": "staff", "password": PASSWORD})

    assert locked.status_code == 429
    assert after.status_code == 429
    assert "Too many failed login attempts" in after.content.decode()
    assert after["Retry-After"] == str(settings.AXES_COOLOFF_TIME.seconds)
    assert "_auth_user_id" not in client.session


def test_correct_login_resets_the_failure_count(client, staff_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(LOGIN, {"username": "staff", "password": "wrong-password-1"})

    assert client.post(LOGIN, {"username": "staff", "password": PASSWORD}).status_code == 302
    client.logout()
    assert client.post(LOGIN, {"username": "staff", "password": "wrong-password-1"}).status_code == 200

"""Password reset on the pages: Django's views in the pages' look, linked from the login page. The email (the
console backend in the embedded default, the outbox here) carries the one link; an unknown address gets the same
answer; requests are rate-limited per address and per client, known address or not."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from tests.factories import PASSWORD, CustomerFactory

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-new-Password-for-carol-7"


def _link(message) -> str:
    (link,) = re.findall(r"http://testserver(/password-reset/[^/\s]+/[^/\s]+/)", message.body)
    return link


def test_the_login_page_links_to_the_reset(client):
    html = client.get("/login/").content.decode()

    assert '<a href="/password-reset/">Forgot your password?</a>' in html


def test_the_embedded_default_prints_emails_on_the_console():
    from portal import settings as portal_settings

    assert portal_settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"


def test_a_customer_resets_the_password_and_logs_in_with_the_new_one(client, customer_user):
    form = client.get("/password-reset/")
    asked = client.post("/password-reset/", {"email": "carol@example.com"})
    (message,) = mail.outbox
    confirm = client.get(_link(message), follow=True)
    changed = client.post(
        confirm.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )
    client.logout()
    old = client.post("/login/", {"username": "carol", "password": PASSWORD})
    new = client.post("/login/", {"username": "carol", "password": NEW_PASSWORD})

    assert form.status_code == 200 and '<label for="id_email">Email address</label>' in form.content.decode()
    assert (asked.status_code, asked["Location"]) == (302, "/password-reset/sent/")
    assert message.to == ["carol@example.com"] and message.subject == "Your password for the provisioning portal"
    assert "Hello carol," in message.body and "The link works for 3 hours and only once." in message.body
    assert "<h1>Choose a new password</h1>" in confirm.content.decode()
    assert changed.redirect_chain[-1] == ("/password-reset/done/", 302)
    assert "<h1>Your password is changed</h1>" in changed.content.decode()
    assert old.status_code == 200  # the form again, with its error
    assert (new.status_code, new["Location"]) == (302, "/")


def test_a_used_link_no_longer_works(client, customer_user):
    client.post("/password-reset/", {"email": "carol@example.com"})
    link = _link(mail.outbox[0])
    confirm = client.get(link, follow=True)
    client.post(confirm.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    again = client.get(link, follow=True)

    assert "<h1>This link no longer works</h1>" in again.content.decode()
    assert 'href="/password-reset/">Ask for a new link</a>' in again.content.decode()


def test_a_weak_new_password_is_refused_in_words(client, customer_user):
    client.post("/password-reset/", {"email": "carol@example.com"})
    confirm = client.get(_link(mail.outbox[0]), follow=True)

    refused = client.post(confirm.redirect_chain[-1][0], {"new_password1": "12345", "new_password2": "12345"})

    customer_user.refresh_from_db()
    assert refused.status_code == 200 and "This password is too short." in refused.content.decode()
    assert customer_user.check_password(PASSWORD)


def test_an_unknown_address_gets_the_same_answer_and_no_email(client, customer_user):
    known = client.post("/password-reset/", {"email": "carol@example.com"}, follow=True)
    unknown = client.post("/password-reset/", {"email": "nobody@example.com"}, follow=True)

    assert known.redirect_chain == unknown.redirect_chain == [("/password-reset/sent/", 302)]
    assert known.content == unknown.content
    assert [message.to for message in mail.outbox] == [["carol@example.com"]]


def test_reset_requests_are_rate_limited_for_known_and_unknown_addresses(client, settings):
    settings.PASSWORD_RESET_RATE_LIMIT = "2/3600"
    CustomerFactory(username="dave")

    known = [client.post("/password-reset/", {"email": "dave@example.com"}).status_code for _ in range(3)]
    client.post("/password-reset/", {"email": "x@example.com"}, REMOTE_ADDR="10.0.0.9")
    unknown = client.post("/password-reset/", {"email": "x@example.com"}, REMOTE_ADDR="10.0.0.9")
    limited = client.post("/password-reset/", {"email": "x@example.com"}, REMOTE_ADDR="10.0.0.9")

    assert known == [302, 302, 429]
    assert unknown.status_code == 302 and limited.status_code == 429
    assert int(limited["Retry-After"]) > 0 and "<h1>Too many reset requests</h1>" in limited.content.decode()
    assert len(mail.outbox) == 2  # dave's first two


def test_an_invalid_address_is_answered_in_words(client):
    response = client.post("/password-reset/", {"email": "not an address"})

    assert response.status_code == 200 and "Enter a valid email address." in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode() and mail.outbox == []

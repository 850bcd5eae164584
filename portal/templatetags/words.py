"""``{% load words %}``: the customer pages' plain words for the portal's codes, in one place. A page shows these, never
the code itself (``notactivated``, ``PROVISIONED``, ``ADD_SUBSCRIPTIONS``, a status 200), not even folded away:
support staff find the codes on the device's admin page (its staff panel)."""

from __future__ import annotations

import re

from django import template

register = template.Library()

ACTIVATION = {
    "notadded": "Not yet enabled by your provider",
    "notactivated": "Waiting for activation",
    "activated": "Activated",
    "expired": "Activation time ran out",
    "disabled": "Switched off by your provider",
}
PROVISION_TYPE = {
    "HARDWARE": "Box security keys",
    "CRYPTANIUM": "Content protection keys",
}
PROVISION_STATE = {
    "NOT_PROVISIONED": "Not installed yet",
    "IN_PROGRESS": "Installing",
    "PROVISIONED": "Installed",
    "CORRUPTED": "Damaged, needs reinstalling",
}
REQUEST_TYPE = {
    "ADD_SUBSCRIPTIONS": "Add a package",
    "CANCEL_SUBSCRIPTIONS": "Cancel a package",
    "GET_ACTIVE_SUBSCRIPTIONS": "Check your packages",
    "CREATE_PAIRING": "Pair the card with the box",
    "ADD_TO_EXISTING_PAIRING": "Add a card to the pairing",
    "GET_PAIRING_STATUS_FOR_CARD": "Check the card's pairing",
    "GET_PAIRING_STATUS_FOR_PAIRING_MODULE": "Check the box's pairing",
    "DISPLAY_FINGERPRINT": "Show an identification mark on screen",
    "UPDATE_CA_PIN_TO_DEFAULT_VALUE": "Reset the PIN",
    "UPDATE_CA_PIN_TO_GIVEN_VALUE": "Change the PIN",
    "SEND_MAIL_MESSAGE_TO_CLIENT": "Message to your TV",
    "SEND_BARK_MESSAGE_TO_CLIENT": "On-screen notice",
    "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT": "Repeating on-screen notice",
}
REQUEST_STATE = {
    "PENDING": "Waiting",
    "COMPLETED": "Done",
    "REJECTED": "Refused",
}
# A box's reason starts with its own code ("RT_NO_CREDS. No credentials present on the device"): the words follow it.
REASON_CODE = re.compile(r"^[A-Z][A-Z0-9_]*\.\s+")


def _words(table: dict[str, str], code: str | None, unknown: str) -> str:
    return table.get(code or "", unknown)


@register.filter
def activation_words(code: str | None) -> str:
    return _words(ACTIVATION, code, "Unknown")


@register.filter
def provision_type_words(code: str | None) -> str:
    return _words(PROVISION_TYPE, code, "Other keys")


@register.filter
def provision_state_words(code: str | None) -> str:
    return _words(PROVISION_STATE, code, "Unknown")


@register.filter
def request_type_words(code: str | None) -> str:
    return _words(REQUEST_TYPE, code, "Other request")


@register.filter
def request_state_words(code: str | None) -> str:
    return _words(REQUEST_STATE, code, "Unknown")


@register.filter
def reason_words(reason: str | None) -> str:
    """The box's explanation without its leading code; empty when it is a code alone."""
    text = REASON_CODE.sub("", reason or "").strip()
    return "" if re.fullmatch(r"[A-Z0-9_.]*", text) else text


@register.filter
def box_result_words(status: int | None) -> str:
    """What the box's last provisioning event says, as the customer would put it. A key update that went through does
    not mean that every kind of key is installed: the table of keys says which are."""
    if status is None:
        return "No news from your box yet"
    return "Its last key update went through" if status == 200 else "Its last key update failed"


@register.filter
def event_words(event) -> str:
    """One of the box's recent events as a sentence (``event`` is a ``BoxEvent``)."""
    if event.name != "provisioningchange":
        return "Your box sent a message"
    if event.status is None:
        return "Your box reported a change"
    return "Key update went through" if event.status == 200 else "Key update failed"

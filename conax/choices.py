from django.db import models


class RequestType(models.TextChoices):
    """The 13 Conax provisioning request types of the CRM.COM API (seed 003); the API speaks the values, the
    labels say what each does in words (the admin, the customer pages)."""

    ADD_SUBSCRIPTIONS = "ADD_SUBSCRIPTIONS", "Add services to a card"
    CANCEL_SUBSCRIPTIONS = "CANCEL_SUBSCRIPTIONS", "Cancel services on a card"
    GET_ACTIVE_SUBSCRIPTIONS = "GET_ACTIVE_SUBSCRIPTIONS", "Read a card's active services"
    CREATE_PAIRING = "CREATE_PAIRING", "Pair cards and boxes"
    ADD_TO_EXISTING_PAIRING = "ADD_TO_EXISTING_PAIRING", "Add to an existing pairing"
    GET_PAIRING_STATUS_FOR_CARD = "GET_PAIRING_STATUS_FOR_CARD", "Read a card's pairing"
    GET_PAIRING_STATUS_FOR_PAIRING_MODULE = "GET_PAIRING_STATUS_FOR_PAIRING_MODULE", "Read a box's pairing"
    DISPLAY_FINGERPRINT = "DISPLAY_FINGERPRINT", "Show a fingerprint on screen"
    UPDATE_CA_PIN_TO_DEFAULT_VALUE = "UPDATE_CA_PIN_TO_DEFAULT_VALUE", "Reset the PIN to its default"
    UPDATE_CA_PIN_TO_GIVEN_VALUE = "UPDATE_CA_PIN_TO_GIVEN_VALUE", "Change the PIN"
    SEND_MAIL_MESSAGE_TO_CLIENT = "SEND_MAIL_MESSAGE_TO_CLIENT", "Send a mail message"
    SEND_BARK_MESSAGE_TO_CLIENT = "SEND_BARK_MESSAGE_TO_CLIENT", "Show an on-screen message"
    SEND_REPEATING_BARK_MESSAGE_TO_CLIENT = (
        "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT",
        "Show a repeating on-screen message",
    )


class LifeCycleState(models.TextChoices):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"


class Priority(models.TextChoices):
    REGULAR = "REGULAR"
    EXPRESS = "EXPRESS"

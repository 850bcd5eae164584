"""Errors of the webhooks app, with stable codes (the staff REST API answers them by category)."""

from portal.kernel.errors import Category, DomainError


class WebhookError(DomainError):
    code = "WEBHOOK_ERROR"


class InvalidEndpoint(WebhookError):
    """A URL that is not http(s), an unknown event type, a secret too short."""

    code = "INVALID_ENDPOINT"


class EndpointExists(WebhookError):
    code = "ENDPOINT_EXISTS"
    category = Category.CONFLICT


class NotRedeliverable(WebhookError):
    code = "NOT_REDELIVERABLE"
    category = Category.CONFLICT

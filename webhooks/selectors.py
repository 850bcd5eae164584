from __future__ import annotations

from django.db.models import QuerySet

from webhooks.models import Delivery, Endpoint


def endpoint_list() -> QuerySet[Endpoint]:
    return Endpoint.objects.order_by("name")


def delivery_list() -> QuerySet[Delivery]:
    return Delivery.objects.select_related("endpoint").order_by("-pk")

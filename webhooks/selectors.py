from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Min, QuerySet

from webhooks.choices import DeliveryState
from webhooks.models import Delivery, Endpoint


def endpoint_list() -> QuerySet[Endpoint]:
    return Endpoint.objects.order_by("name")


def delivery_list() -> QuerySet[Delivery]:
    return Delivery.objects.select_related("endpoint").order_by("-pk")


def deliveries_pending() -> tuple[int, datetime | None]:
    """How many deliveries wait to be sent (the outbox), and since when the oldest of them waits (it was written)."""
    pending = Delivery.objects.filter(state=DeliveryState.PENDING)
    summary = pending.aggregate(count=Count("pk"), oldest=Min("created_at"))
    return summary["count"], summary["oldest"]

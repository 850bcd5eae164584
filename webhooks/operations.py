"""Redeliver over many deliveries (``portal.kernel.jobs``): from the delivery log's list action and a delivery's
own page, saying why it left a delivery alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portal.kernel import jobs
from webhooks import services
from webhooks.choices import DeliveryState
from webhooks.exceptions import NotRedeliverable
from webhooks.models import Delivery


@jobs.register("webhooks.redeliver", model=Delivery, verb="redeliver", done_verb="queued for delivery again")
def redeliver(ids: list[int], params: Mapping[str, Any], actor: jobs.Actor) -> jobs.Outcome:
    before = dict(Delivery.objects.filter(pk__in=ids).values_list("pk", "state"))
    refused = {pk: "no such delivery (removed)" for pk in ids if pk not in before}
    refused |= {pk: "still pending: it is being sent" for pk, state in before.items() if state == DeliveryState.PENDING}
    done = [pk for pk in ids if pk not in refused]
    if done:
        try:
            services.deliveries_redeliver(ids=done)
        except NotRedeliverable:  # all of them became pending meanwhile
            refused |= {pk: "still pending: it is being sent" for pk in done}
            done = []
    return jobs.Outcome(done=done, refused=refused)

"""Conax requests over many (``portal.kernel.jobs``): "process now" and "retry", from the admin's list actions and
the request's own page, each saying why it left a request alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from conax import services
from conax.choices import LifeCycleState
from conax.exceptions import ConaxError
from conax.models import ProvisioningRequest
from portal.kernel import jobs


def _actor(actor: jobs.Actor) -> services.Actor:
    return services.Actor(actor if isinstance(actor, User) else None)


@jobs.register("conax.process_now", model=ProvisioningRequest, verb="process now", done_verb="queued for the head-end")
def process_now(ids: list[int], params: Mapping[str, Any], actor: jobs.Actor) -> jobs.Outcome:
    before = dict(ProvisioningRequest.objects.filter(pk__in=ids).values_list("pk", "life_cycle_state"))
    held = set(
        ProvisioningRequest.objects.filter(pk__in=ids, claimed_until__gt=timezone.now()).values_list("pk", flat=True)
    )
    services.requests_process_now(numbers=ids, actor=_actor(actor))
    refused: dict[int, str] = {}
    for pk in ids:
        if pk not in before:
            refused[pk] = "no such request (removed)"
        elif before[pk] != LifeCycleState.PENDING:
            refused[pk] = f"already {before[pk].lower()}"
        elif pk in held:
            refused[pk] = "a worker is sending it right now"
    return jobs.Outcome(done=[pk for pk in ids if pk not in refused], refused=refused)


@jobs.register("conax.retry", model=ProvisioningRequest, verb="retry", done_verb="retried")
def retry(ids: list[int], params: Mapping[str, Any], actor: jobs.Actor) -> jobs.Outcome:
    outcome = jobs.Outcome()
    found = {r.pk: r for r in ProvisioningRequest.objects.filter(pk__in=ids)}
    for pk in ids:
        original = found.get(pk)
        if original is None:
            outcome.refused[pk] = "no such request (removed)"
            continue
        try:
            services.request_retry(request=original, actor=_actor(actor))
        except ConaxError as exc:
            outcome.refused[pk] = exc.message
        else:
            outcome.done.append(pk)
    return outcome

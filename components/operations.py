"""Activate and deactivate provisioning components over many (``portal.kernel.jobs``), for the admin's buttons and
list actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User

from components import services
from components.choices import ActiveStatus
from components.models import ProvisioningComponent
from portal.kernel import jobs


def _set(status: ActiveStatus) -> jobs.Function:
    def run(ids: list[int], params: Mapping[str, Any], actor: jobs.Actor) -> jobs.Outcome:
        user = actor if isinstance(actor, User) else None
        changed = set(services.components_set_status_ids(ids=ids, active_status=status, user=user))
        found = set(ProvisioningComponent.objects.filter(pk__in=ids).values_list("pk", flat=True))
        already = f"already {status.label.lower()}"
        refused = {pk: already if pk in found else "no such component (removed)" for pk in ids if pk not in changed}
        return jobs.Outcome(done=[pk for pk in ids if pk in changed], refused=refused)

    return run


jobs.register("components.activate", model=ProvisioningComponent, verb="activate", done_verb="activated")(
    _set(ActiveStatus.ACTIVE)
)
jobs.register("components.deactivate", model=ProvisioningComponent, verb="deactivate", done_verb="deactivated")(
    _set(ActiveStatus.INACTIVE)
)

"""Set-top-box commands over many boxes (``portal.kernel.jobs``): refresh, reprovision, platform provision and set
index, from the admin's list actions (at once for a few boxes, in the background with live progress for many)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User

from portal.kernel import jobs
from provisioning import services
from provisioning.choices import CommandKind
from provisioning.models import SetTopBox


def _queue(kind: str) -> jobs.Function:
    def run(ids: list[int], params: Mapping[str, Any], actor: jobs.Actor) -> jobs.Outcome:
        user = actor if isinstance(actor, User) else None
        result = services.commands_queue(box_ids=ids, kind=kind, params=dict(params), requested_by=user)
        return jobs.Outcome(done=[command.box_id for command in result.queued], refused=result.refused)

    return run


for _kind, _what in (
    (CommandKind.REFRESH, "a status refresh"),
    (CommandKind.REPROVISION, "a reprovision"),
    (CommandKind.PROVISION, "a platform provision"),
    (CommandKind.SET_INDEX, "a key index"),
):
    jobs.register(
        f"boxes.{_kind.value}",
        model=SetTopBox,
        verb=f"queue {_what} for",
        done_verb=f"queued {_what} for",
        not_done="got none",
    )(_queue(_kind.value))

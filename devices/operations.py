"""The inventory's operations over many devices (``portal.kernel.jobs``): the admin's list actions and buttons, at
once for a small selection and in the background for a large one. Each says why it left a device alone."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from auditlog.context import set_actor
from django.contrib.auth.models import User

from devices import services
from devices.choices import ActivationState as S
from devices.models import Device, DeviceModel
from portal.kernel import jobs

# Why a device was left alone, by its state as read everywhere (a lapsed window reads as expired).
WHY = {
    "enable": {
        S.NOT_ACTIVATED: "already waiting for activation",
        S.ACTIVATED: "already activated, re-enable it instead",
        S.EXPIRED: "window expired, re-enable it instead",
        S.DISABLED: "disabled, re-enable it instead",
    },
    "re-enable": {
        S.NOT_ADDED: "never enabled, enable it instead",
        S.NOT_ACTIVATED: "already waiting for activation",
    },
    "disable": {S.NOT_ADDED: "never enabled", S.DISABLED: "already disabled"},
}


def _why(verb: str, skipped: list[int]) -> dict[int, str]:
    states = dict(Device.objects.filter(pk__in=skipped).with_effective_state().values_list("pk", "effective_state"))
    why = WHY[verb]
    return {pk: why.get(states[pk], "not in a state that allows it") if pk in states else "removed" for pk in skipped}


def _transition(verb: str, service: Callable[..., services.BulkResult]) -> jobs.Function:
    def run(ids: list[int], params: Mapping[str, Any], actor: jobs.Actor) -> jobs.Outcome:
        result = service(ids=ids)
        return jobs.Outcome(done=result.changed, refused=_why(verb, result.skipped))

    return run


for _name, _verb, _done, _service in (
    ("devices.enable", "enable", "enabled", services.devices_enable),
    ("devices.reenable", "re-enable", "re-enabled", services.devices_reenable),
    ("devices.disable", "disable", "disabled", services.devices_disable),
):
    jobs.register(_name, model=Device, verb=_verb, done_verb=_done)(_transition(_verb, _service))


# --- a large serial import, in the background -------------------------------------------------------------------
# The file's rows travel in the job's params (the admin takes files up to 2 MiB; serials are not secrets), keyed by
# line number; the job's keys are the line numbers, so each chunk imports its lines and a lost worker redoes none.


@jobs.register("devices.import", model=Device, verb="import", done_verb="imported", not_done="were not imported")
def import_rows(ids: list[int], params: Mapping[str, Any], actor: jobs.Actor) -> jobs.Outcome:
    model = DeviceModel.objects.get(pk=params["model_id"])
    table = params["rows"]
    rows = [(line, *table[str(line)]) for line in ids if str(line) in table]
    user = actor if isinstance(actor, User) else None
    # The worker has no request: the job's requester is the actor of the audit entries the import writes.
    with set_actor(user) if user is not None else contextlib.nullcontext():
        result = services.devices_import(model=model, rows=rows, enable=bool(params.get("enable")))
    refused = {line: reason for line, _value, reason in result.invalid}
    labels = {line: f"line {line}: {value}" for line, value, _reason in result.invalid}
    return jobs.Outcome(done=[line for line in ids if line not in refused], refused=refused, labels=labels)

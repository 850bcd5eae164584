"""The inventory's operations over many devices (``portal.kernel.jobs``): the admin's list actions and buttons, at
once for a small selection and in the background for a large one. Each says why it left a device alone."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from devices import services
from devices.choices import ActivationState as S
from devices.models import Device
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

"""The list filters staff expect (devices/, provisioning/, conax/admin_filters.py): vendor and model as choices, boxes
by last event age and provisioning state, failing only, created within. Each lists the right rows and refuses a value
it does not offer: a 400 with nothing listed where the list has FilterSetAdminMixin, Django's ``?e=1`` elsewhere."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from provisioning.models import Command, SetTopBox, TypeStatus
from tests.conax.factories import ProvisioningRequestFactory
from tests.factories import DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = pytest.mark.django_db

DEVICES = "/admin/devices/device/"
BOXES = "/admin/provisioning/settopbox/"
COMMANDS = "/admin/provisioning/command/"
REQUESTS = "/admin/conax/provisioningrequest/"


def listed(response) -> list[str]:
    return sorted(str(obj.pk) for obj in response.context["cl"].result_list)


def errors(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


@pytest.fixture
def support(client):
    client.force_login(StaffFactory(username="support-1"))
    return client


@pytest.fixture
def models():
    acme_a = DeviceModelFactory(vendor__name="acme", name="a")
    acme_b = DeviceModelFactory(vendor=acme_a.vendor, name="b")
    globex = DeviceModelFactory(vendor__name="globex", name="g")
    return acme_a, acme_b, globex


@pytest.fixture
def boxes(models):
    acme_a, acme_b, globex = models
    ages = {"heard": _ago(minutes=10), "day": _ago(hours=5), "silent": _ago(days=2), "never": None}
    made = {}
    for (name, at), model in zip(ages.items(), [acme_a, acme_b, globex, acme_a], strict=True):
        device = DeviceFactory(model=model, serial_number=f"BOX-{name}")
        made[name] = SetTopBox.objects.create(device=device, thunder_host=f"{name}.example", last_event_at=at)
    for name, state in [("heard", "PROVISIONED"), ("day", "CORRUPTED")]:
        TypeStatus.objects.create(box=made[name], provision_type="HARDWARE", state=state, refreshed_at=timezone.now())
    return made


def test_the_device_list_offers_vendors_and_the_chosen_vendors_models_as_choices(support, models):
    acme_a, acme_b, globex = models
    devices = {m.pk: DeviceFactory(model=m) for m in models}

    by_vendor = support.get(DEVICES, {"vendor_id": acme_a.vendor_id})
    by_model = support.get(DEVICES, {"model_id": globex.pk})

    assert listed(by_vendor) == sorted([str(devices[acme_a.pk].pk), str(devices[acme_b.pk].pk)])
    assert listed(by_model) == [str(devices[globex.pk].pk)]
    html = by_vendor.content.decode()
    assert f'href="?vendor_id={globex.vendor_id}"' in html  # the other vendor, a choice
    assert f"?model_id={acme_b.pk}&amp;vendor_id={acme_a.vendor_id}" in html  # this vendor's models only
    assert f"model_id={globex.pk}&amp;" not in html


@pytest.mark.parametrize(("params", "named"), [({"vendor_id": "999999"}, "vendor_id"), ({"model_id": "x"}, "model_id")])
def test_the_device_lists_vendor_and_model_refuse_what_is_no_choice(support, models, params, named):
    DeviceFactory(model=models[0])

    response = support.get(DEVICES, params)

    assert response.status_code == 400
    assert listed(response) == []
    assert any(f"({named}):" in message for message in errors(response))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"heard": "1h"}, ["heard"]),
        ({"heard": "1d"}, ["day"]),
        ({"heard": "silent"}, ["silent"]),
        ({"heard": "never"}, ["never"]),
        ({"provisioning": "HARDWARE.PROVISIONED"}, ["heard"]),
        ({"provisioning": "HARDWARE.CORRUPTED"}, ["day"]),
        ({"provisioning": "HARDWARE.none"}, ["never", "silent"]),
        ({"provisioning": "CRYPTANIUM.none"}, ["day", "heard", "never", "silent"]),
        ({"vendor_id": "acme"}, ["day", "heard", "never"]),
        ({"model_id": "acme/a"}, ["heard", "never"]),
        ({"vendor_id": "globex", "model_id": "globex/g"}, ["silent"]),
    ],
    ids=lambda value: "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None,
)
def test_boxes_filter_by_last_heard_provisioning_state_vendor_and_model(support, boxes, models, params, expected):
    ids = {"acme": models[0].vendor_id, "globex": models[2].vendor_id, "acme/a": models[0].pk, "globex/g": models[2].pk}
    query = {name: ids.get(value, value) for name, value in params.items()}

    response = support.get(BOXES, query)

    assert response.status_code == 200
    names = {str(box.pk): name for name, box in boxes.items()}
    assert sorted(names[pk] for pk in listed(response)) == expected


@pytest.mark.parametrize(
    "params",
    [{"heard": "2h"}, {"provisioning": "HARDWARE.BROKEN"}, {"provisioning": "NOPE"}, {"vendor_id": "0"}],
    ids=str,
)
def test_boxes_refuse_a_filter_value_they_do_not_offer(support, boxes, params):
    response = support.get(BOXES, params)

    assert response.status_code == 302
    assert response.url.endswith("?e=1")  # Django's answer for a bad lookup: the list, every filter dropped


def test_the_box_list_offers_the_chosen_vendors_models_only(support, boxes, models):
    acme_a, acme_b, globex = models

    html = support.get(BOXES, {"vendor_id": acme_a.vendor_id}).content.decode()

    assert f"model_id={acme_b.pk}" in html
    assert f"model_id={globex.pk}" not in html


@pytest.fixture
def commands(boxes):
    box = boxes["heard"]
    made = {
        "failed": Command.objects.create(box=box, kind="refresh", state="FAILED", finished_at=timezone.now()),
        "retrying": Command.objects.create(box=box, kind="refresh", state="QUEUED", attempts=1),
        "queued": Command.objects.create(box=box, kind="refresh", state="QUEUED"),
        "done": Command.objects.create(box=box, kind="refresh", state="SUCCEEDED", finished_at=timezone.now()),
        "old": Command.objects.create(box=box, kind="refresh", state="FAILED", finished_at=_ago(days=3)),
    }
    Command.objects.filter(pk=made["old"].pk).update(created_at=_ago(days=3))
    return made


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"failing": "failed"}, ["failed", "old"]),
        ({"failing": "retrying"}, ["retrying"]),
        ({"failing": "failed", "created": "24h"}, ["failed"]),
        ({"created": "7d"}, ["done", "failed", "old", "queued", "retrying"]),
        ({"created": "1h", "state": "QUEUED"}, ["queued", "retrying"]),
    ],
    ids=lambda value: "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None,
)
def test_commands_filter_failing_only_and_created_within(support, commands, params, expected):
    response = support.get(COMMANDS, params)

    assert response.status_code == 200
    names = {str(c.pk): name for name, c in commands.items()}
    assert sorted(names[pk] for pk in listed(response)) == expected


@pytest.mark.parametrize(("path", "params"), [(COMMANDS, {"failing": "yes"}), (COMMANDS, {"created": "2d"})], ids=str)
def test_commands_refuse_a_failing_or_created_value_they_do_not_offer(support, commands, path, params):
    response = support.get(path, params)

    assert response.status_code == 400
    assert listed(response) == []
    assert any("is not one of the choices" in message for message in errors(response))


@pytest.fixture
def requests_():
    made = {
        "rejected": ProvisioningRequestFactory(life_cycle_state="REJECTED", executed_date=timezone.now()),
        "retried": ProvisioningRequestFactory(life_cycle_state="PENDING", attempts=2),
        "pending": ProvisioningRequestFactory(life_cycle_state="PENDING"),
        "completed": ProvisioningRequestFactory(life_cycle_state="COMPLETED", executed_date=timezone.now()),
        "old": ProvisioningRequestFactory(life_cycle_state="REJECTED", executed_date=_ago(days=8)),
    }
    type(made["old"]).objects.filter(pk=made["old"].pk).update(created_date=_ago(days=8))
    return made


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"failing": "rejected"}, ["old", "rejected"]),
        ({"failing": "retried"}, ["retried"]),
        ({"failing": "rejected", "created": "7d"}, ["rejected"]),
        ({"created": "24h", "life_cycle_state": "PENDING"}, ["pending", "retried"]),
    ],
    ids=lambda value: "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None,
)
def test_conax_requests_filter_failing_only_and_created_within(support, requests_, params, expected):
    response = support.get(REQUESTS, params)

    assert response.status_code == 200
    names = {str(r.pk): name for name, r in requests_.items()}
    assert sorted(names[pk] for pk in listed(response)) == expected


@pytest.mark.parametrize("params", [{"failing": "1"}, {"created": "forever"}], ids=str)
def test_conax_requests_refuse_a_failing_or_created_value_they_do_not_offer(support, requests_, params):
    response = support.get(REQUESTS, params)

    assert response.status_code == 400
    assert listed(response) == []
    assert any("is not one of the choices" in message for message in errors(response))


def test_components_filter_by_state(support):
    from components.models import DeviceProvisioning, ProvisioningComponent

    provisioning = DeviceProvisioning.objects.create(device=DeviceFactory(), name="p")
    _active, inactive = (
        ProvisioningComponent.objects.create(
            provisioning=provisioning,
            component_type=0,
            component_id=n,
            active_status=n,
            last_modified_datetime=timezone.now(),
        )
        for n in (0, 1)
    )

    response = support.get("/admin/components/provisioningcomponent/", {"active_status": "1"})
    refused = support.get("/admin/components/provisioningcomponent/", {"active_status": "7"})

    assert [c.pk for c in response.context["cl"].result_list] == [inactive.pk]
    assert refused.status_code == 400

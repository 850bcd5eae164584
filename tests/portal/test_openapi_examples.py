"""The schema's examples are complete, valid and true.

- every operation shows a success answer, and a request body when it takes one (a file answer, such as the
  campaign members' CSV export, shows no JSON example: its replay checks the status and the media type);
- every example validates against the schema it illustrates;
- every request example, replayed against the real app (PostgreSQL, DRF's test client) in the order of the story
  ``portal.kernel.api.examples`` tells, gets the documented status and an answer of the documented shape: the same
  keys at every level and the same JSON type for every value (null may stand for any type: a nullable field).

Integer ids are made to match by restarting the sequences first and creating in the story's order; the Conax hex ids
and the tokens, which the database or the login choose, are mapped from the documented value to the real one as the
answers come back. ``PORTAL_EXAMPLES_RECORD=path`` also writes the real answers to ``path`` (JSON by operationId),
to write the examples of a new operation from.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

import jsonschema
import pytest
from django.apps import apps
from django.core.management.color import no_style
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from portal.kernel.api import examples as ex
from tests.factories import CustomerFactory, StaffFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
METHODS = ("get", "post", "put", "patch", "delete")
HEX = re.compile(r"^[0-9a-f]{32}$")
MAPPED_KEYS = {"id", "token", "number"}


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        return Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def success(operation: dict) -> tuple[str, dict | None]:
    status = next(s for s in operation["responses"] if s.startswith("2"))
    return status, operation["responses"][status].get("content", {}).get("application/json")


def file_answer(operation: dict) -> str | None:
    """The media type of a success answer that is a file (a binary schema, not JSON: the campaign CSV export), which
    shows no JSON example; the replay checks its status and media type instead."""
    status = next(s for s in operation["responses"] if s.startswith("2"))
    for media, content in operation["responses"][status].get("content", {}).items():
        if media != "application/json" and content.get("schema", {}).get("format") == "binary":
            return media
    return None


def json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: ``nullable: true`` becomes "or null" (jsonschema ignores it)."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: json_schema(value) for key, value in schema.items() if key != "nullable"}
    return {"anyOf": [converted, {"type": "null"}]} if schema.get("nullable") else converted


def resolved(schema: dict, root: dict) -> dict:
    """``schema`` with its components, so that jsonschema can follow the ``$ref``s."""
    return json_schema({**schema, "components": root["components"]})


def test_every_operation_has_a_response_example_and_a_request_example_when_it_takes_a_body(schema):
    missing = []
    for _, _, op in operations(schema):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and "example" not in body:
            missing.append((op["operationId"], "request"))
        status, answer = success(op)
        if status != "204" and file_answer(op) is None and (answer is None or "example" not in answer):
            missing.append((op["operationId"], "response"))

    assert missing == []


def test_every_example_validates_against_its_own_schema(schema):
    invalid = []
    for _, _, op in operations(schema):
        media = [op.get("requestBody", {}).get("content", {}).get("application/json"), success(op)[1]]
        for part, content in zip(("request", "response"), media, strict=True):
            if content is None or "example" not in content:
                continue
            validator = jsonschema.Draft202012Validator(resolved(content["schema"], schema))
            for error in validator.iter_errors(content["example"]):
                invalid.append((op["operationId"], part, error.json_path, error.message[:120]))

    assert invalid == []


def test_the_examples_module_names_only_operations_and_components_of_the_schema(schema):
    ids = {op["operationId"] for _, _, op in operations(schema)}
    components = set(schema["components"]["schemas"])

    assert sorted(set(ex.REQUESTS) - ids) == []
    assert sorted(set(ex.OPERATION_RESPONSES) - ids) == []
    assert sorted(set(ex.RESPONSES) - components) == []


# --- replaying the story -------------------------------------------------------------------------------------------


def _activate(client: APIClient, ids: dict) -> None:
    """The device of the story activates (its attempt is what the activation logs list)."""
    body = "vendor=Acme+Devices+Ltd&model=STB-4K&sn=ACME4K000123"
    answer = client.generic("POST", "/provision/activate", body, content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200, answer.content


def _head_end_state(client: APIClient, ids: dict) -> None:
    """What the head-end made of the requests (no CAS runs in this test): a pairing and an entitlement."""
    from conax.models import Entitlement, Pairing, Service, Smartcard, Subscription

    subscription = Subscription.objects.get(number="S-100042")
    pairing = Pairing.objects.create(subscription=subscription)
    Smartcard.objects.filter(serial_number="SC-000123").update(pairing=pairing)
    card = Smartcard.objects.get(serial_number="SC-000123")
    Entitlement.objects.create(
        smartcard=card, service=Service.objects.get(code="GOLD"), subscription=subscription, changed_at=timezone.now()
    )
    ids[ex.PAIRING_ID] = pairing.pk


def _delivered(client: APIClient, ids: dict) -> None:
    """The worker delivered the first delivery (none runs in this test), so that staff may send it again."""
    from webhooks.models import Delivery

    Delivery.objects.filter(pk=1).update(state="DELIVERED", attempts=1, delivered_at=timezone.now())


def _campaign_failure(client: APIClient, ids: dict) -> None:
    """What the workers made of the running campaign (none runs in this test): the box at 192.0.2.40 (a documentation
    address) never answers, so the story's own commands failed; the engine released the campaign's member, its
    command failed the same way, and the engine halted the wave below its success threshold."""
    from campaigns import engine
    from campaigns.models import Campaign, Member
    from provisioning.models import Command

    def fail(commands) -> None:
        now = timezone.now()
        commands.update(state="FAILED", attempts=6, last_error=UNREACHABLE, sent_at=now, finished_at=now)

    fail(Command.objects.filter(state="QUEUED"))
    time.sleep(0.1)  # 5 tokens at 50 a second: the member goes
    engine.step(campaign_id=1)
    member = Member.objects.get(campaign_id=1)
    assert member.state == "sent" and member.command_id is not None
    fail(Command.objects.filter(pk=member.command_id))
    engine.step(campaign_id=1)
    assert Member.objects.get(pk=member.pk).state == "failed"
    assert Campaign.objects.get(pk=1).state == "halted"


UNREACHABLE = "cannot connect to 192.0.2.40:9998: timed out"


def _spares(client: APIClient, ids: dict) -> None:
    """Objects no request refers to, for the deletes (the story's own are in use: a delete of those is a 409)."""
    from conax.models import Service, SetTopBox, Smartcard, Subscription, Unit

    ids["spare unit"] = Unit.objects.create(name="Closed store").pk
    ids["spare service"] = Service.objects.create(code="BRONZE", service_ca_id="BRONZE-CA").pk
    ids["spare subscription"] = Subscription.objects.create(number="S-900001").pk
    ids["spare smartcard"] = Smartcard.objects.create(serial_number="SC-900001", ca_id="019283749999").pk
    ids["spare box"] = SetTopBox.objects.create(serial_number="STB-4K-900001", ca_id="4711900001").pk


# (operationId, path and query parameters) or a step of setup, in the story's order.
STORY: list[Any] = [
    ("v1_auth_token_create", {}),
    ("v1_auth_token_retrieve", {}),
    ("v1_webhooks_endpoints_create", {}),
    ("v1_webhooks_endpoints_list", {}),
    ("v1_webhooks_endpoints_retrieve", {"id": 1}),
    ("v1_webhooks_endpoints_update", {"id": 1}),
    ("v1_webhooks_endpoints_partial_update", {"id": 1}),
    ("v1_vendors_create", {}),
    ("v1_vendors_list", {}),
    ("v1_vendors_retrieve", {"id": 1}),
    ("v1_vendors_update", {"id": 1}),
    ("v1_vendors_partial_update", {"id": 1}),
    ("v1_device_models_create", {}),
    ("v1_device_models_list", {}),
    ("v1_device_models_retrieve", {"id": 1}),
    ("v1_device_models_update", {"id": 1}),
    ("v1_device_models_partial_update", {"id": 1}),
    ("v1_devices_create", {}),
    ("v1_devices_partial_update", {"id": 1}),
    ("v1_devices_import_create", {}),
    ("v1_devices_enable_create", {"id": 1}),
    _activate,
    ("v1_devices_list", {}),
    ("v1_devices_retrieve", {"id": 1}),
    ("v1_devices_log_list", {"id": 1}),
    ("v1_activation_attempts_list", {}),
    ("v1_devices_disable_create", {"id": 1}),
    ("v1_devices_reenable_create", {"id": 1}),
    ("v1_devices_box_update", {"id": 1}),
    ("v1_devices_box_retrieve", {"id": 1}),
    ("devices_reprovision", {"id": 1}),
    ("devices_refresh", {"id": 1}),
    ("devices_provision", {"id": 1}),
    ("devices_set_index", {"id": 1}),
    ("v1_commands_list", {}),
    ("v1_fleet_summary_retrieve", {}),
    ("v1_vendor_tokens_create", {}),
    ("v1_vendor_tokens_list", {}),
    ("v1_vendor_tokens_retrieve", {"id": 1}),
    ("v1_vendor_tokens_revoke_create", {"id": 1}),
    ("v1_conax_units_create", {}),
    ("v1_conax_units_list", {}),
    ("v1_conax_units_retrieve", {"id": ex.UNIT_ID}),
    ("v1_conax_units_update", {"id": ex.UNIT_ID}),
    ("v1_conax_units_partial_update", {"id": ex.UNIT_ID}),
    ("v1_conax_services_create", {}),
    ("v1_conax_services_list", {}),
    ("v1_conax_services_retrieve", {"id": ex.SERVICE_ID}),
    ("v1_conax_services_update", {"id": ex.SERVICE_ID}),
    ("v1_conax_services_partial_update", {"id": ex.SERVICE_ID}),
    ("v1_conax_subscriptions_create", {}),
    ("v1_conax_subscriptions_list", {}),
    ("v1_conax_subscriptions_retrieve", {"id": ex.SUBSCRIPTION_ID}),
    ("v1_conax_subscriptions_update", {"id": ex.SUBSCRIPTION_ID}),
    ("v1_conax_subscriptions_partial_update", {"id": ex.SUBSCRIPTION_ID}),
    ("v1_conax_subscriptions_import_create", {}),
    ("v1_conax_smartcards_create", {}),
    ("v1_conax_smartcards_list", {}),
    ("v1_conax_smartcards_retrieve", {"id": ex.SMARTCARD_ID}),
    ("v1_conax_smartcards_update", {"id": ex.SMARTCARD_ID}),
    ("v1_conax_smartcards_partial_update", {"id": ex.SMARTCARD_ID}),
    ("v1_conax_smartcards_import_create", {}),
    ("v1_conax_set_top_boxes_create", {}),
    ("v1_conax_set_top_boxes_list", {}),
    ("v1_conax_set_top_boxes_retrieve", {"id": ex.STB_ID}),
    ("v1_conax_set_top_boxes_update", {"id": ex.STB_ID}),
    ("v1_conax_set_top_boxes_partial_update", {"id": ex.STB_ID}),
    ("crm_token", {}),
    ("crm_add_subscriptions", {}),
    ("crm_show", {"token": ex.CRM_TOKEN, "id": ex.REQUEST_ID}),
    ("crm_list", {"token": ex.CRM_TOKEN, "type": "ADD_SUBSCRIPTIONS", "number_of_results": 10}),
    ("crm_cancel_subscriptions", {}),
    ("crm_create_pairing", {}),
    ("crm_add_to_existing_pairing", {}),
    ("crm_reset_pin_to_default_value", {}),
    ("crm_reset_pin_to_given_value", {}),
    ("crm_get_active_subscriptions", {}),
    ("crm_get_pairing_status_for_card", {}),
    ("crm_get_pairing_status_for_pairing_module", {}),
    ("crm_display_fingerprint", {}),
    ("crm_send_mail_message_to_client", {}),
    ("crm_send_bark_message_to_client", {}),
    ("crm_send_repeating_bark_message_to_client", {}),
    ("crm_token_release", {}),
    _head_end_state,
    ("v1_conax_pairings_list", {}),
    ("v1_conax_pairings_retrieve", {"id": ex.PAIRING_ID}),
    ("v1_conax_entitlements_list", {}),
    ("v1_conax_entitlements_retrieve", {"id": 1}),
    ("v1_sensors_create", {}),
    ("v1_sensors_list", {}),
    ("v1_sensors_retrieve", {"id": 101}),
    ("v1_sensors_update", {"id": 101}),
    ("v1_sensors_partial_update", {"id": 101}),
    ("v1_parameters_create", {}),
    ("v1_parameters_list", {}),
    ("v1_parameters_retrieve", {"id": 201}),
    ("v1_parameters_update", {"id": 201}),
    ("v1_parameters_partial_update", {"id": 201}),
    ("v1_parameter_groups_create", {}),
    ("v1_parameter_groups_list", {}),
    ("v1_parameter_groups_retrieve", {"id": 301}),
    ("v1_parameter_groups_update", {"id": 301}),
    ("v1_parameter_groups_partial_update", {"id": 301}),
    ("v1_provisioning_records_create", {}),
    ("v1_provisioning_records_list", {}),
    ("v1_provisioning_records_retrieve", {"id": 1}),
    ("v1_provisioning_records_partial_update", {"id": 1}),
    ("v1_components_create", {}),
    ("v1_components_list", {}),
    ("v1_components_retrieve", {"id": 1}),
    ("v1_components_set_status_create", {}),
    _delivered,
    ("v1_webhooks_deliveries_list", {}),
    ("v1_webhooks_deliveries_retrieve", {"id": 1}),
    ("v1_webhooks_deliveries_redeliver_create", {"id": 1}),
    ("v1_campaigns_create", {}),
    ("v1_campaigns_list", {}),
    ("v1_campaigns_retrieve", {"id": 1}),
    ("v1_campaigns_preview_retrieve", {"id": 1}),
    ("v1_campaigns_update", {"id": 1}),
    ("v1_campaigns_partial_update", {"id": 1}),
    ("v1_campaigns_schedule_create", {"id": 1}),
    ("v1_campaigns_start_create", {"id": 1}),
    ("v1_campaigns_pause_create", {"id": 1}),
    ("v1_campaigns_resume_create", {"id": 1}),
    _campaign_failure,
    ("v1_campaigns_retry_failed_create", {"id": 1}),
    ("v1_campaigns_cancel_create", {"id": 1}),
    ("v1_campaigns_report_retrieve", {"id": 1}),
    ("v1_campaigns_members_list", {"id": 1}),
    ("v1_campaigns_export_retrieve", {"id": 1}),
    _spares,
    ("v1_conax_set_top_boxes_destroy", {"id": "spare box"}),
    ("v1_conax_smartcards_destroy", {"id": "spare smartcard"}),
    ("v1_conax_subscriptions_destroy", {"id": "spare subscription"}),
    ("v1_conax_services_destroy", {"id": "spare service"}),
    ("v1_conax_units_destroy", {"id": "spare unit"}),
    ("v1_webhooks_endpoints_destroy", {"id": 1}),
    ("healthz", {}),
    ("readyz", {}),
    ("v1_auth_token_destroy", {}),
]


def shape(value: Any) -> Any:
    """The keys and JSON types of ``value``; a list by its first item."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def same_shape(documented: Any, real: Any) -> bool:
    if documented is None or real is None:
        return True
    if isinstance(documented, dict) and isinstance(real, dict):
        return documented.keys() == real.keys() and all(same_shape(documented[k], real[k]) for k in documented)
    if isinstance(documented, list) and isinstance(real, list):
        return not documented or not real or same_shape(documented[0], real[0])
    return shape(documented) == shape(real)


def mapped(value: Any, ids: dict) -> Any:
    if isinstance(value, dict):
        return {key: mapped(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [mapped(item, ids) for item in value]
    return ids.get(value, value) if isinstance(value, str) else value


def learn(documented: Any, real: Any, ids: dict) -> None:
    """Map each id and token the documented answer shows to the one the real answer holds."""
    if isinstance(documented, dict) and isinstance(real, dict):
        for key in documented.keys() & real.keys():
            doc, got = documented[key], real[key]
            if key in MAPPED_KEYS and isinstance(doc, str) and isinstance(got, str):
                ids.setdefault(doc, got)
            learn(doc, got, ids)
    elif isinstance(documented, list) and isinstance(real, list) and documented and real:
        learn(documented[0], real[0], ids)


def reset_sequences() -> None:
    """Integer ids from 1 in the empty tables, as the story shows them (each sequence set to its table's largest id,
    inside the test's transaction)."""
    sql = connection.ops.sequence_reset_sql(no_style(), apps.get_models())
    with connection.cursor() as cursor:
        for statement in sql:
            cursor.execute(statement)


def replay(client: APIClient, by_id: dict, name: str, params: dict, ids: dict) -> tuple[list, Any]:
    path, method, op = by_id[name]
    params = mapped(params, ids)
    for key in re.findall(r"\{(\w+)\}", path):
        path = path.replace("{" + key + "}", str(params.pop(key)))
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("example")
    if body is not None:
        answer = getattr(client, method)(path, mapped(body, ids), format="json")
    else:
        answer = getattr(client, method)(path, params or None)
    status, content = success(op)
    if (media := file_answer(op)) is not None:
        if str(answer.status_code) != status or not answer["Content-Type"].startswith(media):
            return [(name, "file", status, answer.status_code, answer["Content-Type"])], None
        return [], b"".join(answer.streaming_content).decode()
    real = answer.json() if answer.content else None
    documented = (content or {}).get("example")
    if str(answer.status_code) != status:
        return [(name, "status", status, answer.status_code, real)], real
    if not same_shape(documented, real):
        return [(name, "shape", shape(documented), shape(real))], real
    if isinstance(real, dict) and isinstance(real.get("status"), dict) and real["status"].get("code") != "OK":
        return [(name, "crm", real["status"])], real
    learn(documented, real, ids)
    return [], real


def test_every_request_example_gets_the_documented_answer_from_the_real_app(schema):
    """The whole story, in order: an example the real API would refuse, or answer in another shape, is a bug."""
    reset_sequences()
    staff = StaffFactory(username=ex.LOGIN["username"], password=ex.LOGIN["password"])
    CustomerFactory(username="carol")
    assert staff.pk == 1
    by_id = {op["operationId"]: (path, method, op) for path, method, op in operations(schema)}
    client, ids, problems, record = APIClient(), {}, [], {}
    try:
        for step in STORY:
            if callable(step):
                step(client, ids)
                continue
            name, params = step
            found, real = replay(client, by_id, name, dict(params), ids)
            problems += found
            if not found or found[0][1] == "shape":
                record[name] = real
            if name == "v1_auth_token_create":
                client.credentials(HTTP_AUTHORIZATION=f"Token {real['token']}")
    finally:
        if path := os.environ.get("PORTAL_EXAMPLES_RECORD"):
            with open(path, "w") as out:
                json.dump({"answers": record, "problems": problems}, out, indent=1, default=str)

    assert problems == []
    assert sorted(set(by_id) - {step[0] for step in STORY if not callable(step)}) == []

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_schema_documents_the_staff_login(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Provisioning portal API"
    assert set(schema["paths"]["/api/v1/auth/token/"]) == {"get", "post", "delete"}
    assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"


def test_docs_page_loads_everything_from_the_portal_itself(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html


def test_schema_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    text = (tmp_path / "schema.yml").read_text()
    assert "/api/v1/devices/{id}/enable/:" in text
    assert "/api/v1/devices/import/:" in text


def test_schema_documents_every_crm_method_from_its_parameter_table(client):
    from conax.api.crmparams import METHODS

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    base = "/crmapi/rest/v2/conax_web_services/provisioning_requests/"
    for name, method in METHODS.items():
        operation = schema["paths"][base + name][method.http.lower()]
        if method.http == "POST":
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert set(body["properties"]) == {"token", *(p.name for p in method.params)}
        else:
            assert {p["name"] for p in operation["parameters"]} == {"token", *(p.name for p in method.params)}
    mail = schema["paths"][base + "send_mail_message_to_client"]["post"]["requestBody"]["content"]
    assert mail["application/json"]["schema"]["properties"]["message"]["maxLength"] == 141
    assert "/crmapi/rest/v2/authentication/token" in schema["paths"]

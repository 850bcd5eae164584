"""The CRM.COM-compatible API's routes, included by the project under ``crmapi/``."""

from django.urls import path

from conax.api import crm

REQUESTS = "rest/v2/conax_web_services/provisioning_requests/"

urlpatterns = [
    path("rest/v2/authentication/token", crm.token_login, name="crm-token"),
    path("rest/v2/authentication/token/release", crm.token_release, name="crm-token-release"),
    path(REQUESTS + "<str:method>", crm.provisioning_requests, name="crm-provisioning-requests"),
]

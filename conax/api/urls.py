"""The CRM.COM-compatible API's routes, included by the project under ``crmapi/``.

The last route takes every other path under ``/crmapi/`` (unknown resources, trailing-slash variants, the bare
prefix): the dialect answers them with its envelope (``UNKNOWN_METHOD``, 404), never Django's HTML page.
"""

from django.urls import path, re_path

from conax.api import crm

REQUESTS = "rest/v2/" + crm.REQUESTS_PATH

urlpatterns = [
    path("rest/v2/authentication/token", crm.token_login, name="crm-token"),
    path("rest/v2/authentication/token/release", crm.token_release, name="crm-token-release"),
    path(REQUESTS + "<str:method>", crm.provisioning_requests, name="crm-provisioning-requests"),
    re_path(r"^(?P<path>.*)$", crm.unknown, name="crm-unknown"),
]

"""``POST /v1/Login/``: the login of the /v1/ components API, a thin dialect over the portal's token store.

Form fields ``username`` and ``password`` (``application/x-www-form-urlencoded`` or ``multipart/form-data``).
Answers are JSON with HTTP 200, as the original service gives them:
success ``{"token", "userid", "userrole", "status": "SUCCESS", "error": "NO_ERROR"}``; failure
``{"status": "FAILURE", "error": CODE}`` with ``MISSING_CONTENT_TYPE_HEADER``, ``INVALID_CONTENT_TYPE_HEADER``,
``ACCOUNT_DOES_NOT_EXIST``, ``ACCOUNT_PASSWORD_INCORRECT`` (and ``ACCOUNT_LOCKED`` after repeated failures).
The token goes in request header ``token`` on /v1/DeviceProvisioningComponents/.
"""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from portal import services
from portal.choices import TokenPurpose

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FIELD = 256


def _failure(code: str) -> JsonResponse:
    return JsonResponse({"status": "FAILURE", "error": code})


def _role(user) -> str:
    if user.is_superuser:
        return "admin"
    return "support" if user.is_staff else "customer"


@csrf_exempt
def login(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"status": "FAILURE", "error": "INVALID_REQUEST_METHOD"}, status=405)
    content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if not content_type:
        return _failure("MISSING_CONTENT_TYPE_HEADER")
    if content_type not in FORM_TYPES:
        return _failure("INVALID_CONTENT_TYPE_HEADER")
    username, password = request.POST.get("username", ""), request.POST.get("password", "")
    if not username or len(username) > MAX_FIELD or len(password) > MAX_FIELD:
        return _failure("ACCOUNT_DOES_NOT_EXIST")
    # django-axes counts failures here; once locked out, its middleware answers ACCOUNT_LOCKED (portal.authentication).
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        exists = get_user_model().objects.filter(username=username, is_active=True).exists()
        return _failure("ACCOUNT_PASSWORD_INCORRECT" if exists else "ACCOUNT_DOES_NOT_EXIST")
    issued = services.token_issue(user=user, purpose=TokenPurpose.COMPONENTS)
    return JsonResponse(
        {"token": issued.raw, "userid": user.pk, "userrole": _role(user), "status": "SUCCESS", "error": "NO_ERROR"}
    )

"""``POST /v1/Login/``: the login and logout of the /v1/ components API, as the original service answers them.

The original is ``Login/index.php`` of Htun88's ``api`` repository. Form fields (``application/x-www-form-urlencoded``
or ``multipart/form-data``); every answer is JSON with HTTP 200:

- a request with a ``token`` field is a logout, whatever else it carries: the token is revoked and the answer is
  ``{"status": "LOGGED_OUT", "error": "NO_ERROR"}``; a token that is not a live /v1/ token answers
  ``{"error": "INVALID_TOKEN1"}``, the original's answer for a token it does not know;
- otherwise ``username`` and ``password`` log in. Success and failure have the original's seven fields:
  ``token`` (``"ERROR"`` on failure), ``userid`` (a number; ``""`` on failure), ``userrole`` (``""`` on failure),
  ``status`` (``SUCCESS``/``FAILURE``), ``error`` (``NO_ERROR``, ``ACCOUNT_DOES_NOT_EXIST``,
  ``ACCOUNT_PASSWORD_INCORRECT``, ``MISSING_CONTENT_TYPE_HEADER``, ``INVALID_CONTENT_TYPE_HEADER``, and
  ``ACCOUNT_LOCKED`` after repeated failures), and the echoes ``username`` and ``CONTENT_TYPE``.

Who may log in is ``components.services.components_login``; its refusals and the token store's become codes in
``components.api.params.v1_error``. Where this differs from the original, and why, is written down in
docs/components.md.
The token goes in request header ``token`` on /v1/DeviceProvisioningComponents/.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from components import services
from components.api.params import v1_error
from components.api.sanitise import Unstorable, check_fields
from components.exceptions import LoginRefused
from portal.kernel import services as portal_services
from portal.kernel.choices import TokenPurpose
from portal.kernel.exceptions import TokenError, TokenInvalid

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FIELD = 256
NO_TOKEN = "ERROR"  # noqa: S105 -- not a secret: the original's "token" value on a failed login


def _answer(request: HttpRequest, error: str, *, username: str = "", user=None, token: str = NO_TOKEN) -> JsonResponse:
    return JsonResponse(
        {
            "token": token,
            "userid": user.pk if user else "",
            "userrole": _role(user) if user else "",
            "status": "SUCCESS" if user else "FAILURE",
            "error": error,
            "username": username,
            "CONTENT_TYPE": request.META.get("CONTENT_TYPE", ""),
        }
    )


def _role(user) -> str:
    if user.is_superuser:
        return "admin"
    return "support" if user.is_staff else "customer"


def _form(request: HttpRequest) -> QueryDict:
    """The form fields; a body Django cannot parse (broken multipart, too large, too many fields) has none, as in
    the original (PHP leaves ``$_POST`` empty), so it answers like a login without a username."""
    try:
        return request.POST
    except (MultiPartParserError, RequestDataTooBig, SuspiciousOperation):
        return QueryDict()


def _username(form: QueryDict) -> str:
    """The username to look up, or "" for one that cannot name an account (as the original, for surrounding spaces;
    and here also for one too long to be a username, or carrying text no column can store)."""
    username = form.get("username", "")
    try:
        check_fields({"username": username})
    except Unstorable:
        return ""
    return "" if username.strip(" ") != username or len(username) > MAX_FIELD else username


def _token(raw: str):
    """The live /v1/ token ``raw`` names; TokenError otherwise (text that no token can be included)."""
    try:
        check_fields({"token": raw})
    except Unstorable as exc:
        raise TokenInvalid from exc
    return portal_services.token_authenticate(raw=raw, purpose=TokenPurpose.COMPONENTS)


def _logout(raw: str) -> JsonResponse:
    try:
        token = _token(raw)
    except TokenError as exc:
        return JsonResponse(v1_error(exc, logout=True).body())
    portal_services.token_revoke(token=token)
    return JsonResponse({"status": "LOGGED_OUT", "error": "NO_ERROR"})


def _login(request: HttpRequest, form: QueryDict) -> JsonResponse:
    username = _username(form)
    try:
        issued = services.components_login(request=request, username=username, password=form.get("password", ""))
    except LoginRefused as exc:
        return _answer(request, v1_error(exc).code, username=username)
    return _answer(request, "NO_ERROR", username=username, user=issued.token.user, token=issued.raw)


@csrf_exempt
def login(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse(
            {"status": "FAILURE", "error": "INVALID_REQUEST_METHOD"}, status=405, headers={"Allow": "POST"}
        )
    content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if not content_type:
        return _answer(request, "MISSING_CONTENT_TYPE_HEADER")
    if content_type not in FORM_TYPES:
        return _answer(request, "INVALID_CONTENT_TYPE_HEADER")
    form = _form(request)
    if "token" in form:
        return _logout(form["token"])
    return _login(request, form)

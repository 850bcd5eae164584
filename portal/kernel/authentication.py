"""Logins and lock-outs: DRF authentication for the staff REST API (``Authorization: Token <token>`` from the shared
token store), the one password check of every API dialect (``api_authenticate``), and django-axes' handler with a
per-username limit.

Lock-outs (django-axes, settings ``# --- auth ---``): ``AXES_FAILURE_LIMIT`` failures of one username from one
address lock that pair out for ``AXES_COOLOFF_MINUTES``; ``AXES_USERNAME_FAILURE_LIMIT`` failures of one username
from all addresses together lock the username out for everyone for as long (higher, so that a guesser cannot
trivially lock a user out; 0 turns it off). A successful login clears its own address's failures, for the API
dialects as for ``/login/`` and ``/admin/login/``; failures from other addresses keep counting towards the
username's limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_credentials, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from portal.kernel import services
from portal.kernel.audit import set_audit_actor
from portal.kernel.choices import TokenPurpose
from portal.kernel.dialects import v1_login_failure
from portal.kernel.exceptions import TokenError

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from drf_spectacular.openapi import AutoSchema

    from portal.kernel.models import ApiToken

KEYWORD = "Token"

MESSAGES = {
    "TOKEN_INVALID": "Invalid token.",
    "TOKEN_EXPIRED": "Token has expired.",
    "TOKEN_REVOKED": "Token has been revoked.",
}


class PortalTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        try:
            raw = header[1].decode("ascii")
            token = services.token_authenticate(raw=raw, purpose=TokenPurpose.STAFF_API)
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(MESSAGES["TOKEN_INVALID"]) from exc
        except TokenError as exc:
            raise exceptions.AuthenticationFailed(MESSAGES[exc.code]) from exc
        set_audit_actor(token.user)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class PortalTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.kernel.authentication.PortalTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>` from POST /api/v1/auth/token/",
        }


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """django-axes lockout: API dialects get a JSON body, people get a page; both 429 with Retry-After."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    message = "Too many failed login attempts. Try again later."
    if request.path.startswith("/v1/"):
        # The /v1/ dialect answers every error with HTTP 200 and a code, in its login answer's shape.
        username = (credentials or {}).get("username") or ""
        body = v1_login_failure(
            "ACCOUNT_LOCKED",
            username=username if isinstance(username, str) else "",
            content_type=request.META.get("CONTENT_TYPE", ""),
        )
        response: HttpResponse = JsonResponse(body)
    elif request.path.startswith("/crmapi/"):
        # The CRM.COM dialect answers every error in its envelope with HTTP 200.
        status = {"message": message, "description": None, "code": "ACCOUNT_LOCKED"}
        response = JsonResponse({"status": status, "data": None})
    elif request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "portal/lockout.html", {"message": message}, status=429)
    response["Retry-After"] = retry_after
    return response


def _loginable(text: object) -> bool:
    """A credential that can reach the database and the hasher: a string without NUL or lone surrogates."""
    if not isinstance(text, str) or "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def api_authenticate(request: HttpRequest | Request, *, username: str, password: str) -> User | None:
    """The one login check of every API dialect (staff API, CRM.COM, /v1/): the user, or None.

    The Django request goes to ``authenticate()`` so django-axes counts failures and locks out (both limits, see the
    module docstring). A success clears this address's failures, as ``/login/`` does through ``user_logged_in``
    (which an API login does not send: it opens no session)."""
    request = getattr(request, "_request", request)  # a DRF Request wraps the Django one
    if not (_loginable(username) and _loginable(password)):
        return None
    user = authenticate(request, username=username, password=password)
    if user is not None and getattr(settings, "AXES_ENABLED", True) and settings.AXES_RESET_ON_SUCCESS:
        AxesProxyHandler.update_request(request)
        AxesProxyHandler.get_implementation().reset_user_attempts(request, get_credentials(username))
    return user


class PortalAxesHandler(AxesDatabaseHandler):
    """django-axes' database handler, plus the per-username limit across addresses (``AXES_USERNAME_FAILURE_LIMIT``).

    Axes compares one failure count against one limit; reaching the username's limit reports the pair's limit as
    reached, so both lock out through axes' own path (its response, its signal, its Retry-After)."""

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        failures = super().get_failures(request, credentials)
        limit = settings.AXES_USERNAME_FAILURE_LIMIT
        username = get_client_username(request, credentials)
        if not limit or username is None:
            return failures
        attempts = AccessAttempt.objects.filter(username=username)
        if settings.AXES_COOLOFF_TIME is not None:
            attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
        total = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
        return max(failures, get_failure_limit(request, credentials)) if total >= limit else failures

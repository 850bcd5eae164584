"""DRF authentication for the staff REST API: ``Authorization: Token <token>`` from the shared token store."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from portal import services
from portal.audit import set_audit_actor
from portal.choices import TokenPurpose
from portal.exceptions import TokenError

KEYWORD = "Token"

MESSAGES = {
    "TOKEN_INVALID": "Invalid token.",
    "TOKEN_EXPIRED": "Token has expired.",
    "TOKEN_REVOKED": "Token has been revoked.",
}


class PortalTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
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

    def authenticate_header(self, request) -> str:
        return KEYWORD


class PortalTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.authentication.PortalTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>` from POST /api/v1/auth/token/",
        }


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """django-axes lockout: API dialects get a JSON body, people get a page; both 429 with Retry-After."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    message = "Too many failed login attempts. Try again later."
    if request.path.startswith("/v1/"):
        # The /v1/ dialect answers every error with HTTP 200 and a code.
        response: HttpResponse = JsonResponse({"status": "FAILURE", "error": "ACCOUNT_LOCKED"})
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


def api_authenticate(request, *, username: str, password: str):
    """The one login check of every API dialect (staff API, CRM.COM, /v1/): the user, or None.

    The Django request goes to ``authenticate()`` so django-axes counts failures and locks out."""
    return authenticate(request, username=username, password=password)

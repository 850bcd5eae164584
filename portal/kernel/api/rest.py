"""Staff REST API login: ``POST /api/v1/auth/token/`` issues a token, ``DELETE`` revokes the caller's token."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.kernel import services
from portal.kernel.api.openapi import error_response
from portal.kernel.audit import set_audit_actor
from portal.kernel.authentication import PortalTokenAuthentication, api_authenticate
from portal.kernel.choices import TokenPurpose
from portal.kernel.models import ApiToken

LOCKED_OUT = error_response("Too many failed logins of this username (django-axes); retry after Retry-After seconds.")


class TokenLoginInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False, style={"input_type": "password"})


class TokenUserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()


class TokenInfoOutput(serializers.Serializer):
    expires_at = serializers.DateTimeField(help_text="Absolute expiry.")
    idle_timeout = serializers.IntegerField(help_text="Seconds of inactivity after which the token expires.")
    user = TokenUserOutput()


class TokenOutput(TokenInfoOutput):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`. Shown once.")


class TokenView(APIView):
    """POST logs in by password; GET and DELETE act on the token that authenticates the request."""

    def _is_login(self) -> bool:
        return self.request is not None and self.request.method == "POST"

    def get_authenticators(self) -> list[BaseAuthentication]:
        # A login authenticates by password only: a stale Authorization header must not make it fail.
        return [] if self._is_login() else [PortalTokenAuthentication()]

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()] if self._is_login() else [IsAuthenticated()]

    def _describe(self, token: ApiToken, raw: str | None = None) -> dict[str, Any]:
        out = {
            "expires_at": token.expires_at,
            "idle_timeout": int(token.idle_timeout.total_seconds()),
            "user": token.user,
        }
        return {"token": raw, **out} if raw else out

    @extend_schema(responses={200: TokenInfoOutput})
    def get(self, request: Request) -> Response:
        """The caller's own token: whom it belongs to and when it expires."""
        return Response(TokenInfoOutput(self._describe(_token(request))).data)

    @extend_schema(request=TokenLoginInput, responses={201: TokenOutput, 429: LOCKED_OUT}, auth=[])
    def post(self, request: Request) -> Response:
        data = TokenLoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = api_authenticate(request, **data.validated_data)
        # The staff API's tokens are for staff; customers get the same answer as a wrong password.
        if user is None or not user.is_active or not user.is_staff:
            return Response({"detail": "Unable to log in with the provided credentials."}, status=400)
        set_audit_actor(user)
        issued = services.token_issue(user=user, purpose=TokenPurpose.STAFF_API)
        return Response(TokenOutput(self._describe(issued.token, issued.raw)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        services.token_revoke(token=_token(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _token(request: Request) -> ApiToken:
    # PortalTokenAuthentication is the only authenticator of the token's own operations: ``auth`` is its ApiToken
    # (DRF's stubs know only authtoken's Token).
    return cast(ApiToken, request.auth)


def valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate ``data`` with an input serializer (400 on failure) and return the validated data."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data

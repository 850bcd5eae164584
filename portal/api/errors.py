"""Domain errors on the staff REST API: one place maps them to status codes and a ``{code, detail}`` body."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from components.exceptions import ComponentError, UnknownProvisioning
from devices.exceptions import DeviceError, DeviceExists, IllegalTransition
from provisioning.exceptions import NoSetTopBox, ProvisioningError

STATUS = {IllegalTransition: 409, DeviceExists: 409, NoSetTopBox: 404, UnknownProvisioning: 404}


def rest_exception_handler(exc, context):
    if isinstance(exc, DeviceError | ProvisioningError | ComponentError):
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        return Response({"code": exc.code, "detail": _detail(exc)}, status=status)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=400)
    return exception_handler(exc, context)


def _detail(exc) -> str:
    ids = getattr(exc, "ids", None)
    return f"{exc.code}: {', '.join(map(str, ids[:100]))}" if ids else str(exc)

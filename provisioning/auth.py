"""Authentication of device calls by the CIK they received at activation (header ``X-Exosite-CIK``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse

from devices import services
from devices.exceptions import CikInvalid
from devices.models import Device

HEADER = "HTTP_X_EXOSITE_CIK"


class CikMissing(CikInvalid):
    code = "CIK_MISSING"


def device_from_request(request: HttpRequest) -> Device:
    """The activated device whose CIK the request carries; CikMissing / CikInvalid otherwise."""
    cik = request.META.get(HEADER, "")
    if not cik:
        raise CikMissing
    return services.device_from_cik(cik=cik)


def cik_required(unauthorized: Callable[[CikInvalid], HttpResponse]):
    """Decorate a view taking ``(request, device, ...)``; ``unauthorized`` renders the dialect's 401."""

    def decorate(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            try:
                device = device_from_request(request)
            except CikInvalid as exc:
                return unauthorized(exc)
            return view(request, device, *args, **kwargs)

        return wrapper

    return decorate

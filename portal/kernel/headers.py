"""Security headers Django 5.2 does not set by itself (the Content-Security-Policy comes from django-csp).

- ``Permissions-Policy`` on every response: the portal uses no camera, microphone, location, payment, USB… so
  no page (nor anything injected into one) may ask for them.
- Static files: WhiteNoise answers them before the view middleware runs, so ``X-Frame-Options`` (from
  ``XFrameOptionsMiddleware``) never reached them; ``static_headers`` adds it where WhiteNoise builds its headers.
"""

from __future__ import annotations

from wsgiref.headers import Headers

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

# Every feature Chromium, Firefox and Safari gate and the portal never uses; an empty list denies it to all origins.
DENIED_FEATURES = (
    "accelerometer",
    "autoplay",
    "camera",
    "display-capture",
    "encrypted-media",
    "fullscreen",
    "geolocation",
    "gyroscope",
    "hid",
    "idle-detection",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "picture-in-picture",
    "publickey-credentials-get",
    "screen-wake-lock",
    "serial",
    "usb",
    "xr-spatial-tracking",
)
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in DENIED_FEATURES)


class PermissionsPolicyMiddleware(MiddlewareMixin):
    """Adds ``Permissions-Policy`` to every response that does not carry its own."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


def static_headers(headers: Headers, path: str, url: str) -> None:
    """``WHITENOISE_ADD_HEADERS_FUNCTION``: the headers the view middleware gives pages, for static files too."""
    headers["X-Frame-Options"] = settings.X_FRAME_OPTIONS
    headers["Permissions-Policy"] = settings.PERMISSIONS_POLICY

"""HTTP and WebSocket from one ASGI application.

HTTP goes through the portal's edge (``portal.kernel.http.AsgiEdge``: body limits while streaming, canonical header
names, Date) to Django's handler with the portal's request class.
WebSocket connections pass the Origin check (full origins: ``portal.kernel.origin``) and get the session user before
any consumer sees them; each app contributes its routes in ``<app>/routing.py``.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup(set_prefix=False)

from portal.kernel.http import AsgiEdge, PortalASGIHandler  # noqa: E402  (needs the app registry loaded above)

django_asgi_app = AsgiEdge(PortalASGIHandler())

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry loaded above)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from portal.kernel.origin import OriginValidator  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

"""WebSocket routes of every app, gathered in one list for portal.asgi."""

from django.urls import path

from portal.consumers import PingConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
]

"""WebSocket routes of every app, gathered in one list for portal.asgi."""

from django.urls import path

from portal.consumers import DeviceConsumer, MyDevicesConsumer, PingConsumer, StaffConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/devices/<int:device_id>/", DeviceConsumer.as_asgi()),
    path("ws/my/", MyDevicesConsumer.as_asgi()),
    path("ws/staff/", StaffConsumer.as_asgi()),
]

"""WebSocket consumers of the live pages. Thin and async: they authenticate in ``connect()``, ask the database
through ``database_sync_to_async`` (never in the event loop) which groups the user may join, join them, ``accept()``
last, and leave them on disconnect. Events arrive from ``kernel.live.publish`` and go out as they came: small typed
dicts without secrets (see ``portal.kernel.live``). A refused subscription is closed during the handshake."""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from portal import dashboard
from portal.kernel import metrics, requestid
from portal.kernel.live import REQUEST_ID_KEY, STAFF_GROUP, device_group
from portal.kernel.permissions import is_support_staff

log = logging.getLogger("portal.live")


class PingConsumer(AsyncJsonWebsocketConsumer):
    """A minimal authenticated consumer: lets operators and tests check the WebSocket path end to end."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()

    async def receive_json(self, content, **kwargs) -> None:
        await self.send_json({"type": "pong", "echo": content.get("ping") if isinstance(content, dict) else None})


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Relays live events of the groups ``allowed_groups`` grants; subclasses say which."""

    joined: list[str]
    metric_path = "live"  # the label of portal_websocket_connections (a route, never an id)

    async def connect(self) -> None:
        self.joined = []
        # The handshake is a request: its id (a trusted proxy's X-Request-ID, or a new one) is on the socket's lines.
        self.request_id = requestid.from_scope(self.scope)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(4401, "not logged in")
            return
        groups = await database_sync_to_async(self.allowed_groups)(user)
        if groups is None:
            await self._refuse(4403, "not allowed")
            return
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups
        # counted before the accept goes out: a client (or a scrape) that sees the socket open sees it counted
        metrics.websocket_opened(self.metric_path)
        self.counted = True
        await self.accept()
        with requestid.bound(self.request_id):
            log.debug("live socket opened", extra={"path": self.scope.get("path"), "user_id": user.pk})

    async def _refuse(self, code: int, why: str) -> None:
        with requestid.bound(self.request_id):
            log.info("live socket refused", extra={"path": self.scope.get("path"), "code": code, "why": why})
        await self.close(code=code)

    async def disconnect(self, code) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "counted", False):
            metrics.websocket_closed(self.metric_path)
            self.counted = False
            with requestid.bound(getattr(self, "request_id", None)):
                log.debug("live socket closed", extra={"path": self.scope.get("path"), "code": code})

    def allowed_groups(self, user) -> list[str] | None:
        raise NotImplementedError

    async def receive_json(self, content, **kwargs) -> None:
        """Clients only listen; anything they send is ignored."""

    async def relay(self, event: dict) -> None:
        """The event as it came, without the id of the request that caused it: that one goes to the server's log
        (DEBUG: one line per event and socket), never to the browser."""
        event = dict(event)
        request_id = event.pop(REQUEST_ID_KEY, None)
        with requestid.bound(request_id if isinstance(request_id, str) else None):
            log.debug("live event relayed", extra={"type": event.get("type"), "path": self.scope.get("path")})
            await self.send_json(event)

    device_event = device_command = cas_request = job_progress = webhook_delivery = webhook_deliveries = relay
    device_commands = cas_requests = relay  # a batch's summary, staff only (devices get one event each)
    campaign_progress = relay  # staff only: published to the staff group alone (no device_id)


class DeviceConsumer(LiveConsumer):
    """``/ws/devices/<id>/``: one device's events, for its owner and for support staff."""

    metric_path = "/ws/devices/{id}/"

    def allowed_groups(self, user) -> list[str] | None:
        device_id = self.scope["url_route"]["kwargs"]["device_id"]
        return [device_group(device_id)] if dashboard.device_visible(user, device_id) else None


class MyDevicesConsumer(LiveConsumer):
    """``/ws/my/``: the events of every device the user owns (the "My devices" page)."""

    metric_path = "/ws/my/"

    def allowed_groups(self, user) -> list[str] | None:
        return [device_group(device.pk) for device in dashboard.my_devices(user)]


class StaffConsumer(LiveConsumer):
    """``/ws/staff/``: every event of the fleet, for support staff (the admin's live views)."""

    metric_path = "/ws/staff/"

    def allowed_groups(self, user) -> list[str] | None:
        return [STAFF_GROUP] if is_support_staff(user) else None

"""WebSockets through the real ASGI application, and the production channel layer on the real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from portal.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1:8000")
# A browser's handshake names the host it connects to; the Origin check compares the two (portal/kernel/origin.py).
HOST = (b"host", b"127.0.0.1:8000")


def communicator(*headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/ping/", headers=[HOST, *headers])


@pytest.fixture
def staff_cookie(client, staff_user) -> tuple[bytes, bytes]:
    client.force_login(staff_user)
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())


async def test_logged_in_user_gets_answers(staff_cookie):
    ws = communicator(ORIGIN, staff_cookie)

    connected, _ = await ws.connect()
    await ws.send_json_to({"ping": 7})
    reply = await ws.receive_json_from()
    await ws.disconnect()

    assert connected is True
    assert reply == {"type": "pong", "echo": 7}


async def test_anonymous_connection_is_closed():
    ws = communicator(ORIGIN)

    connected, code = await ws.connect()

    assert connected is False
    assert code == 4401


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param((b"origin", b"http://evil.example.com"), id="foreign-origin"),
        pytest.param((b"origin", b"null"), id="null-origin"),
    ],
)
async def test_foreign_origin_is_refused_even_with_a_session(staff_cookie, origin):
    ws = communicator(origin, staff_cookie)

    connected, _ = await ws.connect()

    assert connected is False


@pytest.mark.redis
async def test_channels_redis_layer_delivers_group_messages_between_layer_instances(redis_url):
    # Two layer instances stand for two ASGI processes sharing Redis.
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    sender = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    receiver = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    channel = await receiver.new_channel()
    await receiver.group_add("device.42", channel)

    await sender.group_send("device.42", {"type": "device.changed", "state": "activated"})
    message = await asyncio.wait_for(receiver.receive(channel), timeout=5)

    assert message == {"type": "device.changed", "state": "activated"}
    await receiver.group_discard("device.42", channel)
    await sender.flush()

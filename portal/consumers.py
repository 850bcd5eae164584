"""A minimal authenticated consumer: lets operators and tests check the WebSocket path end to end."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class PingConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()

    async def receive_json(self, content, **kwargs) -> None:
        await self.send_json({"type": "pong", "echo": content.get("ping") if isinstance(content, dict) else None})

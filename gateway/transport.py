"""Transports carry committed changes between the server processes of one store.

A transport only publishes and listens; ordering, gap fill and retries live in the hub
(gateway/hub.py), as python-socketio's managers keep their logic in one base and make
each backend a thin subclass. A second transport (PostgreSQL LISTEN/NOTIFY, say) is one
more class with these two methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

CHANNEL_PREFIX = "motcua:changes:"  # + the installation id shared by the store's processes


class Transport(Protocol):
    url: str

    def publish(self, message: bytes) -> None:
        """Send one message to every other listener; raise if it cannot be sent."""

    def listen(self) -> Iterator[bytes]:
        """Subscribe, yield None once subscribed, then each message as it comes; raise
        when the connection is lost (the hub calls it again after a back-off)."""


class RedisTransport:
    """A Redis pub/sub channel named after the installation, so two installations (or
    test runs) on one Redis never hear each other."""

    def __init__(self, url: str, installation_id: str):
        import redis

        self.url = url
        self.channel = CHANNEL_PREFIX + installation_id
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)

    def publish(self, message: bytes) -> None:
        self._redis.publish(self.channel, message)

    def listen(self) -> Iterator[bytes]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.channel)
        try:
            yield None
            for message in pubsub.listen():
                yield message["data"]
        finally:
            pubsub.close()

"""Transports carry committed changes between the server processes of one store.

A transport only publishes and listens; ordering, gap fill and retries live in the hub
(gateway/hub.py), as python-socketio's managers keep their logic in one base and make
each backend a thin subclass. A second transport (PostgreSQL LISTEN/NOTIFY, say) is one
more class with these methods.

Changes travel on one channel per centre, and a process listens only to the centres whose
devices it serves (the hub says which, as they come and go): a province's process that
serves twenty communes hears those twenty, not the other hundreds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

log = logging.getLogger("motcua.transport")

# + the installation id shared by the store's processes, then ":" + a centre's id
CHANNEL_PREFIX = "motcua:changes:"


class Transport(Protocol):
    url: str

    def publish(self, centre_id: int, message: bytes) -> None:
        """Send one message about a centre to every process following it; raise if it
        cannot be sent."""

    def listen(self, centres: Callable[[], Iterable[int]]) -> Iterator[bytes | None]:
        """Subscribe to the centres ``centres()`` names, yield None once subscribed, then
        each message as it comes; raise when the connection is lost (the hub calls it
        again after a back-off, and ``centres()`` then names the centres followed by then)."""

    def follow(self, centre_id: int) -> None:
        """Hear the centre's messages from now on, while listening; never raises (a
        subscription that fails is made again when listening starts again)."""

    def unfollow(self, centre_id: int) -> None:
        """Stop hearing the centre's messages; never raises."""


class RedisTransport:
    """Redis pub/sub channels named after the installation and the centre, so two
    installations (or test runs) on one Redis never hear each other. The installation's
    own channel is always subscribed: it keeps the subscription open while no centre is
    followed, and carries the messages of older processes (one channel for every centre)
    during a rolling upgrade."""

    def __init__(self, url: str, installation_id: str):
        import redis

        self.url = url
        self.installation_channel = CHANNEL_PREFIX + installation_id
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._pubsub = None  # while listening

    def channel(self, centre_id: int) -> str:
        return f"{self.installation_channel}:{centre_id}"

    def publish(self, centre_id: int, message: bytes) -> None:
        self._redis.publish(self.channel(centre_id), message)

    def listen(self, centres: Callable[[], Iterable[int]]) -> Iterator[bytes | None]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.installation_channel, *map(self.channel, centres()))
            self._pubsub = pubsub
            yield None
            for message in pubsub.listen():
                yield message["data"]
        finally:
            self._pubsub = None
            pubsub.close()

    # A subscription is written on the listening connection from the greenlet of the
    # device joining or leaving; the listener's greenlet reads the reply with the messages
    # (gevent lets one greenlet write a socket while another waits to read it).
    def follow(self, centre_id: int) -> None:
        self._change("subscribe", centre_id)

    def unfollow(self, centre_id: int) -> None:
        self._change("unsubscribe", centre_id)

    def _change(self, command: str, centre_id: int) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return  # not listening: listen() subscribes every followed centre
        try:
            getattr(pubsub, command)(self.channel(centre_id))
        except Exception as e:  # noqa: BLE001 - the listener reconnects and subscribes again
            log.warning("Cannot %s centre %s on %s: %s", command, centre_id, self.url, e)

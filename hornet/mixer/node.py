"""A plain Lightning node for onion messages (an LSP, a watchtower, a destination).

It does what BOLT 4 asks of any onion-message reader and nothing more: peel, forward
to ``next_node_id`` or to the peer across a known ``short_channel_id``, deliver
final-hop messages to a bounded inbox. It logs what it saw (sender, next hop, size),
which is exactly what such a node can observe; demos and tests use that log to check
privacy claims. It is not the mixer: no payments, no rate limits.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Set

import attrs
import trio

from hornet.core import crypto
from hornet.core.onion_message import (
    BOLT12_PAYLOAD_TYPES,
    DeliverMessage,
    OutgoingOnionMessage,
    process_onion_message,
)
from hornet.errors import LocalProtocolError, RemoteProtocolError
from hornet.mixer.transport import Transport


@attrs.frozen
class Seen:
    """One message as this node saw it: from whom, to whom it went next (None if it
    was for us or dropped), its size, and whether we could read a payload."""

    sender: bytes
    next_hop: bytes | None
    size: int
    delivered: bool


@attrs.frozen
class Received:
    sender: bytes
    deliver: DeliverMessage


class OnionNode:
    """Relays and receives onion messages over ``transport``."""

    def __init__(self, key: crypto.SecretKey, transport: Transport, *, name: str = "node",
                 channels: Mapping[int, bytes] | None = None,
                 known_payload_types: Set[int] = BOLT12_PAYLOAD_TYPES,
                 inbox_size: int = 64, log_size: int = 10_000) -> None:
        if transport.node_id != key.public_key:
            raise LocalProtocolError("the transport must carry the node's id")
        self.key = key
        self.name = name
        self.transport = transport
        self.channels = dict(channels or {})
        self.known_payload_types = known_payload_types
        self.seen: deque[Seen] = deque(maxlen=log_size)
        self.stats: Counter[str] = Counter()
        self._inbox_send, self._inbox = trio.open_memory_channel[Received](inbox_size)

    @property
    def node_id(self) -> bytes:
        return self.key.public_key

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            sender, message = await self.transport.receive()
            await self._handle(sender, message)

    async def _handle(self, sender: bytes, message: bytes) -> None:
        try:
            action = process_onion_message(self.key, message,
                                           known_payload_types=self.known_payload_types)
        except RemoteProtocolError:
            self.stats["dropped_invalid"] += 1
            self.seen.append(Seen(sender, None, len(message), False))
            return
        if isinstance(action, DeliverMessage):
            self.seen.append(Seen(sender, None, len(message), True))
            try:
                self._inbox_send.send_nowait(Received(sender, action))
                self.stats["delivered"] += 1
            except trio.WouldBlock:
                self.stats["dropped_inbox_full"] += 1
            return
        next_hop = action.next_node_id
        if next_hop is None:
            assert action.short_channel_id is not None
            next_hop = self.channels.get(action.short_channel_id)
        self.seen.append(Seen(sender, next_hop, len(message), False))
        if next_hop is None:
            self.stats["dropped_unknown_scid"] += 1
            return
        await self.transport.send(next_hop, action.message)
        self.stats["forwarded"] += 1

    async def send(self, outgoing: OutgoingOnionMessage) -> None:
        await self.transport.send(outgoing.first_node_id, outgoing.message)
        self.stats["sent"] += 1

    async def receive(self) -> Received:
        return await self._inbox.receive()


__all__ = ["OnionNode", "Received", "Seen"]

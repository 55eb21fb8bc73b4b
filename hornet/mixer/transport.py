"""The interface every mixer node moves Lightning messages through, and its test doubles.

``Transport`` is what the mixer, ``OnionNode`` and ``MixerClient`` need: send a BOLT 1
message (``onion_message`` 513, ``onion_message_drop`` 515) to a node id, receive the
next (authenticated sender, message). The network implementation is
``hornet.mixer.network.PeerNetwork`` (BOLT 8 over TCP). Here are the doubles:
``MemoryHub`` (bounded trio memory channels; a full transport drops, like a full
socket buffer) for tests, and ``TapTransport``, which records what a node sends and
receives (demos check privacy claims against it).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator, Mapping
from typing import Final, Protocol

import attrs
import trio

from hornet.errors import LocalProtocolError

NODE_ID_LEN: Final = 33


@attrs.frozen
class TransportStatistics(Mapping[str, int]):
    """A transport's counters at one moment (sent, received, dropped_*, …); reads as a
    mapping of them."""

    counters: Mapping[str, int]

    def __getitem__(self, name: str) -> int:
        return self.counters[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.counters)

    def __len__(self) -> int:
        return len(self.counters)


class Transport(Protocol):
    """What nodes, mixers and clients need from a transport."""

    node_id: bytes

    async def send(self, peer: bytes, message: bytes) -> None:
        """Hand ``message`` to ``peer``; silently dropped (and counted) if it cannot go."""
        ...

    async def receive(self) -> tuple[bytes, bytes]:
        """The next (sender node id, message)."""
        ...

    def statistics(self) -> TransportStatistics: ...


@attrs.frozen
class LoggedMessage:
    """One message seen on a hub: ``sender`` → ``receiver`` (for tests and demos)."""

    sender: bytes
    receiver: bytes
    message: bytes = attrs.field(repr=lambda m: f"<{len(m)} bytes>")


class MemoryHub:
    """An in-memory network of ``MemoryTransport``s (trio memory channels)."""

    def __init__(self, *, capacity: int = 256, log_size: int = 10_000) -> None:
        self.capacity = capacity
        self._attached: dict[bytes, MemoryTransport] = {}
        self.log: deque[LoggedMessage] = deque(maxlen=log_size)

    def attach(self, node_id: bytes) -> MemoryTransport:
        node_id = bytes(node_id)
        if node_id in self._attached:
            raise LocalProtocolError("node id already attached to this hub")
        transport = MemoryTransport(self, node_id, self.capacity)
        self._attached[node_id] = transport
        return transport

    def detach(self, node_id: bytes) -> None:
        self._attached.pop(bytes(node_id), None)

    def _deliver(self, sender: bytes, receiver: bytes, message: bytes) -> bool:
        target = self._attached.get(receiver)
        if target is None:
            return False
        try:
            target._send.send_nowait((sender, message))
        except trio.WouldBlock:
            target.stats["dropped_full"] += 1
            return False
        self.log.append(LoggedMessage(sender, receiver, message))
        return True


class MemoryTransport:
    """One node's attachment to a ``MemoryHub``."""

    def __init__(self, hub: MemoryHub, node_id: bytes, capacity: int) -> None:
        self.hub = hub
        self.node_id = node_id
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, bytes]](capacity)
        self.stats: Counter[str] = Counter()

    async def send(self, peer: bytes, message: bytes) -> None:
        await trio.lowlevel.checkpoint()
        if self.hub._deliver(self.node_id, bytes(peer), bytes(message)):
            self.stats["sent"] += 1
        else:
            self.stats["dropped_send"] += 1

    async def receive(self) -> tuple[bytes, bytes]:
        item = await self._receive.receive()
        self.stats["received"] += 1
        return item

    def statistics(self) -> TransportStatistics:
        return TransportStatistics(dict(self.stats))


class TapTransport:
    """Wraps a transport and records every frame it sends and receives (bounded log):
    exactly what the node behind it can observe about its traffic."""

    def __init__(self, inner: Transport, *, log_size: int = 10_000) -> None:
        self.inner = inner
        self.node_id = inner.node_id
        self.log: deque[LoggedMessage] = deque(maxlen=log_size)

    async def send(self, peer: bytes, message: bytes) -> None:
        self.log.append(LoggedMessage(self.node_id, bytes(peer), bytes(message)))
        await self.inner.send(peer, message)

    async def receive(self) -> tuple[bytes, bytes]:
        sender, message = await self.inner.receive()
        self.log.append(LoggedMessage(sender, self.node_id, message))
        return sender, message

    def statistics(self) -> TransportStatistics:
        return self.inner.statistics()


__all__ = ["LoggedMessage", "MemoryHub", "MemoryTransport", "TapTransport", "Transport",
           "TransportStatistics"]

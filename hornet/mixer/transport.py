"""Moving Lightning messages between local nodes: UDP datagrams, or memory channels.

Lightning peers speak BOLT 8 (Noise_XK over TCP). For loopback demos and tests this
module carries each BOLT 1 message (here: ``onion_message`` 513 and
``onion_message_drop`` 515) as one datagram::

    sender node id (33) ‖ message

Nodes are named by node id; a directory maps node ids to UDP addresses. A node that
is not in the directory (a client with a fresh identity) is reachable once it has
sent a datagram: the receiver learns its address, as a server learns a connecting
peer's. **The sender id is not authenticated** (BOLT 8 would do that): this
transport is for loopback use only.

Both transports keep their queues bounded: the memory endpoint's receive channel has
a fixed capacity (a full endpoint drops, like a full UDP socket buffer), and the UDP
endpoint's learned-address table is capped (oldest entry evicted).
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from typing import Final, Protocol

import attrs
import trio

from hornet.errors import LocalProtocolError

NODE_ID_LEN: Final = 33
#: The largest UDP payload over IPv4 (65535 − 8 − 20).
MAX_DATAGRAM: Final = 65_507
MAX_LEARNED: Final = 4096


class Transport(Protocol):
    """What nodes, mixers and clients need from a transport."""

    node_id: bytes

    async def send(self, peer: bytes, message: bytes) -> None:
        """Hand ``message`` to ``peer``; silently dropped (and counted) if it cannot go."""
        ...

    async def receive(self) -> tuple[bytes, bytes]:
        """The next (sender node id, message)."""
        ...

    def statistics(self) -> dict[str, int]: ...


@attrs.frozen
class Frame:
    """One message seen on a hub: ``sender`` → ``receiver`` (for tests and demos)."""

    sender: bytes
    receiver: bytes
    message: bytes = attrs.field(repr=lambda m: f"<{len(m)} bytes>")


class MemoryHub:
    """An in-memory network of ``MemoryEndpoint``s (trio memory channels)."""

    def __init__(self, *, capacity: int = 256, log_size: int = 10_000) -> None:
        self.capacity = capacity
        self._endpoints: dict[bytes, MemoryEndpoint] = {}
        self.log: deque[Frame] = deque(maxlen=log_size)

    def endpoint(self, node_id: bytes) -> MemoryEndpoint:
        node_id = bytes(node_id)
        if node_id in self._endpoints:
            raise LocalProtocolError("node id already attached to this hub")
        endpoint = MemoryEndpoint(self, node_id, self.capacity)
        self._endpoints[node_id] = endpoint
        return endpoint

    def detach(self, node_id: bytes) -> None:
        self._endpoints.pop(bytes(node_id), None)

    def _deliver(self, sender: bytes, receiver: bytes, message: bytes) -> bool:
        target = self._endpoints.get(receiver)
        if target is None:
            return False
        try:
            target._send.send_nowait((sender, message))
        except trio.WouldBlock:
            target.stats["dropped_full"] += 1
            return False
        self.log.append(Frame(sender, receiver, message))
        return True


class MemoryEndpoint:
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

    def statistics(self) -> dict[str, int]:
        return dict(self.stats)


class UdpEndpoint:
    """A node on UDP: one socket, a static directory and learned client addresses."""

    def __init__(self, node_id: bytes, sock: trio.socket.SocketType,
                 directory: Mapping[bytes, tuple[str, int]]) -> None:
        if len(node_id) != NODE_ID_LEN:
            raise LocalProtocolError("node id must be 33 bytes")
        self.node_id = bytes(node_id)
        self._sock = sock
        self.directory = directory
        self._learned: OrderedDict[bytes, tuple[str, int]] = OrderedDict()
        self.stats: Counter[str] = Counter()

    @classmethod
    async def open(cls, node_id: bytes, host: str = "127.0.0.1", port: int = 0, *,
                   directory: Mapping[bytes, tuple[str, int]] | None = None) -> UdpEndpoint:
        """Bind a UDP socket; ``directory`` (shared, may grow later) names known nodes."""
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        try:
            await sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
        return cls(node_id, sock, {} if directory is None else directory)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def _address_of(self, peer: bytes) -> tuple[str, int] | None:
        return self.directory.get(peer) or self._learned.get(peer)

    async def send(self, peer: bytes, message: bytes) -> None:
        address = self._address_of(bytes(peer))
        datagram = self.node_id + bytes(message)
        if address is None or len(datagram) > MAX_DATAGRAM:
            self.stats["dropped_no_address" if address is None else "dropped_too_large"] += 1
            await trio.lowlevel.checkpoint()
            return
        try:
            await self._sock.sendto(datagram, address)
            self.stats["sent"] += 1
        except OSError:
            self.stats["dropped_send_error"] += 1

    async def receive(self) -> tuple[bytes, bytes]:
        while True:
            try:
                data, address = await self._sock.recvfrom(MAX_DATAGRAM + 1)
            except OSError:  # e.g. ICMP port unreachable reported on the socket
                self.stats["receive_errors"] += 1
                continue
            if len(data) <= NODE_ID_LEN or len(data) > MAX_DATAGRAM:
                self.stats["dropped_malformed"] += 1
                continue
            sender = bytes(data[:NODE_ID_LEN])
            if sender not in self.directory:
                self._learned[sender] = (str(address[0]), int(address[1]))
                self._learned.move_to_end(sender)
                while len(self._learned) > MAX_LEARNED:
                    self._learned.popitem(last=False)
            self.stats["received"] += 1
            return sender, bytes(data[NODE_ID_LEN:])

    def close(self) -> None:
        self._sock.close()

    def statistics(self) -> dict[str, int]:
        return dict(self.stats)


class TapTransport:
    """Wraps a transport and records every frame it sends and receives (bounded log):
    exactly what the node behind it can observe about its traffic."""

    def __init__(self, inner: Transport, *, log_size: int = 10_000) -> None:
        self.inner = inner
        self.node_id = inner.node_id
        self.log: deque[Frame] = deque(maxlen=log_size)

    async def send(self, peer: bytes, message: bytes) -> None:
        self.log.append(Frame(self.node_id, bytes(peer), bytes(message)))
        await self.inner.send(peer, message)

    async def receive(self) -> tuple[bytes, bytes]:
        sender, message = await self.inner.receive()
        self.log.append(Frame(sender, self.node_id, message))
        return sender, message

    def statistics(self) -> dict[str, int]:
        return self.inner.statistics()


__all__ = ["Frame", "MemoryEndpoint", "MemoryHub", "TapTransport", "Transport", "UdpEndpoint"]

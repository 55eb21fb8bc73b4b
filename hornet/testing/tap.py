"""A ``Network`` wrapper that records who sent a datagram to whom (demos, tests).

``TapNetwork(inner)`` binds through ``inner`` and logs ``(source, destination, size)``
for every datagram its sockets send, in a bounded deque, so a demo can check a privacy
claim ("the client's socket only ever talked to the mixer's relay") against what
actually went over the wire. It records addresses and sizes, never contents.
"""

from __future__ import annotations

from collections import deque

import attrs

from hornet.transport.udp import Address, DatagramSocket, Network


@attrs.frozen
class Sent:
    source: Address
    destination: Address
    size: int


class TapSocket:
    def __init__(self, sock: DatagramSocket, log: deque[Sent]) -> None:
        self._sock = sock
        self._log = log

    @property
    def address(self) -> Address:
        return self._sock.address

    async def send(self, data: bytes, address: Address) -> None:
        self._log.append(Sent(self._sock.address, address, len(data)))
        await self._sock.send(data, address)

    async def receive(self) -> tuple[bytes, Address]:
        return await self._sock.receive()

    def return_address(self, peer: Address) -> Address:
        return self._sock.return_address(peer)

    def close(self) -> None:
        self._sock.close()


class TapNetwork:
    """Binds like ``inner`` and logs every datagram sent (at most ``log_size`` kept)."""

    def __init__(self, inner: Network, *, log_size: int = 100_000) -> None:
        self.inner = inner
        self.log: deque[Sent] = deque(maxlen=log_size)

    async def bind(self, address: Address) -> TapSocket:
        return TapSocket(await self.inner.bind(address), self.log)

    def destinations_of(self, source: Address) -> set[Address]:
        return {s.destination for s in self.log if s.source == source}

    def sources_to(self, destination: Address) -> set[Address]:
        return {s.source for s in self.log if s.destination == destination}


__all__ = ["Sent", "TapNetwork", "TapSocket"]

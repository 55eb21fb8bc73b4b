"""An in-memory datagram network with the ``hornet.transport.Network`` interface.

Deterministic under trio's ``autojump_clock``: optional loss (from a seeded rng) and a
filter that may drop any datagram; bounded per-socket queues that drop when full.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import trio

from hornet.transport.udp import Address

#: Decides the fate of one datagram: return False to lose it.
Filter = Callable[[bytes, Address, Address], bool]


class MemorySocket:
    def __init__(self, network: MemoryNetwork, address: Address, queue: int) -> None:
        self._network = network
        self._address = address
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, Address]](queue)
        self.dropped = 0

    @property
    def address(self) -> Address:
        return self._address

    async def send(self, data: bytes, address: Address) -> None:
        await self._network._route(bytes(data), self._address, address)

    async def receive(self) -> tuple[bytes, Address]:
        return await self._receive.receive()

    def _put(self, data: bytes, source: Address) -> None:
        try:
            self._send.send_nowait((data, source))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped += 1

    def return_address(self, peer: Address) -> Address:
        return self._address

    def close(self) -> None:
        self._network._sockets.pop(self._address, None)
        self._send.close()


class MemoryNetwork:
    """Sockets in memory. ``loss`` drops that share at random; ``filter`` may drop any."""

    def __init__(
        self,
        *,
        seed: int = 1,
        loss: float = 0.0,
        queue: int = 1024,
        filter: Filter | None = None,
    ) -> None:
        self._sockets: dict[Address, MemorySocket] = {}
        self._next_port = 20000
        self.rng = random.Random(seed)  # noqa: S311  (deterministic loss for tests)
        self.loss = loss
        self.queue = queue
        self.filter = filter
        self.sent = 0
        self.lost = 0

    async def bind(self, address: Address) -> MemorySocket:
        host, port = address
        if port == 0:
            self._next_port += 1
            port = self._next_port
        bound = (host, port)
        if bound in self._sockets:
            raise OSError(f"address in use: {bound}")
        sock = MemorySocket(self, bound, self.queue)
        self._sockets[bound] = sock
        return sock

    async def _route(self, data: bytes, source: Address, destination: Address) -> None:
        self.sent += 1
        await trio.lowlevel.checkpoint()
        if (self.loss and self.rng.random() < self.loss) or (
            self.filter is not None and not self.filter(data, source, destination)
        ):
            self.lost += 1
            return
        target = self._sockets.get(destination)
        if target is not None:
            target._put(data, source)

"""A deterministic datagram simulator for link endpoints (no trio: the core is sans-IO)."""

from __future__ import annotations

import heapq
import random
from collections import Counter, defaultdict
from collections.abc import Callable

from hornet.core.crypto import SecretKey
from hornet.errors import RemoteProtocolError
from hornet.link.endpoint import Address, LinkEndpoint
from hornet.link.peers import LinkConfig

A: Address = ("10.0.0.1", 1000)
B: Address = ("10.0.0.2", 1000)
C: Address = ("10.0.0.3", 1000)
CLIENT: Address = ("10.0.0.9", 5000)

KEYS = {addr: SecretKey(bytes([i + 1]) * 32) for i, addr in enumerate((A, B, C))}


def directory(address: Address) -> bytes | None:
    key = KEYS.get(address)
    return key.public_key if key is not None else None


#: Decides the fate of one datagram in flight: False loses it.
Filter = Callable[[bytes, Address, Address], bool]


class Sim:
    """Endpoints joined by a lossy, reordering, duplicating network with a virtual clock."""

    def __init__(
        self,
        *,
        loss: float = 0.0,
        duplicate: float = 0.0,
        latency: float = 0.01,
        jitter: float = 0.0,
        seed: int = 7,
        config: LinkConfig | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.loss, self.duplicate = loss, duplicate
        self.latency, self.jitter = latency, jitter
        self.config = config
        self.now = 0.0
        self.endpoints: dict[Address, LinkEndpoint] = {}
        self.flight: list[tuple[float, int, bytes, Address, Address]] = []
        self.seq = 0
        self.received: dict[Address, list[tuple[bytes, Address]]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.filter: Filter | None = None
        self.wire: list[tuple[bytes, Address, Address]] = []

    def add(self, address: Address, *, client: bool = False) -> LinkEndpoint:
        identity = None if client else KEYS[address]
        endpoint = LinkEndpoint(identity, directory, random.Random(hash(address) & 0xFFFF),
                                self.config)
        self.endpoints[address] = endpoint
        return endpoint

    def transmit(self, datagram: bytes, source: Address, destination: Address) -> None:
        self.wire.append((datagram, source, destination))
        if self.filter is not None and not self.filter(datagram, source, destination):
            return
        if self.rng.random() < self.loss:
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            self.seq += 1
            when = self.now + self.latency + self.rng.random() * self.jitter
            heapq.heappush(self.flight, (when, self.seq, datagram, source, destination))

    def flush(self, address: Address) -> None:
        for datagram, destination in self.endpoints[address].datagrams_to_send():
            self.transmit(datagram, address, destination)

    def send(self, source: Address, packet: bytes, destination: Address) -> None:
        sealed = self.endpoints[source].seal(packet, destination, self.now)
        if sealed is not None:
            self.transmit(sealed, source, destination)
        self.flush(source)

    def deliver(self, datagram: bytes, source: Address, destination: Address) -> None:
        endpoint = self.endpoints.get(destination)
        if endpoint is None:
            return
        try:
            packet = endpoint.open(datagram, source, self.now)
        except RemoteProtocolError as exc:
            self.errors[type(exc).__name__] += 1
            packet = None
        if packet is not None:
            self.received[destination].append((packet, source))
        self.flush(destination)

    def run(self, duration: float) -> None:
        end = self.now + duration
        while True:
            deadlines = [d for e in self.endpoints.values() if (d := e.next_deadline()) is not None]
            next_timer = min(deadlines, default=float("inf"))
            next_packet = self.flight[0][0] if self.flight else float("inf")
            when = min(next_timer, next_packet)
            if when > end:
                self.now = end
                return
            self.now = max(self.now, when)
            if next_packet <= next_timer:
                _, _, datagram, source, destination = heapq.heappop(self.flight)
                self.deliver(datagram, source, destination)
            else:
                for address, endpoint in list(self.endpoints.items()):
                    endpoint.tick(self.now)
                    self.flush(address)

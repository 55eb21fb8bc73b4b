"""An in-memory HORNET network of ``Relay`` objects, driven synchronously.

Packets hop from relay to relay by node id until they leave the network (reach an
endpoint id no relay owns), are delivered, or are dropped. Every step is recorded, so
tests can inspect each hop and golden-vector scripts can print them. Deterministic for
a seeded ``rng``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

from hornet.core import crypto
from hornet.core.e2e import DestinationSession, Outgoing, SourceSession
from hornet.core.params import Params
from hornet.core.relay import Deliver, Drop, Forward, Relay
from hornet.core.setup import CircuitKeys, HopSpec, build_setup, complete_setup
from hornet.errors import LocalProtocolError

SOURCE_ID = b"source\x00\x01"


@attrs.frozen
class Hop:
    """One step of a packet's trip: which node processed ``packet`` and its decision."""

    node_id: bytes
    packet: bytes
    result: Forward | Deliver | Drop


@attrs.frozen
class Trip:
    hops: tuple[Hop, ...]
    final: Forward | Deliver | Drop  # Forward to a non-relay id means "left the network"

    @property
    def delivered(self) -> Deliver:
        if not isinstance(self.final, Deliver):
            raise LocalProtocolError(f"packet was not delivered: {self.final!r}")
        return self.final

    @property
    def exit_packet(self) -> bytes:
        if not isinstance(self.final, Forward):
            raise LocalProtocolError(f"packet did not leave the network: {self.final!r}")
        return self.final.packet


class SimNetwork:
    def __init__(
        self,
        size: int,
        params: Params | None = None,
        *,
        seed: int = 1,
        cache_size: int = 1024,
        engine: str | None = None,
    ) -> None:
        self.params = params or Params()
        self.rng = random.Random(seed)  # noqa: S311  (deterministic test networks by design)
        self.relays: list[Relay] = []
        self.secrets: list[bytes] = []  # each relay's local secret SV, for golden vectors
        for _ in range(size):
            key = crypto.SecretKey.from_rng(self.rng)
            self.secrets.append(self.rng.randbytes(32))
            self.relays.append(
                Relay(key, self.secrets[-1], self.params, cache_size=cache_size, engine=engine)
            )
        self.by_id = {relay.node_id: relay for relay in self.relays}

    def spec(self, index: int, epoch: int = 0) -> HopSpec:
        """Relay ``index`` as a source sees it in key epoch ``epoch``."""
        relay = self.relays[index]
        return HopSpec(relay.node_id, relay.setup_public_key(epoch))

    def send(self, first_hop: bytes, packet: bytes, now: float) -> Trip:
        hops: list[Hop] = []
        hop = first_hop
        while True:
            relay = self.by_id[hop]
            result = relay.process(packet, now)
            hops.append(Hop(hop, packet, result))
            if not isinstance(result, Forward) or result.next_hop not in self.by_id:
                return Trip(tuple(hops), result)
            hop, packet = result.next_hop, result.packet

    def setup(
        self,
        forward: Sequence[int],
        backward: Sequence[int],
        *,
        now: float = 0,
        exp: int = 600,
        endpoint: bytes = SOURCE_ID,
        rendezvous: bool = False,
    ) -> CircuitKeys:
        """Run a setup round trip from ``endpoint`` (an id no relay owns)."""
        epoch = self.params.epoch_of(now)
        request = build_setup(
            self.params,
            [self.spec(i, epoch) for i in forward],
            [self.spec(i, epoch) for i in backward],
            endpoint,
            exp,
            self.rng,
            rendezvous=rendezvous,
            key_epoch=epoch,
        )
        trip = self.send(request.first_hop, request.packet, now)
        return complete_setup(request.pending, trip.exit_packet, self.rng)

    def deliver(self, out: Outgoing, now: float) -> Trip:
        return self.send(out.next_hop, out.packet, now)


def open_session(
    net: SimNetwork, forward: Sequence[int], backward: Sequence[int], payload_size: int = 1024
) -> tuple[SourceSession, DestinationSession]:
    """Set up a circuit and exchange the INIT packet; returns both ends' sessions."""
    source = SourceSession(net.setup(forward, backward), payload_size)
    trip = net.deliver(source.seal(b"", 1, net.rng), 1)
    dest = DestinationSession(net.params, trip.delivered, payload_size)
    dest.receive(trip.delivered)
    return source, dest

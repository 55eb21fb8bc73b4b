"""The relay service: the core's ``Relay.process`` on a UDP socket.

Shape (trio's ``serve_listeners``): ``await nursery.start(serve_relay, keys, directory,
address)`` binds the socket, reports the running ``RelayNode`` through
``task_status.started``, and serves until cancelled; the socket is closed in ``finally``.

Per datagram, in order:
1. the receive task applies the per-neighbour token bucket (drop ``rate_limited``) and
   puts the datagram on a bounded queue; when the queue is full the newest datagram is
   dropped (``queue_full``): a relay under load sheds the work it has not started;
2. the worker runs ``process(packet, now)`` and sends ``Forward``s to the next hop's
   address (directory, or endpoint id), hands ``Deliver``s to ``on_deliver`` (a
   destination service), and counts ``Drop``s by reason. Nothing is ever sent back for a
   dropped packet.
"""

from __future__ import annotations

import collections
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

import attrs
import trio

from hornet.core.relay import Deliver, Drop, Forward, Relay
from hornet.directory import Directory, NodeKeys
from hornet.transport import Address, DatagramSocket, Network, UdpNetwork, unix_now

log = logging.getLogger("hornet.relay")

DEFAULT_QUEUE: Final = 1024
DEFAULT_RATE: Final = 50_000.0  # packets/s per neighbour
DEFAULT_BURST: Final = 5_000.0
MAX_NEIGHBOURS: Final = 4096
BATCH: Final = 32  # packets the worker handles per trip through the scheduler


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``take`` is False when empty."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, burst, now

    def take(self, now: float, cost: float = 1.0) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


@attrs.frozen
class RelayStatistics:
    forwarded: int
    delivered: int
    dropped: dict[str, int]
    queued: int
    cached_circuits: int


class RelayNode:
    """A running relay: its core, socket, queue and counters."""

    def __init__(
        self,
        keys: NodeKeys,
        directory: Directory,
        sock: DatagramSocket,
        *,
        queue: int = DEFAULT_QUEUE,
        rate: float = DEFAULT_RATE,
        burst: float = DEFAULT_BURST,
        on_deliver: Callable[[Deliver], None] | None = None,
        loss: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.core = Relay(keys.node_key, keys.local_secret, directory.params)
        self.node_id = self.core.node_id
        self.directory = directory
        self.socket = sock
        self.rate, self.burst = rate, burst
        self.on_deliver = on_deliver
        self.loss = loss  # fault injection for tests: drop this share of arrivals
        self._rng = rng or random.Random()  # noqa: S311  (only for injected loss)
        self._buckets: OrderedDict[Address, TokenBucket] = OrderedDict()
        self._send_q, self._recv_q = trio.open_memory_channel[bytes](queue)
        self.forwarded = 0
        self.delivered = 0
        self.dropped: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"RelayNode(node_id={self.node_id.hex()}, address={self.address})"

    @property
    def address(self) -> Address:
        return self.socket.address

    def statistics(self) -> RelayStatistics:
        return RelayStatistics(
            forwarded=self.forwarded,
            delivered=self.delivered,
            dropped=dict(self.dropped),
            queued=self._send_q.statistics().current_buffer_used,
            cached_circuits=self.core.cached_circuits,
        )

    def _admit(self, source: Address, now: float) -> bool:
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > MAX_NEIGHBOURS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
        return bucket.take(now)

    async def _receive_loop(self) -> None:
        while True:
            data, source = await self.socket.receive()
            if self.loss and self._rng.random() < self.loss:
                self.dropped["injected_loss"] += 1
                continue
            if not self._admit(source, trio.current_time()):
                self.dropped["rate_limited"] += 1
                continue
            try:
                self._send_q.send_nowait(data)
            except trio.WouldBlock:
                self.dropped["queue_full"] += 1

    async def _work_loop(self) -> None:
        # Take what is queued in batches: one trip through the scheduler per batch, not
        # per packet (``handle`` only yields when the socket's send buffer is full).
        queue = self._recv_q
        while True:
            await self.handle(await queue.receive())
            for _ in range(BATCH - 1):
                try:
                    packet = queue.receive_nowait()
                except trio.WouldBlock:
                    break
                await self.handle(packet)

    async def handle(self, packet: bytes) -> None:
        """Process one packet and act on the decision."""
        result = self.core.process(packet, unix_now())
        if isinstance(result, Forward):
            address = self.directory.address_of(result.next_hop)
            if address is None:
                self.dropped["unknown_next_hop"] += 1
                return
            self.forwarded += 1
            await self.socket.send(result.packet, address)
        elif isinstance(result, Deliver):
            if self.on_deliver is None:
                self.dropped["no_service"] += 1
                return
            self.delivered += 1
            self.on_deliver(result)
        else:
            assert isinstance(result, Drop)
            self.dropped[result.reason.value] += 1

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receive_loop)
            nursery.start_soon(self._work_loop)


async def serve_relay(
    keys: NodeKeys,
    directory: Directory,
    address: Address,
    *,
    network: Network | None = None,
    sock: DatagramSocket | None = None,
    on_deliver: Callable[[Deliver], None] | None = None,
    queue: int = DEFAULT_QUEUE,
    rate: float = DEFAULT_RATE,
    burst: float = DEFAULT_BURST,
    loss: float = 0.0,
    task_status: trio.TaskStatus[RelayNode] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a relay on ``address`` until cancelled (``nursery.start`` gives its node).

    ``sock`` is an already bound socket to use instead (``local_network`` binds first, to
    learn the ports for the directory); the relay then owns and closes it.
    """
    sock = sock or await (network or UdpNetwork()).bind(address)
    try:
        node = RelayNode(
            keys,
            directory,
            sock,
            queue=queue,
            rate=rate,
            burst=burst,
            on_deliver=on_deliver,
            loss=loss,
        )
        log.info("relay %s listening on %s:%d", node.node_id.hex(), *sock.address)
        task_status.started(node)
        await node.run()
    finally:
        sock.close()

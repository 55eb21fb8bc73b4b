"""The relay service: the core's ``Relay.process`` on a UDP socket.

Shape (trio's ``serve_listeners``): ``await nursery.start(serve_relay, keys, directory,
address)`` binds the socket, reports the running ``RelayNode`` through
``task_status.started``, and serves until cancelled; the socket is closed in ``finally``.

Per datagram, in order:
1. the receive task asks ``Admission`` (``hornet.node.admission``: shape, per-neighbour
   setup and data token buckets, setup puzzles under load) and drops what it refuses
   (``malformed``, ``setup_rate_limited``, ``rate_limited``, ``puzzle``,
   ``puzzle_reused``); the rest goes on one of two bounded queues, data or setup. When
   a queue is full the newest datagram is dropped (``queue_full``,
   ``setup_queue_full``): a relay under load sheds the work it has not started;
2. the worker serves data first (up to ``BATCH`` packets, then at most ``SETUP_BATCH``
   setups per trip), so a setup flood cannot starve established circuits. It runs
   ``process(packet, now)`` and sends ``Forward``s to the next hop's address (directory,
   or endpoint id), hands ``Deliver``s to ``on_deliver`` (a destination service), and
   counts ``Drop``s by reason. Nothing is ever sent back for a dropped packet.

On the native engine, with a real UDP socket (``native_loop`` not False, no injected
loss), the receive task gives way to ``hornet.transport.native_loop``: a Rust thread
takes every datagram, decides the DATA packets with the core's own data plane and sends
their forwards itself; what it does not decide (setups, handshakes, deliveries, forwards
with no link session yet) comes here as events and follows the steps above.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable
from os import PathLike
from typing import Final

import attrs
import trio

from hornet.core.relay import Deliver, Drop, Forward, Relay, SetupDrop, SetupForward, SetupTag
from hornet.directory.model import Directory, NodeKeys, endpoint_v6
from hornet.errors import BindError, ConfigError, HornetError, LocalDropReason, SendRefusedError
from hornet.node.admission import Admission, Limits, Verdict, solution_span
from hornet.node.state import RelayState, open_state
from hornet.transport.kernel_filter import install_kernel_filter
from hornet.transport.link import LinkSocket, directory_resolver, with_link
from hornet.transport.native_loop import DELIVER, FORWARD, PACKET, RAW, NativeLoop, open_native_loop
from hornet.transport.udp import Address, DatagramSocket, Network, UdpNetwork, unix_now

log = logging.getLogger("hornet.relay")

BATCH: Final = 32  # data packets the worker handles per trip through the scheduler
SETUP_BATCH: Final = 2  # setups (an ECDH each) it handles per trip, after the data
_QUEUE_FULL: Final = LocalDropReason.QUEUE_FULL
_SETUP_QUEUE_FULL: Final = LocalDropReason.SETUP_QUEUE_FULL
#: On a restart a relay reopens its links to the other listed relays, waiting this long
#: for each.
GREETING_S: Final = 10.0


@attrs.frozen
class RelayStatistics:
    forwarded: int
    delivered: int
    dropped: dict[str, int]
    queued: int
    cached_circuits: int
    setups: int = 0  # circuit setups accepted (sent on, or delivered here)
    data_queued: int = 0
    setup_queued: int = 0


class RelayNode:
    """A running relay: its core, socket, queue and counters."""

    def __init__(
        self,
        keys: NodeKeys,
        directory: Directory,
        sock: DatagramSocket,
        *,
        limits: Limits | None = None,
        kernel_filter: bool = True,
        on_deliver: Callable[[Deliver], None] | None = None,
        loss: float = 0.0,
        rng: random.Random | None = None,
        state: RelayState | None = None,
        native_loop: bool | None = None,
    ) -> None:
        # -- replay state across restarts (SPEC.md §7.5): generation and setup tags --
        self.state = state
        self.core = Relay(
            keys.node_key,
            keys.local_secret,
            directory.params,
            generation=state.generation if state is not None else 0,
            record_setup_tags=state is not None,
        )
        #: A restart of a node that ran before under this state (its generation moved on).
        self.restarted = state is not None and state.generation > 1
        self._state_epoch = -1
        if state is not None:
            self._refresh_state(unix_now())
        self.node_id = self.core.node_id
        self.directory = directory
        self.socket = sock
        self.limits = limits = limits or Limits()
        self.admission = Admission(
            limits,
            directory.params.setup_packet_len,
            (r.address for r in directory),
            solution_span_s=solution_span(directory.params),
        )
        # Garbage is dropped in the kernel, before it costs a system call (kernel_filter.py).
        self.kernel_filter = kernel_filter and install_kernel_filter(sock, directory.params)
        self.on_deliver = on_deliver
        self.loss = loss  # fault injection for tests: drop this share of arrivals
        self._rng = rng or random.Random()  # noqa: S311  (only for injected loss)
        # Two bounded queues, data served first (``_work_loop``); ``_wake`` is set when
        # the worker waits on empty queues.
        self._data_q: collections.deque[bytes] = collections.deque()
        self._setup_q: collections.deque[bytes] = collections.deque()
        self._wake = trio.Event()
        self.forwarded = 0
        self.delivered = 0
        self.setups = 0
        self.dropped: collections.Counter[str] = collections.Counter()
        self.directory_since = time.time()  # when the directory in use was published
        #: The native data loop (None: the trio receive task reads the socket). ``None``
        #: for ``native_loop`` means: when the engine and the socket allow it.
        self.native: NativeLoop | None = None
        fast = getattr(self.core, "_fast", None)
        if native_loop is not False and fast is not None and not loss:
            self.native = open_native_loop(
                sock, fast, capacity=limits.queue, data_rate=limits.data_rate,
                data_burst=limits.data_burst,
            )
            if self.native is not None:
                self.native.set_routes((r.node_id, r.address) for r in directory)

    def __repr__(self) -> str:
        return f"RelayNode(node_id={self.node_id.hex()}, address={self.address})"

    @property
    def address(self) -> Address:
        return self.socket.address

    def replace_directory(self, directory: Directory, *, published: float | None = None) -> None:
        """Route by ``directory`` from now on: next hops, the relays' admission limits and
        the link layer's neighbour keys. Its network parameters must be the running ones
        (they shape every packet); ``ConfigError`` otherwise, and nothing changes."""
        if directory.params != self.directory.params:
            raise ConfigError("the new directory changes params; restart the node to apply")
        self.directory = directory
        self.admission.set_relays(relay.address for relay in directory)
        if isinstance(self.socket, LinkSocket):
            self.socket.endpoint.resolve = directory_resolver(directory)
        if self.native is not None:
            self.native.set_routes((r.node_id, r.address) for r in directory)
        self.directory_since = time.time() if published is None else published
        log.info("directory replaced: %d nodes", len(directory))

    def directory_fetched(self, fetched_at: float) -> None:
        """The directory in use was confirmed current at ``fetched_at`` (refreshed from the
        authorities, changed or not): its age counts from then."""
        self.directory_since = fetched_at

    def statistics(self) -> RelayStatistics:
        forwarded, dropped, native_queued = self.forwarded, collections.Counter(self.dropped), 0
        if self.native is not None:
            fast = self.native.statistics()
            forwarded += fast.forwarded
            dropped.update(fast.dropped)
            native_queued = fast.queued
        return RelayStatistics(
            forwarded=forwarded,
            delivered=self.delivered,
            dropped=dict(dropped),
            queued=len(self._data_q) + len(self._setup_q) + native_queued,
            cached_circuits=self.core.cached_circuits,
            setups=self.setups,
            data_queued=len(self._data_q),
            setup_queued=len(self._setup_q),
        )

    def _admit(self, packet: bytes, source: Address) -> None:
        """Admission and queueing of one datagram (never blocks)."""
        verdict = self.admission.admit(packet, source, trio.current_time())
        if verdict is Verdict.DATA:
            queue, limit, full = self._data_q, self.limits.queue, _QUEUE_FULL
        elif verdict is Verdict.SETUP:
            queue, limit, full = self._setup_q, self.limits.setup_queue, _SETUP_QUEUE_FULL
        else:
            self.dropped[verdict] += 1
            return
        if len(queue) >= limit:
            self.dropped[full] += 1
            return
        queue.append(packet)
        self._wake.set()

    @property
    def puzzle_difficulty(self) -> int:
        """The puzzle difficulty client setups must carry now (0: no puzzle)."""
        return self.admission.policy.required(trio.current_time())

    async def _receive_loop(self) -> None:
        while True:
            data, source = await self.socket.receive()
            if self.loss and self._rng.random() < self.loss:
                self.dropped[LocalDropReason.INJECTED_LOSS] += 1
                continue
            self._admit(data, source)

    async def _native_receive_loop(self, native: NativeLoop) -> None:
        """The receive task on the native engine: the loop's events (module doc)."""
        link = self.socket if isinstance(self.socket, LinkSocket) else None
        native.start()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(native.sync_forever)
                while True:
                    touched = False
                    for event in await native.next_events():
                        kind = event[0]
                        if kind == RAW:
                            touched = True
                            if link is None:
                                continue
                            packet = await link.accept(event[1], event[2])
                            if packet is not None:
                                self._admit(packet, event[2])
                        elif kind == PACKET:
                            self._admit(event[1], event[2])
                        elif kind == FORWARD:
                            await self._send_on(event[2], event[1])
                        elif kind == DELIVER:
                            self._deliver(Deliver(event[1], event[2], event[3], event[4]))
                    if touched:
                        native.sync(trio.current_time())
        finally:
            native.stop()

    async def _work_loop(self) -> None:
        # Data first: up to BATCH data packets, then at most SETUP_BATCH setups, per trip
        # through the scheduler (``handle`` only yields when the socket's send buffer is
        # full), so established circuits keep flowing under a setup flood.
        data, setups = self._data_q, self._setup_q
        while True:
            if not data and not setups:
                self._wake = trio.Event()
                await self._wake.wait()
            else:
                await trio.lowlevel.checkpoint()
            for _ in range(min(BATCH, len(data))):
                await self.handle(data.popleft())
            for _ in range(min(SETUP_BATCH, len(setups))):
                await self._handle_setup(setups.popleft())

    async def _handle_setup(self, packet: bytes) -> None:
        """``handle`` for a setup packet, counted and logged (one line per circuit) when
        accepted. The line names no hop or circuit: logs must not link circuits."""
        before = self.forwarded + self.delivered
        await self.handle(packet)
        if self.forwarded + self.delivered != before:
            self.setups += 1
            log.info("circuit setup accepted (%d so far)", self.setups)

    def _refresh_state(self, now: float) -> None:
        """At start and at each new key epoch: load the persisted setup tags of the epochs
        whose keys are usable, and delete older ones."""
        assert self.state is not None
        epoch = self.core.params.epoch_of(now)
        if epoch == self._state_epoch:
            return
        for e in range(max(self._state_epoch + 1, epoch - 1), epoch + 2):
            self.core.restore_setup_tags(e, self.state.tags(e))
        self.state.prune(epoch - 1)
        self._state_epoch = epoch

    def _persist(self, tag: SetupTag, now: float) -> None:
        """Make a setup's replay tag durable, then acknowledge it to the core."""
        assert self.state is not None  # the core hands out tags only when it has a state
        self.state.record((tag,))
        self.core.setup_tags_persisted(1)
        self._refresh_state(now)

    def _endpoint_v6(self, node_id: bytes) -> Address | None:
        """An IPv6 endpoint's address: one of our link peers (SPEC.md §10)."""
        v6 = endpoint_v6(node_id)
        if v6 is None or not isinstance(self.socket, LinkSocket):
            return None
        return self.socket.endpoint_v6(*v6)

    async def handle(self, packet: bytes) -> None:
        """Process one packet and act on the decision."""
        now = unix_now()
        result = self.core.process(packet, now)
        if isinstance(result, Forward):
            if type(result) is SetupForward:
                self._persist(result.setup_tag, now)  # sent on only once it is durable
            await self._send_on(result.next_hop, result.packet)
        elif isinstance(result, Deliver):
            self._deliver(result)
        else:
            assert isinstance(result, Drop)
            if type(result) is SetupDrop:
                self._persist(result.setup_tag, now)
            self.dropped[result.reason.value] += 1

    async def _send_on(self, next_hop: bytes, packet: bytes) -> None:
        address = self.directory.address_of(next_hop) or self._endpoint_v6(next_hop)
        if address is None:
            self.dropped[LocalDropReason.UNKNOWN_NEXT_HOP] += 1
            return
        self.forwarded += 1
        try:
            await self.socket.send(packet, address)
        except SendRefusedError:
            self.dropped[LocalDropReason.SEND_REFUSED] += 1

    def _deliver(self, result: Deliver) -> None:
        if self.on_deliver is None:
            self.dropped[LocalDropReason.NO_SERVICE] += 1
            return
        self.delivered += 1
        self.on_deliver(result)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            if self.native is not None:
                nursery.start_soon(self._native_receive_loop, self.native)
            else:
                nursery.start_soon(self._receive_loop)
            nursery.start_soon(self._work_loop)
            if self.restarted and isinstance(self.socket, LinkSocket):
                for relay in self.directory:
                    if relay.node_id != self.node_id:
                        nursery.start_soon(self._greet, relay.address)

    async def _greet(self, address: Address) -> None:
        """Reopen the link to another relay after a restart: the neighbours still hold
        sessions this process forgot, and datagrams they seal under them are dropped
        here; a fresh handshake replaces them at once, instead of when a neighbour next
        rekeys. (A first start has no such sessions to replace, and opens links only as
        traffic needs them.)"""
        assert isinstance(self.socket, LinkSocket)
        with trio.move_on_after(GREETING_S), contextlib.suppress(HornetError):
            await self.socket.connect(address)


async def bind_udp(network: Network, address: Address) -> DatagramSocket:
    """``network.bind(address)``; an address in use or not this host's is a ``BindError``."""
    try:
        return await network.bind(address)
    except OSError as exc:
        raise BindError(f"cannot listen on {address[0]}:{address[1]}: {exc.strerror}") from None


async def serve_relay(
    keys: NodeKeys,
    directory: Directory,
    address: Address,
    *,
    state: str | PathLike[str] | RelayState,
    network: Network | None = None,
    sock: DatagramSocket | None = None,
    on_deliver: Callable[[Deliver], None] | None = None,
    limits: Limits | None = None,
    queue: int | None = None,
    kernel_filter: bool = True,
    loss: float = 0.0,
    link: bool = True,
    native_loop: bool | None = None,
    task_status: trio.TaskStatus[RelayNode] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a relay on ``address`` until cancelled: ``await nursery.start(serve_relay, ...)``.

    Binds (or takes ``sock``), reports the running ``RelayNode`` through
    ``task_status.started`` and serves until cancelled; the socket is closed on exit.

    Args:
        keys: the node's key and local secret SV (``NodeKeys``, from its key file).
        directory: the network's relays and parameters; this node is one of them.
        address: where to listen, ``(host, port)``.
        state: the restart generation and setup replay tags (SPEC.md §7.5): a path
            (opened here, closed on exit) or an open ``RelayState`` (the caller's to
            close). Keep one per node key, with the key file: a restart under the same
            key without it would reopen the replay window.
        network: where to bind (default: ``UdpNetwork()``).
        sock: an already bound socket to use instead of binding (``local_network`` binds
            first, to learn the ports for the directory); the relay then owns and
            closes it.
        on_deliver: receives the ``Deliver`` of every packet that ends at this node (a
            destination service); without it such packets are dropped (``no_service``).
        limits: per-neighbour rates, queue sizes and the setup puzzle policy
            (``Limits``; default ``Limits()``).
        queue: overrides the data queue size in ``limits``.
        kernel_filter: drop datagrams not shaped like link datagrams in the kernel
            (Linux, link layer on; ``hornet.transport.kernel_filter``).
        loss: fault injection for tests: drop this share of arriving datagrams.
        link: link encryption under the node key (docs/spec-link.md; the default).
        native_loop: False keeps the data plane on the trio receive task even on the
            native engine (None: the native loop when the engine and network allow it).
        task_status: trio's; ``started`` is given the ``RelayNode``.

    Raises:
        BindError: ``address`` is in use or not this host's.
        ConfigError: the state file is unusable (unreadable, unknown schema).
    """
    if queue is not None:
        limits = attrs.evolve(limits or Limits(), queue=queue)
    sock = sock or await bind_udp(network or UdpNetwork(), address)
    # Link layer: encrypt under the node key unless link=False.
    sock = with_link(sock, keys.node_key, directory, link=link)
    try:
        with open_state(state) as relay_state:
            node = RelayNode(
                keys,
                directory,
                sock,
                limits=limits,
                kernel_filter=kernel_filter,
                on_deliver=on_deliver,
                loss=loss,
                state=relay_state,
                native_loop=native_loop,
            )
            log.info("relay %s listening on %s:%d", node.node_id.hex(), *sock.address)
            task_status.started(node)
            await node.run()
    finally:
        sock.close()

"""Lightning peers over TCP: BOLT 8 connections driven by ``PeerConnection`` machines.

Strategy (trio-websocket's wrapping of a sans-IO core, trio's ``serve_listeners``):
``PeerNetwork`` is one node's set of connections and implements the mixer's
``Transport`` interface (``send(peer, message)``, ``receive()``). ``serve`` runs in a
nursery the caller supplies: it binds the listener (if any), starts one dialer per
persistent peer, and calls ``task_status.started()``; every connection then runs in
that service's own nursery as three tasks (reader, writer, timer) around its machine.

- Connections are keyed by the peer's authenticated node id (BOLT 8), whichever side
  dialled. If two connections to one peer exist, both sides keep the one dialled by
  the smaller node id (a second one from the same side replaces the first).
- ``send`` to a peer without a connection: if the directory has its address, a dial
  starts and the message waits in that peer's bounded pending queue; otherwise it is
  dropped and counted. A full queue drops and counts too.
- Persistent peers are redialled after a failure with exponential back-off
  (``backoff_initial_s`` doubling to ``backoff_max_s``, reset by a successful init).
- Received messages go through one bounded channel (full: dropped, counted). At
  most ``max_connections`` connections are open at once (handshakes included); a
  connection accepted beyond that is closed at once and counted.
- Time for the machines is ``trio.current_time()``; ephemeral keys come from the
  system RNG (or the ``rng`` passed in, for tests).
"""

from __future__ import annotations

import secrets
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import trio

from hornet.core import crypto
from hornet.credentials.transcript import Rng
from hornet.errors import LocalProtocolError
from hornet.link.bolt8 import Bolt8Connection
from hornet.mixer.peer import (
    PeerClosed,
    PeerConnection,
    PeerEvent,
    PeerMessage,
    PeerReady,
    PeerTimers,
)
from hornet.mixer.transport import TransportStatistics

READ_SIZE: Final = 65_536
PENDING_PER_PEER: Final = 64
MAX_DIALS: Final = 256
TICK_S: Final = 1.0


class _Link:
    """One TCP connection and its machine."""

    def __init__(self, stream: trio.SocketStream, machine: PeerConnection,
                 outbound: bool) -> None:
        self.stream = stream
        self.machine = machine
        self.outbound = outbound
        self.wake = trio.Event()
        self.cancel = trio.CancelScope()

    def flush_soon(self) -> None:
        self.wake.set()


class PeerNetwork:
    """A Lightning node's peers over BOLT 8 / TCP (the mixer's ``Transport``)."""

    def __init__(self, key: crypto.SecretKey, *,
                 directory: Mapping[bytes, tuple[str, int]] | None = None,
                 listen: tuple[str, int] | None = None,
                 persistent: Iterable[bytes] = (), channel_peers: Iterable[bytes] = (),
                 timers: PeerTimers | None = None, inbound_queue: int = 1024,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 60.0,
                 connect_timeout_s: float = 10.0, max_connections: int = 4096,
                 rng: Rng | None = None) -> None:
        self.key = key
        self.node_id = key.public_key
        self.directory: Mapping[bytes, tuple[str, int]] = (
            directory if directory is not None else {})
        self.listen = listen
        self.persistent = [bytes(p) for p in persistent]
        self.channel_peers = frozenset(bytes(p) for p in channel_peers)
        self.timers = timers if timers is not None else PeerTimers()
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.connect_timeout_s = connect_timeout_s
        self.max_connections = max_connections
        self._open_links = 0
        self.rng: Rng = rng if rng is not None else secrets.SystemRandom()
        self.stats: Counter[str] = Counter()
        self._links: dict[bytes, _Link] = {}
        self._pending: dict[bytes, deque[bytes]] = {}
        self._dialling: set[bytes] = set()
        self._ready_events: dict[bytes, trio.Event] = {}
        self._inbound_send, self._inbound = trio.open_memory_channel[tuple[bytes, bytes]](
            inbound_queue)
        self._nursery: trio.Nursery | None = None
        self._listeners: list[trio.SocketListener] = []
        #: Called with (node id, True) when a peer is ready, (node id, False) when its
        #: connection is gone (the mixer's mailboxes use it).
        self.on_change: Callable[[bytes, bool], None] | None = None

    # -- service --------------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        """Listen (if ``listen``), dial the persistent peers, serve until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                if self.listen is not None:
                    host, port = self.listen
                    self._listeners = await trio.open_tcp_listeners(port, host=host)
                    for listener in self._listeners:
                        nursery.start_soon(self._accept_loop, listener)
                for peer in self.persistent:
                    nursery.start_soon(self._persistent_dialer, peer)
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None
                for listener in self._listeners:
                    await trio.aclose_forcefully(listener)

    @property
    def address(self) -> tuple[str, int]:
        """The listening address (after ``serve`` started)."""
        if not self._listeners:
            raise LocalProtocolError("this network does not listen")
        host, port = self._listeners[0].socket.getsockname()[:2]
        return str(host), int(port)

    def connected(self, peer: bytes) -> bool:
        link = self._links.get(bytes(peer))
        return link is not None and link.machine.ready

    def features_of(self, peer: bytes) -> frozenset[int] | None:
        link = self._links.get(bytes(peer))
        return None if link is None else link.machine.remote_features

    async def wait_connected(self, peer: bytes) -> None:
        """Until ``peer`` has a ready connection (timeouts belong to the caller)."""
        while not self.connected(peer):
            event = self._ready_events.setdefault(bytes(peer), trio.Event())
            await event.wait()

    # -- Transport ------------------------------------------------------------------
    async def send(self, peer: bytes, message: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self._send_or_drop(bytes(peer), bytes(message))

    def _send_or_drop(self, peer: bytes, message: bytes) -> None:
        link = self._links.get(peer)
        if link is not None and link.machine.ready:
            if link.machine.send_message(message):
                self.stats["sent"] += 1
                link.flush_soon()
            else:
                self.stats["dropped_refused"] += 1
            return
        if peer not in self.directory or self._nursery is None:
            self.stats["dropped_no_connection"] += 1
            return
        queue = self._pending.setdefault(peer, deque())
        if len(queue) >= PENDING_PER_PEER:
            self.stats["dropped_pending_full"] += 1
            return
        queue.append(message)
        if link is None and peer not in self._dialling and peer not in self.persistent:
            if len(self._dialling) >= MAX_DIALS:
                self.stats["dropped_too_many_dials"] += 1
                queue.pop()
                return
            self._dialling.add(peer)
            self._nursery.start_soon(self._dial_once, peer)

    async def receive(self) -> tuple[bytes, bytes]:
        item = await self._inbound.receive()
        self.stats["received"] += 1
        return item

    def statistics(self) -> TransportStatistics:
        counters = dict(self.stats)
        counters["connections"] = sum(1 for link in self._links.values() if link.machine.ready)
        return TransportStatistics(counters)

    # -- dialling and accepting -------------------------------------------------------
    async def _accept_loop(self, listener: trio.SocketListener) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError:
                self.stats["accept_errors"] += 1
                await trio.sleep(0.1)
                continue
            if self._open_links >= self.max_connections:
                self.stats["refused_connection_limit"] += 1
                await trio.aclose_forcefully(stream)
                continue
            machine = PeerConnection(
                Bolt8Connection.responder(self.key, crypto.SecretKey.from_rng(self.rng)),
                trio.current_time(), self.timers)
            assert self._nursery is not None
            self._open_links += 1
            self._nursery.start_soon(self._run_link, _Link(stream, machine, False))

    async def _connect(self, peer: bytes) -> bool:
        """Dial ``peer`` once and run the connection; True if it reached init."""
        address = self.directory.get(peer)
        if address is None:
            return False
        try:
            with trio.fail_after(self.connect_timeout_s):
                stream = await trio.open_tcp_stream(*address)
        except (OSError, trio.TooSlowError):
            self.stats["dial_failures"] += 1
            return False
        machine = PeerConnection(
            Bolt8Connection.initiator(self.key, peer, crypto.SecretKey.from_rng(self.rng)),
            trio.current_time(), self.timers, has_channel=peer in self.channel_peers)
        link = _Link(stream, machine, True)
        self.stats["dials"] += 1
        self._open_links += 1
        await self._run_link(link)
        return machine.remote_features is not None

    async def _dial_once(self, peer: bytes) -> None:
        try:
            await self._connect(peer)
        finally:
            self._dialling.discard(peer)
            if not self.connected(peer):
                dropped = self._pending.pop(peer, None)
                if dropped:
                    self.stats["dropped_no_connection"] += len(dropped)

    async def _persistent_dialer(self, peer: bytes) -> None:
        delay = self.backoff_initial_s
        while True:
            if peer in self._links:
                await self._wait_gone(peer)
                continue
            if await self._connect(peer):
                delay = self.backoff_initial_s
            else:
                delay = min(2 * delay, self.backoff_max_s)
            self.stats["redial_backoffs"] += 1
            await trio.sleep(delay)

    async def _wait_gone(self, peer: bytes) -> None:
        link = self._links.get(peer)
        while link is not None and self._links.get(peer) is link:
            await trio.sleep(TICK_S)

    # -- one connection ---------------------------------------------------------------
    async def _run_link(self, link: _Link) -> None:
        """Run one connection (counted in ``_open_links`` by the caller) to its end."""
        try:
            with link.cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, link)
                    nursery.start_soon(self._timer, link)
                    await self._reader(link)
                    nursery.cancel_scope.cancel()
        finally:
            self._open_links -= 1
            self._forget(link)
            with trio.CancelScope(shield=True):
                try:
                    with trio.move_on_after(1):
                        rest = link.machine.data_to_send()
                        if rest:
                            await link.stream.send_all(rest)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
                await trio.aclose_forcefully(link.stream)

    async def _reader(self, link: _Link) -> None:
        link.flush_soon()
        while True:
            try:
                data = await link.stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                return
            if not self._events(link, link.machine.receive_data(data, trio.current_time())):
                return
            link.flush_soon()

    async def _writer(self, link: _Link) -> None:
        while True:
            data = link.machine.data_to_send()
            if data:
                try:
                    await link.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    link.cancel.cancel()
                    return
                continue
            link.wake = trio.Event()
            await link.wake.wait()

    async def _timer(self, link: _Link) -> None:
        while True:
            await trio.sleep(TICK_S)
            if not self._events(link, link.machine.tick(trio.current_time())):
                link.flush_soon()
                await trio.sleep(0)
                link.cancel.cancel()
                return
            link.flush_soon()

    def _events(self, link: _Link, events: list[PeerEvent]) -> bool:
        """Act on a machine's events; False once the connection must end."""
        for event in events:
            if isinstance(event, PeerMessage):
                remote = link.machine.remote_id
                assert remote is not None
                try:
                    self._inbound_send.send_nowait((remote, event.message))
                except trio.WouldBlock:
                    self.stats["dropped_inbound_full"] += 1
            elif isinstance(event, PeerReady):
                self._ready(link, event)
            elif isinstance(event, PeerClosed):
                self.stats["closed_" + event.reason] += 1
                return False
        return True

    def _ready(self, link: _Link, event: PeerReady) -> None:
        peer = event.node_id
        link.machine.has_channel = peer in self.channel_peers
        old = self._links.get(peer)
        if old is not None and old is not link:
            # Both sides keep the connection dialled by the smaller node id; a newer
            # connection in the same direction replaces the older one.
            keep_new = link.outbound in (old.outbound, self.node_id < peer)
            if not keep_new:
                self.stats["duplicate_connections"] += 1
                link.cancel.cancel()
                return
            old.cancel.cancel()
        self._links[peer] = link
        self.stats["peers_ready"] += 1
        for message in self._pending.pop(peer, ()):
            if link.machine.send_message(message):
                self.stats["sent"] += 1
            else:
                self.stats["dropped_refused"] += 1
        waiting = self._ready_events.pop(peer, None)
        if waiting is not None:
            waiting.set()
        if self.on_change is not None and old is None:
            self.on_change(peer, True)

    def _forget(self, link: _Link) -> None:
        peer = link.machine.remote_id
        if peer is not None and self._links.get(peer) is link:
            del self._links[peer]
            if self.on_change is not None:
                self.on_change(peer, False)


__all__ = ["PeerNetwork"]

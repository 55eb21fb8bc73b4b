"""The trio side of the native data loop (``hornet._native.RelayLoop``).

A relay on the native engine moves its data plane into a Rust thread that owns a
duplicate of the relay's UDP socket: it receives with ``recvmmsg``, opens link DATA
datagrams, decides DATA packets with the relay core's own ``DataPlane`` (one AHDR cache,
one replay filter for both sides), seals the forwards and sends them with ``sendmmsg``,
never holding the GIL. Everything else comes back here through one bounded queue
(``native_queue_full`` counts what did not fit), as events:

- ``RAW`` (datagram, source): not opened there (link handshakes, unknown peers, forged or
  replayed datagrams): ``LinkSocket.accept`` runs the link endpoint on it as ``receive``
  would;
- ``PACKET`` (packet, source): opened, but not a DATA packet the loop decides (a setup,
  or one whose key epoch the core must load first): the relay admits it as usual;
- ``FORWARD`` (packet, next hop): decided, but the loop has no usable session to the next
  hop (the link endpoint queues it behind a handshake, or rekeys);
- ``DELIVER`` (circuit id, reply hop, message, s): for the relay's ``on_deliver``.

Python keeps every decision about links: after each batch of events that touched the
link endpoint, and every ``SYNC_S`` seconds, ``sync`` pushes the sessions the endpoint
allows a data path to use (``LinkEndpoint.data_sessions``: the same native
``LinkSession`` objects, so counters and replay windows are shared), each with the time
it stops being usable, and reports the loop's traffic back to the endpoint
(``mark_active``) so that busy links are rekeyed and never idle out. Python still sends
on the socket itself (control datagrams, the slow path); the kernel serialises the two
writers.

The thread stops when the relay stops (``stop`` signals an eventfd it polls and joins
it); ``start`` after ``stop`` runs a new one.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from hornet.core import engine
from hornet.link.channel import ChannelSession, NativeChannelSession
from hornet.transport.link import LinkSocket
from hornet.transport.udp import Address, DatagramSocket, UdpSocket

if TYPE_CHECKING:
    from hornet import _native

RAW: Final = 0
PACKET: Final = 1
FORWARD: Final = 2
DELIVER: Final = 3
#: Events taken from the loop per call.
TAKE: Final = 256
#: Seconds between session pushes when no control traffic triggers one.
SYNC_S: Final = 0.25
#: A session usable "forever" (no deadline) is handed over with this many seconds.
_FOREVER: Final = 1e9


def raw_socket_of(sock: DatagramSocket) -> tuple[socket.socket, LinkSocket | None] | None:
    """The kernel socket under ``sock`` and its link layer, if a native loop can own it:
    a ``UdpSocket``, bare or inside a ``LinkSocket``. None for anything else (an
    in-memory network, a test double)."""
    link = sock if isinstance(sock, LinkSocket) else None
    inner = sock.inner if isinstance(sock, LinkSocket) else sock
    if isinstance(inner, UdpSocket) and inner.raw_socket is not None:
        return inner.raw_socket, link
    return None


class NativeLoop:
    """One relay's ``RelayLoop`` and the bookkeeping that keeps it in step with the
    link endpoint (see the module doc)."""

    def __init__(self, loop: _native.RelayLoop, link: LinkSocket | None) -> None:
        self.loop = loop
        self.link = link
        #: What was last pushed per peer: (send session id, until, receive ids).
        self._pushed: dict[Address, tuple[Any, ...]] = {}
        self._wake_fd = loop.wake_fd

    def __repr__(self) -> str:
        return f"NativeLoop({self.loop!r}, link={self.link is not None})"

    @property
    def running(self) -> bool:
        return self.loop.running

    def start(self) -> None:
        self.loop.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (it closes its descriptor)."""
        self.loop.stop()

    def set_routes(self, routes: Iterable[tuple[bytes, Address]]) -> None:
        """The relays' addresses by node id (the directory); endpoint ids need none."""
        self.loop.set_routes([(node_id, host, port) for node_id, (host, port) in routes])

    async def next_events(self) -> list[tuple[Any, ...]]:
        """The next events, waiting for at least one."""
        while True:
            events = self.loop.take(TAKE)
            if events:
                return events
            await trio.lowlevel.wait_readable(self._wake_fd)

    def sync(self, now: float) -> None:
        """Push the endpoint's usable sessions (only what changed) and report the loop's
        traffic to it; ``now`` is the endpoint's clock (``trio.current_time``)."""
        link = self.link
        if link is None:
            return
        endpoint = link.endpoint
        for address in self.loop.take_active():
            endpoint.mark_active((str(address[0]), int(address[1])), now)
        table = endpoint.data_sessions(now)
        for address in [a for a in self._pushed if a not in table]:
            del self._pushed[address]
            self.loop.remove_peer(*address)
        for address, sessions in table.items():
            send = sessions.send
            signature = (
                None if send is None else (id(send[0]), send[1]),
                tuple((index, id(s), until) for index, s, until in sessions.receive),
            )
            if self._pushed.get(address) == signature:
                continue
            sessions_used = [s for _, s, _ in sessions.receive]
            if send is not None:
                sessions_used.append(send[0])
            if not all(isinstance(s, NativeChannelSession) for s in sessions_used):
                continue  # a Python-engine session: that peer stays on the Python path
            pushed = self.loop.set_peer(
                address[0],
                address[1],
                None if send is None else (_native_of(send[0]), _remaining(send[1], now)),
                [
                    (index, _native_of(s), _remaining(until, now))
                    for index, s, until in sessions.receive
                ],
            )
            if pushed:
                self._pushed[address] = signature

    async def sync_forever(self) -> None:
        while True:
            self.sync(trio.current_time())
            await trio.sleep(SYNC_S)

    def statistics(self) -> NativeLoopStatistics:
        raw = self.loop.statistics()
        return NativeLoopStatistics(
            received=raw["received"],
            forwarded=raw["forwarded"],
            dropped=dict(raw["dropped"]),
            queued=raw["queued"],
            peers=raw["peers"],
            routes=raw["routes"],
        )


@attrs.frozen
class NativeLoopStatistics:
    """The data loop's counters: datagrams received and forwarded by the Rust thread,
    its drops by reason, the events waiting for the trio side, and its table sizes."""

    received: int
    forwarded: int
    dropped: dict[str, int]
    queued: int
    peers: int
    routes: int


def _native_of(session: ChannelSession) -> _native.LinkSession:
    assert isinstance(session, NativeChannelSession)
    return session.native


def _remaining(until: float, now: float) -> float:
    return _FOREVER if math.isinf(until) else max(0.0, until - now)


def open_native_loop(
    sock: DatagramSocket,
    plane: _native.DataPlane,
    *,
    capacity: int,
    data_rate: float,
    data_burst: float,
) -> NativeLoop | None:
    """A (not yet started) ``NativeLoop`` deciding with ``plane`` on ``sock``'s kernel
    socket, or None when ``sock`` has none (``raw_socket_of``). ``capacity`` bounds the
    event queue; ``data_rate`` / ``data_burst`` are each peer's DATA token bucket
    (``admission.Limits``)."""
    found = raw_socket_of(sock)
    if found is None:
        return None
    raw, link = found
    rekey = link.endpoint.config.rekey_after_messages if link is not None else 1 << 62
    udp = sock.inner if isinstance(sock, LinkSocket) else sock
    assert isinstance(udp, UdpSocket)  # raw_socket_of found its kernel socket
    loop = engine.relay_loop(
        raw.fileno(),
        plane=plane,
        link=link is not None,
        capacity=capacity,
        data_rate=data_rate,
        data_burst=data_burst,
        rekey_after_messages=rekey,
        max_datagram=udp.max_datagram,  # the path MTU holds on the native path too
    )
    return NativeLoop(loop, link)

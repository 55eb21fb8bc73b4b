"""Link encryption as a ``Network`` (trio): relays and clients use it transparently.

``LinkNetwork(inner, identity, resolve)`` wraps any ``Network``. Its sockets speak the
link protocol of ``hornet.link`` (docs/spec-link.md) on the inner socket:

- ``send(packet, address)`` seals the packet under the link session to ``address``. If
  there is none yet it queues the packet (bounded, drop-newest) behind a handshake and
  returns at once; the packet leaves when the handshake is confirmed.
- ``receive()`` returns only authenticated, de-duplicated HORNET packets. Handshake
  messages, confirmations and anything forged, replayed or malformed are consumed
  here (counted in ``statistics().dropped``).

How it runs (the trio-websocket shape): the sans-IO ``LinkEndpoint`` makes every
decision; this module moves its datagrams. The data path is one ``seal`` or ``open``
call and the inner socket's own send or receive: no extra task switch, lock or cancel
scope per datagram. One timer task per socket runs the endpoint's retransmissions,
expiries and rekeys; it sleeps until the endpoint's next deadline, which moves earlier
only when a control datagram is handled. It runs in the ``nursery`` given, or else as a
trio system task, so that a socket can be made where no nursery is at hand (e.g. inside
``serve_relay``); ``close()`` ends it either way. Datagrams are read only inside
``receive()``, so handshakes progress while some task is receiving, which every hornet
relay and endpoint does all the time.

Who runs what (docs/spec-link.md §9): a node in the directory (relay, destination)
binds with its identity key (``NodeKeys.node_key``, the key the directory lists as
``public_key``), accepts links from anyone and authenticates links from relay
addresses against the directory. A client binds with ``identity=None`` (a fresh key
per handshake, outbound links only) and calls ``connect_link`` for the last relay of
each backward path, which cannot open a link to a client.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

import trio

from hornet.core.crypto import SecretKey
from hornet.directory.model import endpoint_tag
from hornet.errors import LocalDropReason, RemoteProtocolError, SendRefusedError
from hornet.link.endpoint import LinkEndpoint, Resolver
from hornet.link.peers import LinkConfig, LinkStatistics
from hornet.transport.udp import Address, DatagramSocket, Network

#: A held link (``connect_link(..., hold_for=lifetime)``) stays up this much longer than
#: the circuit lifetime it was asked for: EXP is rounded up and relays allow clock skew.
HOLD_MARGIN: Final = 60.0
#: Peers whose refusal a ``LinkSocket`` remembers (oldest forgotten first).
MAX_REFUSED: Final = 256
#: How often, at most, a miss rebuilds the IPv6 endpoint index (``endpoint_v6``) while
#: the number of IPv6 peers stays the same.
V6_INDEX_EVERY: Final = 0.5


class Listed(Protocol):
    """A directory entry as the link layer sees it (``hornet.directory.RelayInfo``)."""

    @property
    def address(self) -> Address: ...

    @property
    def public_key(self) -> bytes: ...


def directory_resolver(relays: Iterable[Listed]) -> Resolver:
    """``resolve`` for a directory: address → the relay's long-term identity key.

    Links authenticate with ``RelayInfo.public_key`` (the node key), never with a key
    of the relay's key epochs, so a link outlives the epochs its circuits are built in.
    """
    table: dict[Address, bytes] = {r.address: r.public_key for r in relays}
    return table.get


class LinkNetwork:
    """Binds ``LinkSocket``s on ``inner`` (``link_socket`` wraps a socket already bound).

    ``identity`` is the node's directory key (it authenticates the node and lets it
    accept links); None means a client: a fresh static key per handshake, outbound
    links only. ``resolve(address)`` gives the static key the directory lists for the
    relay at ``address``, or None for a non-relay. ``nursery`` hosts the sockets' timer
    tasks; without one each runs as a trio system task until the socket is closed.
    """

    def __init__(
        self,
        inner: Network,
        identity: SecretKey | None,
        resolve: Resolver,
        nursery: trio.Nursery | None = None,
        *,
        config: LinkConfig | None = None,
        rng: Any = None,
    ) -> None:
        self.inner = inner
        self.identity = identity
        self.resolve = resolve
        self.nursery = nursery
        self.config = config or LinkConfig()
        self.rng = rng or secrets.SystemRandom()

    def __repr__(self) -> str:
        return f"LinkNetwork(inner={self.inner!r}, client={self.identity is None})"

    async def bind(self, address: Address) -> LinkSocket:
        return link_socket(
            await self.inner.bind(address),
            self.identity,
            self.resolve,
            nursery=self.nursery,
            config=self.config,
            rng=self.rng,
        )


def link_socket(
    sock: DatagramSocket,
    identity: SecretKey | None,
    resolve: Resolver,
    *,
    nursery: trio.Nursery | None = None,
    config: LinkConfig | None = None,
    rng: Any = None,
) -> LinkSocket:
    """``sock`` (already bound) inside the link layer; closing the result closes ``sock``.
    The arguments are ``LinkNetwork``'s."""
    endpoint = LinkEndpoint(identity, resolve, rng or secrets.SystemRandom(), config)
    link = LinkSocket(sock, endpoint)
    if nursery is not None:
        nursery.start_soon(link._run_timers)
    else:
        trio.lowlevel.spawn_system_task(link._run_timers, name=repr(link))
    return link


def with_link(
    sock: DatagramSocket,
    identity: SecretKey | None,
    relays: Iterable[Listed],
    *,
    link: bool = True,
) -> DatagramSocket:
    """``sock`` inside the link layer, unless ``link`` is False or it already is a
    ``LinkSocket``: how hornet's services and clients turn the link layer on.

    ``identity``: the node's directory key, or None for a client; ``relays``: the
    directory (its identity keys authenticate the neighbours).
    """
    if not link or isinstance(sock, LinkSocket):
        return sock
    return link_socket(sock, identity, directory_resolver(relays))


async def connect_link(sock: DatagramSocket, address: Address, *, hold_for: float = 0.0) -> None:
    """Open the link from a client's ``sock`` to the relay at ``address``, wait until it
    is usable, and if ``hold_for`` > 0 keep it up that long plus ``HOLD_MARGIN`` even
    when idle. Returns at once for a socket without link layer; the timeout is the
    caller's."""
    if isinstance(sock, LinkSocket):
        await sock.connect(address, hold=hold_for + HOLD_MARGIN if hold_for > 0 else 0.0)


async def refresh_link(sock: DatagramSocket, address: Address) -> None:
    """Start a fresh handshake from a client's ``sock`` to the relay at ``address``
    (``LinkEndpoint.refresh``) without waiting for it; no-op without a link layer."""
    if isinstance(sock, LinkSocket):
        await sock.refresh(address)


def _count(peers: Iterable[Address]) -> int:
    return sum(1 for address in peers if ":" in address[0])


class LinkSocket:
    """A ``DatagramSocket`` whose datagrams are link-encrypted (see the module doc)."""

    def __init__(self, inner: DatagramSocket, endpoint: LinkEndpoint) -> None:
        self._inner = inner
        self.endpoint = endpoint
        # The data path's calls, bound once. ``send_nowait`` (a ``UdpSocket``) sends
        # without the inner socket's own checkpoint: ``send`` is already one.
        self._seal = endpoint.seal
        self._open = endpoint.open
        self._send_nowait: Callable[[bytes, Address], None] | None = getattr(
            inner, "send_nowait", None
        )
        self._wait: trio.CancelScope | None = None
        self._timers = trio.CancelScope()
        self._waiters: dict[Address, trio.Event] = {}
        self.rejected: Counter[str] = Counter()
        #: Peers the kernel refused our last datagram to (bounded by the endpoint's
        #: peers): a packet queued for one of them raises instead of waiting in vain.
        self._refused: dict[Address, SendRefusedError] = {}
        #: ``trio.current_time`` without its two wrapper calls (the data path reads it).
        self._now = trio.lowlevel.current_clock().current_time
        #: IPv6 link peers by their endpoint-id (tag, port), rebuilt by ``endpoint_v6``.
        self._v6: dict[tuple[bytes, int], Address] = {}
        self._v6_tags: dict[Address, bytes] = {}
        self._v6_built = (-math.inf, -1)  # when, and with how many peers

    @property
    def address(self) -> Address:
        return self._inner.address

    def return_address(self, peer: Address) -> Address:
        return self._inner.return_address(peer)

    def endpoint_v6(self, tag: bytes, port: int) -> Address | None:
        """The link peer an IPv6 endpoint id ``0xFE 0x06 ‖ tag ‖ port`` names (SPEC.md
        §10), or None. The index is rebuilt on a miss when the peers changed in number
        or ``V6_INDEX_EVERY`` seconds passed, so unknown ids cannot make every packet
        scan the peers (at most ``LinkConfig.max_peers`` of them)."""
        found = self._v6.get((tag, port))
        if found is not None and found in self._v6_tags:
            return found
        peers = self.endpoint.peer_addresses()
        now, (built_at, count) = self._now(), self._v6_built
        if now - built_at < V6_INDEX_EVERY and len(self._v6_tags) == count == _count(peers):
            return None
        tags = {a: self._v6_tags.get(a) or endpoint_tag(a[0]) for a in peers if ":" in a[0]}
        self._v6_tags = tags
        self._v6 = {(t, a[1]): a for a, t in tags.items()}
        self._v6_built = (now, len(tags))
        return self._v6.get((tag, port))

    @property
    def inner(self) -> DatagramSocket:
        """The socket the link datagrams travel on (e.g. to attach a kernel filter)."""
        return self._inner

    async def send(self, data: bytes, address: Address) -> None:
        # The data path: a checkpoint, one seal and the datagram out; control work only
        # when the endpoint queued the packet or produced datagrams of its own.
        await trio.lowlevel.checkpoint_if_cancelled()
        sealed = self._seal(data, address, self._now())
        if sealed is not None:
            send_nowait = self._send_nowait
            if send_nowait is None:
                await self._inner.send(sealed, address)
            else:
                try:
                    send_nowait(sealed, address)
                except trio.WouldBlock:
                    await self._inner.send(sealed, address)
            if not self.endpoint.has_datagrams_to_send():
                return
        await self._flush()
        self._rearm()
        if sealed is None and address in self._refused:
            raise self._refused[address]

    async def receive(self) -> tuple[bytes, Address]:
        endpoint = self.endpoint
        receive = self._inner.receive
        open_ = self._open
        now = self._now
        while True:
            data, source = await receive()
            try:
                packet = open_(data, source, now())
            except RemoteProtocolError as exc:
                self.rejected[exc.reason] += 1
                packet = None
            if packet is not None and not endpoint.has_output():
                return packet, source
            await self._control_done()
            if packet is not None:
                return packet, source

    async def accept(self, data: bytes, source: Address) -> bytes | None:
        """``receive`` for one datagram another reader took from the inner socket (a
        native data loop): the HORNET packet in it, or None (control traffic, counted
        rejections); the control work it caused is done on return."""
        try:
            packet = self._open(data, source, self._now())
        except RemoteProtocolError as exc:
            self.rejected[exc.reason] += 1
            packet = None
        if self.endpoint.has_output():
            await self._control_done()
        return packet

    async def connect(self, address: Address, *, hold: float = 0.0) -> None:
        """Open the link to the relay at ``address`` and wait until it is usable; keep
        it up for ``hold`` seconds even when idle (``LinkEndpoint.connect``).

        A client calls this for a relay that will send to it before it sends to that
        relay (the last relay of a backward path). Needs a concurrent ``receive()``;
        the timeout is the caller's.
        """
        endpoint = self.endpoint
        endpoint.connect(address, trio.current_time(), hold)
        established = endpoint.is_established(address)
        event = None if established else self._waiters.setdefault(address, trio.Event())
        await self._flush()
        self._rearm()
        if address in self._refused:
            raise self._refused[address]
        if event is not None:
            await event.wait()

    async def refresh(self, address: Address) -> None:
        """Start a fresh handshake to the relay at ``address``, keeping the current
        session until it is confirmed (``LinkEndpoint.refresh``); does not wait."""
        self.endpoint.refresh(address, trio.current_time())
        await self._flush()
        self._rearm()

    def statistics(self) -> LinkStatistics:
        stats = self.endpoint.statistics()
        dropped = Counter(stats.dropped)
        dropped.update(self.rejected)
        return LinkStatistics(
            peers=stats.peers,
            sessions=stats.sessions,
            half_open=stats.half_open,
            queued=stats.queued,
            handshakes_completed=stats.handshakes_completed,
            dropped=dict(dropped),
        )

    def close(self) -> None:
        self._timers.cancel()
        self._inner.close()

    # ----------------------------------------------------------------------------------

    async def _control_done(self) -> None:
        """After a control datagram: send replies, wake waiters, move the timer."""
        await self._flush(strict=False)
        for address in self.endpoint.take_established():
            event = self._waiters.pop(address, None)
            if event is not None:
                event.set()
        self._rearm()

    async def _flush(self, *, strict: bool = True) -> None:
        """Send the endpoint's control datagrams. A refused send is counted and the rest
        still go; then it is raised if ``strict`` (a caller's send), else only counted
        (the reader's and the timer's work must go on)."""
        refused: SendRefusedError | None = None
        for datagram, address in self.endpoint.datagrams_to_send():
            try:
                await self._inner.send(datagram, address)
            except SendRefusedError as exc:
                self.rejected[LocalDropReason.SEND_REFUSED] += 1
                if len(self._refused) >= MAX_REFUSED:
                    self._refused.pop(next(iter(self._refused)))
                self._refused[address] = exc
                refused = refused or exc
            else:
                self._refused.pop(address, None)
        if refused is not None and strict:
            raise refused

    def _rearm(self) -> None:
        """Wake the timer task early if the endpoint's next deadline moved earlier."""
        wait = self._wait
        if wait is not None:
            deadline = self.endpoint.next_deadline()
            if deadline is not None and deadline < wait.deadline:
                wait.deadline = deadline

    async def _run_timers(self) -> None:
        endpoint = self.endpoint
        with self._timers:
            while True:
                deadline = endpoint.next_deadline()
                with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as wait:
                    self._wait = wait
                    await trio.sleep_forever()
                self._wait = None
                endpoint.tick(trio.current_time())
                await self._control_done()

    def __repr__(self) -> str:
        return f"LinkSocket({self.address[0]}:{self.address[1]}, {self.endpoint!r})"

"""Destinations: accept circuits and hand each one to a handler (trio).

``serve(keys, directory, address, handler)`` runs a node that is listed in the
directory. It relays like any relay, and it is the destination of the circuits built to
it: every new connection (its first HELLO) gets a ``Circuit`` and a handler task in
``handler_nursery`` (by default one inside the service). A renewed or rebuilt circuit
of an existing connection (a HELLO with a known connection id) replaces that
connection's link, so the handler sees one uninterrupted circuit.

``serve_rendezvous(directory, handler)`` runs a hidden destination: an endpoint that
is not in the directory, reachable only through the descriptor it reports with
``task_status.started``.

Restarts (SPEC.md §7.5). A listed destination keeps its node key across restarts, so
``serve`` requires a state file (``state``, ``hornet.node.state``), exactly as ``hornet
relay`` keeps one: the restart generation mixed into SV makes every FS sealed before a
crash fail to open after it, so neither a recorded data packet nor a fresh
``DestinationSession`` under a pre-crash key can exist in the new process (and no reply
is ever sealed again under a pre-crash (key, nonce)); the persisted setup replay tags
make a recorded setup go unanswered. A hidden destination persists nothing: its
descriptor key and rendezvous circuit are drawn afresh at each start, so nothing sealed
before a crash opens after it.

Tables (sessions per underlying circuit, connections) are bounded LRUs; when full, the
oldest is forgotten, and new connections beyond ``max_connections`` are refused.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from os import PathLike
from typing import Any, Final

import attrs
import trio

from hornet.circuit.circuit import (
    Circuit,
    CircuitError,
    PathSealer,
    SetupTimeoutError,
    single_error,
)
from hornet.circuit.endpoint import CircuitEndpoint, choose_path, default_bind, pick_relays
from hornet.circuit.health import RelayHealth
from hornet.core import crypto
from hornet.core.e2e import E2E_OVERHEAD, DestinationSession, Outgoing
from hornet.core.params import Params
from hornet.core.relay import Deliver
from hornet.core.rendezvous import PUBKEY_LEN, Descriptor, RendezvousDestination
from hornet.core.stream import FLAG_DATAGRAM_MODE, FrameKind, Stream, StreamFrame
from hornet.directory.model import Directory, NodeKeys
from hornet.errors import (
    HornetError,
    LocalDropReason,
    MalformedInputError,
    RemoteProtocolError,
    SendRefusedError,
)
from hornet.node.relay import RelayNode, bind_udp, serve_relay
from hornet.node.state import RelayState
from hornet.transport.link import with_link
from hornet.transport.udp import Address, DatagramSocket, Network, UdpNetwork, runtime_rng, unix_now

log = logging.getLogger("hornet.service")

Handler = Callable[[Circuit], Awaitable[None]]
DEFAULT_MAX_CONNECTIONS: Final = 1024
DEFAULT_MAX_SESSIONS: Final = 4096
RENDEZVOUS_ATTEMPTS: Final = 3  # paths tried per rendezvous circuit a hidden destination builds
RELINK_TIMEOUT: Final = 30.0  # how long a stalled connection waits for a new circuit
#: A hidden destination renews on a stall at most this often (``serve_rendezvous``).
STALL_RENEW_GAP: Final = 5.0


class _DestinationPathSealer:
    """A destination's link: seal with the session of the connection's newest circuit."""

    def __init__(self, seal: Callable[[bytes], Outgoing]) -> None:
        self._seal = seal

    @property
    def exp(self) -> int:
        return 0  # the destination does not learn EXP; the source renews

    def seal(self, body: bytes, now: float) -> Outgoing:
        return self._seal(body)


@attrs.define
class _Connection:
    circuit: Circuit
    stream: Stream
    relinked: trio.Event = attrs.field(factory=trio.Event)


class Acceptor:
    """Routes authenticated frames to connections; creates connections on HELLO."""

    def __init__(
        self,
        handler: Handler,
        nursery: trio.Nursery,
        handler_nursery: trio.Nursery,
        send_packet: Callable[[Outgoing], Awaitable[None]],
        max_frame: int,
        max_connections: int,
        on_stall: Callable[[], None] | None = None,
    ) -> None:
        self.handler = handler
        #: Called when a connection's circuit stalls (before it waits for the source).
        self.on_stall = on_stall
        self.nursery = nursery
        self.handler_nursery = handler_nursery
        self.send_packet = send_packet
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.connections: OrderedDict[bytes, _Connection] = OrderedDict()
        self.dropped: collections.Counter[str] = collections.Counter()
        self.accepted = 0

    def frame(self, frame: StreamFrame, link: PathSealer) -> None:
        """Route one frame (never blocks: runs inside the relay's packet loop)."""
        conn = self.connections.get(frame.conn_id)
        if frame.kind is FrameKind.HELLO:
            if conn is None:
                conn = self._accept(frame, link)
                if conn is None:
                    return
            else:
                conn.circuit.replace_path(link)
                conn.relinked.set()
                conn.relinked = trio.Event()
            # Answer every HELLO on the circuit it came from: it is the handshake.
            self.nursery.start_soon(
                self.send_packet, link.seal(conn.stream.hello_frame().encode(), 0)
            )
            return
        if conn is None:
            self.dropped[LocalDropReason.UNKNOWN_CONNECTION] += 1
            return
        conn.circuit.frame_received(frame)

    def _accept(self, frame: StreamFrame, link: PathSealer) -> _Connection | None:
        if len(self.connections) >= self.max_connections:
            self.dropped[LocalDropReason.TOO_MANY_CONNECTIONS] += 1
            return None
        reliable = not frame.flags & FLAG_DATAGRAM_MODE
        stream = Stream(frame.conn_id, self.max_frame, reliable=reliable)
        holder: list[_Connection] = []

        async def relink() -> PathSealer:
            conn = holder[0]
            if self.on_stall is not None:
                self.on_stall()
            with trio.move_on_after(RELINK_TIMEOUT):
                await conn.relinked.wait()
                return conn.circuit._link
            raise CircuitError("the source did not come back: path broken")

        circuit = Circuit(stream, link, self.send_packet, rebuild=relink)
        conn = _Connection(circuit, stream)
        holder.append(conn)
        self.connections[frame.conn_id] = conn
        self.accepted += 1
        log.info("connection accepted (%d open)", len(self.connections))
        self.nursery.start_soon(circuit.pump)
        self.handler_nursery.start_soon(self._run_handler, frame.conn_id, conn)
        return conn

    async def _run_handler(self, conn_id: bytes, conn: _Connection) -> None:
        try:
            await self.handler(conn.circuit)
            if conn.stream.reliable:
                with trio.move_on_after(2.0):
                    with contextlib.suppress(CircuitError):
                        await conn.circuit.drain()
        except CircuitError as exc:
            log.info("connection ended: %s", exc)
        finally:
            await conn.circuit.close_path()
            self.connections.pop(conn_id, None)


class DestinationNode:
    """The destination half of a node that circuits end at, shaped like ``RelayNode``.

    Its relay hands it every ``Deliver`` (``deliver``, in the relay's packet loop, so the
    relay's queue bounds the work). It opens the packet's end-to-end session (one per
    circuit, least recently used evicted past ``max_sessions``, expired ones forgotten),
    decodes the stream frame and gives it to the ``Acceptor``; replies leave through the
    relay's socket (``send_packet``). ``serve`` builds one, starts the relay with
    ``on_deliver=node.deliver``, then ``attach``es the running relay and the acceptor.
    """

    def __init__(self, params: Params, payload_size: int, max_sessions: int, rng: Any) -> None:
        self.params = params
        self.payload_size = payload_size
        self.max_sessions = max_sessions
        self._rng = rng
        #: circuit id -> (session, its sealer, when it was created), least recent first
        self.sessions: OrderedDict[
            bytes, tuple[DestinationSession, _DestinationPathSealer, float]
        ] = OrderedDict()
        self.dropped: collections.Counter[str] = collections.Counter()
        self.relay: RelayNode | None = None
        self.acceptor: Acceptor | None = None
        # No packet of a circuit is delivered later than this after its first one (its
        # EXP is at most the longest lifetime ahead, rounded up, plus skew, and relays
        # add a skew).
        self._horizon = params.max_exp(0) + params.max_skew_s

    def __repr__(self) -> str:
        return f"DestinationNode(sessions={len(self.sessions)}, payload_size={self.payload_size})"

    def attach(self, relay: RelayNode, acceptor: Acceptor) -> None:
        """Start accepting: frames go to ``acceptor``, replies leave through ``relay``."""
        self.relay, self.acceptor = relay, acceptor
        acceptor.dropped = self.dropped

    def deliver(self, deliver: Deliver) -> None:
        """One packet that ended at this node (the relay's ``on_deliver``)."""
        if len(deliver.message) != self.payload_size:
            self.dropped[MalformedInputError.reason] += 1  # not this service's class
            return
        sessions = self.sessions
        now = unix_now()
        while sessions and next(iter(sessions.values()))[2] + self._horizon <= now:
            sessions.popitem(last=False)  # expired: its circuit can deliver nothing more
        entry = sessions.get(deliver.circuit_id)
        if entry is None:
            session = DestinationSession(self.params, deliver, self.payload_size)
            entry = (session, _DestinationPathSealer(_sealer(session, self._rng)), now)
        try:
            frame = StreamFrame.decode(entry[0].receive(deliver))
        except RemoteProtocolError as exc:
            self.dropped[exc.reason] += 1  # forged, replayed or garbled end to end
            return
        except HornetError:  # not expected for a session looked up by its circuit id
            self.dropped[MalformedInputError.reason] += 1
            return
        if deliver.circuit_id in sessions:
            sessions.move_to_end(deliver.circuit_id)
        else:
            sessions[deliver.circuit_id] = entry
            if len(sessions) > self.max_sessions:
                sessions.popitem(last=False)
        if self.acceptor is None:
            self.dropped[LocalDropReason.NOT_STARTED] += 1  # before the service started
            return
        self.acceptor.frame(frame, entry[1])

    async def send_packet(self, out: Outgoing) -> None:
        """Send a reply packet to its first hop, at the address the relay uses now."""
        relay = self.relay
        if relay is None:
            return
        target = relay.directory.address_of(out.next_hop)
        if target is not None:
            try:
                await relay.socket.send(out.packet, target)
            except SendRefusedError:
                relay.dropped[LocalDropReason.SEND_REFUSED] += 1


@attrs.frozen
class ServiceInfo:
    """What ``serve`` reports when it runs: its relay, destination and acceptor."""

    node: RelayNode
    destination: DestinationNode
    acceptor: Acceptor


async def serve(
    keys: NodeKeys,
    directory: Directory,
    address: Address,
    handler: Handler,
    *,
    state: str | PathLike[str] | RelayState,
    handler_nursery: trio.Nursery | None = None,
    network: Network | None = None,
    sock: DatagramSocket | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    payload_size: int | None = None,
    queue: int = 1024,
    rng: Any = None,
    link: bool = True,
    task_status: trio.TaskStatus[ServiceInfo] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept circuits to this node and run ``handler`` on each, until cancelled.

    ``await nursery.start(serve, ...)`` runs a relay (``serve_relay``) that is also a
    destination: it answers setups that end here, reports a ``ServiceInfo`` (its
    ``RelayNode``, ``DestinationNode`` and ``Acceptor``) through ``task_status.started`` and calls
    ``handler(circuit)`` once per connection a client opens.

    Args:
        keys: the node's key and local secret SV (``NodeKeys``, from its key file).
        directory: the network's relays and parameters; this node is one of them.
        address: where to listen, ``(host, port)``.
        handler: ``async def handler(circuit)``, run once per accepted connection; the
            connection ends when it returns.
        state: the node's replay state (SPEC.md §7.5), one file per node key: a path
            (opened here, closed on exit) or an open ``RelayState`` (the caller's to
            close). Keep it with the key file: a restart under the same key with a new
            or missing state file reopens the replay window.
        handler_nursery: where the handlers run (default: the service's own nursery).
        network: where to bind (default: ``UdpNetwork()``).
        sock: an already bound socket to use instead of binding; the service owns it.
        max_connections: open connections at most; more HELLOs are dropped.
        max_sessions: end-to-end sessions remembered at most (least recent go first).
        payload_size: the payload class the clients use (default:
            ``Params.default_payload_size``, which fits a 1500-byte path).
        queue: the relay's data queue size.
        rng: the randomness for reply keys (default: ``runtime_rng()``).
        link: link encryption, as in ``serve_relay`` (the default).
        task_status: trio's; ``started`` is given the ``ServiceInfo``.

    Raises:
        BindError: ``address`` is in use or not this host's.
        ConfigError: the state file is unusable.
    """
    params = directory.params
    destination = DestinationNode(
        params, payload_size or params.default_payload_size, max_sessions, rng or runtime_rng()
    )
    async with _flat_nursery() as nursery:
        relay: RelayNode = await nursery.start(
            functools.partial(
                serve_relay,
                keys,
                directory,
                address,
                network=network,
                sock=sock,
                link=link,
                on_deliver=destination.deliver,
                queue=queue,
                state=state,
            )
        )
        acceptor = Acceptor(
            handler,
            nursery,
            handler_nursery or nursery,
            destination.send_packet,
            destination.payload_size - E2E_OVERHEAD,
            max_connections,
        )
        destination.attach(relay, acceptor)
        task_status.started(ServiceInfo(relay, destination, acceptor))


@contextlib.asynccontextmanager
async def _flat_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery whose lone exception (a ``BindError``, a ``KeyboardInterrupt``) leaves it
    as itself, not inside an exception group."""
    with single_error():
        async with trio.open_nursery() as nursery:
            yield nursery


def _sealer(session: DestinationSession, rng: Any) -> Callable[[bytes], Outgoing]:
    return lambda body: session.seal(body, rng)


async def serve_rendezvous(
    directory: Directory,
    handler: Handler,
    *,
    rp: bytes | None = None,
    hops: int = 2,
    payload_size: int | None = None,
    lifetime: float = 600.0,
    setup_timeout: float = 2.0,
    renew_every: float | None = None,
    on_descriptor: Callable[[Descriptor], None] | None = None,
    bind: Address | None = None,
    network: Network | None = None,
    handler_nursery: trio.Nursery | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    rng: Any = None,
    link: bool = True,
    task_status: trio.TaskStatus[Descriptor] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a hidden destination until cancelled: ``await nursery.start(serve_rendezvous, ...)``.

    Builds a rendezvous circuit to ``rp`` (a random relay if None), reports its
    ``Descriptor`` through ``task_status.started`` and calls ``handler(circuit)`` once
    per connection a client opens with that descriptor. It renews itself: before the
    circuit's EXP, every ``renew_every`` seconds, and as soon as a connection stalls (a
    relay or the RP on its path may have restarted; then at most once per
    ``STALL_RENEW_GAP`` seconds, and the relays of the circuit it leaves are avoided for
    a while) it builds a new circuit, to a fresh random RP unless ``rp`` is pinned,
    avoiding relays that failed, and publishes the new descriptor through
    ``on_descriptor``. Clients that follow the newest descriptor
    (``open_circuit(fetch_descriptor=...)``) move their connection to it without losing
    data. The old circuit serves until its own EXP, so clients holding the old
    descriptor finish; after that, clients that do not follow get
    ``DescriptorExpiredError`` and must fetch the new one.

    Args:
        directory: the network's relays and parameters.
        handler: ``async def handler(circuit)``, run once per accepted connection.
        rp: the rendezvous point's node id, pinned (default: a random relay each time).
        hops: relays between this destination and the RP.
        payload_size: the class the descriptor announces (default:
            ``Params.default_rendezvous_payload_size``: its nested packets fit a
            1500-byte path).
        lifetime: seconds each rendezvous circuit should live.
        setup_timeout: seconds to wait for one setup reply.
        renew_every: renew at least this often, in seconds (bounds how long a restarted
            relay or RP on the path can cut the destination off); default: only
            before EXP.
        on_descriptor: called with every descriptor, the first included.
        bind: the local address (default: the wildcard, any port).
        network: where to bind (default: ``UdpNetwork()``).
        handler_nursery: where the handlers run (default: the service's own nursery).
        max_connections: open connections at most.
        rng: the randomness for paths and keys (default: ``runtime_rng()``).
        link: link encryption (as a client) on its socket (the default).
        task_status: trio's; ``started`` is given the first ``Descriptor``.

    Raises:
        CircuitError: no rendezvous circuit could be built at start, or the current one
            expired and no new one could be built (the RP not in the directory
            included).
        NoPathError: the directory holds too few relays for ``hops``.
        BindError: ``bind`` is in use or not this host's.
    """
    rng = rng or runtime_rng()
    payload_size = payload_size or directory.params.default_rendezvous_payload_size
    address = bind or default_bind(directory)
    sock = with_link(await bind_udp(network or UdpNetwork(), address), None, directory, link=link)
    health = RelayHealth()
    try:
        with single_error():
            async with trio.open_nursery() as nursery:
                endpoint = CircuitEndpoint(sock, directory)
                nursery.start_soon(endpoint.run)
                stalled = trio.Event()
                acceptor = Acceptor(
                    handler,
                    nursery,
                    handler_nursery or nursery,
                    endpoint.send,
                    payload_size - PUBKEY_LEN - E2E_OVERHEAD,
                    max_connections,
                    on_stall=stalled.set,
                )

                built: dict[bytes, set[bytes]] = {}  # arrival id -> the circuit's relays

                async def build() -> RendezvousDestination:
                    errors = []
                    for _ in range(RENDEZVOUS_ATTEMPTS):
                        backoff = health.backing_off(unix_now())
                        target = directory.get(rp) if rp is not None else next(iter(
                            pick_relays(list(directory), 1, rng, (), backoff)), None)
                        if target is None:
                            raise CircuitError("the rendezvous point is not in the directory")
                        path = choose_path(directory, target, hops, rng, backoff=backoff)
                        try:
                            keys = await endpoint.setup(
                                path, lifetime=lifetime, timeout=setup_timeout, rng=rng,
                                rendezvous=True,
                            )
                        except (SetupTimeoutError, SendRefusedError) as exc:
                            health.failed({*path.relays, target.node_id}, unix_now())
                            errors.append(str(exc))
                            continue
                        health.worked({*path.relays, target.node_id})
                        dest = RendezvousDestination(
                            keys, crypto.SecretKey.from_rng(rng), payload_size,
                            max_connections=max_connections,
                        )
                        endpoint.register(dest.arrival_id, _rendezvous_reader(dest, acceptor, rng))
                        built[dest.arrival_id] = {*path.relays, target.node_id}
                        return dest
                    raise CircuitError("no rendezvous circuit: " + "; ".join(errors))

                async def retire(dest: RendezvousDestination) -> None:
                    await trio.sleep(max(0.0, dest.keys.exp - unix_now()))
                    endpoint.unregister(dest.arrival_id)
                    built.pop(dest.arrival_id, None)

                current = await build()
                task_status.started(current.descriptor())
                while True:
                    if on_descriptor is not None:
                        on_descriptor(current.descriptor())
                    # Early enough for two setup attempts before EXP (a restarted relay
                    # or RP can cost the first one), but within the circuit's second half.
                    margin = min(
                        lifetime / 2, max(1.0 + 2 * setup_timeout, min(30.0, lifetime / 4))
                    )
                    renew_at = current.keys.exp - margin
                    if renew_every is not None:
                        renew_at = min(renew_at, unix_now() + renew_every)
                    built_at = trio.current_time()
                    with trio.move_on_after(max(0.0, renew_at - unix_now())):
                        await stalled.wait()
                        # A connection stalled: the circuit may be broken. Leave it now,
                        # but not again within the gap (the stall may be the source's).
                        await trio.sleep(max(0.0, built_at + STALL_RENEW_GAP
                                             - trio.current_time()))
                        health.failed(built.get(current.arrival_id, set()), unix_now())
                    stalled = trio.Event()
                    acceptor.on_stall = stalled.set
                    while True:
                        try:
                            fresh = await build()
                            break
                        except CircuitError:
                            if unix_now() >= current.keys.exp:
                                raise
                            await trio.sleep(1.0)
                    nursery.start_soon(retire, current)
                    current = fresh
    finally:
        sock.close()


def _rendezvous_reader(
    dest: RendezvousDestination, acceptor: Acceptor, rng: Any
) -> Callable[[bytes], Awaitable[None]]:
    """The endpoint's handler for one rendezvous circuit's arrivals."""

    async def on_packet(packet: bytes) -> None:
        message = dest.receive(packet)
        frame = StreamFrame.decode(message.data)
        connection = message.connection

        def seal(body: bytes) -> Outgoing:
            return dest.seal(connection, body, unix_now(), rng)

        acceptor.frame(frame, _DestinationPathSealer(seal))

    return on_packet

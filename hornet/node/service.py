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
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from os import PathLike
from typing import Any, Final

import attrs
import trio

from hornet.circuit import Circuit, CircuitError, Link, SetupTimeoutError, single_error
from hornet.client.endpoint import Endpoint, choose_path, default_bind, pick_relays
from hornet.client.health import RelayHealth
from hornet.core import crypto
from hornet.core.circuit import E2E_OVERHEAD, DestinationSession, Outgoing
from hornet.core.relay import Deliver
from hornet.core.rendezvous import PUBKEY_LEN, Descriptor, RendezvousDestination
from hornet.core.stream import FLAG_DATAGRAM_MODE, Frame, FrameKind, Stream
from hornet.directory import Directory, NodeKeys
from hornet.errors import HornetError, SendRefusedError
from hornet.node.relay import RelayNode, bind_udp, serve_relay
from hornet.node.state import RelayState
from hornet.transport import Address, DatagramSocket, Network, UdpNetwork, runtime_rng, unix_now
from hornet.transport.link import with_link

log = logging.getLogger("hornet.service")

Handler = Callable[[Circuit], Awaitable[None]]
DEFAULT_MAX_CONNECTIONS: Final = 1024
DEFAULT_MAX_SESSIONS: Final = 4096
RENDEZVOUS_ATTEMPTS: Final = 3  # paths tried per rendezvous circuit a hidden destination builds
RELINK_TIMEOUT: Final = 30.0  # how long a stalled connection waits for a new circuit


class _DestLink:
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
    ) -> None:
        self.handler = handler
        self.nursery = nursery
        self.handler_nursery = handler_nursery
        self.send_packet = send_packet
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.connections: OrderedDict[bytes, _Connection] = OrderedDict()
        self.dropped: collections.Counter[str] = collections.Counter()
        self.accepted = 0

    def frame(self, frame: Frame, link: Link) -> None:
        """Route one frame (never blocks: runs inside the relay's packet loop)."""
        conn = self.connections.get(frame.conn_id)
        if frame.kind is FrameKind.HELLO:
            if conn is None:
                conn = self._accept(frame, link)
                if conn is None:
                    return
            else:
                conn.circuit.replace_link(link)
                conn.relinked.set()
                conn.relinked = trio.Event()
            # Answer every HELLO on the circuit it came from: it is the handshake.
            self.nursery.start_soon(
                self.send_packet, link.seal(conn.stream.hello_frame().encode(), 0)
            )
            return
        if conn is None:
            self.dropped["unknown_connection"] += 1
            return
        conn.circuit.frame_received(frame)

    def _accept(self, frame: Frame, link: Link) -> _Connection | None:
        if len(self.connections) >= self.max_connections:
            self.dropped["too_many_connections"] += 1
            return None
        reliable = not frame.flags & FLAG_DATAGRAM_MODE
        stream = Stream(frame.conn_id, self.max_frame, reliable=reliable)
        holder: list[_Connection] = []

        async def relink() -> Link:
            conn = holder[0]
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
            await conn.circuit.close_link()
            self.connections.pop(conn_id, None)


@attrs.frozen
class ServiceInfo:
    node: RelayNode
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
    """Accept circuits to this node (listed in ``directory``) and run ``handler`` on each.

    ``state``: the node's replay state (SPEC.md §7.5), one file per node key: a path
    (opened here, closed on exit) or an open ``RelayState`` (the caller's to close).
    Keep it with the key file: a restart under the same key with a new or missing state
    file reopens the replay window. ``link``: link encryption, as in ``serve_relay``.
    ``payload_size``: the payload class the clients use (default:
    ``Params.default_payload_size``, which fits a 1500-byte path).
    """
    rng = rng or runtime_rng()
    params = directory.params
    payload_size = payload_size or params.default_payload_size
    dropped: collections.Counter[str] = collections.Counter()
    # circuit id -> (session, link, when it was created), least recently used first
    sessions: OrderedDict[bytes, tuple[DestinationSession, _DestLink, float]] = OrderedDict()
    acceptors: list[Acceptor] = []
    # No packet of a circuit is delivered later than this after its first one (its EXP is
    # at most the longest lifetime ahead, rounded up, plus skew, and relays add a skew).
    session_horizon = params.max_exp(0) + params.max_skew_s

    def on_deliver(deliver: Deliver) -> None:
        """Runs in the relay's packet loop: the relay's queue bounds the work."""
        if len(deliver.message) != payload_size:
            dropped["wrong_payload_size"] += 1
            return
        now = unix_now()
        while sessions and next(iter(sessions.values()))[2] + session_horizon <= now:
            sessions.popitem(last=False)  # expired: its circuit can deliver nothing more
        entry = sessions.get(deliver.circuit_id)
        if entry is None:
            session = DestinationSession(params, deliver, payload_size)
            entry = (session, _DestLink(_sealer(session, rng)), now)
        try:
            frame = Frame.decode(entry[0].receive(deliver))
        except HornetError:
            dropped["invalid_payload"] += 1
            return
        if deliver.circuit_id in sessions:
            sessions.move_to_end(deliver.circuit_id)
        else:
            sessions[deliver.circuit_id] = entry
            if len(sessions) > max_sessions:
                sessions.popitem(last=False)
        if acceptors:
            acceptors[0].frame(frame, entry[1])
        else:
            dropped["not_started"] += 1  # arrived before the service reported itself

    async with _flat_nursery() as nursery:
        node: RelayNode = await nursery.start(
            lambda task_status: serve_relay(
                keys,
                directory,
                address,
                network=network,
                sock=sock,
                link=link,
                on_deliver=on_deliver,
                queue=queue,
                state=state,
                task_status=task_status,
            )
        )

        async def send_packet(out: Outgoing) -> None:
            target = node.directory.address_of(out.next_hop)  # the one in use now
            if target is not None:
                try:
                    await node.socket.send(out.packet, target)
                except SendRefusedError:
                    node.dropped["send_refused"] += 1

        acceptor = Acceptor(
            handler,
            nursery,
            handler_nursery or nursery,
            send_packet,
            payload_size - E2E_OVERHEAD,
            max_connections,
        )
        acceptor.dropped = dropped
        acceptors.append(acceptor)
        task_status.started(ServiceInfo(node, acceptor))


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
    """A hidden destination: builds a rendezvous circuit to ``rp`` (a random relay if
    None), reports its ``Descriptor`` (``task_status.started``) and serves connections.

    It renews itself: before the circuit's EXP (or every ``renew_every`` seconds, which
    bounds how long a restarted relay or RP on its path can cut it off) it builds a new
    circuit, to a fresh random RP unless ``rp`` is pinned, avoiding relays that failed,
    and publishes the new descriptor through ``on_descriptor`` (every descriptor,
    the first included). The old circuit serves until its own EXP, so clients holding
    the old descriptor finish; after that they get ``DescriptorExpiredError`` and must
    fetch the new one. Raises ``CircuitError`` once the current circuit expired and no
    new one could be built. ``link``: link encryption (as a client) on its socket.
    ``payload_size``: the class the descriptor announces (default
    ``Params.default_rendezvous_payload_size``: its nested packets fit a 1500-byte path).
    """
    rng = rng or runtime_rng()
    payload_size = payload_size or directory.params.default_rendezvous_payload_size
    address = bind or default_bind(directory)
    sock = with_link(await bind_udp(network or UdpNetwork(), address), None, directory, link=link)
    health = RelayHealth()
    try:
        with single_error():
            async with trio.open_nursery() as nursery:
                endpoint = Endpoint(sock, directory)
                nursery.start_soon(endpoint.run)
                acceptor = Acceptor(
                    handler,
                    nursery,
                    handler_nursery or nursery,
                    endpoint.send,
                    payload_size - PUBKEY_LEN - E2E_OVERHEAD,
                    max_connections,
                )

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
                        return dest
                    raise CircuitError("no rendezvous circuit: " + "; ".join(errors))

                async def retire(dest: RendezvousDestination) -> None:
                    await trio.sleep(max(0.0, dest.keys.exp - unix_now()))
                    endpoint.unregister(dest.arrival_id)

                current = await build()
                task_status.started(current.descriptor())
                while True:
                    if on_descriptor is not None:
                        on_descriptor(current.descriptor())
                    margin = max(2.0, min(30.0, lifetime / 4))
                    renew_at = current.keys.exp - margin
                    if renew_every is not None:
                        renew_at = min(renew_at, unix_now() + renew_every)
                    await trio.sleep(max(0.0, renew_at - unix_now()))
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
        frame = Frame.decode(message.data)
        connection = message.connection

        def seal(body: bytes) -> Outgoing:
            return dest.seal(connection, body, unix_now(), rng)

        acceptor.frame(frame, _DestLink(seal))

    return on_packet

"""The user API: ``async with hornet.open_circuit(directory, destination) as circuit``.

``open_circuit`` binds a socket, picks ``hops`` relays each way from the directory, runs
the setup round trip, then a HELLO handshake that proves the path works end to end and
hands the destination its reply header. The circuit then:
- renews itself before EXP in the background (a fresh setup, possibly over new relays;
  the stream resends whatever the old circuit had not delivered);
- rebuilds over other relays when the peer stops acknowledging (a relay died);
- raises ``NoPathError``, ``SetupTimeoutError`` or ``CircuitError`` with the path it
  tried, when it cannot do its job.

``destination`` may be a ``Descriptor`` (rendezvous): the circuit then ends at the
descriptor's rendezvous point and is spliced there towards the hidden destination.

``entry`` pins one relay as the first forward hop and the last backward hop of every
circuit (and of every renewal and rebuild), e.g. an onion-message mixer's relay
(``MixerClient.open_circuit``); its ``send_setup`` carries P➊ to that relay instead of
the socket (a paid mixer request). Data packets still go straight to the relay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path as FsPath
from typing import Any

import attrs
import trio

from hornet.authority.client import DirectoryClient
from hornet.circuit import (
    Circuit,
    CircuitError,
    Link,
    NoPathError,
    SetupTimeoutError,
    single_error,
)
from hornet.client.endpoint import Endpoint, Path, choose_path
from hornet.core.chdr import TYPE_SETUP
from hornet.core.circuit import E2E_OVERHEAD, Outgoing, SourceSession
from hornet.core.rendezvous import PUBKEY_LEN, Descriptor, RendezvousSource
from hornet.core.stream import CONN_ID_LEN, Frame, Stream
from hornet.directory import Directory, RelayInfo
from hornet.errors import HornetError, LocalProtocolError, RequestRefusedError
from hornet.transport import Address, DatagramSocket, Network, UdpNetwork, runtime_rng, unix_now
from hornet.transport.link import LinkSocket, directory_resolver, with_link

__all__ = ["Entry", "choose_entry_path", "open_circuit"]

HELLO_INTERVAL = 0.2
#: Errors no other path can cure: the caller's own mistakes, and a refused payment.
_FINAL_ERRORS = (LocalProtocolError, RequestRefusedError)


@attrs.frozen
class Entry:
    """A pinned entry relay: first forward hop and last backward hop of every circuit.

    ``send_setup(P➊)``, if given, delivers each setup packet to the relay instead of the
    socket (``MixerClient`` pays for it there); it raises ``HornetError`` when the relay
    refuses. Without it, setups go to the relay over UDP like any other first hop.
    """

    relay: RelayInfo
    send_setup: Callable[[bytes], Awaitable[None]] | None = None


class _EntryEndpoint(Endpoint):
    """An endpoint whose setup packets for the entry relay go through ``send_setup``."""

    def __init__(self, sock: DatagramSocket, directory: Directory, entry: Entry) -> None:
        super().__init__(sock, directory)
        self.entry = entry

    async def send(self, out: Outgoing) -> None:
        send_setup = self.entry.send_setup
        if (send_setup is not None and out.next_hop == self.entry.relay.node_id
                and out.packet[:1] == bytes((TYPE_SETUP,))):
            await send_setup(out.packet)
            return
        await super().send(out)


def choose_entry_path(
    directory: Directory,
    destination: RelayInfo,
    entry: RelayInfo,
    hops: int,
    rng: Any,
    exclude: Sequence[bytes] = (),
) -> Path:
    """``hops`` relays each way, ``entry`` first forward and last backward; the others
    are distinct, neither ``entry`` nor the destination, and avoid ``exclude``."""
    if hops < 1:
        raise LocalProtocolError("a circuit through an entry relay needs hops >= 1")
    if entry.node_id == destination.node_id:
        raise NoPathError("the entry relay cannot be the destination")
    others = [r for r in directory if r.node_id not in (destination.node_id, entry.node_id)]
    preferred = [r for r in others if r.node_id not in exclude]
    pool = preferred if len(preferred) >= hops - 1 else others
    if len(pool) < hops - 1:
        raise NoPathError(
            f"no path: {hops - 1} relays needed besides the entry and the destination, "
            f"the directory has {len(others)}"
        )
    return Path(
        forward=(entry, *rng.sample(pool, hops - 1), destination),
        backward=(*rng.sample(pool, hops - 1), entry),
    )


class SourceLink:
    """A source's underlying circuit: a ``SourceSession`` (or its rendezvous twin)."""

    def __init__(
        self, session: SourceSession | RendezvousSource, path: Path, rng: Any, exp: int
    ) -> None:
        self.session = session
        self.path = path
        self._rng = rng
        self._exp = exp
        self.ready = trio.Event()

    def __repr__(self) -> str:
        return f"SourceLink(exp={self._exp})"

    @property
    def exp(self) -> int:
        return self._exp

    @property
    def arrival_id(self) -> bytes:
        return self.session.arrival_id

    @property
    def max_body(self) -> int:
        return self.session.max_message

    def seal(self, body: bytes, now: float) -> Outgoing:
        return self.session.seal(body, now, self._rng)

    def open(self, packet: bytes) -> bytes:
        return self.session.open(packet)


class _Client:
    """Everything one ``open_circuit`` owns: endpoint, links, renewal."""

    def __init__(
        self,
        endpoint: Endpoint,
        destination: RelayInfo | Descriptor,
        *,
        hops: int,
        payload_size: int,
        lifetime: float,
        setup_timeout: float,
        attempts: int,
        rng: Any,
        entry: Entry | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.entry = entry
        self.destination = destination
        self.hops = hops
        self.payload_size = payload_size
        self.lifetime = lifetime
        self.setup_timeout = setup_timeout
        self.attempts = attempts
        self.rng = rng
        self.circuit: Circuit | None = None
        self.stream: Stream | None = None
        self.links: list[SourceLink] = []

    def _target(self) -> RelayInfo:
        if isinstance(self.destination, RelayInfo):
            # The directory in use now holds the destination's current setup keys.
            return self.endpoint.directory.get(self.destination.node_id) or self.destination
        rp = self.endpoint.directory.get(self.destination.rp_id)
        if rp is None:
            raise CircuitError("the descriptor's rendezvous point is not in the directory")
        return rp

    async def connect(self, exclude: set[bytes] | frozenset[bytes] = frozenset()) -> SourceLink:
        """Setup + handshake, trying up to ``attempts`` paths."""
        assert self.stream is not None
        errors: list[str] = []
        avoid = set(exclude)
        for _ in range(self.attempts):
            path = self._choose(sorted(avoid))
            try:
                link = await self._connect_once(path)
            except _FINAL_ERRORS:
                raise
            except HornetError as exc:
                errors.append(str(exc))
                avoid |= path.relays
                continue
            self.links.append(link)
            return link
        raise SetupTimeoutError(
            f"could not open a circuit in {self.attempts} attempts: " + "; ".join(errors)
        )

    def _choose(self, avoid: Sequence[bytes]) -> Path:
        directory, target = self.endpoint.directory, self._target()
        if self.entry is None:
            return choose_path(directory, target, self.hops, self.rng, avoid)
        return choose_entry_path(directory, target, self.entry.relay, self.hops, self.rng, avoid)

    async def _connect_once(self, path: Path) -> SourceLink:
        assert self.stream is not None
        rendezvous = isinstance(self.destination, Descriptor)
        keys = await self.endpoint.setup(
            path,
            lifetime=self.lifetime,
            timeout=self.setup_timeout,
            rng=self.rng,
            rendezvous=rendezvous,
        )
        session: SourceSession | RendezvousSource
        if isinstance(self.destination, Descriptor):
            session = RendezvousSource(keys, self.destination, self.rng)
            exp = min(keys.exp, self.destination.exp)
        else:
            session = SourceSession(keys, self.payload_size)
            exp = keys.exp
        link = SourceLink(session, path, self.rng, exp)
        self.endpoint.register(link.arrival_id, lambda packet: self._on_packet(link, packet))
        hello = self.stream.hello_frame().encode()
        with trio.move_on_after(self.setup_timeout):
            while not link.ready.is_set():
                await self.endpoint.send(link.seal(hello, unix_now()))
                with trio.move_on_after(HELLO_INTERVAL):
                    await link.ready.wait()
            return link
        self.endpoint.unregister(link.arrival_id)
        raise SetupTimeoutError(
            f"the destination did not answer within {self.setup_timeout:g} s ({path.describe()})"
        )

    async def _on_packet(self, link: SourceLink, packet: bytes) -> None:
        frame = Frame.decode(link.open(packet))
        if self.stream is None or frame.conn_id != self.stream.conn_id:
            return
        link.ready.set()
        if self.circuit is not None:
            self.circuit.frame_received(frame)

    async def rebuild(self) -> Link:
        old = self.links[-1]
        return await self.connect(exclude=old.path.relays)

    async def renew_forever(self) -> None:
        """Open the next circuit before the current one's EXP, then switch to it."""
        assert self.circuit is not None
        while True:
            current = self.links[-1]
            margin = max(2.0, min(10.0, self.lifetime / 4))
            await trio.sleep(max(0.0, current.exp - margin - unix_now()))
            if self.links[-1] is not current:
                continue  # a rebuild already replaced it
            try:
                link = await self.connect()
            except HornetError as exc:
                if unix_now() >= current.exp:
                    await self.circuit.fail(CircuitError(f"renewal failed: {exc}"))
                    return
                await trio.sleep(1.0)
                continue
            self.circuit.replace_link(link)
            for old in self.links[:-2]:
                self.endpoint.unregister(old.arrival_id)
            del self.links[:-2]


def _resolve(directory: Directory, destination: bytes | str | RelayInfo) -> RelayInfo:
    if isinstance(destination, RelayInfo):
        return destination
    node_id = bytes.fromhex(destination) if isinstance(destination, str) else destination
    relay = directory.get(node_id)
    if relay is None:
        raise LocalProtocolError(f"destination {node_id.hex()} is not in the directory")
    return relay


@asynccontextmanager
async def open_circuit(
    directory: Directory | DirectoryClient | str | FsPath,
    destination: bytes | str | RelayInfo | Descriptor,
    *,
    hops: int = 3,
    reliable: bool = True,
    payload_size: int = 1024,
    lifetime: float = 60.0,
    setup_timeout: float = 2.0,
    attempts: int = 3,
    linger: float = 2.0,
    bind: Address = ("127.0.0.1", 0),
    network: Network | None = None,
    rng: Any = None,
    entry: Entry | None = None,
    link: bool = True,
) -> AsyncIterator[Circuit]:
    """Open a duplex circuit to ``destination`` (a node id, or a rendezvous descriptor)
    over ``directory``: a ``Directory``, a directory file, or a ``DirectoryClient`` (the
    authorities' consensus, fetched first if it holds none yet).

    ``hops`` relays are used each way. In reliable mode (default) messages of any size
    up to 1 MiB arrive complete, once and in order; ``reliable=False`` gives HORNET's raw
    datagrams (``circuit.max_datagram`` bytes each, no retransmission). On exit, up to
    ``linger`` seconds are spent waiting for the peer to acknowledge what was sent.
    ``entry`` pins the first forward and last backward relay (counted in ``hops``).
    ``link``: link encryption to the relays (docs/spec-link.md; the default).
    """
    refresher = directory if isinstance(directory, DirectoryClient) else None
    if isinstance(directory, DirectoryClient):  # the authorities' consensus
        directory = directory.directory or await directory.fetch()
    elif not isinstance(directory, Directory):
        directory = Directory.load(directory)
    target: RelayInfo | Descriptor
    if isinstance(destination, Descriptor):
        target = destination
        payload_size = destination.payload_size
    else:
        target = _resolve(directory, destination)
    rng = rng or runtime_rng()
    sock = with_link(await (network or UdpNetwork()).bind(bind), None, directory, link=link)
    try:
        with single_error():
            async with trio.open_nursery() as nursery:
                endpoint = (
                    Endpoint(sock, directory)
                    if entry is None
                    else _EntryEndpoint(sock, directory, entry)
                )
                nursery.start_soon(endpoint.run)
                if refresher is not None:  # renewals and rebuilds use the latest consensus
                    nursery.start_soon(refresher.run, partial(_use_directory, endpoint, sock))
                client = _Client(
                    endpoint,
                    target,
                    hops=hops,
                    payload_size=payload_size,
                    lifetime=lifetime,
                    setup_timeout=setup_timeout,
                    attempts=attempts,
                    rng=rng,
                    entry=entry,
                )
                client.stream = Stream(
                    rng.randbytes(CONN_ID_LEN),
                    _max_frame(target, payload_size),
                    reliable=reliable,
                )
                first = await client.connect()
                circuit = Circuit(client.stream, first, endpoint.send, rebuild=client.rebuild)
                client.circuit = circuit
                nursery.start_soon(circuit.pump)
                if not isinstance(target, Descriptor):
                    nursery.start_soon(client.renew_forever)
                try:
                    yield circuit
                finally:
                    with trio.CancelScope(shield=True):
                        if reliable:
                            with trio.move_on_after(linger):
                                with suppress(CircuitError):
                                    await circuit.drain()
                        await circuit.close_link()
                    nursery.cancel_scope.cancel()
    finally:
        sock.close()


def _use_directory(endpoint: Endpoint, sock: DatagramSocket, directory: Directory) -> None:
    endpoint.directory = directory
    if isinstance(sock, LinkSocket):
        sock.endpoint.resolve = directory_resolver(directory)


def _max_frame(target: RelayInfo | Descriptor, payload_size: int) -> int:
    """Stream frame size: what one packet carries once the peer has our reply header."""
    if isinstance(target, Descriptor):
        return payload_size - PUBKEY_LEN - E2E_OVERHEAD
    return payload_size - E2E_OVERHEAD

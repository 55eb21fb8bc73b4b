"""A circuit owner's socket: setup round trips, handshakes and packet dispatch (trio).

Sources (``open_circuit``) and rendezvous destinations (``serve_rendezvous``) are
endpoints, not relays: they are not in the directory, and the last relay of their
backward path reaches them through their endpoint id (``hornet.directory``). One reader
task per endpoint dispatches what arrives:
- setup replies (P➋) by the ``next_hmac`` value the source chose (``setup_match``);
- data packets by their arrival id, the first 32 bytes of the AHDR as it reaches us.
Unknown or bad packets are counted and dropped; nothing is answered.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

import attrs
import trio

from hornet.circuit import puzzle as _puzzle
from hornet.circuit.circuit import NoPathError, SetupTimeoutError, StaleDirectoryError
from hornet.core.chdr import TYPE_DATA, TYPE_SETUP
from hornet.core.e2e import Outgoing
from hornet.core.params import CHDR_LEN, Params
from hornet.core.setup import (
    CircuitKeys,
    HopSpec,
    build_setup,
    coarse_exp,
    complete_setup,
    setup_match,
)
from hornet.directory.model import Directory, RelayInfo, endpoint_id
from hornet.errors import HornetError
from hornet.transport.link import connect_link, refresh_link
from hornet.transport.udp import Address, DatagramSocket, unix_now

PacketHandler = Callable[[bytes], Awaitable[None]]


def _spec(relay: RelayInfo, epoch: int) -> HopSpec:
    """The hop as a setup for key epoch ``epoch`` needs it (SPEC.md §7.1)."""
    key = relay.setup_key(epoch)
    if key is None:
        raise StaleDirectoryError(
            f"the directory lists no setup key of relay {relay.node_id.hex()} for key epoch "
            f"{epoch}; refresh the directory"
        )
    return HopSpec(relay.node_id, key)


@attrs.frozen
class Path:
    forward: tuple[RelayInfo, ...]  # relays, then the destination (or RP)
    backward: tuple[RelayInfo, ...]

    @property
    def relays(self) -> set[bytes]:
        return {r.node_id for r in self.forward[:-1] + self.backward}

    def describe(self) -> str:
        fwd = " → ".join(r.node_id.hex()[:8] for r in self.forward)
        bwd = " → ".join(r.node_id.hex()[:8] for r in self.backward)
        return f"forward {fwd}; backward {bwd}"


def pick_relays(
    pool: Sequence[RelayInfo],
    count: int,
    rng: random.Random,
    exclude: Collection[bytes] = (),
    backoff: Mapping[bytes, float] | None = None,
) -> list[RelayInfo]:
    """``count`` distinct relays of ``pool`` in random order, preferring in turn: relays
    neither in ``exclude`` nor backing off, relays only in ``exclude``, then relays
    backing off (``RelayHealth.backing_off``), those whose back-off ends first."""
    backoff = backoff or {}
    fresh = [r for r in pool if r.node_id not in exclude and r.node_id not in backoff]
    excluded = [r for r in pool if r.node_id in exclude and r.node_id not in backoff]
    failing = sorted((r for r in pool if r.node_id in backoff), key=lambda r: backoff[r.node_id])
    chosen = rng.sample(fresh, min(count, len(fresh)))
    chosen += rng.sample(excluded, min(count - len(chosen), len(excluded)))
    chosen += failing[: count - len(chosen)]
    rng.shuffle(chosen)
    return chosen


def choose_path(
    directory: Directory,
    destination: RelayInfo,
    hops: int,
    rng: random.Random,
    exclude: Collection[bytes] = (),
    *,
    backoff: Mapping[bytes, float] | None = None,
    without: Collection[bytes] = (),
) -> Path:
    """``hops`` distinct relays each way (not the destination), never one of
    ``without``, and as few as possible of ``exclude`` and then of ``backoff``
    (``pick_relays``)."""
    candidates = [r for r in directory if r.node_id != destination.node_id]
    pool = [r for r in candidates if r.node_id not in without]
    if len(pool) < hops:
        raise NoPathError(
            f"no path: {hops} relays needed besides the destination, "
            f"the directory has {len(candidates)}"
            + (f" and {len(candidates) - len(pool)} are ruled out" if without else "")
        )
    return Path(
        forward=(*pick_relays(pool, hops, rng, exclude, backoff), destination),
        backward=tuple(pick_relays(pool, hops, rng, exclude, backoff)),
    )


def default_bind(directory: Directory) -> Address:
    """Where a source or hidden destination binds by default: the wildcard of the
    directory's address family (IPv4 if any relay has an IPv4 address), any port, so
    that it reaches every relay its host can route to. Its endpoint id still carries a
    real address (``CircuitEndpoint.id_for``)."""
    if any(":" not in relay.address[0] for relay in directory) or len(directory) == 0:
        return ("0.0.0.0", 0)  # noqa: S104  (a client reaches relays on any interface)
    return ("::", 0)


class CircuitEndpoint:
    """A bound socket with a reader task (``run``) and the dispatch tables."""

    def __init__(self, sock: DatagramSocket, directory: Directory) -> None:
        self.socket = sock
        self.directory = directory
        #: Setup puzzle levels per entry relay (``hornet.circuit.puzzle``).
        self.puzzles = _puzzle.PuzzleEscalation()
        self.params: Params = directory.params
        self._setups: dict[bytes, trio.MemorySendChannel[bytes]] = {}
        self._links: dict[bytes, PacketHandler] = {}
        self.dropped: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"CircuitEndpoint(address={self.socket.address})"

    async def send(self, out: Outgoing) -> None:
        address = self.directory.address_of(out.next_hop)
        if address is None:
            self.dropped["unknown_next_hop"] += 1
            return
        await self.socket.send(out.packet, address)

    def id_for(self, relay: RelayInfo) -> bytes:
        """Our endpoint id as ``relay`` (a backward path's last relay) must see it: the
        address it receives our datagrams from, not the wildcard we may be bound to."""
        return endpoint_id(self.socket.return_address(relay.address))

    def register(self, arrival_id: bytes, handler: PacketHandler) -> None:
        self._links[arrival_id] = handler

    def unregister(self, arrival_id: bytes) -> None:
        self._links.pop(arrival_id, None)

    async def run(self) -> None:
        while True:
            packet, _ = await self.socket.receive()
            try:
                await self._dispatch(packet)
            except HornetError:
                self.dropped["invalid"] += 1

    async def _dispatch(self, packet: bytes) -> None:
        kind = packet[:1]
        if kind == bytes((TYPE_SETUP,)):
            channel = self._setups.get(setup_match(self.params, packet))
            if channel is None:
                self.dropped["unknown_setup"] += 1
                return
            try:
                channel.send_nowait(packet)
            except trio.WouldBlock:
                self.dropped["duplicate_setup"] += 1
            return
        if kind == bytes((TYPE_DATA,)):
            handler = self._links.get(packet[CHDR_LEN : CHDR_LEN + 32])
            if handler is None:
                self.dropped["unknown_circuit"] += 1
                return
            await handler(packet)
            return
        self.dropped["malformed"] += 1

    async def setup(
        self,
        path: Path,
        *,
        lifetime: float,
        timeout: float,
        rng: Any,
        rendezvous: bool = False,
    ) -> CircuitKeys:
        """A setup round trip over ``path``; raises ``SetupTimeoutError`` if no reply.

        -- setup puzzles: P➊ carries a puzzle for the entry relay at the level
        ``puzzles`` keeps for it; a timeout raises that level for the next attempt
        (``hornet.circuit.puzzle``).
        """
        return await self.puzzles.run(
            path.forward[0].node_id,
            lambda difficulty: self._setup_once(
                path,
                lifetime=lifetime,
                timeout=timeout,
                rng=rng,
                rendezvous=rendezvous,
                difficulty=difficulty,
            ),
        )

    async def _setup_once(
        self,
        path: Path,
        *,
        lifetime: float,
        timeout: float,
        rng: Any,
        rendezvous: bool = False,
        difficulty: int = 0,
    ) -> CircuitKeys:
        """One setup round trip, its P➊ carrying a puzzle of ``difficulty`` bits."""
        now = unix_now()
        epoch = self.params.epoch_of(now)  # EXP and key epoch: SPEC.md §7.1-10.3
        request = build_setup(
            self.params,
            [_spec(r, epoch) for r in path.forward],
            [_spec(r, epoch) for r in path.backward],
            self.id_for(path.backward[-1]),
            coarse_exp(now, lifetime),
            rng,
            rendezvous=rendezvous,
            key_epoch=epoch,
        )
        send, receive = trio.open_memory_channel[bytes](1)
        self._setups[request.pending.match] = send
        try:
            packet = await _puzzle.solve_setup(request.packet, difficulty)
            await self.send(Outgoing(request.first_hop, packet))
            with trio.move_on_after(timeout):
                # Link layer: the last backward relay cannot open a link to us; hold it.
                await connect_link(self.socket, path.backward[-1].address, hold_for=lifetime)
                reply = await receive.receive()
                return complete_setup(request.pending, reply, rng)
        finally:
            del self._setups[request.pending.match]
        for relay in (path.forward[0], path.backward[-1]):  # link layer: a relay that
            await refresh_link(self.socket, relay.address)  # restarted lost our session
        raise SetupTimeoutError(f"no setup reply within {timeout:g} s ({path.describe()})")

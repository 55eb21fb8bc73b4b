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
descriptor's rendezvous point and is spliced there towards the hidden destination. A
hidden destination moves to new rendezvous circuits and publishes a new descriptor for
each; with ``fetch_descriptor`` the circuit takes the newest one whenever it builds a
new underlying circuit (a rebuild after a stall, a renewal before EXP), and keeps its
stream, so nothing sent is lost; without it, the circuit fails with
``DescriptorExpiredError`` once its descriptor expired.

``entry`` pins one relay as the first forward hop and the last backward hop of every
circuit (and of every renewal and rebuild), e.g. an onion-message mixer's relay
(``MixerClient.open_circuit``); its ``send_setup`` carries P➊ to that relay instead of
the socket (a paid mixer request). Data packets still go straight to the relay.

Internal: applications import from the package roots (``hornet``,
``hornet.sphinx``, ``hornet.mixer``, ``hornet.credentials``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path as FsPath
from typing import Any

import attrs
import trio

from hornet.circuit.circuit import (
    Circuit,
    CircuitError,
    DescriptorExpiredError,
    NoPathError,
    PathSealer,
    SetupTimeoutError,
    StaleDirectoryError,
    single_error,
)
from hornet.circuit.endpoint import CircuitEndpoint, Path, choose_path, default_bind, pick_relays
from hornet.circuit.health import RelayHealth
from hornet.core.chdr import TYPE_SETUP
from hornet.core.e2e import E2E_OVERHEAD, Outgoing, SourceSession
from hornet.core.rendezvous import PUBKEY_LEN, Descriptor, RendezvousSource
from hornet.core.setup import CircuitKeys
from hornet.core.stream import CONN_ID_LEN, Stream, StreamFrame
from hornet.directory.fetch import DirectoryClient
from hornet.directory.model import Directory, RelayInfo
from hornet.errors import HornetError, LocalProtocolError, RequestRefusedError, SendRefusedError
from hornet.transport.link import LinkSocket, directory_resolver, with_link
from hornet.transport.udp import Address, DatagramSocket, Network, UdpNetwork, runtime_rng, unix_now

__all__ = ["Entry", "choose_entry_path", "open_circuit"]

HELLO_INTERVAL = 0.2
#: Paths raced at once when a circuit is rebuilt (one per suspect relay).
MAX_RACE = 6
#: Paths that may join a race one by one while no setup reply has come (``_race``), and
#: how many setup round trips a race waits before the next joins.
MAX_HEDGES = 3
HEDGE_RTTS = 2.5
#: How long a rebuild keeps trying before the circuit fails, and its pause between
#: rounds (the destination keeps a silent connection for ``RELINK_TIMEOUT`` = 30 s).
REBUILD_PATIENCE = 25.0
REBUILD_PAUSE = 0.5
#: Errors no other path can cure: the caller's own mistakes, a refused payment, an
#: expired descriptor, a directory without the keys of the current epoch.
_FINAL_ERRORS = (
    LocalProtocolError,
    RequestRefusedError,
    DescriptorExpiredError,
    StaleDirectoryError,
)
#: Returns a hidden destination's newest descriptor (``open_circuit``).
FetchDescriptor = Callable[[], Awaitable[Descriptor]]
#: Relay failures this process remembers across circuits (``RelayHealth``).
SHARED_HEALTH = RelayHealth()


@attrs.frozen
class Entry:
    """A pinned entry relay: first forward hop and last backward hop of every circuit.

    ``send_setup(P➊)``, if given, delivers each setup packet to the relay instead of the
    socket (``MixerClient`` pays for it there); it raises ``HornetError`` when the relay
    refuses. Without it, setups go to the relay over UDP like any other first hop.
    """

    relay: RelayInfo
    send_setup: Callable[[bytes], Awaitable[None]] | None = None


class _EntryCircuitEndpoint(CircuitEndpoint):
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
    exclude: Collection[bytes] = (),
    *,
    backoff: Mapping[bytes, float] | None = None,
    without: Collection[bytes] = (),
) -> Path:
    """``hops`` relays each way, ``entry`` first forward and last backward; the others
    are distinct, neither ``entry`` nor the destination nor one of ``without``, and
    avoid ``exclude`` and ``backoff`` where they can (``pick_relays``)."""
    if hops < 1:
        raise LocalProtocolError("a circuit through an entry relay needs hops >= 1")
    if entry.node_id == destination.node_id:
        raise NoPathError("the entry relay cannot be the destination")
    others = [r for r in directory if r.node_id not in (destination.node_id, entry.node_id)]
    pool = [r for r in others if r.node_id not in without]
    if len(pool) < hops - 1:
        raise NoPathError(
            f"no path: {hops - 1} relays needed besides the entry and the destination, "
            f"the directory has {len(others)}"
        )
    return Path(
        forward=(entry, *pick_relays(pool, hops - 1, rng, exclude, backoff), destination),
        backward=(*pick_relays(pool, hops - 1, rng, exclude, backoff), entry),
    )


class SourcePathSealer:
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
        return f"SourcePathSealer(exp={self._exp})"

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
        endpoint: CircuitEndpoint,
        destination: RelayInfo | Descriptor,
        *,
        hops: int,
        payload_size: int,
        lifetime: float,
        setup_timeout: float,
        attempts: int,
        rng: Any,
        entry: Entry | None = None,
        health: RelayHealth | None = None,
        fetch_descriptor: FetchDescriptor | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.fetch_descriptor = fetch_descriptor
        self.health = SHARED_HEALTH if health is None else health
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
        self.links: list[SourcePathSealer] = []
        #: Smoothed setup round trip (seconds), once one setup answered.
        self.setup_rtt: float | None = None

    def _target(self) -> RelayInfo:
        if isinstance(self.destination, RelayInfo):
            # The directory in use now holds the destination's current setup keys.
            return self.endpoint.directory.get(self.destination.node_id) or self.destination
        rp = self.endpoint.directory.get(self.destination.rp_id)
        if rp is None:
            raise CircuitError("the descriptor's rendezvous point is not in the directory")
        return rp

    async def connect(self, suspects: Collection[bytes] = ()) -> SourcePathSealer:
        """Setup + handshake in up to ``attempts`` rounds, each a race (``_race``).

        A round opens with one path that avoids relays that recently failed
        (``health``); or, when ``suspects`` are given (the relays of a circuit that just
        went silent: one of them is dead, which one is unknown), or after a failed
        round, with one path that leaves out each suspect in turn, so that one of them
        avoids the dead relay whichever it is. The first to answer wins. Each round
        starts from the hidden destination's newest descriptor (``fetch_descriptor``).
        """
        assert self.stream is not None
        errors: list[HornetError] = []
        suspects = set(suspects)
        for _ in range(self.attempts):
            await self._refresh_descriptor()
            self._check_descriptor()
            paths = self._leave_one_out(suspects) if suspects else [self._choose(())]
            link, failures = await self._race(paths, suspects)
            if link is not None:
                self.health.worked(link.path.relays)
                self.links.append(link)
                return link
            errors += [exc for _, exc in failures]
            for path, _ in failures:
                self.health.failed(path.relays, unix_now())
                suspects |= path.relays
        summary = f"could not open a circuit in {self.attempts} attempts: " + "; ".join(
            map(str, errors)
        )
        if errors and all(isinstance(e, SendRefusedError) for e in errors):
            raise SendRefusedError(summary)
        raise SetupTimeoutError(summary)

    async def _refresh_descriptor(self) -> None:
        """Move to the hidden destination's newest descriptor (``fetch_descriptor``).
        A lookup that fails (``OSError``, ``ValueError``, ``HornetError``) keeps the
        current one: the next round asks again."""
        if self.fetch_descriptor is None or not isinstance(self.destination, Descriptor):
            return
        try:
            newest = await self.fetch_descriptor()
        except (OSError, ValueError, HornetError):
            return
        if newest.payload_size != self.destination.payload_size:
            raise CircuitError(
                f"the hidden destination's new descriptor announces payload size "
                f"{newest.payload_size}, not {self.destination.payload_size}"
            )
        if newest.exp >= self.destination.exp:
            self.destination = newest

    def _check_descriptor(self) -> None:
        if isinstance(self.destination, Descriptor) and self.destination.exp <= unix_now():
            raise DescriptorExpiredError(
                "the hidden destination's descriptor expired: fetch its new descriptor"
            )

    def _choose(
        self, exclude: Collection[bytes], without: Collection[bytes] = ()
    ) -> Path:
        directory, target = self.endpoint.directory, self._target()
        backoff = self.health.backing_off(unix_now())
        if self.entry is None:
            return choose_path(
                directory, target, self.hops, self.rng, exclude, backoff=backoff, without=without
            )
        return choose_entry_path(
            directory, target, self.entry.relay, self.hops, self.rng, exclude,
            backoff=backoff, without=without,
        )

    def _leave_one_out(self, suspects: set[bytes]) -> list[Path]:
        """One path per suspect (at most ``MAX_RACE``), each without that suspect and
        with as few other suspects as it can. A pinned entry is never a suspect."""
        order = self._suspect_order(suspects)
        paths = []
        for suspect in order[:MAX_RACE]:
            with suppress(NoPathError):
                paths.append(self._choose(suspects, without=(suspect,)))
        return paths or [self._choose(suspects)]

    def _suspect_order(self, suspects: Collection[bytes]) -> list[bytes]:
        pinned = self.entry.relay.node_id if self.entry is not None else None
        order = sorted(s for s in suspects if s != pinned)
        self.rng.shuffle(order)
        return order

    def _hedge_path(self, suspects: set[bytes], tried: set[bytes]) -> Path:
        """A path to join a race: it leaves out one suspect (if any) and avoids the
        other suspects and the relays of the paths already in the race where it can."""
        order = self._suspect_order(suspects)
        with suppress(NoPathError):
            return self._choose(suspects | tried, without=order[:1])
        return self._choose(suspects | tried)

    def hedge_after(self) -> float:
        """How long a race waits for a setup reply before another path joins it:
        ``HEDGE_RTTS`` setup round trips as measured so far, within
        [``setup_timeout / 8``, ``setup_timeout / 4``]."""
        high = self.setup_timeout / 4
        if self.setup_rtt is None:
            return high
        return min(high, max(self.setup_timeout / 8, HEDGE_RTTS * self.setup_rtt))

    async def _race(
        self, paths: list[Path], suspects: set[bytes]
    ) -> tuple[SourcePathSealer | None, list[tuple[Path, HornetError]]]:
        """Run the setups of ``paths`` at once; while none has answered, another path
        (``_hedge_path``) joins every ``hedge_after()`` seconds or as soon as an attempt
        fails, up to ``MAX_HEDGES`` of them and not later than ``setup_timeout`` after
        the race began, so that a lost setup packet costs one hedge interval, not the
        whole setup timeout. The first reply wins and the other setups are abandoned
        (a setup leaves no state at the destination). Only the winner then greets the
        destination: a HELLO moves the destination's replies to the circuit it came on.
        Returns the new link (or None) and the failures.
        """
        winner: list[tuple[Path, CircuitKeys]] = []
        failures: list[tuple[Path, HornetError]] = []
        final: list[HornetError] = []
        failed = [trio.Event()]  # set when an attempt fails: the next one starts at once
        tried: set[bytes] = set()
        started = trio.current_time()
        async with trio.open_nursery() as nursery:

            async def attempt(path: Path) -> None:
                begun = trio.current_time()
                try:
                    keys = await self.endpoint.setup(
                        path,
                        lifetime=self.lifetime,
                        timeout=self.setup_timeout,
                        rng=self.rng,
                        rendezvous=isinstance(self.destination, Descriptor),
                    )
                except _FINAL_ERRORS as exc:
                    final.append(exc)
                    nursery.cancel_scope.cancel()
                    return
                except HornetError as exc:
                    failures.append((path, exc))
                    failed[0].set()
                    return
                self._rtt_sample(trio.current_time() - begun)
                if not winner:
                    winner.append((path, keys))
                    nursery.cancel_scope.cancel()

            for path in paths:
                tried |= path.relays
                nursery.start_soon(attempt, path)
            for _ in range(MAX_HEDGES):
                with trio.move_on_after(self.hedge_after()):
                    await failed[0].wait()
                failed[0] = trio.Event()
                if trio.current_time() - started >= self.setup_timeout:
                    break
                try:
                    path = self._hedge_path(suspects, tried)
                except NoPathError:
                    break
                tried |= path.relays
                nursery.start_soon(attempt, path)
        if final:
            raise final[0]
        if not winner:
            return None, failures
        path, keys = winner[0]
        try:
            return await self._handshake(path, keys), failures
        except _FINAL_ERRORS:
            raise
        except HornetError as exc:
            return None, [*failures, (path, exc)]

    def _rtt_sample(self, rtt: float) -> None:
        self.setup_rtt = rtt if self.setup_rtt is None else 0.75 * self.setup_rtt + 0.25 * rtt

    async def _handshake(self, path: Path, keys: CircuitKeys) -> SourcePathSealer:
        """HELLO over the new circuit until the destination answers."""
        assert self.stream is not None
        session: SourceSession | RendezvousSource
        if isinstance(self.destination, Descriptor):
            session = RendezvousSource(keys, self.destination, self.rng)
            exp = min(keys.exp, self.destination.exp)
        else:
            session = SourceSession(keys, self.payload_size)
            exp = keys.exp
        link = SourcePathSealer(session, path, self.rng, exp)
        self.endpoint.register(link.arrival_id, lambda packet: self._on_packet(link, packet))
        hello = self.stream.hello_frame().encode()
        try:
            with trio.move_on_after(self.setup_timeout):
                while not link.ready.is_set():
                    await self.endpoint.send(link.seal(hello, unix_now()))
                    with trio.move_on_after(HELLO_INTERVAL):
                        await link.ready.wait()
                return link
        except BaseException:
            self.endpoint.unregister(link.arrival_id)
            raise
        self.endpoint.unregister(link.arrival_id)
        raise SetupTimeoutError(
            f"the destination did not answer within {self.setup_timeout:g} s ({path.describe()})"
        )

    async def _on_packet(self, link: SourcePathSealer, packet: bytes) -> None:
        frame = StreamFrame.decode(link.open(packet))
        if self.stream is None or frame.conn_id != self.stream.conn_id:
            return
        link.ready.set()
        if self.circuit is not None:
            self.circuit.frame_received(frame)

    async def rebuild(self) -> PathSealer:
        """The current circuit went silent: one of its relays is suspect. Rounds of
        ``connect`` follow each other for up to ``REBUILD_PATIENCE`` seconds (the
        destination waits as long for the source to come back) before the circuit
        fails: a reliable stream outlives a burst of failed setups."""
        old = self.links[-1]
        self.health.failed(old.path.relays, unix_now())
        give_up = trio.current_time() + REBUILD_PATIENCE
        suspects: Collection[bytes] = old.path.relays
        while True:
            try:
                return await self.connect(suspects=suspects)
            except _FINAL_ERRORS:
                raise
            except HornetError:
                if trio.current_time() >= give_up:
                    raise
                suspects = ()  # the failures are in ``health`` now
                await trio.sleep(REBUILD_PAUSE)

    async def _worth_renewing(self, current: SourcePathSealer) -> bool:
        """Whether a new circuit would outlive ``current``: not to a hidden destination
        whose newest descriptor expires no later (its next one is not out yet)."""
        if not isinstance(self.destination, Descriptor):
            return True
        await self._refresh_descriptor()
        if min(self.destination.exp, unix_now() + self.lifetime) > current.exp:
            return True
        if unix_now() >= current.exp:
            raise DescriptorExpiredError(
                "the hidden destination published no descriptor newer than the expired one"
            )
        return False

    async def renew_forever(self) -> None:
        """Open the next circuit before the current one's EXP, then switch to it (to a
        hidden destination: over its newest descriptor)."""
        assert self.circuit is not None
        while True:
            current = self.links[-1]
            margin = max(2.0, min(10.0, self.lifetime / 4))
            await trio.sleep(max(0.0, current.exp - margin - unix_now()))
            if self.links[-1] is not current:
                continue  # a rebuild already replaced it
            try:
                if not await self._worth_renewing(current):
                    await trio.sleep(1.0)  # the hidden destination's next descriptor
                    continue
                link = await self.connect()
            except HornetError as exc:
                if unix_now() >= current.exp or isinstance(exc, DescriptorExpiredError):
                    await self.circuit.fail(
                        exc if isinstance(exc, DescriptorExpiredError)
                        else CircuitError(f"renewal failed: {exc}")
                    )
                    return
                await trio.sleep(1.0)
                continue
            self.circuit.replace_path(link)
            for old in self.links[:-2]:
                self.endpoint.unregister(old.arrival_id)
            del self.links[:-2]


def _resolve(directory: Directory, destination: bytes | str | RelayInfo) -> RelayInfo:
    if isinstance(destination, RelayInfo):
        return destination
    node_id = bytes.fromhex(destination) if isinstance(destination, str) else destination
    relay = directory.get(node_id)
    if relay is None:
        raise NoPathError(f"destination {node_id.hex()} is not in the directory")
    return relay


@asynccontextmanager
async def open_circuit(
    directory: Directory | DirectoryClient | str | FsPath,
    destination: bytes | str | RelayInfo | Descriptor,
    *,
    hops: int = 3,
    reliable: bool = True,
    payload_size: int | None = None,
    lifetime: float = 60.0,
    setup_timeout: float = 2.0,
    attempts: int = 3,
    linger: float = 2.0,
    bind: Address | None = None,
    network: Network | None = None,
    rng: Any = None,
    entry: Entry | None = None,
    link: bool = True,
    health: RelayHealth | None = None,
    fetch_descriptor: FetchDescriptor | None = None,
) -> AsyncIterator[Circuit]:
    """Open a duplex circuit to ``destination``; an async context manager.

    ``async with open_circuit(directory, node_id) as circuit`` binds a socket, sets up a
    circuit and proves it end to end. While the block runs, the circuit renews itself
    before EXP and rebuilds over other relays when one dies. On exit, up to ``linger``
    seconds are spent waiting for the peer to acknowledge what was sent; then the socket
    is closed. Timeouts on ``send`` and ``receive`` are the caller's.

    Args:
        directory: a ``Directory``, the path of a directory file, or a
            ``DirectoryClient`` (the authorities' consensus, fetched first if it holds
            none yet; renewals and rebuilds then use its latest consensus).
        destination: the destination's node id (8 bytes, or their hex), its
            ``RelayInfo``, or a hidden destination's rendezvous ``Descriptor``.
        hops: relays used each way (``entry`` counts as one).
        reliable: True (the default): messages of any size up to 1 MiB arrive complete,
            once and in order. False: HORNET's raw datagrams (``circuit.max_datagram``
            bytes each, no retransmission).
        payload_size: the payload class, which the destination must use too (default:
            ``Params.default_payload_size``, whose packets fit a 1500-byte path
            unfragmented). A ``Descriptor`` brings its own.
        lifetime: seconds each underlying circuit should live (its EXP is rounded up to
            an allowed lifetime); it is renewed before it ends.
        setup_timeout: seconds to wait for a setup reply before racing another path.
        attempts: setup rounds before giving up.
        linger: seconds spent on exit waiting for the peer's acknowledgements.
        bind: the local address; by default the wildcard, any port (``default_bind``),
            so the relays may be on any host this one can reach.
        network: where to bind (default: ``UdpNetwork()``; tests pass an in-memory one).
        rng: the randomness for paths and keys (default: ``runtime_rng()``).
        entry: pins the first forward and last backward relay of every circuit, e.g.
            an onion-message mixer's relay (``MixerClient.open_circuit``).
        link: link encryption to the relays (docs/spec-link.md; the default).
        health: where relay failures are remembered (default: one ``RelayHealth`` per
            process, so a relay that failed one circuit is avoided by the next for a
            while).
        fetch_descriptor: with a ``Descriptor`` destination, returns the hidden
            destination's newest descriptor (the caller's lookup); the circuit then
            follows it through renewals and rebuilds, keeping its stream.

    Yields:
        The open ``Circuit``.

    Raises:
        NoPathError: the destination is not in the directory, or too few usable relays
            are (``StaleDirectoryError``: it lacks the current key epoch's keys).
        SetupTimeoutError: no path answered in ``attempts`` rounds.
        SendRefusedError: every attempt was refused by the local kernel (no route).
        DescriptorExpiredError: the ``Descriptor`` is past its EXP.
        CircuitError: the descriptor's rendezvous point is not in the directory.
        ConfigError: the directory file is missing or unusable.
        LocalProtocolError: ``entry`` with ``hops`` < 1.
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
        payload_size = payload_size or directory.params.default_payload_size
    rng = rng or runtime_rng()
    address = bind or default_bind(directory)
    sock = with_link(await (network or UdpNetwork()).bind(address), None, directory, link=link)
    try:
        with single_error():
            async with trio.open_nursery() as nursery:
                endpoint = (
                    CircuitEndpoint(sock, directory)
                    if entry is None
                    else _EntryCircuitEndpoint(sock, directory, entry)
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
                    health=health,
                    fetch_descriptor=fetch_descriptor,
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
                if not isinstance(target, Descriptor) or fetch_descriptor is not None:
                    nursery.start_soon(client.renew_forever)
                try:
                    yield circuit
                finally:
                    with trio.CancelScope(shield=True):
                        if reliable:
                            with trio.move_on_after(linger):
                                with suppress(CircuitError):
                                    await circuit.drain()
                        await circuit.close_path()
                    nursery.cancel_scope.cancel()
    finally:
        sock.close()


def _use_directory(endpoint: CircuitEndpoint, sock: DatagramSocket, directory: Directory) -> None:
    endpoint.directory = directory
    if isinstance(sock, LinkSocket):
        sock.endpoint.resolve = directory_resolver(directory)


def _max_frame(target: RelayInfo | Descriptor, payload_size: int) -> int:
    """Stream frame size: what one packet carries once the peer has our reply header."""
    if isinstance(target, Descriptor):
        return payload_size - PUBKEY_LEN - E2E_OVERHEAD
    return payload_size - E2E_OVERHEAD

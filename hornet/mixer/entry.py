"""The mixer's co-hosted HORNET relay: an entry that only paying clients can enter (trio).

Strategy (docs/spec-mixer.md §9): the relay is the ordinary ``RelayNode`` of
``hornet.node.relay`` — same decision function, same counters — listed in the HORNET
directory under a key derived from the mixer's master secret. Two things are added
around it, neither inside it:

1. A ``SetupGate`` wraps the relay's socket. A *setup* packet (CHDR type 0x01) whose UDP
   source is not the address of a relay listed in the directory is dropped and counted
   (``dropped_unpaid_setup``); nothing is answered. Setups from relays (the mixer relay
   as a middle or backward hop, P➋ coming back) and all data packets pass untouched:
   on an established circuit the FS is the capability, until its EXP.
2. Paid setups arrive as ``CircuitRequest`` actions of the mixer core (a CIRCUIT request
   carries P➊ itself, its spends bound to every byte of it). ``submit`` puts P➊ on a
   bounded queue; one task hands each to ``RelayNode.handle``, exactly as if it had
   arrived from the client's HORNET endpoint. A full queue drops and counts.

So the only way to make this relay a circuit's first hop is to pay for that setup. The
core hands a setup out once, when its spends are first recorded (a retried request gets
the cached answer and injects nothing), and the relay's replay filter refuses a setup it
has seen anyway.

Restarts (SPEC.md §7.5): the relay's key derives from the mixer's master secret, so it
is the same after a restart, and the relay keeps a state file (``state``; the mixer keeps
it in its state directory): the restart generation mixed into SV, so FSes sealed before
a crash no longer open, and the setup replay tags, committed before a setup is sent on.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from os import PathLike
from typing import Final

import attrs
import trio

from hornet.core.chdr import TYPE_SETUP
from hornet.core.params import Params
from hornet.directory.model import Directory, EpochKey, NodeKeys, RelayInfo
from hornet.mixer.actions import CircuitRequest
from hornet.mixer.keys import derive_relay_secrets
from hornet.mixer.requests import CircuitEntry
from hornet.node.relay import RelayNode, RelayStatistics, serve_relay
from hornet.node.state import RelayState
from hornet.transport.link import LinkSocket, directory_resolver, with_link
from hornet.transport.udp import Address, DatagramSocket, Network, UdpNetwork, unix_now

log = logging.getLogger("hornet.mixer.entry")

DEFAULT_SETUP_QUEUE: Final = 64
_SETUP: Final = bytes((TYPE_SETUP,))


def relay_keys(master_secret: bytes) -> NodeKeys:
    """The mixer relay's node key and SV (derived, so stable across restarts)."""
    key, local_secret = derive_relay_secrets(master_secret)
    return NodeKeys(key, local_secret)


def circuit_entry(keys: NodeKeys, params: Params) -> CircuitEntry:
    """What the sans-IO core needs to know of the relay (INFO key, setup shape)."""
    return CircuitEntry(keys.node_key.public_key, params)


class SetupGate:
    """A ``DatagramSocket`` that drops setup packets from senders that are not relays."""

    def __init__(self, sock: DatagramSocket, relays: Callable[[], frozenset[Address]],
                 counters: collections.Counter[str]) -> None:
        self._sock = sock
        self._relays = relays
        self._counters = counters

    def __repr__(self) -> str:
        return f"SetupGate(address={self.address})"

    @property
    def address(self) -> Address:
        return self._sock.address

    async def send(self, data: bytes, address: Address) -> None:
        await self._sock.send(data, address)

    async def receive(self) -> tuple[bytes, Address]:
        while True:
            data, source = await self._sock.receive()
            if data[:1] == _SETUP and source not in self._relays():
                self._counters["dropped_unpaid_setup"] += 1
                continue
            return data, source

    def set_relays(self, relays: frozenset[Address]) -> None:
        """Let setups from ``relays`` pass from now on (a new directory's relays)."""
        self._relays = lambda: relays

    def return_address(self, peer: Address) -> Address:
        return self._sock.return_address(peer)

    def close(self) -> None:
        self._sock.close()


@attrs.frozen
class EntryStatistics:
    """The gate's and the injector's counters, and the relay's own statistics."""

    counters: dict[str, int]
    relay: RelayStatistics

    def __getitem__(self, name: str) -> int:
        return self.counters.get(name, 0)


class EntryRelay:
    """A running mixer relay: ``node`` (the ``RelayNode``), ``submit`` for paid setups."""

    def __init__(self, node: RelayNode, send: trio.MemorySendChannel[bytes],
                 counters: collections.Counter[str], *, gate: SetupGate | None = None,
                 link: DatagramSocket | None = None) -> None:
        self.node = node
        self._send = send
        self.counters = counters
        self._gate = gate
        self._link = link

    def __repr__(self) -> str:
        return f"EntryRelay(node_id={self.node_id.hex()}, address={self.address})"

    @property
    def node_id(self) -> bytes:
        return self.node.node_id

    @property
    def address(self) -> Address:
        return self.node.address

    @property
    def info(self) -> RelayInfo:
        """This relay's directory entry (give it to the directory's publisher)."""
        core = self.node.core
        first = core.params.epoch_of(unix_now())
        keys = tuple(EpochKey(e, core.setup_public_key(e)) for e in (first, first + 1))
        return RelayInfo(self.node.node_id, core.node_key.public_key, self.address, keys)

    def replace_directory(self, directory: Directory) -> None:
        """Use ``directory`` from now on: the relay's routes and admission
        (``RelayNode.replace_directory``, ``ConfigError`` if it changes params), the
        link layer's neighbour keys, and the relays whose setups pass the gate."""
        self.node.replace_directory(directory)
        if isinstance(self._link, LinkSocket):
            self._link.endpoint.resolve = directory_resolver(directory)
        if self._gate is not None:
            self._gate.set_relays(frozenset(r.address for r in directory))

    def submit(self, request: CircuitRequest) -> None:
        """``MixerService``'s ``on_circuit``: queue a paid P➊ for the relay (never blocks)."""
        try:
            self._send.send_nowait(request.setup)
            self.counters["setups_paid"] += 1
        except trio.WouldBlock:
            self.counters["dropped_setup_queue_full"] += 1

    def statistics(self) -> EntryStatistics:
        return EntryStatistics(dict(self.counters), self.node.statistics())


async def serve_entry_relay(
    keys: NodeKeys,
    directory: Directory,
    address: Address,
    *,
    state: str | PathLike[str] | RelayState,
    network: Network | None = None,
    sock: DatagramSocket | None = None,
    setup_queue: int = DEFAULT_SETUP_QUEUE,
    link: bool = True,
    task_status: trio.TaskStatus[EntryRelay] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the mixer's relay on ``address`` until cancelled (``nursery.start`` gives the
    ``EntryRelay``). ``directory`` names the relays whose setups pass the gate.

    ``state``: the relay's replay state (``hornet.node.state``; a path, opened and closed
    here, or an open ``RelayState``). Keep it with the master secret the keys derive from.

    ``link``: the link layer (docs/spec-link.md) sits between the socket (bound here or
    given as ``sock``) and the gate, so the gate sees HORNET packets from authenticated
    relay addresses."""
    sock = sock or await (network or UdpNetwork()).bind(address)
    sock = with_link(sock, keys.node_key, directory, link=link)
    counters: collections.Counter[str] = collections.Counter()
    relays = frozenset(r.address for r in directory)
    gate = SetupGate(sock, lambda: relays, counters)
    send, receive = trio.open_memory_channel[bytes](setup_queue)
    async with trio.open_nursery() as nursery:
        node: RelayNode = await nursery.start(
            lambda task_status: serve_relay(keys, directory, sock.address, sock=gate,
                                            link=False, state=state,
                                            task_status=task_status))
        entry = EntryRelay(node, send, counters, gate=gate, link=sock)
        if directory.get(node.node_id) is None:
            log.warning("mixer relay %s is not in the directory", node.node_id.hex())

        async def inject() -> None:
            async for setup in receive:
                counters["setups_injected"] += 1
                await node.handle(setup)

        nursery.start_soon(inject)
        task_status.started(entry)


__all__ = [
    "EntryRelay",
    "EntryStatistics",
    "SetupGate",
    "circuit_entry",
    "relay_keys",
    "serve_entry_relay",
]

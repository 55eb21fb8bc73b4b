"""``MixerClient``: the trio client of an onion-message mixer.

Strategy (trio-websocket's shape): a ``MixerSession`` (sans-IO) builds and reads every
message; this class moves them over a ``Transport`` and runs one reader task in a
nursery the caller supplies (``await nursery.start(client.run)``). Each request waits
on its own one-slot channel; application messages (replies that came back through a
synthetic SCID) go to a bounded inbox, dropped and counted when it is full. Timeouts
belong to the caller (``trio.fail_after``).

Typical use::

    wallet = Wallet.from_directory(directory, mixer_id)  # the listed issuer keys
    async with trio.open_nursery() as nursery:
        buyer = MixerClient.create(buyer_transport, buyer_key, wallet)
        await nursery.start(buyer.run)
        await buyer.get_info()
        await buyer.buy(voucher_code)
        # spend under another identity, over another transport (spec-mixer §3.6)
        client = MixerClient.create(transport, key, wallet)
        await nursery.start(client.run)
        await client.get_info()
        registration = await client.register_scid()
        reply_path = client.reply_path(registration)
        await client.send(destination_path, [(TLV, b"hello")], reply_path=reply_path)
        reply = await client.receive()
        # a HORNET circuit whose first (and last backward) hop is the mixer's relay
        async with client.open_circuit(directory, tower_id) as circuit:
            await circuit.send(b"appointment")
            ack = await circuit.receive()

``open_circuit`` pays ``prices.circuit_open`` for every setup it sends (the first one,
each renewal before EXP and each rebuild): the CIRCUIT request carries the setup packet
P➊ itself; data packets then go over UDP to the mixer's relay with no further payment.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from hornet.circuit.circuit import Circuit, SetupTimeoutError
from hornet.client import Entry
from hornet.client import open_circuit as hornet_open_circuit
from hornet.core import crypto
from hornet.core.blinding import BlindedPath
from hornet.core.onion_message import OutgoingOnionMessage
from hornet.core.rendezvous import Descriptor
from hornet.credentials.transcript import Rng
from hornet.directory.model import Directory, RelayInfo
from hornet.errors import LocalProtocolError, MalformedInputError, RemoteProtocolError
from hornet.mixer.hints import Hints
from hornet.mixer.protocol import RECEIPT_ID_LEN, MixerInfo
from hornet.mixer.riders import Receipt
from hornet.mixer.session import (
    Bundle,
    Delivered,
    DropNotice,
    MixerReply,
    MixerSession,
    ScidRegistration,
    Wallet,
)
from hornet.mixer.transport import Transport


@attrs.frozen
class MixerClientStatistics(Mapping[str, int]):
    """A client's counters at one moment; reads as a mapping of them."""

    counters: Mapping[str, int]

    def __getitem__(self, name: str) -> int:
        return self.counters[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.counters)

    def __len__(self) -> int:
        return len(self.counters)


class MixerClient:
    """One identity's connection to one mixer, over ``transport``."""

    def __init__(self, transport: Transport, session: MixerSession, *, rng: Rng | None = None,
                 inbox_size: int = 64) -> None:
        if transport.node_id != session.node_id:
            raise LocalProtocolError("the transport must carry the session's node id")
        self.transport = transport
        self.session = session
        self.rng: Rng = rng if rng is not None else secrets.SystemRandom()
        self._waiters: dict[bytes, trio.MemorySendChannel[MixerReply]] = {}
        self._receipts: dict[bytes, trio.MemorySendChannel[Receipt]] = {}
        self._inbox_send, self._inbox = trio.open_memory_channel[Delivered](inbox_size)
        self.stats: Counter[str] = Counter()
        #: Wall-clock time (unix seconds): bundles expire by the mixer's clock.
        self.clock: Callable[[], float] = time.time

    @classmethod
    def create(cls, transport: Transport, identity: crypto.SecretKey, wallet: Wallet, *,
               to_mixer: Sequence[bytes] = (), reply_hops: Sequence[bytes] = (),
               rng: Rng | None = None, inbox_size: int = 64) -> MixerClient:
        """A client speaking as ``identity`` (a fresh key per session is the point).

        ``to_mixer``: hops to reach the mixer (empty: it is a direct peer);
        ``reply_hops``: hops between the mixer and us in the reply paths of requests.
        """
        rng = rng if rng is not None else secrets.SystemRandom()
        session = MixerSession.create(identity, wallet, rng, to_mixer=to_mixer,
                                      reply_hops=reply_hops)
        return cls(transport, session, rng=rng, inbox_size=inbox_size)

    @property
    def node_id(self) -> bytes:
        return self.session.node_id

    @property
    def wallet(self) -> Wallet:
        return self.session.wallet

    # -- the reader task ------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read messages until cancelled; start it with ``nursery.start``."""
        task_status.started()
        while True:
            _, message = await self.transport.receive()
            self._dispatch(message)

    def _dispatch(self, message: bytes) -> None:
        try:
            incoming = self.session.receive(message)
        except RemoteProtocolError:
            self.stats["dropped_invalid"] += 1
            return
        if incoming is None:
            self.stats["ignored"] += 1
        elif isinstance(incoming, MixerReply):
            waiter = self._waiters.pop(incoming.request_id, None)
            if waiter is None:
                self.stats["late_replies"] += 1
            else:
                waiter.send_nowait(incoming)
        elif isinstance(incoming, DropNotice):
            self.stats["drop_notices"] += 1
        elif isinstance(incoming, Receipt):
            receipt_waiter = self._receipts.pop(incoming.receipt_id, None)
            if receipt_waiter is None:
                self.stats["late_receipts"] += 1
            else:
                receipt_waiter.send_nowait(incoming)
        else:
            try:
                self._inbox_send.send_nowait(incoming)
                self.stats["delivered"] += 1
            except trio.WouldBlock:
                self.stats["dropped_inbox_full"] += 1

    async def _call(self, request_id: bytes, outgoing: OutgoingOnionMessage) -> object:
        send, receive = trio.open_memory_channel[MixerReply](1)
        self._waiters[request_id] = send
        try:
            await self.transport.send(outgoing.first_node_id, outgoing.message)
            self.stats["requests"] += 1
            reply = await receive.receive()
        finally:
            self._waiters.pop(request_id, None)
            self.session.forget(request_id)
        if reply.error is not None:
            raise reply.error
        return reply.result

    # -- requests -------------------------------------------------------------------
    async def get_info(self) -> MixerInfo:
        """Ask for prices and signed issuer parameters (verified against the mixer id)."""
        result = await self._call(*self.session.info_request(self.rng))
        if not isinstance(result, MixerInfo):
            raise MalformedInputError("unexpected INFO result")
        return result

    async def buy(self, payment_id: bytes, *, values: Sequence[int] | None = None) -> int:
        """Turn a payment (voucher code / paid invoice id) into credentials; returns how
        many credentials were added to the wallet."""
        result = await self._call(*self.session.buy_request(payment_id, self.rng, values=values))
        if not isinstance(result, int):
            raise MalformedInputError("unexpected BUY result")
        return result

    async def rollover(self) -> int:
        """Roll ``k`` old-epoch credentials into the next epoch; returns how many
        credentials were rolled over (0 if there was nothing to roll over)."""
        request = self.session.rollover_request(self.rng)
        if request is None:
            return 0
        result = await self._call(*request)
        if not isinstance(result, int):
            raise MalformedInputError("unexpected REISSUE result")
        return result

    async def register_scid(self) -> ScidRegistration:
        result = await self._call(*self.session.register_request(self.rng))
        if not isinstance(result, ScidRegistration):
            raise MalformedInputError("unexpected REGISTER result")
        return result

    async def renew_scid(self, registration: ScidRegistration) -> ScidRegistration:
        result = await self._call(*self.session.renew_request(registration, self.rng))
        if not isinstance(result, ScidRegistration):
            raise MalformedInputError("unexpected RENEW result")
        return result

    async def hints(self) -> Hints:
        result = await self._call(*self.session.hints_request(self.rng))
        if not isinstance(result, Hints):
            raise MalformedInputError("unexpected HINTS result")
        return result

    # -- HORNET circuits through the mixer -------------------------------------------
    async def request_circuit(self, setup: bytes) -> None:
        """Pay for one setup packet P➊ and have the mixer inject it into its relay.
        Returns once the mixer accepted (the setup reply P➋ arrives over HORNET);
        raises ``RequestRefusedError`` (e.g. ``INSUFFICIENT_VALUE``, ``DOUBLE_SPEND``)."""
        await self._call(*self.session.circuit_request(setup, self.rng))
        self.stats["circuits_paid"] += 1

    async def entry_relay(self, directory: Directory) -> RelayInfo:
        """The mixer's HORNET relay, as listed in ``directory`` under the key the mixer
        published in INFO (asks for INFO if the session has none)."""
        info = self.session.info or await self.get_info()
        if info.relay_key is None or info.prices.circuit_open is None:
            raise LocalProtocolError("this mixer does not offer HORNET circuits")
        relay = next((r for r in directory if r.public_key == info.relay_key), None)
        if relay is None:
            raise LocalProtocolError("the mixer's relay is not in the directory")
        return relay

    @asynccontextmanager
    async def open_circuit(self, directory: Directory | str | Path,
                           destination: bytes | str | RelayInfo | Descriptor, *,
                           hops: int = 3, request_timeout: float = 5.0,
                           **options: Any) -> AsyncIterator[Circuit]:
        """``hornet.open_circuit`` with the mixer's relay as first forward and last
        backward hop (``hops`` counts it; use at least 2 so that the mixer does not see
        both ends). Every setup (open, renewal, rebuild) is paid with
        ``prices.circuit_open``; an unanswered CIRCUIT request counts as a failed
        attempt after ``request_timeout`` s. ``options`` are ``hornet.open_circuit``'s."""
        if not isinstance(directory, Directory):
            directory = Directory.load(directory)
        relay = await self.entry_relay(directory)

        async def send_setup(setup: bytes) -> None:
            with trio.move_on_after(request_timeout):
                await self.request_circuit(setup)
                return
            self.stats["circuit_requests_unanswered"] += 1
            raise SetupTimeoutError(
                f"the mixer did not answer a CIRCUIT request within {request_timeout:g} s")

        entry = Entry(relay, send_setup=send_setup)
        async with hornet_open_circuit(directory, destination, hops=hops, entry=entry,
                                       **options) as circuit:
            yield circuit

    # -- messages -------------------------------------------------------------------
    def reply_path(self, registration: ScidRegistration, *,
                   via: Sequence[bytes] = ()) -> BlindedPath:
        """A reply path entering through the mixer's synthetic SCID ``registration``."""
        return self.session.reply_path(registration, self.rng, via=via)

    async def buy_bundle(self) -> Bundle:
        """Pay ``prices.message`` once for the mixer's bundle of ``k`` messages
        (spec-mixer §3.7); ``send(..., bundled=True)`` uses them."""
        request_id, outgoing = self.session.bundle_request(self.rng)
        result = await self._call(request_id, outgoing)
        assert isinstance(result, Bundle)
        return result

    async def send(self, destination: BlindedPath, payload: Sequence[tuple[int, bytes]], *,
                   reply_path: BlindedPath | None = None,
                   next_hops: Sequence[bytes] = (), bundled: bool = False) -> None:
        """Send a paid onion message through the mixer (no answer from the mixer): with
        one credential spend, or with ``bundled`` the next message of a bought bundle
        (``LocalProtocolError`` if none is left)."""
        if bundled:
            outgoing = self.session.bundled_message(destination, payload, self.rng,
                                                    now=self.clock(), reply_path=reply_path,
                                                    next_hops=next_hops)
        else:
            outgoing = self.session.send_message(destination, payload, self.rng,
                                                 reply_path=reply_path, next_hops=next_hops)
        await self.transport.send(outgoing.first_node_id, outgoing.message)
        self.stats["sent"] += 1

    async def send_confirmed(self, destination: BlindedPath,
                             payload: Sequence[tuple[int, bytes]], *,
                             reply_path: BlindedPath | None = None,
                             next_hops: Sequence[bytes] = (), timeout: float = 2.0,
                             attempts: int = 3) -> Receipt:
        """Send a paid message and wait for the mixer's delivery receipt (spec-mixer
        §5.5); on a miss after ``timeout`` seconds send it again, as a new message with
        new spends, up to ``attempts`` times in all. Raises ``trio.TooSlowError`` if no
        attempt was acknowledged. A lost receipt can make the destination get the
        message twice; the application's payload must tolerate that."""
        for attempt in range(attempts):
            receipt_id = secrets.token_bytes(RECEIPT_ID_LEN)
            send, receive = trio.open_memory_channel[Receipt](1)
            self._receipts[receipt_id] = send
            try:
                outgoing = self.session.send_message(
                    destination, payload, self.rng, reply_path=reply_path,
                    next_hops=next_hops, receipt_id=receipt_id)
                await self.transport.send(outgoing.first_node_id, outgoing.message)
                self.stats["sent"] += 1
                with trio.move_on_after(timeout):
                    receipt = await receive.receive()
                    self.stats["receipts"] += 1
                    return receipt
            finally:
                self._receipts.pop(receipt_id, None)
            self.stats["receipt_misses"] += 1
            if attempt + 1 < attempts:
                self.stats["resent"] += 1
        raise trio.TooSlowError

    async def receive(self) -> Delivered:
        """The next application message for us (replies through our SCIDs)."""
        return await self._inbox.receive()

    def receive_nowait(self) -> Delivered:
        return self._inbox.receive_nowait()

    def statistics(self) -> MixerClientStatistics:
        return MixerClientStatistics(dict(self.stats))


__all__ = ["MixerClient"]

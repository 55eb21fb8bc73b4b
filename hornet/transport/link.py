"""Link encryption as a ``Network`` (trio): relays and clients use it transparently.

``LinkNetwork(inner, identity, resolve, nursery)`` wraps any ``Network``. Its sockets
speak the link protocol of ``hornet.link`` (docs/spec-link.md) on the inner socket:

- ``send(packet, address)`` seals the packet under the link session to ``address``. If
  there is none yet it queues the packet (bounded, drop-newest) behind a handshake and
  returns at once; the packet leaves when the handshake is confirmed.
- ``receive()`` returns only authenticated, de-duplicated HORNET packets. Handshake
  messages, confirmations and anything forged, replayed or malformed are consumed
  here (counted in ``statistics().dropped``).

How it runs (the trio-websocket shape): the sans-IO ``LinkEndpoint`` makes every
decision; this module moves its datagrams. One timer task per socket lives in the
caller's ``nursery`` and runs the endpoint's retransmissions, expiries and rekeys.
Datagrams are read only inside ``receive()``, so handshakes progress while some task
is receiving, which every hornet relay and endpoint does all the time.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from typing import Any

import trio

from hornet.core.crypto import SecretKey
from hornet.errors import RemoteProtocolError
from hornet.link.endpoint import LinkConfig, LinkEndpoint, LinkStatistics, Resolver
from hornet.transport import Address, DatagramSocket, Network


class LinkNetwork:
    """Binds ``LinkSocket``s on ``inner``.

    ``identity`` is the relay's directory key (it authenticates the node and lets it
    accept links); None means a client: a fresh static key per handshake, outbound
    links only. ``resolve(address)`` gives the static key the directory lists for the
    relay at ``address``, or None for a non-relay.
    """

    def __init__(
        self,
        inner: Network,
        identity: SecretKey | None,
        resolve: Resolver,
        nursery: trio.Nursery,
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

    async def bind(self, address: Address) -> LinkSocket:
        sock = await self.inner.bind(address)
        endpoint = LinkEndpoint(self.identity, self.resolve, self.rng, self.config)
        link = LinkSocket(sock, endpoint)
        self.nursery.start_soon(link._run_timers)
        return link


class LinkSocket:
    """A ``DatagramSocket`` whose datagrams are link-encrypted (see the module doc)."""

    def __init__(self, inner: DatagramSocket, endpoint: LinkEndpoint) -> None:
        self._inner = inner
        self.endpoint = endpoint
        self._wait: trio.CancelScope | None = None
        self._timers = trio.CancelScope()
        self._waiters: dict[Address, trio.Event] = {}
        self.rejected: Counter[str] = Counter()

    @property
    def address(self) -> Address:
        return self._inner.address

    async def send(self, data: bytes, address: Address) -> None:
        endpoint = self.endpoint
        sealed = endpoint.seal(data, address, trio.current_time())
        if sealed is not None:
            await self._inner.send(sealed, address)
            if not endpoint.has_datagrams_to_send():
                return
        await self._flush()
        self._rearm()

    async def receive(self) -> tuple[bytes, Address]:
        endpoint = self.endpoint
        inner = self._inner
        while True:
            data, source = await inner.receive()
            try:
                packet = endpoint.open(data, source, trio.current_time())
            except RemoteProtocolError as exc:
                self.rejected[type(exc).__name__] += 1
                packet = None
            if packet is not None and not endpoint.has_output():
                return packet, source
            await self._control_done()
            if packet is not None:
                return packet, source

    async def connect(self, address: Address) -> None:
        """Open the link to the relay at ``address`` and wait until it is usable.

        A client calls this for a relay that will send to it before it sends to that
        relay (the last relay of a backward path). Needs a concurrent ``receive()``;
        the timeout is the caller's.
        """
        endpoint = self.endpoint
        if endpoint.is_established(address):
            return
        event = self._waiters.setdefault(address, trio.Event())
        endpoint.connect(address, trio.current_time())
        await self._flush()
        self._rearm()
        await event.wait()

    def statistics(self) -> LinkStatistics:
        stats = self.endpoint.statistics()
        dropped = Counter(stats.dropped)
        dropped.update({f"rejected_{name}": n for name, n in self.rejected.items()})
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
        await self._flush()
        for address in self.endpoint.take_established():
            event = self._waiters.pop(address, None)
            if event is not None:
                event.set()
        self._rearm()

    async def _flush(self) -> None:
        for datagram, address in self.endpoint.datagrams_to_send():
            await self._inner.send(datagram, address)

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

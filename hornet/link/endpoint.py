"""The link endpoint: BOLT 8 handshakes over lossy datagrams, sessions keyed by peer address.

A sans-IO state machine in the style of h11. The caller feeds it datagrams and the
time, and drains what it wants sent:

    seal(packet, address, now)      -> DATA datagram to send now, or None (held/dropped)
    open(datagram, address, now)    -> HORNET packet, or None (control/keepalive);
                                       raises only RemoteProtocolError subclasses
    tick(now)                       -> runs the timers that are due
    next_deadline()                 -> when ``tick`` next has work (None: never)
    datagrams_to_send()             -> handshake acts, confirmations, retransmissions

Rules (docs/spec-link.md §3–§5):

1. Only the initiator retransmits, on its own timer: act one until act two arrives,
   then act three until the responder's first authenticated datagram confirms the
   session. The responder never sends unprompted; it answers a duplicate act one with
   its stored act two and a duplicate act three with a fresh confirmation. So the
   responder holds no timers for unauthenticated peers and never amplifies.
2. Packets for a peer without a usable session wait behind its handshake in a bounded
   queue (drop-newest). The initiator sends them only once the session is confirmed.
3. Each peer has at most two sessions per role: the current one and, for
   ``previous_grace`` seconds after a rekey, the one it replaced (receive only).
   Sending always uses the newest confirmed session of either role.
4. The initiator of the newest session starts a fresh handshake after
   ``rekey_after_time`` if the link carried traffic in the last
   ``reject_after_time − rekey_after_time`` seconds (or on the next send); no session is used after
   ``reject_after_time`` or past its message limit. There is no in-session key
   rotation: rekeying is a new handshake, which also gives forward secrecy.
   ``connect(address, now, hold)`` *holds* a link for ``hold`` seconds: it is rekeyed
   (and re-opened if it broke) even while idle. A client holds the link to the last
   relay of each backward path for the circuit's lifetime, because that relay cannot
   open a link to a client (it does not know a client's key).
5. Memory is bounded, and one host cannot push out other peers' links:
   - relay peers (addresses the directory lists, so every session with them proves the
     directory key) live in their own table, bounded by the directory: client churn
     never evicts them;
   - client peers: at most ``max_peers`` in all, the least recently active evicted
     first (a peer moves to the back whenever a datagram from it authenticates, a
     packet is sealed for it, or a handshake completes: one ``move_to_end`` per packet),
     and at most ``max_peers_per_source`` per source (an IPv4 address, an IPv6 /64),
     that source's least recently active evicted first;
   - responder handshakes: at most ``max_half_open`` for clients (oldest evicted) and
     ``max_half_open_per_source`` per source; at most one per relay address;
   - ``max_queue`` packets per peer; new act ones are rate limited by a token bucket,
     one for clients and one for relay addresses.
6. Randomness (ephemeral keys; fresh static keys when ``identity`` is None) comes from
   the ``rng`` passed in; there is no clock, only ``now`` arguments.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Final, NoReturn

from hornet.core.crypto import SecretKey
from hornet.core.ratelimit import TokenBucket
from hornet.errors import (
    LinkAuthenticationError,
    LocalDropReason,
    LocalProtocolError,
    MalformedInputError,
    RateLimitedError,
    RemoteProtocolError,
    UnknownSessionError,
)
from hornet.link.channel import (
    ACT_ONE_DATAGRAM_LEN,
    ACT_THREE_DATAGRAM_LEN,
    ACT_TWO_DATAGRAM_LEN,
    TYPE_ACT_ONE,
    TYPE_ACT_THREE,
    TYPE_ACT_TWO,
    TYPE_DATA_FROM_INITIATOR,
    TYPE_DATA_FROM_RESPONDER,
    ChannelSession,
    new_session,
)
from hornet.link.noise import Initiator, Responder
from hornet.link.peers import (
    InboundHandshake,
    LinkConfig,
    LinkPeer,
    LinkStatistics,
    OutboundHandshake,
    PeerSessions,
)

Address = tuple[str, int]
#: Maps a peer address to the static key the directory lists for it (None: not a relay).
Resolver = Callable[[Address], bytes | None]
Datagram = tuple[bytes, Address]

_INF: Final = float("inf")
_DATA_TYPES: Final = frozenset((TYPE_DATA_FROM_INITIATOR, TYPE_DATA_FROM_RESPONDER))


class LinkEndpoint:
    """All link state of one socket: peers, handshakes, sessions (see module rules)."""

    def __init__(
        self,
        identity: SecretKey | None,
        resolve: Resolver,
        rng: Any,
        config: LinkConfig | None = None,
    ) -> None:
        self.identity = identity
        self.resolve = resolve
        self.config = config or LinkConfig()
        self._rng = rng
        #: Every peer, for lookups; the client peers again in ``_clients`` (least
        #: recently active first) and in ``_sources`` (by source, for the quotas).
        self._peers: dict[Address, LinkPeer] = {}
        self._clients: OrderedDict[Address, LinkPeer] = OrderedDict()
        self._sources: dict[str, dict[Address, LinkPeer]] = {}
        #: Client handshakes half open (oldest first); relays' are bounded by the directory.
        self._half_open: OrderedDict[Address, None] = OrderedDict()
        self._timers: list[tuple[float, int, Address]] = []
        self._timer_seq = 0
        self._outbox: list[Datagram] = []
        self._established: list[Address] = []
        #: Two token buckets for new act ones, [clients, relays].
        self._buckets = tuple(
            TokenBucket(self.config.handshake_rate, self.config.handshake_burst, -_INF)
            for _ in range(2)
        )
        self.handshakes_completed = 0
        self.dropped: Counter[str] = Counter()

    # ----------------------------------------------------------------------------------
    # The data path

    def seal(self, packet: bytes, address: Address, now: float) -> bytes | None:
        """The DATA datagram carrying ``packet`` to ``address``, or None if it had to wait
        behind a handshake (or was dropped: queue full, nobody to handshake with)."""
        peer = self._peers.get(address)
        if peer is not None:
            session = peer.current
            if (
                session is not None
                and now < peer.fast_until
                and session.sent < self.config.rekey_after_messages
            ):
                peer.last_activity = now
                if not peer.relay:
                    self._clients.move_to_end(address)
                return session.seal(packet)
        return self._seal_slow(packet, address, now)

    def open(self, datagram: bytes, address: Address, now: float) -> bytes | None:
        """The HORNET packet in ``datagram`` from ``address``, or None for control traffic.

        Raises ``RemoteProtocolError`` subclasses for anything unacceptable: the caller
        counts and drops. Replies (acts, confirmations) land in ``datagrams_to_send``.
        """
        if not datagram:
            raise MalformedInputError("empty link datagram")
        kind = datagram[0]
        if kind in _DATA_TYPES:
            peer = self._peers.get(address)
            if peer is None:
                self._no_session(address, now)
            candidates = peer.receivers[kind - TYPE_DATA_FROM_INITIATOR]
            error: RemoteProtocolError | None = None
            for session in candidates:
                try:
                    packet = session.open(datagram)
                except RemoteProtocolError as exc:
                    error = error or exc
                    continue
                peer.last_activity = now
                if not peer.relay:
                    self._clients.move_to_end(address)
                if not session.confirmed:
                    self._confirmed(peer, session, now)
                return packet or None
            if error is not None:
                raise error
            self._no_session(address, now)
        if kind == TYPE_ACT_ONE:
            self._read_act_one(datagram, address, now)
        elif kind == TYPE_ACT_TWO:
            self._read_act_two(datagram, address, now)
        elif kind == TYPE_ACT_THREE:
            self._read_act_three(datagram, address, now)
        else:
            raise MalformedInputError(f"unknown link datagram type {kind}")
        return None

    def datagrams_to_send(self) -> list[Datagram]:
        """Control datagrams produced so far (and flushed queues); empties the outbox."""
        out, self._outbox = self._outbox, []
        return out

    def has_datagrams_to_send(self) -> bool:
        return bool(self._outbox)

    def has_output(self) -> bool:
        """Datagrams to send or established links to report: the caller has work."""
        return bool(self._outbox or self._established)

    def take_established(self) -> list[Address]:
        """Peers whose link became usable for sending since the last call."""
        out, self._established = self._established, []
        return out

    def peer_addresses(self) -> Iterable[Address]:
        """Every peer's address (a view: do not change the endpoint while iterating)."""
        return self._peers.keys()

    def is_established(self, address: Address) -> bool:
        peer = self._peers.get(address)
        return peer is not None and peer.current is not None

    def connect(self, address: Address, now: float, hold: float = 0.0) -> None:
        """Start a handshake to ``address`` unless a session or a handshake exists, and
        hold the link for ``hold`` seconds from ``now`` (rule 4).

        Raises ``LocalProtocolError`` if ``resolve`` knows no static key for it.
        """
        if self.resolve(address) is None:
            raise LocalProtocolError("no static key is known for this address")
        peer = self._peer(address, now)
        peer.hold_until = max(peer.hold_until, now + hold)
        if peer.current is None and peer.outbound is None:
            self._initiate(peer, now)
        else:
            self._schedule(peer, self._next_time(peer, now))

    def refresh(self, address: Address, now: float) -> None:
        """Start a fresh handshake to ``address`` unless one is under way; the current
        session keeps carrying packets until the new one is confirmed (as in a rekey).

        A client calls this when a relay stopped answering. If the relay restarted, it
        lost the session and cannot tell a client (it knows no key to reach it with);
        the new session replaces the lost one. If it is only busy, nothing is lost.
        Raises ``LocalProtocolError`` if ``resolve`` knows no static key for it.
        """
        if self.resolve(address) is None:
            raise LocalProtocolError("no static key is known for this address")
        peer = self._peer(address, now)
        if peer.outbound is None:
            self._initiate(peer, now)

    def data_sessions(self, now: float) -> dict[Address, PeerSessions]:
        """The sessions a data path outside this endpoint may use now, per peer with at
        least one (a native data loop mirrors them: ``hornet.transport.native_loop``).

        ``send`` is the current session while ``seal`` would use it without further
        checks (until ``fast_until``; past it, or past ``rekey_after_messages``, sending
        must come back here). ``receive`` lists the confirmed sessions that ``open``
        tries, by the DATA type they open, each with the time it stops being usable."""
        config = self.config
        table: dict[Address, PeerSessions] = {}
        for address, peer in self._peers.items():
            receive = tuple(
                (index, session, min(
                    session.created + config.reject_after_time,
                    _INF if session.superseded is None
                    else session.superseded + config.previous_grace,
                ))
                for index, sessions in enumerate(peer.receivers)
                for session in sessions
                if session.confirmed
            )
            current = peer.current
            send = None
            if current is not None and now < peer.fast_until:
                send = (current, peer.fast_until)
            if send is not None or receive:
                table[address] = PeerSessions(send, receive)
        return table

    def mark_active(self, address: Address, now: float) -> None:
        """``address`` carried DATA at ``now`` on a path outside this endpoint (keeps
        the link from going idle and rekeys it while in use)."""
        peer = self._peers.get(address)
        if peer is not None:
            self._touch(peer, now)

    def statistics(self) -> LinkStatistics:
        return LinkStatistics(
            peers=len(self._peers),
            sessions=sum(len(p.receivers[0]) + len(p.receivers[1]) for p in self._peers.values()),
            half_open=sum(p.inbound is not None for p in self._peers.values()),
            queued=sum(len(p.queue) for p in self._peers.values()),
            handshakes_completed=self.handshakes_completed,
            dropped=dict(self.dropped),
        )

    # ----------------------------------------------------------------------------------
    # Timers

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers:
            when, _, address = timers[0]
            peer = self._peers.get(address)
            if peer is not None and peer.timer == when:
                return when
            heapq.heappop(timers)  # stale: the peer is gone or was rescheduled
        return None

    def tick(self, now: float) -> None:
        """Run every timer due at ``now``: retransmissions, expiries, rekeys."""
        timers = self._timers
        due: list[LinkPeer] = []
        while timers and timers[0][0] <= now:
            when, _, address = heapq.heappop(timers)
            peer = self._peers.get(address)
            if peer is not None and peer.timer == when:
                peer.timer = _INF
                due.append(peer)
        for peer in due:
            if self._peers.get(peer.address) is peer:
                self._service(peer, now)

    def _schedule(self, peer: LinkPeer, when: float) -> None:
        if when < peer.timer:
            peer.timer = when
            self._timer_seq += 1
            heapq.heappush(self._timers, (when, self._timer_seq, peer.address))

    def _service(self, peer: LinkPeer, now: float) -> None:
        """Everything time-driven for one peer; reschedules its next timer."""
        config = self.config
        out = peer.outbound
        if out is not None:
            if now >= out.deadline:
                peer.outbound = None
                if out.pending is not None and out.pending in peer.receivers[1]:
                    peer.receivers[1].remove(out.pending)
                self.dropped[LocalDropReason.HANDSHAKE_TIMEOUT] += 1
                if peer.current is None:
                    self._drop_queue(peer, LocalDropReason.QUEUE_HANDSHAKE_FAILED)
            elif now >= out.retransmit_at:
                self._outbox.append((out.act_three or out.act_one, peer.address))
                out.interval = min(out.interval * 2, config.retransmit_max)
                out.retransmit_at = now + out.interval
        inbound = peer.inbound
        if inbound is not None and now >= inbound.deadline:
            self._clear_inbound(peer)
        self._expire_sessions(peer, now)
        recent = config.reject_after_time - config.rekey_after_time
        held = now < peer.hold_until
        if (now - peer.last_activity < recent or held) and self._should_rekey(peer, now):
            self._initiate(peer, now)  # a link in use: rekey before the session expires
        elif held and peer.current is None and peer.outbound is None:
            self._initiate(peer, now)  # a held link broke (handshake failed): open it again
        waited = now - peer.queued_since
        if peer.queue and peer.outbound is None and waited >= config.handshake_timeout:
            self._drop_queue(peer, LocalDropReason.QUEUE_NO_HANDSHAKE)
        if self._idle(peer, now):
            self._forget(peer)
            return
        self._schedule(peer, self._next_time(peer, now))

    def _rekey_time(self, session: ChannelSession) -> float:
        """The initiator of a session rekeys it; the responder steps in only if that
        has not happened a handshake timeout later."""
        config = self.config
        delay = config.rekey_after_time + (0.0 if session.initiator else config.handshake_timeout)
        return session.created + delay

    def _should_rekey(self, peer: LinkPeer, now: float) -> bool:
        current = peer.current
        return (
            current is not None
            and peer.outbound is None
            and (
                now >= self._rekey_time(current)
                or current.sent >= self.config.rekey_after_messages
            )
            and self.resolve(peer.address) is not None
        )

    def _next_time(self, peer: LinkPeer, now: float) -> float:
        """The peer's next timer: the earliest of its deadlines still in the future."""
        config = self.config
        times = [peer.last_activity + config.idle_timeout, peer.hold_until]
        if peer.outbound is not None:
            times.append(min(peer.outbound.retransmit_at, peer.outbound.deadline))
        if peer.inbound is not None:
            times.append(peer.inbound.deadline)
        for session in peer.sessions():
            times.append(session.created + config.reject_after_time)
            if session.superseded is not None:
                times.append(session.superseded + config.previous_grace)
        if peer.current is not None:
            times.append(self._rekey_time(peer.current))
        if peer.queue:
            times.append(peer.queued_since + config.handshake_timeout)
        return min((t for t in times if t > now), default=_INF)

    def _idle(self, peer: LinkPeer, now: float) -> bool:
        return (
            peer.outbound is None
            and peer.inbound is None
            and not peer.queue
            and now >= peer.hold_until
            and (now >= peer.last_activity + self.config.idle_timeout or not peer.sessions())
        )

    def _expire_sessions(self, peer: LinkPeer, now: float) -> None:
        config = self.config
        for sessions in peer.receivers:
            sessions[:] = [
                s
                for s in sessions
                if now < s.created + config.reject_after_time
                and (s.superseded is None or now < s.superseded + config.previous_grace)
            ]
        current = peer.current
        if current is not None and now >= current.created + config.reject_after_time:
            self._pick_current(peer)

    # ----------------------------------------------------------------------------------
    # Sending without a usable session

    def _seal_slow(self, packet: bytes, address: Address, now: float) -> bytes | None:
        config = self.config
        peer = self._peer(address, now)
        session = peer.current
        if session is not None and now >= session.created + config.reject_after_time:
            self._pick_current(peer)
            session = peer.current
        if session is not None and session.sent < config.reject_after_messages:
            if self._should_rekey(peer, now):
                self._initiate(peer, now)  # rekey in the background, keep sending
            self._touch(peer, now)
            return session.seal(packet)
        if len(peer.queue) >= config.max_queue:
            self.dropped[LocalDropReason.QUEUE_FULL] += 1
            return None
        if not peer.queue:
            peer.queued_since = now
        peer.queue.append(packet)
        if peer.outbound is None and self.resolve(address) is not None:
            self._initiate(peer, now)
        self._schedule(peer, self._next_time(peer, now))
        return None

    def _drop_queue(self, peer: LinkPeer, reason: LocalDropReason) -> None:
        if peer.queue:
            self.dropped[reason] += len(peer.queue)
            peer.queue.clear()

    def _flush(self, peer: LinkPeer) -> None:
        session = peer.current
        if session is None:
            return
        while peer.queue:
            self._outbox.append((session.seal(peer.queue.popleft()), peer.address))

    # ----------------------------------------------------------------------------------
    # Handshakes

    def _initiate(self, peer: LinkPeer, now: float) -> None:
        remote = self.resolve(peer.address)
        if remote is None:
            raise LocalProtocolError("no static key is known for this address")
        static = self.identity or SecretKey.from_rng(self._rng)
        noise = Initiator(static, remote, SecretKey.from_rng(self._rng))
        act_one = bytes((TYPE_ACT_ONE,)) + noise.act_one()
        peer.outbound = OutboundHandshake(noise, act_one, now, self.config)
        self._outbox.append((act_one, peer.address))
        self._schedule(peer, self._next_time(peer, now))

    def _take_token(self, now: float, relay: bool) -> bool:
        """One token from the clients' or the relays' bucket (a client flood cannot
        starve the relays' handshakes and rekeys)."""
        return self._buckets[int(relay)].take(now)

    def _read_act_one(self, datagram: bytes, address: Address, now: float) -> None:
        if len(datagram) != ACT_ONE_DATAGRAM_LEN:
            raise MalformedInputError("act one datagram has the wrong length")
        peer = self._peers.get(address)
        if peer is not None and peer.inbound is not None and peer.inbound.act_one == datagram:
            self._outbox.append((peer.inbound.act_two, address))  # act two was lost
            return
        if self.identity is None:
            raise UnknownSessionError("this endpoint accepts no handshakes")
        relay = peer.relay if peer is not None else self.resolve(address) is not None
        if not self._take_token(now, relay):
            raise RateLimitedError("too many link handshakes")
        noise = Responder(self.identity, SecretKey.from_rng(self._rng))
        noise.read_act_one(datagram[1:])
        act_two = bytes((TYPE_ACT_TWO,)) + noise.act_two()
        peer = self._peer(address, now)
        if peer.inbound is not None:
            self._clear_inbound(peer)  # a new act one replaces the old half-open one
        deadline = now + self.config.half_open_timeout
        peer.inbound = InboundHandshake(noise, bytes(datagram), act_two, deadline)
        if not peer.relay:
            self._bound_half_open(peer)
        self._outbox.append((act_two, address))
        self._schedule(peer, self._next_time(peer, now))

    def _bound_half_open(self, peer: LinkPeer) -> None:
        """Enforce the client half-open bounds after ``peer`` got a half-open handshake:
        its source's oldest beyond ``max_half_open_per_source``, then everyone's oldest
        beyond ``max_half_open``. The per-source scan is short (a source holds at most
        ``max_peers_per_source`` peers) and runs once per act one, beside an ECDH."""
        config = self.config
        self._half_open[peer.address] = None
        group = self._sources[peer.source].values()
        mine = [p for p in group if p.inbound is not None and p is not peer]
        if len(mine) >= config.max_half_open_per_source:
            oldest = min(mine, key=lambda p: p.inbound.deadline if p.inbound else _INF)
            self.dropped[LocalDropReason.HALF_OPEN_EVICTED_SOURCE] += 1
            self._clear_inbound(oldest, forget_if_empty=True)
        while len(self._half_open) > config.max_half_open:
            first = next(iter(self._half_open))
            self.dropped[LocalDropReason.HALF_OPEN_EVICTED] += 1
            self._clear_inbound(self._peers[first], forget_if_empty=True)

    def _read_act_two(self, datagram: bytes, address: Address, now: float) -> None:
        if len(datagram) != ACT_TWO_DATAGRAM_LEN:
            raise MalformedInputError("act two datagram has the wrong length")
        peer = self._peers.get(address)
        out = peer.outbound if peer is not None else None
        if peer is None or out is None:
            raise UnknownSessionError("act two without a handshake in progress")
        if out.act_three:
            if datagram == out.act_two:
                self._outbox.append((out.act_three, address))  # act three was lost
                return
            raise UnknownSessionError("act two for a handshake already past act two")
        out.noise.read_act_two(datagram[1:])
        act_three, keys = out.noise.act_three()
        out.act_two = bytes(datagram)
        out.act_three = bytes((TYPE_ACT_THREE,)) + act_three
        out.pending = new_session(
            keys, initiator=True, created=now, limit=self.config.reject_after_messages
        )
        receivers = peer.receivers[1]
        receivers[:] = [out.pending, *(s for s in receivers if s.confirmed)]
        out.interval = self.config.retransmit_initial
        out.retransmit_at = now + out.interval
        self._outbox.append((out.act_three, address))
        self._schedule(peer, self._next_time(peer, now))

    def _read_act_three(self, datagram: bytes, address: Address, now: float) -> None:
        if len(datagram) != ACT_THREE_DATAGRAM_LEN:
            raise MalformedInputError("act three datagram has the wrong length")
        peer = self._peers.get(address)
        if peer is None:
            raise UnknownSessionError("act three without a handshake in progress")
        inbound = peer.inbound
        if inbound is None:
            for session in peer.receivers[0]:
                if session.act_three == datagram:
                    self._outbox.append((session.seal(b""), address))  # confirmation lost
                    return
            raise UnknownSessionError("act three without a handshake in progress")
        keys = inbound.noise.read_act_three(datagram[1:])
        expected = self.resolve(address)
        if expected is not None and expected != keys.remote_static:
            self._clear_inbound(peer, forget_if_empty=True)
            raise LinkAuthenticationError("peer's static key is not the directory's key")
        self._clear_inbound(peer)
        session = new_session(
            keys,
            initiator=False,
            created=now,
            limit=self.config.reject_after_messages,
            act_three=bytes(datagram),
        )
        self._install(peer, 0, session, now)
        self._outbox.append((session.seal(b""), address))  # confirms act three
        self._flush(peer)

    def _confirmed(self, peer: LinkPeer, session: ChannelSession, now: float) -> None:
        """The responder answered under the pending session: it is now usable."""
        session.confirmed = True
        out = peer.outbound
        if out is not None and out.pending is session:
            peer.outbound = None
        peer.receivers[1].remove(session)
        self._install(peer, 1, session, now)
        self._flush(peer)

    def _install(self, peer: LinkPeer, index: int, session: ChannelSession, now: float) -> None:
        sessions = peer.receivers[index]
        for old in sessions:
            if old.confirmed and old.superseded is None:
                old.superseded = now
        # Keep the new session, one superseded one, and an unconfirmed pending one.
        sessions.insert(0, session)
        keep = [s for s in sessions if s is session or not s.confirmed][:2]
        previous = [s for s in sessions if s.confirmed and s is not session][:1]
        sessions[:] = keep + previous
        self._set_current(peer, session)
        self._touch(peer, now)
        self.handshakes_completed += 1
        self._established.append(peer.address)
        self._schedule(peer, self._next_time(peer, now))

    def _pick_current(self, peer: LinkPeer) -> None:
        usable = [
            s for s in peer.sessions() if s.confirmed and s.sent < self.config.reject_after_messages
        ]
        live = [s for s in usable if s.superseded is None] or usable
        self._set_current(peer, max(live, key=lambda s: s.created, default=None))

    def _set_current(self, peer: LinkPeer, session: ChannelSession | None) -> None:
        peer.current = session
        rekey = self.config.rekey_after_time
        peer.fast_until = -_INF if session is None else session.created + rekey

    def _no_session(self, address: Address, now: float) -> NoReturn:
        """DATA for no session we hold. A known relay (a restart on either side) gets a
        fresh handshake from us, at most one at a time."""
        if self.resolve(address) is not None:
            peer = self._peer(address, now)
            if peer.outbound is None:
                self._initiate(peer, now)
        raise UnknownSessionError("link datagram for no session we hold")

    # ----------------------------------------------------------------------------------
    # Peer table

    def _peer(self, address: Address, now: float) -> LinkPeer:
        """The peer at ``address``, created if new. A new client peer first makes room:
        its source's least recently active peer goes if the source is at its quota, then
        the least recently active client peer of all if the table is full."""
        peer = self._peers.get(address)
        if peer is not None:
            return peer
        peer = LinkPeer(address, now, relay=self.resolve(address) is not None)
        if not peer.relay:
            config = self.config
            group = self._sources.get(peer.source)
            if group is not None and len(group) >= config.max_peers_per_source:
                self.dropped[LocalDropReason.PEER_EVICTED_SOURCE] += 1
                self._forget(min(group.values(), key=lambda p: p.last_activity))
            if len(self._clients) >= config.max_peers:
                self.dropped[LocalDropReason.PEER_EVICTED] += 1
                self._forget(next(iter(self._clients.values())))
            # (an eviction may have emptied and so removed this source's group)
            self._sources.setdefault(peer.source, {})[address] = peer
            self._clients[address] = peer
        self._peers[address] = peer
        return peer

    def _touch(self, peer: LinkPeer, now: float) -> None:
        """``peer`` carried traffic: it becomes the most recently active."""
        peer.last_activity = now
        if not peer.relay:
            self._clients.move_to_end(peer.address)

    def _clear_inbound(self, peer: LinkPeer, *, forget_if_empty: bool = False) -> None:
        peer.inbound = None
        self._half_open.pop(peer.address, None)
        if forget_if_empty and not peer.sessions() and peer.outbound is None and not peer.queue:
            self._forget(peer)

    def _forget(self, peer: LinkPeer) -> None:
        address = peer.address
        if self._peers.get(address) is not peer:
            return
        del self._peers[address]
        self._half_open.pop(address, None)
        if not peer.relay:
            del self._clients[address]
            group = self._sources[peer.source]
            del group[address]
            if not group:
                del self._sources[peer.source]
        if peer.queue:
            self.dropped[LocalDropReason.QUEUE_PEER_FORGOTTEN] += len(peer.queue)
        peer.timer = _INF

    def __repr__(self) -> str:
        key = self.identity.public_key.hex() if self.identity is not None else "fresh-per-link"
        return f"LinkEndpoint(static={key}, peers={len(self._peers)})"

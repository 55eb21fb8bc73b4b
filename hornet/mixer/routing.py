"""The mixer machine's per-peer side: limits, bounded queues, mailboxes, backpressure.

Rules (docs/spec-mixer.md §4-§6):
1. Forwarding respects the next peer's published limit: send now if its limiter
   allows and its queue is empty, else queue (bounded in messages and bytes), else
   drop and push back on the incoming peer (halve its allowance; send it an
   ``onion_message_drop``, at most once per ``backpressure_min_interval_s``).
2. The peer table holds at most ``max_peers`` entries: the least recently seen
   client without queued data is evicted; network peers are never evicted.
3. Traffic for a synthetic SCID whose target is offline waits in the SCID's mailbox
   (bounded per SCID and in total) until the target is back.
4. Sans-IO: ``now`` is a parameter; this module returns ``Transmit`` actions only.

``Router`` is a base of ``MixerCore`` (hornet.mixer.core); it owns no state of its own
but the attributes declared below, which ``MixerCore`` defines.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque

import attrs

from hornet.core import crypto
from hornet.errors import LocalProtocolError
from hornet.mixer.actions import Action, Transmit
from hornet.mixer.config import MixerConfig
from hornet.mixer.hints import Hints, PeerHint, rank
from hornet.mixer.protocol import OnionMessageDrop
from hornet.mixer.ratelimit import Allowance, Limit, Limiter, RateMeter, make_limiter
from hornet.mixer.scid import ScidBook


@attrs.frozen
class _Queued:
    message: bytes
    origin: bytes | None
    ss_hash: bytes
    cost: float


@attrs.define
class PeerState:
    """What the mixer tracks per peer: both limiters, the backpressure allowance, the
    bounded outgoing queue and the load meters behind the hints."""

    node_id: bytes
    profile: str
    network: bool
    out_limit: Limit
    out_limiter: Limiter
    in_base: Limit
    in_limiter: Limiter
    allowance: Allowance
    out_meter: RateMeter
    in_meter: RateMeter
    free_limiter: Limiter
    queue: deque[_Queued] = attrs.field(factory=deque)
    queue_bytes: int = 0
    last_incoming: bytes | None = None
    last_notice: float = float("-inf")


class Router:
    """Peers, queues and mailboxes of ``MixerCore``."""

    config: MixerConfig
    node_key: crypto.SecretKey
    book: ScidBook
    peers: OrderedDict[bytes, PeerState]
    stats: Counter[str]
    _network: dict[bytes, str]
    _active: set[bytes]
    _offline: OrderedDict[bytes, None]
    _mailboxes: dict[int, deque[bytes]]
    _mailbox_bytes: int

    def _loopback(self, origin: bytes | None, message: bytes, now: float,
                  depth: int) -> list[Action]:
        raise NotImplementedError  # MixerCore peels a message addressed to itself

    # -- peers ----------------------------------------------------------------------
    def add_peer(self, node_id: bytes, profile: str, *, now: float) -> None:
        """Declare a network peer (a Lightning node) and the implementation it runs."""
        if profile not in self.config.profiles:
            raise LocalProtocolError(f"unknown profile {profile!r}")
        self._network[bytes(node_id)] = profile
        self.peers.pop(bytes(node_id), None)
        self._peer(bytes(node_id), now)

    def _new_peer(self, node_id: bytes, now: float) -> PeerState:
        cfg = self.config
        network = node_id in self._network
        profile = self._network[node_id] if network else cfg.client_profile
        out_limit = cfg.profile(profile)
        in_base = cfg.incoming_peer if network else cfg.incoming_client
        return PeerState(
            node_id=node_id, profile=profile, network=network,
            out_limit=out_limit, out_limiter=make_limiter(out_limit, now), in_base=in_base,
            in_limiter=make_limiter(in_base, now),
            allowance=Allowance(cfg.backpressure_recover_s, cfg.backpressure_min_interval_s,
                                cfg.backpressure_floor),
            out_meter=RateMeter(cfg.hint_tau_s), in_meter=RateMeter(cfg.hint_tau_s),
            free_limiter=make_limiter(cfg.free_forward, now),
        )

    def _peer(self, node_id: bytes, now: float) -> PeerState | None:
        """The state of ``node_id``, created on first contact; None if the table is full
        of peers that cannot be evicted (network peers and clients with queued data)."""
        state = self.peers.get(node_id)
        if state is not None:
            self.peers.move_to_end(node_id)
            return state
        if len(self.peers) >= self.config.max_peers:
            victim = next(
                (k for k, s in self.peers.items() if not s.network and not s.queue), None
            )
            if victim is None:
                self.stats["dropped_peer_table_full"] += 1
                return None
            del self.peers[victim]
            self.stats["peers_evicted"] += 1
        state = self._new_peer(node_id, now)
        self.peers[node_id] = state
        return state

    def known_peers(self) -> list[bytes]:
        return list(self.peers)

    # -- mailboxes (spec §4.3) ------------------------------------------------------
    def peer_offline(self, node_id: bytes) -> None:
        """The transport lost its connection to ``node_id``: hold its SCID traffic. At
        most ``max_peers`` nodes are remembered as offline (the oldest is forgotten)."""
        self._offline[bytes(node_id)] = None
        self._offline.move_to_end(bytes(node_id))
        while len(self._offline) > self.config.max_peers:
            self._offline.popitem(last=False)

    def peer_online(self, node_id: bytes, now: float) -> list[Action]:
        """``node_id`` is connected again: deliver what its SCIDs' mailboxes hold."""
        node_id = bytes(node_id)
        self._offline.pop(node_id, None)
        actions: list[Action] = []
        for scid in [s for s, box in self._mailboxes.items() if box]:
            registration = self.book.lookup(scid, now)
            if registration is None or registration.target != node_id:
                continue
            box = self._mailboxes.pop(scid)
            for message in box:
                self._mailbox_bytes -= len(message)
                self.stats["mailbox_delivered"] += 1
                actions += self._route(None, node_id, message, b"", now)
        return actions

    def _store(self, scid: int, message: bytes) -> list[Action]:
        cfg = self.config
        box = self._mailboxes.setdefault(scid, deque())
        held = sum(len(m) for m in box)
        if (len(box) >= cfg.mailbox_messages or held + len(message) > cfg.mailbox_bytes
                or self._mailbox_bytes + len(message) > cfg.mailbox_total_bytes):
            self.stats["dropped_mailbox_full"] += 1
            return []
        box.append(message)
        self._mailbox_bytes += len(message)
        self.stats["mailbox_stored"] += 1
        return []

    def _drop_mailbox(self, scid: int) -> None:
        box = self._mailboxes.pop(scid, None)
        if box:
            self._mailbox_bytes -= sum(len(m) for m in box)
            self.stats["dropped_mailbox_expired"] += len(box)

    def mailbox(self, scid: int) -> int:
        """How many messages the mailbox of ``scid`` holds."""
        return len(self._mailboxes.get(scid, ()))

    # -- sending --------------------------------------------------------------------
    def _route(self, origin: bytes | None, next_peer: bytes, message: bytes, ss_hash: bytes,
               now: float, depth: int = 0) -> list[Action]:
        """Send now, queue, or drop with backpressure on ``origin`` (rule 1)."""
        if next_peer == self.node_key.public_key:
            return self._loopback(origin, message, now, depth)
        out = self._peer(next_peer, now)
        if out is None:
            self.stats["dropped_no_route"] += 1
            return []
        cost = out.out_limit.cost(len(message))
        if origin is not None:
            out.last_incoming = origin
        if not out.queue and out.out_limiter.take(now, cost):
            out.out_meter.add(cost, now)
            self.stats["forwarded"] += 1
            return [Transmit(next_peer, message)]
        cfg = self.config
        fits = out.queue_bytes + len(message) <= cfg.queue_bytes
        if len(out.queue) < cfg.queue_messages and fits:
            out.queue.append(_Queued(message, origin, ss_hash, cost))
            out.queue_bytes += len(message)
            self._active.add(next_peer)
            self.stats["queued"] += 1
            return []
        self.stats["dropped_queue_full"] += 1
        return self._backpressure(origin, ss_hash, now)

    def _drain(self, now: float) -> list[Action]:
        """Send what the queues hold, as far as each next peer's limiter allows."""
        actions: list[Action] = []
        for node_id in list(self._active):
            state = self.peers.get(node_id)
            if state is None:
                self._active.discard(node_id)
                continue
            while state.queue and state.out_limiter.take(now, state.queue[0].cost):
                item = state.queue.popleft()
                state.queue_bytes -= len(item.message)
                state.out_meter.add(item.cost, now)
                self.stats["forwarded"] += 1
                actions.append(Transmit(node_id, item.message))
            if not state.queue:
                self._active.discard(node_id)
        return actions

    def _queue_wakeups(self, now: float) -> list[float]:
        """When each non-empty queue's head may go."""
        times: list[float] = []
        for node_id in self._active:
            state = self.peers.get(node_id)
            if state is not None and state.queue:
                times.append(now + state.out_limiter.delay(now, state.queue[0].cost))
        return times

    # -- backpressure ---------------------------------------------------------------
    def _notice(self, state: PeerState, ss_hash: bytes, now: float) -> list[Action]:
        """An ``onion_message_drop`` to ``state``'s peer, at most once per min interval."""
        if not self.config.send_drop_notices:
            return []
        if now - state.last_notice < self.config.backpressure_min_interval_s:
            return []
        state.last_notice = now
        self.stats["drop_notices_sent"] += 1
        return [Transmit(state.node_id, OnionMessageDrop(True, ss_hash).encode())]

    def _backpressure(self, origin: bytes | None, ss_hash: bytes, now: float) -> list[Action]:
        """Halve ``origin``'s allowance and tell it (onion_message_drop)."""
        if origin is None:
            return []
        state = self.peers.get(origin)
        if state is None:
            return []
        if state.allowance.penalise(now):
            self.stats["backpressure_penalties"] += 1
        return self._notice(state, ss_hash, now)

    # -- hints ----------------------------------------------------------------------
    def hints(self, now: float) -> Hints:
        """Utilisation of every network peer's link, both directions, least-loaded first."""
        outgoing: list[PeerHint] = []
        incoming: list[PeerHint] = []
        cfg = self.config
        for state in self.peers.values():
            if not state.network:
                continue
            out_limit = state.out_limit
            queue_fill = max(len(state.queue) / max(cfg.queue_messages, 1),
                             state.queue_bytes / max(cfg.queue_bytes, 1))
            out_util = max(state.out_meter.rate(now) / out_limit.rate,
                           state.out_limiter.fill(now), queue_fill)
            outgoing.append(PeerHint(state.node_id, out_util, state.profile,
                                     out_limit.message_rate, 1.0, queue_fill))
            factor = state.allowance.factor(now)
            in_util = max(state.in_meter.rate(now) / (state.in_base.rate * factor),
                          state.in_limiter.fill(now, factor))
            incoming.append(PeerHint(state.node_id, in_util, state.profile,
                                     state.in_base.message_rate * factor, factor, 0.0))
        return Hints(now, rank(outgoing, cfg.hint_entries), rank(incoming, cfg.hint_entries))

    def queue_depths(self) -> tuple[int, int]:
        """(messages, bytes) waiting in all outgoing queues."""
        states = self.peers.values()
        return sum(len(s.queue) for s in states), sum(s.queue_bytes for s in states)


__all__ = ["PeerState", "Router"]

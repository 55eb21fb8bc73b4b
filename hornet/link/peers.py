"""The link endpoint's records: its configuration and statistics, one peer's state and
its handshakes in progress (used by ``hornet.link.endpoint``; internal)."""

from __future__ import annotations

import ipaddress
from collections import deque
from typing import Final

import attrs

from hornet.errors import LocalProtocolError
from hornet.link.channel import REJECT_AFTER_MESSAGES, ChannelSession
from hornet.link.noise import Initiator, Responder

Address = tuple[str, int]

_INF: Final = float("inf")


@attrs.frozen
class LinkConfig:
    """Timers (seconds) and bounds of one link endpoint (docs/spec-link.md §6)."""

    retransmit_initial: float = 0.25
    retransmit_max: float = 2.0
    handshake_timeout: float = 10.0
    half_open_timeout: float = 10.0
    rekey_after_time: float = 120.0
    reject_after_time: float = 180.0
    previous_grace: float = 10.0
    idle_timeout: float = 180.0
    max_peers: int = 4096
    max_peers_per_source: int = 64
    max_half_open: int = 256
    max_half_open_per_source: int = 16
    max_queue: int = 64
    handshake_rate: float = 500.0
    handshake_burst: float = 200.0
    rekey_after_messages: int = 1 << 28
    reject_after_messages: int = REJECT_AFTER_MESSAGES

    def __attrs_post_init__(self) -> None:
        if not 0 < self.retransmit_initial <= self.retransmit_max <= self.handshake_timeout:
            raise LocalProtocolError("need 0 < retransmit_initial <= retransmit_max <= timeout")
        if not 0 < self.rekey_after_time < self.reject_after_time:
            raise LocalProtocolError("need 0 < rekey_after_time < reject_after_time")
        if not 0 < self.rekey_after_messages <= self.reject_after_messages <= REJECT_AFTER_MESSAGES:
            raise LocalProtocolError("need 0 < rekey_after_messages <= reject_after_messages")
        bounds = (self.max_peers, self.max_peers_per_source, self.max_half_open,
                  self.max_half_open_per_source, self.max_queue)
        if min(bounds) < 1:
            raise LocalProtocolError("link bounds must be at least 1")
        if self.half_open_timeout <= 0 or self.idle_timeout <= 0 or self.previous_grace < 0:
            raise LocalProtocolError("link timeouts must be positive")
        if self.handshake_rate <= 0 or self.handshake_burst < 1:
            raise LocalProtocolError("handshake rate must be positive, burst at least 1")


@attrs.frozen
class PeerSessions:
    """One peer's usable sessions (``LinkEndpoint.data_sessions``): ``send`` is the
    session to seal under and until when; ``receive`` is (0 for DATA_FROM_INITIATOR,
    1 for DATA_FROM_RESPONDER, session, usable until), newest first."""

    send: tuple[ChannelSession, float] | None
    receive: tuple[tuple[int, ChannelSession, float], ...]


@attrs.frozen
class LinkStatistics:
    peers: int
    sessions: int
    half_open: int
    queued: int
    handshakes_completed: int
    dropped: dict[str, int]


class OutboundHandshake:
    """Our handshake as initiator: acts one and three, then confirmation."""

    __slots__ = ("act_one", "act_three", "act_two", "deadline", "interval", "noise", "pending",
                 "retransmit_at")

    def __init__(self, noise: Initiator, act_one: bytes, now: float, config: LinkConfig) -> None:
        self.noise = noise
        self.act_one = act_one
        self.act_two = b""
        self.act_three = b""
        self.pending: ChannelSession | None = None
        self.interval = config.retransmit_initial
        self.retransmit_at = now + self.interval
        self.deadline = now + config.handshake_timeout


class InboundHandshake:
    """A half-open handshake as responder: act one read, act two sent."""

    __slots__ = ("act_one", "act_two", "deadline", "noise")

    def __init__(self, noise: Responder, act_one: bytes, act_two: bytes, deadline: float) -> None:
        self.noise = noise
        self.act_one = act_one
        self.act_two = act_two
        self.deadline = deadline


def source_of(address: Address) -> str:
    """The source a client peer's quota counts against: its IPv4 address, or the /64 of
    its IPv6 address (one host usually holds a whole /64)."""
    host = address[0]
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return ip.packed[:8].hex() + "::/64"


class LinkPeer:
    __slots__ = ("address", "current", "fast_until", "hold_until", "inbound", "last_activity",
                 "outbound", "queue", "queued_since", "receivers", "relay", "source", "timer")

    def __init__(self, address: Address, now: float, *, relay: bool) -> None:
        self.address = address
        #: A relay peer (listed in the directory) is never evicted for a client.
        self.relay = relay
        self.source = "" if relay else source_of(address)
        #: receivers[0]: sessions that open DATA_FROM_INITIATOR (we were responder);
        #: receivers[1]: DATA_FROM_RESPONDER (we were initiator). Newest first.
        self.receivers: tuple[list[ChannelSession], list[ChannelSession]] = ([], [])
        self.current: ChannelSession | None = None
        #: ``seal`` uses ``current`` without further checks until this time.
        self.fast_until = -_INF
        self.outbound: OutboundHandshake | None = None
        self.inbound: InboundHandshake | None = None
        self.queue: deque[bytes] = deque()
        self.queued_since = now
        self.last_activity = now
        #: ``connect(..., hold)``: keep the link up (rekey, reconnect) until this time.
        self.hold_until = -_INF
        self.timer = _INF

    def sessions(self) -> list[ChannelSession]:
        return self.receivers[0] + self.receivers[1]

"""A Lightning peer connection (BOLT 1 over BOLT 8) as a sans-IO machine.

Strategy (h11's shape): ``PeerConnection`` owns a ``Bolt8Connection`` and the BOLT 1
rules around it. The caller feeds it the bytes it read and the time
(``receive_data(data, now)``), calls ``tick(now)`` about once a second, queues
messages with ``send_message``, and writes ``data_to_send()``. Events come out:
``PeerReady`` once both ``init``s are exchanged, ``PeerMessage`` for each onion
message (513) or ``onion_message_drop`` (515), and ``PeerClosed`` when the connection
must end. It reads no clock, holds no socket and draws no randomness (the ephemeral
key comes in with the ``Bolt8Connection``).

Rules (BOLT 1 "Lightning Message Format", "Setup Messages", "Control Messages"):

1. After the handshake both sides send ``init`` first; any other first message is a
   violation. Our ``init`` advertises ``OUR_FEATURES``, all optional (odd):
   option_onion_messages (39); ``OPTION_ONION_MESSAGE_DROP`` (an experimental bit:
   this node understands ``onion_message_drop``); and the four BOLT 9 features every
   node is now assumed to have, option_data_loss_protect (1), var_onion_optin (9),
   option_static_remotekey (13) and payment_secret (15), because an LDK node with a
   ChannelManager refuses peers that lack them. They describe how this node would
   run a channel; it never opens or accepts one (``open_channel`` is an unknown even
   message here), so they promise nothing it does not do. It requires no even bit.
2. Their ``init``: a required (even) feature bit we do not know, or an unknown even
   ``init`` TLV, closes the connection; odd ones are ignored. Channel and payment
   features are "known": this node takes part in no channel, so what they require is
   never exercised.
3. ``ping`` is answered with ``pong`` (not when ``num_pong_bytes`` ≥ 65532); we ping
   every ``ping_interval_s`` and close a connection that has been silent for
   ``silent_after_s`` (or that has not finished its handshake and ``init`` within
   ``handshake_timeout_s``).
4. ``warning`` is counted; ``error`` closes the connection (we have no channel it
   could be about). Gossip messages (BOLT 7) are ignored.
5. An unknown odd message is ignored; an unknown even one gets a ``warning`` and the
   connection closes. So does any malformed control message or BOLT 8 failure.
6. ``onion_message`` goes only to peers that negotiated option_onion_messages and,
   if they set ``option_onion_messages_only_channels`` (66/67), only when we have a
   channel with them (``has_channel``). ``onion_message_drop`` goes only to peers
   whose ``init`` set ``OPTION_ONION_MESSAGE_DROP``. Refused sends are counted.
7. The outgoing buffer is bounded (``max_buffered_bytes``): onion messages beyond it
   are dropped and counted; a peer that does not read even control messages is closed.
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import Final

import attrs

from hornet.core.wire import decode_tlv_stream
from hornet.errors import LocalProtocolError, MalformedInputError, RemoteProtocolError
from hornet.link.bolt8 import Bolt8Connection

MSG_WARNING: Final = 1
MSG_INIT: Final = 16
MSG_ERROR: Final = 17
MSG_PING: Final = 18
MSG_PONG: Final = 19
MSG_ONION_MESSAGE: Final = 513
MSG_ONION_MESSAGE_DROP: Final = 515
#: BOLT 7 gossip (and announcement_signatures): understood, not used by this node.
GOSSIP_TYPES: Final = frozenset({256, 257, 258, 259, 261, 262, 263, 264, 265})

OPTION_DATA_LOSS_PROTECT: Final = 0
VAR_ONION_OPTIN: Final = 8
OPTION_STATIC_REMOTEKEY: Final = 12
PAYMENT_SECRET: Final = 14
OPTION_ONION_MESSAGES: Final = 38
OPTION_ONION_MESSAGES_ONLY_CHANNELS: Final = 66
#: Experimental (≥ 256) pair: the node understands onion_message_drop (type 515).
OPTION_ONION_MESSAGE_DROP: Final = 514
#: The bits our init sets (all optional, i.e. odd; rule 1).
OUR_FEATURES: Final = frozenset({OPTION_DATA_LOSS_PROTECT + 1, VAR_ONION_OPTIN + 1,
                                 OPTION_STATIC_REMOTEKEY + 1, PAYMENT_SECRET + 1,
                                 OPTION_ONION_MESSAGES + 1, OPTION_ONION_MESSAGE_DROP + 1})
#: Even bits of other nodes' init that do not stop us from talking to them (BOLT 9:
#: channel, payment and gossip features, assumed features, and the ones we use).
KNOWN_FEATURES: Final = frozenset(
    {0, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 34, 38, 44, 46, 48, 50, 52, 60,
     OPTION_ONION_MESSAGES_ONLY_CHANNELS, OPTION_ONION_MESSAGE_DROP})
#: init TLVs (BOLT 1): networks, remote_addr.
KNOWN_INIT_TLVS: Final = frozenset({1, 3})
#: A pong is owed only for num_pong_bytes below this (BOLT 1).
PONG_LIMIT: Final = 65_532

_U16: Final = struct.Struct(">H")
_PING: Final = struct.Struct(">HHH")


def encode_features(bits: frozenset[int] | set[int]) -> bytes:
    """A BOLT 9 feature vector: big-endian, bit 0 the lowest bit of the last byte."""
    if not bits:
        return b""
    length = max(bits) // 8 + 1
    out = bytearray(length)
    for bit in bits:
        out[length - 1 - bit // 8] |= 1 << (bit % 8)
    return bytes(out)


def decode_features(data: bytes) -> frozenset[int]:
    length = len(data)
    return frozenset(i * 8 + j for i in range(length) for j in range(8)
                     if data[length - 1 - i] >> j & 1)


def has_feature(features: frozenset[int], bit: int) -> bool:
    """Either bit of the pair that contains ``bit``."""
    even = bit & ~1
    return even in features or even + 1 in features


def encode_init(features: frozenset[int] | set[int] = OUR_FEATURES) -> bytes:
    """``init``: u16 type ‖ u16 gflen ‖ globalfeatures (empty) ‖ u16 flen ‖ features; no
    TLVs (no ``networks``: onion messages belong to no chain)."""
    vector = encode_features(features)
    return _U16.pack(MSG_INIT) + _U16.pack(0) + _U16.pack(len(vector)) + vector


def decode_init(message: bytes) -> tuple[frozenset[int], dict[int, bytes]]:
    """(features, TLVs) of an ``init`` (type included). The global and local vectors are
    combined (BOLT 1). Raises ``MalformedInputError``."""
    body = bytes(message[2:])
    if len(body) < 2:
        raise MalformedInputError("truncated init")
    gflen = _U16.unpack_from(body, 0)[0]
    if len(body) < 4 + gflen:
        raise MalformedInputError("truncated init")
    global_bits = decode_features(body[2 : 2 + gflen])
    flen = _U16.unpack_from(body, 2 + gflen)[0]
    start = 4 + gflen
    if len(body) < start + flen:
        raise MalformedInputError("truncated init")
    bits = decode_features(body[start : start + flen]) | global_bits
    return bits, decode_tlv_stream(body[start + flen :])


def encode_ping(num_pong_bytes: int, ignored: int = 0) -> bytes:
    return _PING.pack(MSG_PING, num_pong_bytes, ignored) + bytes(ignored)


def encode_warning(text: bytes, channel_id: bytes = bytes(32)) -> bytes:
    return _U16.pack(MSG_WARNING) + channel_id + _U16.pack(len(text)) + text


# --------------------------------------------------------------------------------------
# Events


@attrs.frozen
class PeerReady:
    """Both inits exchanged: ``node_id`` is authenticated (BOLT 8), ``features`` theirs."""

    node_id: bytes
    features: frozenset[int]


@attrs.frozen
class PeerMessage:
    """An ``onion_message`` or ``onion_message_drop`` from the peer (type included)."""

    message: bytes = attrs.field(repr=lambda m: f"<{len(m)} bytes>")


@attrs.frozen
class PeerClosed:
    """The connection must end; ``reason`` is a counter name."""

    reason: str


PeerEvent = PeerReady | PeerMessage | PeerClosed


@attrs.frozen
class PeerTimers:
    """Connection timers and bounds (seconds, bytes)."""

    ping_interval_s: float = 15.0
    silent_after_s: float = 45.0
    handshake_timeout_s: float = 10.0
    max_buffered_bytes: int = 1 << 20


# --------------------------------------------------------------------------------------
# The machine


@attrs.define
class PeerConnection:
    """One BOLT 1 peer over one BOLT 8 connection (either side)."""

    transport: Bolt8Connection = attrs.field(repr=False)
    started: float
    timers: PeerTimers = attrs.field(factory=PeerTimers)
    local_features: frozenset[int] = OUR_FEATURES
    has_channel: bool = False
    remote_features: frozenset[int] | None = None
    closed: str | None = None
    stats: Counter[str] = attrs.field(factory=Counter, repr=False)
    _init_sent: bool = False
    _last_received: float = 0.0
    _last_ping: float = 0.0
    _ping_outstanding: int | None = None

    def __attrs_post_init__(self) -> None:
        self._last_received = self.started
        self._last_ping = self.started

    # -- state ----------------------------------------------------------------------
    @property
    def remote_id(self) -> bytes | None:
        return self.transport.remote_static

    @property
    def ready(self) -> bool:
        return self.remote_features is not None and self.closed is None

    def accepts(self, message_type: int) -> bool:
        """Whether the peer may be sent a message of ``message_type`` (rule 6)."""
        features = self.remote_features
        if features is None:
            return False
        if message_type == MSG_ONION_MESSAGE:
            if not has_feature(features, OPTION_ONION_MESSAGES):
                return False
            return self.has_channel or not has_feature(features,
                                                       OPTION_ONION_MESSAGES_ONLY_CHANNELS)
        if message_type == MSG_ONION_MESSAGE_DROP:
            return has_feature(features, OPTION_ONION_MESSAGE_DROP)
        return True

    # -- input ----------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> list[PeerEvent]:
        """Bytes read from the stream → events. Never raises on the peer's bytes."""
        if self.closed is not None:
            return []
        if data:
            self._last_received = now
        try:
            messages = self.transport.receive_data(data)
        except RemoteProtocolError:
            return self._close("bolt8_failure")
        events: list[PeerEvent] = []
        if self.transport.established and not self._init_sent:
            self._init_sent = True
            self.transport.send_message(encode_init(self.local_features))
        for message in messages:
            events += self._message(message)
            if self.closed is not None:
                break
        return events

    def _message(self, message: bytes) -> list[PeerEvent]:
        if len(message) < 2:
            return self._violation("malformed_message")
        kind = _U16.unpack_from(message)[0]
        self.stats["received"] += 1
        if self.remote_features is None:
            if kind != MSG_INIT:
                return self._violation("message_before_init")
            return self._init(message)
        if kind in (MSG_ONION_MESSAGE, MSG_ONION_MESSAGE_DROP):
            return [PeerMessage(message)]
        if kind == MSG_PING:
            return self._ping(message)
        if kind == MSG_PONG:
            if self._ping_outstanding is not None and len(message) == 4 + self._ping_outstanding:
                self._ping_outstanding = None
            return []
        if kind == MSG_WARNING:
            self.stats["warnings_received"] += 1
            return []
        if kind == MSG_ERROR:
            self.stats["errors_received"] += 1
            return self._close("error_received")
        if kind == MSG_INIT:
            return self._violation("repeated_init")
        if kind in GOSSIP_TYPES or kind % 2 == 1:
            self.stats["ignored"] += 1
            return []
        return self._violation("unknown_even_message")

    def _init(self, message: bytes) -> list[PeerEvent]:
        try:
            features, tlvs = decode_init(message)
        except MalformedInputError:
            return self._violation("malformed_init")
        if any(bit % 2 == 0 and bit not in KNOWN_FEATURES for bit in features):
            return self._violation("unknown_required_feature")
        if any(t % 2 == 0 and t not in KNOWN_INIT_TLVS for t in tlvs):
            return self._violation("unknown_even_init_tlv")
        self.remote_features = features
        remote = self.transport.remote_static
        assert remote is not None
        return [PeerReady(remote, features)]

    def _ping(self, message: bytes) -> list[PeerEvent]:
        if len(message) < 6:
            return self._violation("malformed_ping")
        num_pong_bytes, byteslen = _U16.unpack_from(message, 2)[0], _U16.unpack_from(message, 4)[0]
        if len(message) != 6 + byteslen:
            return self._violation("malformed_ping")
        if num_pong_bytes < PONG_LIMIT:
            self._queue_control(_U16.pack(MSG_PONG) + _U16.pack(num_pong_bytes)
                                + bytes(num_pong_bytes))
            self.stats["pongs_sent"] += 1
        return []

    # -- timers ---------------------------------------------------------------------
    def tick(self, now: float) -> list[PeerEvent]:
        """Ping when due; close a silent peer or a handshake that takes too long."""
        if self.closed is not None:
            return []
        timers = self.timers
        if self.remote_features is None:
            if now - self.started >= timers.handshake_timeout_s:
                return self._close("handshake_timeout")
            return []
        if now - self._last_received >= timers.silent_after_s:
            return self._close("silent")
        if now - self._last_ping >= timers.ping_interval_s and self._ping_outstanding is None:
            self._last_ping = now
            self._ping_outstanding = 0
            self._queue_control(encode_ping(0))
            self.stats["pings_sent"] += 1
        return []

    # -- output ---------------------------------------------------------------------
    def send_message(self, message: bytes) -> bool:
        """Queue an onion message (513) or drop notice (515); False (counted) if the
        peer may not be sent it now (rule 6) or the outgoing buffer is full (rule 7)."""
        if len(message) < 2:
            raise LocalProtocolError("a BOLT 1 message starts with its type")
        kind = _U16.unpack_from(message)[0]
        if not self.ready:
            self.stats["dropped_not_ready"] += 1
            return False
        if not self.accepts(kind):
            self.stats[f"dropped_unsupported_{kind}"] += 1
            return False
        if self.transport.pending_output + len(message) > self.timers.max_buffered_bytes:
            self.stats["dropped_buffer_full"] += 1
            return False
        self.transport.send_message(message)
        self.stats["sent"] += 1
        return True

    def _queue_control(self, message: bytes) -> None:
        if self.transport.pending_output > 2 * self.timers.max_buffered_bytes:
            self._close("not_reading")
            return
        self.transport.send_message(message)

    def data_to_send(self) -> bytes:
        return self.transport.data_to_send()

    def _violation(self, reason: str) -> list[PeerEvent]:
        """Close after a warning (BOLT 1: a warning names no reason we would regret)."""
        if self.transport.established and self._init_sent:
            self.transport.send_message(encode_warning(b"protocol violation"))
        return self._close(reason)

    def _close(self, reason: str) -> list[PeerEvent]:
        self.closed = reason
        self.stats["closed_" + reason] += 1
        return [PeerClosed(reason)]


__all__ = [
    "KNOWN_FEATURES",
    "OPTION_ONION_MESSAGE_DROP",
    "OUR_FEATURES",
    "PeerClosed",
    "PeerConnection",
    "PeerEvent",
    "PeerMessage",
    "PeerReady",
    "PeerTimers",
    "decode_init",
    "encode_init",
    "encode_ping",
]

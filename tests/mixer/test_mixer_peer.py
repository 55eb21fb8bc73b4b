"""The BOLT 1 peer machine (``hornet.mixer.peer``): init, ping/pong, warning/error,
unknown messages, timers, and which messages a peer may be sent."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.core.crypto import SecretKey
from hornet.core.wire import encode_tlv_stream
from hornet.link.bolt8 import Bolt8Connection
from hornet.mixer.peer import (
    OPTION_ONION_MESSAGE_DROP,
    OUR_FEATURES,
    PeerClosed,
    PeerConnection,
    PeerEvent,
    PeerMessage,
    PeerReady,
    PeerTimers,
    decode_init,
    encode_features,
    encode_init,
    encode_ping,
)

A, B = SecretKey(bytes([0x31]) * 32), SecretKey(bytes([0x32]) * 32)
OM = (513).to_bytes(2, "big") + b"onion"
DROP = (515).to_bytes(2, "big") + bytes(33)


def _u16(n: int) -> bytes:
    return struct.pack(">H", n)


def _machines(timers: PeerTimers | None = None) -> tuple[PeerConnection, PeerConnection]:
    timers = timers or PeerTimers()
    ours = PeerConnection(Bolt8Connection.responder(A, SecretKey(bytes([0x41]) * 32)), 0.0,
                          timers)
    theirs = PeerConnection(
        Bolt8Connection.initiator(B, A.public_key, SecretKey(bytes([0x42]) * 32)), 0.0, timers)
    return ours, theirs


def _pump(x: PeerConnection, y: PeerConnection, now: float = 0.0
          ) -> tuple[list[PeerEvent], list[PeerEvent]]:
    ex: list[PeerEvent] = []
    ey: list[PeerEvent] = []
    for _ in range(10):
        dx, dy = x.data_to_send(), y.data_to_send()
        if not dx and not dy:
            break
        ey += y.receive_data(dx, now)
        ex += x.receive_data(dy, now)
    return ex, ey


class Raw:
    """The far side as raw BOLT 8 messages (to send what a machine never would)."""

    def __init__(self, ours: PeerConnection, init: bytes | None = None) -> None:
        self.ours = ours
        self.conn = Bolt8Connection.initiator(B, A.public_key, SecretKey(bytes([0x43]) * 32))
        self.received: list[bytes] = []
        self.events: list[PeerEvent] = []
        self._pump()
        if init is not None:
            self.send(init)

    def _pump(self) -> None:
        for _ in range(5):
            out = self.conn.data_to_send()
            self.events += self.ours.receive_data(out, 1.0)
            back = self.ours.data_to_send()
            if back:
                self.received += self.conn.receive_data(back)
            if not out and not back:
                return

    def send(self, message: bytes) -> list[PeerEvent]:
        before = len(self.events)
        self.conn.send_message(message)
        self._pump()
        return self.events[before:]

    def read(self) -> list[bytes]:
        self.received += self.conn.receive_data(self.ours.data_to_send())
        out, self.received = self.received, []
        return out


def test_both_sides_exchange_init_and_get_ready() -> None:
    ours, theirs = _machines()
    ex, ey = _pump(ours, theirs)
    assert ex == [PeerReady(B.public_key, OUR_FEATURES)]
    assert ey == [PeerReady(A.public_key, OUR_FEATURES)]
    assert ours.ready and theirs.ready


def test_our_init_offers_onion_messages_and_requires_nothing() -> None:
    features, tlvs = decode_init(encode_init())
    assert {1, 9, 13, 15, 39, OPTION_ONION_MESSAGE_DROP + 1} == features
    assert all(bit % 2 == 1 for bit in features) and tlvs == {}


def test_init_with_unknown_odd_bits_and_tlvs_and_networks_is_accepted() -> None:
    ours, _ = _machines()
    bits = encode_features({1, 9, 13, 15, 39, 45, 301, 12, 8, 14})
    tlvs = encode_tlv_stream([(1, bytes(32)), (3, b"\x01\x7f\x00\x00\x01\x26\x07"),
                              (5, b"odd")])
    raw = Raw(ours, _u16(16) + _u16(1) + b"\x02" + _u16(len(bits)) + bits + tlvs)
    ready = [e for e in raw.events if isinstance(e, PeerReady)]
    assert len(ready) == 1 and {1, 9, 13, 39, 301, 12} <= ready[0].features
    assert ours.ready


def test_an_unknown_required_feature_closes_the_connection() -> None:
    ours, _ = _machines()
    bits = encode_features({39, 200})
    raw = Raw(ours, _u16(16) + _u16(0) + _u16(len(bits)) + bits)
    assert PeerClosed("unknown_required_feature") in raw.events and not ours.ready


def test_an_unknown_even_init_tlv_closes_the_connection() -> None:
    ours, _ = _machines()
    bits = encode_features({39})
    raw = Raw(ours, _u16(16) + _u16(0) + _u16(len(bits)) + bits
              + encode_tlv_stream([(6, b"x")]))
    assert PeerClosed("unknown_even_init_tlv") in raw.events


def test_a_message_before_init_is_a_violation_with_a_warning() -> None:
    ours, _ = _machines()
    raw = Raw(ours, OM)
    assert PeerClosed("message_before_init") in raw.events
    assert [m[:2] for m in raw.read()][-1] == _u16(1)  # a warning went out last


def test_ping_gets_a_pong_of_the_asked_size_and_huge_requests_get_none() -> None:
    ours, _ = _machines()
    raw = Raw(ours, encode_init({39}))
    raw.read()
    assert raw.send(encode_ping(10, 3)) == []
    assert raw.read() == [_u16(19) + _u16(10) + bytes(10)]
    assert raw.send(encode_ping(65_532, 0)) == []
    assert raw.read() == []
    assert ours.ready


def test_a_malformed_ping_closes() -> None:
    ours, _ = _machines()
    raw = Raw(ours, encode_init({39}))
    assert PeerClosed("malformed_ping") in raw.send(_u16(18) + _u16(4) + _u16(9) + b"ab")


def test_unknown_odd_messages_and_gossip_are_ignored_unknown_even_closes() -> None:
    ours, _ = _machines()
    raw = Raw(ours, encode_init({39}))
    assert raw.send(_u16(32_769) + b"odd") == []
    assert raw.send(_u16(258) + bytes(130)) == []
    assert raw.send(OM) == [PeerMessage(OM)]
    assert ours.ready
    assert raw.send(_u16(32) + b"open_channel") == [PeerClosed("unknown_even_message")]
    assert not ours.ready


def test_a_warning_is_counted_an_error_closes() -> None:
    ours, _ = _machines()
    raw = Raw(ours, encode_init({39}))
    warning = _u16(1) + bytes(32) + _u16(4) + b"meh!"
    assert raw.send(warning) == [] and ours.stats["warnings_received"] == 1
    assert raw.send(_u16(17) + bytes(32) + _u16(3) + b"bye") == [PeerClosed("error_received")]


def test_a_corrupted_stream_closes_without_raising() -> None:
    ours, theirs = _machines()
    _pump(ours, theirs)
    theirs.send_message(OM)
    data = bytearray(theirs.data_to_send())
    data[-1] ^= 1
    assert ours.receive_data(bytes(data), 1.0) == [PeerClosed("bolt8_failure")]
    assert ours.receive_data(b"more", 1.0) == []


def test_we_ping_when_due_and_drop_a_silent_peer() -> None:
    timers = PeerTimers(ping_interval_s=10, silent_after_s=25, handshake_timeout_s=5)
    ours, theirs = _machines(timers)
    _pump(ours, theirs)
    assert ours.tick(9.0) == [] and ours.data_to_send() == b""
    assert ours.tick(10.0) == []
    _pump(ours, theirs, 10.0)  # theirs answers the ping with a pong
    assert ours.stats["pings_sent"] == 1 and theirs.stats["pongs_sent"] == 1
    assert ours.tick(34.0) == []  # the pong at t=10 counts as life
    assert ours.tick(35.0) == [PeerClosed("silent")]


def test_a_handshake_that_never_finishes_times_out() -> None:
    ours, _ = _machines(PeerTimers(handshake_timeout_s=5))
    assert ours.tick(4.9) == []
    assert ours.tick(5.0) == [PeerClosed("handshake_timeout")]


def test_onion_message_drop_goes_only_to_peers_that_advertise_it() -> None:
    ours, _ = _machines()
    Raw(ours, encode_init({39}))
    assert not ours.send_message(DROP)
    assert ours.stats["dropped_unsupported_515"] == 1
    assert ours.send_message(OM)
    aware, _ = _machines()
    Raw(aware, encode_init({39, OPTION_ONION_MESSAGE_DROP + 1}))
    assert aware.send_message(DROP)


def test_onion_messages_honour_only_channels_and_need_the_feature() -> None:
    ours, _ = _machines()
    Raw(ours, encode_init({39, 67}))
    assert not ours.send_message(OM)
    ours.has_channel = True
    assert ours.send_message(OM)
    plain, _ = _machines()
    Raw(plain, encode_init({13}))
    assert not plain.send_message(OM)


def test_the_outgoing_buffer_is_bounded() -> None:
    ours, _ = _machines(PeerTimers(max_buffered_bytes=4000))
    Raw(ours, encode_init({39}))
    sent = [ours.send_message(OM + bytes(1000)) for _ in range(10)]
    assert sent.count(True) == 3 and ours.stats["dropped_buffer_full"] == 7


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=80), max_size=6))
def test_any_messages_after_init_yield_only_events(messages: list[bytes]) -> None:
    ours, _ = _machines()
    raw = Raw(ours, encode_init({39}))
    for message in messages:
        if ours.closed is not None:
            break
        for event in raw.send(message):
            assert isinstance(event, PeerMessage | PeerClosed)

"""Link sessions: datagram layout, counter nonces, the replay window, limits."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.errors import IntegrityError, LocalProtocolError, MalformedInputError, ReplayError
from hornet.link.channel import (
    DATA_OVERHEAD,
    REJECT_AFTER_MESSAGES,
    REPLAY_WINDOW,
    TYPE_DATA_FROM_INITIATOR,
    TYPE_DATA_FROM_RESPONDER,
    ChannelSession,
)
from hornet.link.noise import TransportKeys

K1, K2 = bytes([1]) * 32, bytes([2]) * 32


def _pair(limit: int = REJECT_AFTER_MESSAGES) -> tuple[ChannelSession, ChannelSession]:
    initiator = ChannelSession(
        TransportKeys(K1, K2, b"", b"", b"r" * 33), initiator=True, created=0.0, limit=limit
    )
    responder = ChannelSession(
        TransportKeys(K2, K1, b"", b"", b"i" * 33), initiator=False, created=0.0, limit=limit
    )
    return initiator, responder


def test_datagram_layout_is_type_counter_le_then_aes256gcm_with_header_as_ad() -> None:
    initiator, _ = _pair()
    initiator.sent = 0x0A0B0C0D
    datagram = initiator.seal(b"hornet packet")
    header = bytes((TYPE_DATA_FROM_INITIATOR,)) + (0x0A0B0C0D).to_bytes(8, "little")
    nonce = bytes(4) + (0x0A0B0C0D).to_bytes(8, "little")
    # An independent AES-256-GCM (the test's own, not hornet's wrapper).
    assert datagram == header + AESGCM(K1).encrypt(nonce, b"hornet packet", header)
    assert len(datagram) == len(b"hornet packet") + DATA_OVERHEAD


def test_sessions_round_trip_in_both_directions() -> None:
    initiator, responder = _pair()
    assert responder.open(initiator.seal(b"forward")) == b"forward"
    reply = responder.seal(b"backward")
    assert reply[0] == TYPE_DATA_FROM_RESPONDER
    assert initiator.open(reply) == b"backward"


def test_short_datagram_is_malformed() -> None:
    _, responder = _pair()
    with pytest.raises(MalformedInputError):
        responder.open(bytes(DATA_OVERHEAD - 1))


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.data())
def test_any_single_bit_flip_is_rejected(payload: bytes, data: st.DataObject) -> None:
    initiator, responder = _pair()
    datagram = initiator.seal(payload)
    bit = data.draw(st.integers(8, len(datagram) * 8 - 1))  # byte 0 (type) is the caller's
    forged = bytearray(datagram)
    forged[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises((IntegrityError, ReplayError)):
        responder.open(bytes(forged))
    assert responder.open(datagram) == payload  # the forgery did not move the window


def test_reordered_counters_within_the_window_are_accepted_once() -> None:
    initiator, responder = _pair()
    datagrams = [initiator.seal(i.to_bytes(2, "big")) for i in range(300)]
    order = list(range(300))
    random.Random(3).shuffle(order)
    for i in order:
        assert responder.open(datagrams[i]) == i.to_bytes(2, "big")
    for i in (0, 150, 299):
        with pytest.raises(ReplayError):
            responder.open(datagrams[i])


def test_counter_older_than_the_window_is_rejected() -> None:
    initiator, responder = _pair()
    old = initiator.seal(b"old")
    initiator.sent = REPLAY_WINDOW
    responder.open(initiator.seal(b"new"))
    with pytest.raises(ReplayError):
        responder.open(old)


def _sealed_at(sender: ChannelSession, counter: int, payload: bytes = b"x") -> bytes:
    sender.sent = counter
    return sender.seal(payload)


def test_replay_window_edges() -> None:
    initiator, responder = _pair()
    w = REPLAY_WINDOW
    at = {c: _sealed_at(initiator, c) for c in (0, 1, w - 1, 10 * w - 1, 10 * w)}
    responder.open(at[0])
    responder.open(at[w - 1])
    responder.open(at[1])  # exactly at the oldest slot: still inside
    with pytest.raises(ReplayError):
        responder.open(at[0])  # now too old
    with pytest.raises(ReplayError):
        responder.open(at[1])
    responder.open(at[10 * w])  # a jump beyond the window clears it
    with pytest.raises(ReplayError):
        responder.open(at[10 * w])
    responder.open(at[10 * w - 1])
    assert responder.top == 10 * w


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 3000), max_size=200))
def test_replay_window_accepts_each_counter_at_most_once(counters: list[int]) -> None:
    initiator, responder = _pair()
    datagrams = {c: _sealed_at(initiator, c, c.to_bytes(2, "big")) for c in set(counters)}
    accepted: set[int] = set()
    for counter in counters:
        top = responder.top
        try:
            assert responder.open(datagrams[counter]) == counter.to_bytes(2, "big")
        except ReplayError:
            assert counter in accepted or counter <= top - REPLAY_WINDOW
            continue
        assert counter not in accepted
        accepted.add(counter)
    assert responder.bits < 1 << REPLAY_WINDOW  # the bitmap stays bounded


def test_session_refuses_to_seal_past_its_limit() -> None:
    initiator, _ = _pair(limit=3)
    for _ in range(3):
        initiator.seal(b"x")
    with pytest.raises(LocalProtocolError):
        initiator.seal(b"x")


def test_session_repr_hides_keys() -> None:
    initiator, _ = _pair()
    assert K1.hex() not in repr(initiator) and K2.hex() not in repr(initiator)

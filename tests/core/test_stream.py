"""The reliable stream state machine (sans-IO): ordering, loss, flow control."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.core.stream import HEADER_LEN, FrameKind, Stream, StreamFrame
from hornet.errors import HornetError, LocalProtocolError, MalformedInputError

CONN = bytes(range(16))


def _pair(max_frame: int = 100, **kwargs: int) -> tuple[Stream, Stream]:
    return Stream(CONN, max_frame, **kwargs), Stream(CONN, max_frame, **kwargs)  # type: ignore[arg-type]


def _exchange(
    a: Stream, b: Stream, now: float, lose: float = 0.0, rng: random.Random | None = None
) -> None:
    """Move every frame due at ``now`` both ways, optionally losing some (re-encoded)."""
    rng = rng or random.Random(0)
    for src, dst in ((a, b), (b, a)):
        for frame in src.frames_to_send(now):
            if rng.random() >= lose:
                dst.receive_frame(StreamFrame.decode(frame.encode()), now)


def _drain(stream: Stream) -> list[bytes]:
    out = []
    while stream.has_message():
        out.append(stream.next_message())
    return out


def test_messages_are_fragmented_and_reassembled_in_order() -> None:
    a, b = _pair()
    messages = [bytes([i]) * (i * 37) for i in range(20)]
    for m in messages:
        a.queue_message(m)
    now = 0.0
    got: list[bytes] = []
    while len(got) < len(messages):
        _exchange(a, b, now)
        got += _drain(b)
        now += 0.01
    assert got == messages
    _exchange(a, b, now)
    assert a.idle


@pytest.mark.parametrize("loss", [0.1, 0.3])
def test_lossy_link_still_delivers_everything_in_order(loss: float) -> None:
    a, b = _pair(window=16)  # type: ignore[arg-type]
    rng = random.Random(int(loss * 100))
    messages = [rng.randbytes(rng.randrange(0, 400)) for _ in range(60)]
    for m in messages:
        a.queue_message(m)
    got: list[bytes] = []
    now = 0.0
    while len(got) < len(messages):
        _exchange(a, b, now, loss, rng)
        got += _drain(b)
        now += 0.05
        assert now < 300, "no progress"
    assert got == messages
    assert a.statistics().retransmissions > 0


def test_window_bounds_fragments_in_flight() -> None:
    a, _ = _pair(window=4)  # type: ignore[arg-type]
    for _ in range(10):
        a.queue_message(b"x")
    assert len(a.frames_to_send(0)) == 4
    assert a.frames_to_send(0.01) == []  # nothing acknowledged, nothing due yet


def test_unacknowledged_fragment_is_retransmitted_after_rto_then_stalls() -> None:
    a, _ = _pair(max_retries=3, stall_timeout=1000)  # type: ignore[arg-type]
    a.queue_message(b"lost")
    first = a.frames_to_send(0)
    assert len(first) == 1
    now, resent = 0.0, 0
    while not a.stalled:
        now += 0.1
        resent += sum(f.seq == first[0].seq for f in a.frames_to_send(now))
        assert now < 100
    assert resent == 3
    a.rewind(now)
    assert not a.stalled and len(a.frames_to_send(now)) == 1


def test_a_silent_peer_stalls_the_stream_after_the_stall_timeout() -> None:
    a, _ = _pair(stall_timeout=2)  # type: ignore[arg-type]
    a.queue_message(b"into the void")
    a.frames_to_send(10.0)
    assert a.next_deadline() is not None and a.next_deadline() <= 12.0  # type: ignore[operator]
    a.frames_to_send(11.9)
    assert not a.stalled
    a.frames_to_send(12.0)
    assert a.stalled  # 2 s of silence, long before 8 retries (about 18 s of backoff)


def test_a_peer_that_keeps_answering_never_stalls_the_stream() -> None:
    a, b = _pair(stall_timeout=2, max_ready=1)  # type: ignore[arg-type]
    for i in range(6):
        a.queue_message(b"m%d" % i)
    now = 0.0
    while now < 30:  # b never reads: flow control holds a back, b's ACKs keep it alive
        _exchange(a, b, now)
        now += 0.25
        assert not a.stalled


def test_a_path_broken_one_way_stalls_although_the_peer_is_heard() -> None:
    a, b = _pair(stall_timeout=2)  # type: ignore[arg-type]
    a.queue_message(b"lost on the way")
    b.queue_message(b"arrives")
    now = 0.0
    while not a.stalled:
        a.frames_to_send(now)  # a -> b is cut (a relay on the forward path died)
        for frame in b.frames_to_send(now):
            a.receive_frame(StreamFrame.decode(frame.encode()), now)
        now += 0.1
        assert now < 10
    assert 2.0 <= now <= 2.2


def test_receiver_stops_accepting_while_the_application_does_not_read() -> None:
    a, b = _pair(max_ready=2)  # type: ignore[arg-type]
    for i in range(5):
        a.queue_message(b"m%d" % i)
    for step in range(5):
        _exchange(a, b, step * 0.01)
    assert b.statistics().ready == 2
    assert not a.idle  # the rest waits for the reader
    got = _drain(b)
    for step in range(5, 400):
        _exchange(a, b, step * 0.05)
        got += _drain(b)
    assert got == [b"m%d" % i for i in range(5)]


def test_datagram_mode_has_no_acks_and_limits_the_size() -> None:
    a, b = _pair(reliable=False)  # type: ignore[arg-type]
    a.queue_message(b"one")
    frames = a.frames_to_send(0)
    assert [f.kind for f in frames] == [FrameKind.DATAGRAM]
    b.receive_frame(frames[0], 0)
    assert b.next_message() == b"one"
    assert a.idle and b.frames_to_send(0) == []
    with pytest.raises(LocalProtocolError):
        a.queue_message(bytes(100 - HEADER_LEN + 1))


def test_frames_of_another_connection_and_bogus_acks_are_rejected() -> None:
    a, b = _pair()
    a.queue_message(b"x")
    frame = a.frames_to_send(0)[0]
    with pytest.raises(MalformedInputError):
        b.receive_frame(StreamFrame(bytes(16), frame.kind, 0, 0, 0, 0, b""), 0)
    with pytest.raises(MalformedInputError):
        a.receive_frame(StreamFrame(CONN, FrameKind.ACK, 0, 0, 99, 0, b""), 0)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_frames_raise_only_hornet_errors(data: bytes) -> None:
    stream = Stream(CONN, 100)
    with contextlib.suppress(HornetError):
        stream.receive_frame(StreamFrame.decode(data), 0)
    with contextlib.suppress(HornetError):
        stream.receive_frame(StreamFrame.decode(CONN + data), 0)

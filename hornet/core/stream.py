"""Reliable, ordered messages over a lossy HORNET circuit (sans-IO).

HORNET has network-layer semantics: packets may be lost, and nothing is retransmitted.
``Stream`` adds what a script expects from a connection, in the spirit of Tor's SENDME
and of TCP, with ``now`` passed in and no I/O:

Rules:
1. A message is split into fragments that fit one packet; the last carries END.
2. Fragments are numbered (u32 ``seq``) and kept until acknowledged. At most ``window``
   are in flight; a fragment unacknowledged after the retransmission timeout (RTO,
   from smoothed RTT samples, Karn's rule, doubling on each retry) is sent again.
3. Every frame carries the cumulative ``ack`` (next fragment expected) and a 32-bit
   selective-ack bitmap of the fragments after it that already arrived.
4. The receiver keeps out-of-order fragments within its window and hands complete
   messages over in order. It stops accepting new fragments while ``max_ready``
   messages wait for the application: that is the flow control (the sender stalls).
5. The stream is ``stalled`` when fragments are in flight and for ``stall_timeout``
   seconds no acknowledgement made progress (a dead relay may cut one direction only,
   so merely hearing the peer proves nothing), or when a fragment was retried
   ``max_retries`` times. A receiver whose application is not reading marks its frames
   BUSY; a BUSY frame counts as progress (flow control is not a broken path).
   Retransmissions are at most ``stall_timeout / 2`` apart, so a live peer answers in
   time. On a stall the runtime rebuilds the circuit over another path and calls
   ``rewind`` to resend everything unacknowledged. All queues here are bounded.
6. Datagram mode (``reliable=False``): one message per frame, no acks, no retries.

Every frame starts with the 16-byte connection id, so that a destination can tell
which connection a new circuit continues after a renewal or a rebuild.
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from typing import Final

import attrs

from hornet.errors import LocalProtocolError, MalformedInputError

CONN_ID_LEN: Final = 16
#: conn_id (16) ‖ kind (1) ‖ flags (1) ‖ seq (u32) ‖ ack (u32) ‖ sack (u32)
HEADER_LEN: Final = CONN_ID_LEN + 2 + 12
FLAG_END: Final = 0x01
FLAG_BUSY: Final = 0x04  # the sender's application is not reading (rule 5)
SACK_BITS: Final = 32
DEFAULT_WINDOW: Final = 64
DEFAULT_MAX_READY: Final = 256
DEFAULT_MAX_RETRIES: Final = 8
MIN_RTO: Final = 0.05
MAX_RTO: Final = 4.0
INITIAL_RTO: Final = 0.5
#: Silence (with data in flight) after which the path counts as broken. Several RTOs
#: of a working path, so loss alone almost never trips it.
DEFAULT_STALL_TIMEOUT: Final = 2.0
MAX_MESSAGE: Final = 1 << 20  # 1 MiB: bounds reassembly memory


class FrameKind(enum.IntEnum):
    DATA = 0
    ACK = 1
    DATAGRAM = 2
    CLOSE = 3
    HELLO = 4  # first frame on every new underlying circuit; the peer answers HELLO


FLAG_DATAGRAM_MODE: Final = 0x02  # in HELLO: the connection is in datagram mode
_KINDS: Final = tuple(FrameKind)  # by value: FrameKind(x) costs more than the rest of decode
_HEAD: Final = struct.Struct(">BBIII")  # kind, flags, seq, ack, sack


@attrs.frozen
class StreamFrame:
    conn_id: bytes
    kind: FrameKind
    flags: int
    seq: int
    ack: int
    sack: int
    data: bytes

    def encode(self) -> bytes:
        return b"".join(
            (
                self.conn_id,
                _HEAD.pack(self.kind, self.flags, self.seq, self.ack, self.sack),
                self.data,
            )
        )

    @classmethod
    def decode(cls, body: bytes) -> StreamFrame:
        if len(body) < HEADER_LEN:
            raise MalformedInputError("stream frame too short")
        kind, flags, seq, ack, sack = _HEAD.unpack_from(body, CONN_ID_LEN)
        if kind >= len(_KINDS):
            raise MalformedInputError("unknown stream frame kind")
        return cls(
            conn_id=bytes(body[:CONN_ID_LEN]),
            kind=_KINDS[kind],
            flags=flags,
            seq=seq,
            ack=ack,
            sack=sack,
            data=bytes(body[HEADER_LEN:]),
        )


class _InFlight:
    __slots__ = ("data", "deadline", "flags", "retries", "sent_at")

    def __init__(self, data: bytes, flags: int) -> None:
        self.data = data
        self.flags = flags
        self.sent_at = -1.0
        self.deadline = -1.0
        self.retries = 0


@attrs.frozen
class StreamStatistics:
    sent_fragments: int
    retransmissions: int
    received_fragments: int
    duplicates: int
    in_flight: int
    queued: int
    ready: int
    rto: float


class Stream:
    """One end of a reliable (or datagram) connection. Pure state; see module rules."""

    def __init__(
        self,
        conn_id: bytes,
        max_frame: int,
        *,
        reliable: bool = True,
        window: int = DEFAULT_WINDOW,
        max_ready: int = DEFAULT_MAX_READY,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_queued: int = 4096,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    ) -> None:
        if len(conn_id) != CONN_ID_LEN:
            raise LocalProtocolError("connection id must be 16 bytes")
        if max_frame <= HEADER_LEN:
            raise LocalProtocolError("frames too small for the stream header")
        if not 1 <= window <= SACK_BITS * 4:
            raise LocalProtocolError("window must be in [1, 128]")
        self.conn_id = conn_id
        self.reliable = reliable
        self.max_fragment = max_frame - HEADER_LEN
        self.window = window
        self.max_ready = max_ready
        self.max_retries = max_retries
        self.max_queued = max_queued
        self.stall_timeout = stall_timeout
        #: Since when the peer has been silent with data in flight (see rule 5).
        self._quiet_since = 0.0
        # sender
        self._queue: deque[tuple[bytes, int]] = deque()  # fragments not yet sent
        self._in_flight: dict[int, _InFlight] = {}
        self._next_seq = 0
        self._acked = 0  # every seq below this is acknowledged
        self._srtt = 0.0
        self._rttvar = 0.0
        self._rto = INITIAL_RTO
        self.stalled = False
        # receiver
        self._expected = 0
        self._out_of_order: dict[int, tuple[bytes, int]] = {}
        self._partial: list[bytes] = []
        self._partial_len = 0
        self._ready: deque[bytes] = deque()
        self._ack_due = False
        self.closed_by_peer = False
        # statistics
        self._sent = self._retransmitted = self._received = self._duplicates = 0

    def __repr__(self) -> str:
        return f"Stream(reliable={self.reliable}, in_flight={len(self._in_flight)})"

    # -- sending --------------------------------------------------------------------------
    @property
    def can_queue(self) -> bool:
        """False while the send queue is full: the caller waits (backpressure)."""
        return len(self._queue) < self.max_queued

    @property
    def idle(self) -> bool:
        """Everything sent has been acknowledged."""
        return not self._queue and not self._in_flight

    @property
    def wants_to_send(self) -> bool:
        """``frames_to_send`` has new fragments or an ACK now (retransmissions aside:
        those fall due at ``next_deadline``)."""
        return bool(self._queue) or self._ack_due

    def queue_message(self, data: bytes) -> None:
        """Split ``data`` into fragments and queue them (datagrams: exactly one)."""
        if len(data) > MAX_MESSAGE:
            raise LocalProtocolError(f"messages are limited to {MAX_MESSAGE} bytes")
        if not self.reliable:
            if len(data) > self.max_fragment:
                raise LocalProtocolError(
                    f"a datagram holds at most {self.max_fragment} bytes; use reliable mode"
                )
            self._queue.append((data, FLAG_END))
            return
        chunks = [data[i : i + self.max_fragment] for i in range(0, len(data), self.max_fragment)]
        chunks = chunks or [b""]
        for index, chunk in enumerate(chunks):
            self._queue.append((chunk, FLAG_END if index == len(chunks) - 1 else 0))

    def frames_to_send(self, now: float) -> list[StreamFrame]:
        """Frames to transmit now: due retransmissions, new fragments, or a bare ACK."""
        out: list[StreamFrame] = []
        if not self.reliable:
            while self._queue:
                data, flags = self._queue.popleft()
                out.append(self._frame(FrameKind.DATAGRAM, flags, 0, data))
                self._sent += 1
            return out
        if self._in_flight and now >= self._quiet_since + self.stall_timeout:
            self.stalled = True
        due = [seq for seq, entry in self._in_flight.items() if entry.deadline <= now]
        if due:
            self._rto = min(self._rto * 2, MAX_RTO)  # back off once per timeout event
        for seq in sorted(due):
            entry = self._in_flight[seq]
            if entry.retries >= self.max_retries:
                self.stalled = True
                break
            entry.retries += 1
            self._retransmitted += 1
            self._transmit(seq, entry, now, out)
        if self._queue and not self._in_flight:
            self._quiet_since = now  # the clock starts with the first fragment in flight
        while self._queue and self._next_seq - self._acked < self.window:
            data, flags = self._queue.popleft()
            entry = _InFlight(data, flags)
            seq = self._next_seq
            self._next_seq += 1
            self._in_flight[seq] = entry
            self._sent += 1
            self._transmit(seq, entry, now, out)
        if self._ack_due and not out:
            out.append(self._frame(FrameKind.ACK, 0, 0, b""))
        self._ack_due = False
        return out

    def close_frame(self) -> StreamFrame:
        return self._frame(FrameKind.CLOSE, 0, 0, b"")

    def hello_frame(self) -> StreamFrame:
        flags = 0 if self.reliable else FLAG_DATAGRAM_MODE
        return self._frame(FrameKind.HELLO, flags, 0, b"")

    def next_deadline(self) -> float | None:
        """When ``frames_to_send`` next has a retransmission to make or may find the
        stream stalled, if ever."""
        if not self._in_flight:
            return None
        retransmit = min(entry.deadline for entry in self._in_flight.values())
        return min(retransmit, self._quiet_since + self.stall_timeout)

    def rewind(self, now: float) -> None:
        """After a circuit rebuild: resend every unacknowledged fragment at once."""
        self.stalled = False
        self._rto = INITIAL_RTO
        self._quiet_since = now
        for entry in self._in_flight.values():
            entry.deadline = now
            entry.retries = 0
            entry.sent_at = -1.0

    def _transmit(self, seq: int, entry: _InFlight, now: float, out: list[StreamFrame]) -> None:
        entry.sent_at = now if entry.retries == 0 else -1.0  # Karn: no RTT from retries
        # At most half the stall timeout: a live peer is heard from before it expires.
        entry.deadline = now + min(self._rto, self.stall_timeout / 2)
        out.append(self._frame(FrameKind.DATA, entry.flags, seq, entry.data))

    def _frame(self, kind: FrameKind, flags: int, seq: int, data: bytes) -> StreamFrame:
        if len(self._ready) >= self.max_ready:
            flags |= FLAG_BUSY
        return StreamFrame(self.conn_id, kind, flags, seq, self._expected, self._sack(), data)

    def _sack(self) -> int:
        bits = 0
        for seq in self._out_of_order:
            offset = seq - self._expected - 1
            if 0 <= offset < SACK_BITS:
                bits |= 1 << offset
        return bits

    def _on_ack(self, ack: int, sack: int, now: float) -> None:
        if ack > self._next_seq:
            raise MalformedInputError("acknowledgement of a fragment never sent")
        acked = [seq for seq in self._in_flight if seq < ack]
        for offset in range(SACK_BITS):
            if sack >> offset & 1 and ack + 1 + offset in self._in_flight:
                acked.append(ack + 1 + offset)
        for seq in acked:
            entry = self._in_flight.pop(seq)
            if entry.sent_at >= 0:
                self._rtt_sample(now - entry.sent_at)
        self._acked = max(self._acked, ack)
        if acked:
            self.stalled = False
            self._quiet_since = now

    def _rtt_sample(self, rtt: float) -> None:
        if self._srtt == 0.0:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt
        self._rto = min(max(self._srtt + 4 * self._rttvar, MIN_RTO), MAX_RTO)

    # -- receiving ------------------------------------------------------------------------
    def receive_frame(self, frame: StreamFrame, now: float) -> None:
        """Take one frame from the peer. Raises ``MalformedInputError`` for bad ones."""
        if frame.conn_id != self.conn_id:
            raise MalformedInputError("frame for another connection")
        if frame.kind is FrameKind.CLOSE:
            self.closed_by_peer = True
            return
        if frame.kind is FrameKind.HELLO:
            return
        if frame.kind is FrameKind.DATAGRAM:
            if len(self._ready) < self.max_ready:
                self._ready.append(frame.data)
            return
        if not self.reliable:
            raise MalformedInputError("reliable frame on a datagram connection")
        if frame.flags & FLAG_BUSY:  # flow control, not a broken path (rule 5)
            self._quiet_since = now
            for entry in self._in_flight.values():
                entry.retries = 0
        self._on_ack(frame.ack, frame.sack, now)
        if frame.kind is FrameKind.DATA:
            self._on_data(frame.seq, frame.flags, frame.data)

    def _on_data(self, seq: int, flags: int, data: bytes) -> None:
        self._ack_due = True
        if seq < self._expected or seq in self._out_of_order:
            self._duplicates += 1
            return
        if seq >= self._expected + self.window or len(self._ready) >= self.max_ready:
            return  # beyond the window, or the application is not reading: not acked
        self._received += 1
        self._out_of_order[seq] = (data, flags)
        while self._expected in self._out_of_order:
            chunk, chunk_flags = self._out_of_order.pop(self._expected)
            self._expected += 1
            self._partial.append(chunk)
            self._partial_len += len(chunk)
            if self._partial_len > MAX_MESSAGE:
                raise MalformedInputError("message exceeds the reassembly limit")
            if chunk_flags & FLAG_END:
                self._ready.append(b"".join(self._partial))
                self._partial, self._partial_len = [], 0

    def has_message(self) -> bool:
        return bool(self._ready)

    def next_message(self) -> bytes:
        """The next complete message, in order (``has_message`` first)."""
        if not self._ready:
            raise LocalProtocolError("no message ready")
        was_full = len(self._ready) >= self.max_ready
        message = self._ready.popleft()
        if was_full:
            self._ack_due = True  # reopen the window for a stalled sender
        return message

    def statistics(self) -> StreamStatistics:
        return StreamStatistics(
            sent_fragments=self._sent,
            retransmissions=self._retransmitted,
            received_fragments=self._received,
            duplicates=self._duplicates,
            in_flight=len(self._in_flight),
            queued=len(self._queue),
            ready=len(self._ready),
            rto=self._rto,
        )

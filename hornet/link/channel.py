"""Link datagrams: the wire types, and the per-session AEAD channel with a replay window.

Every link datagram starts with one type byte (docs/spec-link.md §2):

    ACT_ONE / ACT_TWO / ACT_THREE  type ‖ the BOLT 8 act, byte for byte (50 / 50 / 66)
    DATA_*                          type ‖ counter (u64, little-endian) ‖ ciphertext ‖ tag

A DATA datagram seals one HORNET packet with AES-256-GCM under the sender's key from the
handshake split, nonce = 0x00000000 ‖ counter (little-endian, the Noise/BOLT 8 nonce
layout) and associated data = the 9 header bytes. (The handshake itself is BOLT 8's,
ChaChaPoly; the data AEAD is AES-GCM because with AES-NI it costs a third as much per
packet: docs/spec-link.md §2.) The type names the role of
the *sender* in the handshake that made the session (``DATA_FROM_INITIATOR`` or
``DATA_FROM_RESPONDER``), so when two relays have opened a link to each other at the
same time the receiver knows which of its sessions to use. Overhead: 25 bytes.

Invariants:
- A counter is never reused under one key: ``seal`` refuses past the hard limit.
- The replay window is checked (read-only) before decryption and updated only after
  the tag verified, so forged datagrams cannot move it.
- An empty plaintext is a keepalive/confirmation; HORNET packets are never empty.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from hornet.core import engine
from hornet.core.crypto import Aes256Gcm
from hornet.errors import LocalProtocolError, MalformedInputError, ReplayError
from hornet.link.noise import ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN, TransportKeys

if TYPE_CHECKING:
    from hornet import _native

TYPE_ACT_ONE: Final = 0x11
TYPE_ACT_TWO: Final = 0x12
TYPE_ACT_THREE: Final = 0x13
TYPE_DATA_FROM_INITIATOR: Final = 0x21
TYPE_DATA_FROM_RESPONDER: Final = 0x22

ACT_ONE_DATAGRAM_LEN: Final = 1 + ACT_ONE_LEN  # 51
ACT_TWO_DATAGRAM_LEN: Final = 1 + ACT_TWO_LEN  # 51
ACT_THREE_DATAGRAM_LEN: Final = 1 + ACT_THREE_LEN  # 67

HEADER_LEN: Final = 9  # type (1) ‖ counter (8)
AEAD_TAG_LEN: Final = 16
#: Bytes a DATA datagram adds to the HORNET packet it carries.
DATA_OVERHEAD: Final = HEADER_LEN + AEAD_TAG_LEN  # 25

#: Replay window width in counters (a bitmap held as one Python int).
REPLAY_WINDOW: Final = 1024
#: Hard limit: a session never seals counter 2^32 or beyond. Nonce reuse is impossible
#: (64-bit counter), and AES-GCM's bound on data under one key holds with a wide margin:
#: 2^32 datagrams of ≤ 2^7 blocks give a distinguishing advantage ≤ 2^-51.
REJECT_AFTER_MESSAGES: Final = 1 << 32

_HEADER: Final = struct.Struct("<BQ")
_NONCE: Final = struct.Struct("<4xQ")  # Noise nonce: 32 zero bits ‖ u64 little-endian
_COUNTER: Final = struct.Struct("<Q")  # at offset 1 of the header
_WINDOW_MASK: Final = (1 << REPLAY_WINDOW) - 1


class ChannelSession:
    """One established link session: two cached AEAD keys, a send counter, a window.

    ``initiator`` is this side's role in the handshake that made the session. Time
    and peer bookkeeping (``created``, ``confirmed``) belong to the endpoint.

    ``seal`` and ``open`` are the data path, one call per datagram each way: struct
    headers, the cached AEAD's bound method, and the replay window as integer bit
    operations inline (RFC 6479 idea): ``top`` is the highest counter accepted so far
    and bit i of ``bits`` says whether counter ``top − i`` was accepted. A counter more
    than ``REPLAY_WINDOW − 1`` below ``top`` is too old. The window is read before the
    tag is checked and changed only after it verified.
    """

    __slots__ = (
        "_open",
        "_seal",
        "_send_type",
        "act_three",
        "bits",
        "confirmed",
        "created",
        "initiator",
        "limit",
        "remote_static",
        "sent",
        "superseded",
        "top",
    )

    def __init__(
        self,
        keys: TransportKeys,
        *,
        initiator: bool,
        created: float,
        limit: int = REJECT_AFTER_MESSAGES,
        act_three: bytes = b"",
    ) -> None:
        if not 0 < limit <= REJECT_AFTER_MESSAGES:
            raise LocalProtocolError("session message limit out of range")
        self._seal = Aes256Gcm(keys.send_key).seal
        self._open = Aes256Gcm(keys.receive_key).open
        self._send_type = TYPE_DATA_FROM_INITIATOR if initiator else TYPE_DATA_FROM_RESPONDER
        self.initiator = initiator
        self.remote_static = keys.remote_static
        self.created = created
        self.limit = limit
        self.sent = 0
        self.top = -1  # replay window: nothing received yet
        self.bits = 0
        #: The responder keeps the act-three datagram to recognise a retransmission.
        self.act_three = act_three
        #: The initiator's session is unconfirmed until the responder's first datagram.
        self.confirmed = not initiator
        #: When a newer session of the same role replaced this one (None: current).
        self.superseded: float | None = None

    def seal(self, packet: bytes) -> bytes:
        """DATA datagram for ``packet``: header ‖ AES-256-GCM(packet), AD = header."""
        counter = self.sent
        if counter >= self.limit:
            raise LocalProtocolError("link session exhausted its counters; rekey first")
        self.sent = counter + 1
        header = _HEADER.pack(self._send_type, counter)
        return header + self._seal(_NONCE.pack(counter), packet, header)

    def open(self, datagram: bytes) -> bytes:
        """Authenticate and decrypt a DATA datagram whose type the caller has matched.

        Raises ``MalformedInputError`` (short), ``ReplayError`` (duplicate or too old)
        or ``IntegrityError`` (tag); the window moves only after the tag verified.
        """
        if len(datagram) < DATA_OVERHEAD:
            raise MalformedInputError("link datagram shorter than its header and tag")
        (counter,) = _COUNTER.unpack_from(datagram, 1)
        offset = self.top - counter
        if offset >= 0:  # not newer than the newest: the window decides
            if offset >= REPLAY_WINDOW:
                raise ReplayError("link counter is older than the replay window")
            if (self.bits >> offset) & 1:
                raise ReplayError("link counter was already received")
        plaintext = self._open(_NONCE.pack(counter), datagram[HEADER_LEN:], datagram[:HEADER_LEN])
        if offset < 0:  # the newest so far: slide the window up to it
            self.top = counter
            shift = -offset
            self.bits = ((self.bits << shift) | 1) & _WINDOW_MASK if shift < REPLAY_WINDOW else 1
        else:
            self.bits |= 1 << offset
        return plaintext

    def __repr__(self) -> str:
        role = "initiator" if self.initiator else "responder"
        return f"ChannelSession({role}, remote_static={self.remote_static.hex()}, sent={self.sent})"


class NativeChannelSession(ChannelSession):
    """``ChannelSession`` with its data path in the native engine (``hornet._native``): the send
    counter, both AES-256-GCM keys and the replay window live there, with the same
    datagrams, limits and errors as ``ChannelSession.seal`` / ``ChannelSession.open`` (held equal by
    ``tests/core/test_engine.py``). Everything else is ``ChannelSession``'s."""

    __slots__ = ("_fast",)

    def __init__(
        self,
        keys: TransportKeys,
        *,
        initiator: bool,
        created: float,
        limit: int = REJECT_AFTER_MESSAGES,
        act_three: bytes = b"",
    ) -> None:
        if not 0 < limit <= REJECT_AFTER_MESSAGES:
            raise LocalProtocolError("session message limit out of range")
        send_type = TYPE_DATA_FROM_INITIATOR if initiator else TYPE_DATA_FROM_RESPONDER
        self._fast = engine.link_session(keys.send_key, keys.receive_key, send_type, limit)
        super().__init__(
            keys, initiator=initiator, created=created, limit=limit, act_three=act_three
        )

    @property
    def native(self) -> _native.LinkSession:
        """The native session object (a native data loop seals and opens with it too)."""
        return self._fast

    @property
    def sent(self) -> int:
        return self._fast.sent

    @sent.setter
    def sent(self, value: int) -> None:
        self._fast.sent = value

    def seal(self, packet: bytes) -> bytes:
        return self._fast.seal(packet)

    def open(self, datagram: bytes) -> bytes:
        return self._fast.open(datagram)


def new_session(
    keys: TransportKeys,
    *,
    initiator: bool,
    created: float,
    limit: int = REJECT_AFTER_MESSAGES,
    act_three: bytes = b"",
) -> ChannelSession:
    """A session in the active engine (``hornet/core/engine.py``)."""
    cls = NativeChannelSession if engine.active() == "native" else ChannelSession
    return cls(keys, initiator=initiator, created=created, limit=limit, act_three=act_three)

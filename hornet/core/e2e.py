"""End-to-end sessions over a HORNET circuit (sans-IO): the two ends' state machines.

Endpoints, unlike relays, do keep per-circuit state. Every data payload M (one size
class, ``payload_size`` bytes) is

    seq (8) ‖ AES-256-GCM_k(nonce = 0^4 ‖ seq, kind (1) ‖ len (2) ‖ body ‖ 0…) ‖ tag (16)

with k = HMAC("hornet-e2e-fwd" | "hornet-e2e-bwd", s'_D): authenticated, numbered, and
checked against a sliding replay window, so forgeries, duplicates and replays are
dropped. Kind INIT carries AHDR^b in front of the body: the destination learns how to
answer from it. The source keeps sending INIT until the first backward packet arrives.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import attrs

from hornet.core import crypto, engine
from hornet.core.chdr import TYPE_DATA, data_chdr
from hornet.core.fs import HopKeys
from hornet.core.onion import LayerCiphers
from hornet.core.params import CHDR_LEN, IV_LEN, TAG_LEN, Params, Profile
from hornet.core.relay import Deliver
from hornet.core.setup import CircuitKeys
from hornet.errors import (
    ExpiredError,
    IntegrityError,
    LocalProtocolError,
    MalformedInputError,
    ReplayError,
)

KIND_DATA: Final = 0x00
KIND_INIT: Final = 0x01
SEQ_LEN: Final = 8
E2E_OVERHEAD: Final = SEQ_LEN + 16 + 3  # seq, AEAD tag, kind and length
WINDOW: Final = 1024
_NONCE_PREFIX: Final = bytes(4)
_KIND_LEN: Final = struct.Struct(">BH")


def e2e_key(session_secret: bytes, *, backward: bool) -> bytes:
    return crypto.hmac_sha256(b"hornet-e2e-bwd" if backward else b"hornet-e2e-fwd", session_secret)


def e2e_aead(session_secret: bytes, *, backward: bool) -> crypto.Aes256Gcm:
    """The cached AEAD under ``e2e_key``: one per direction per session."""
    return crypto.Aes256Gcm(e2e_key(session_secret, backward=backward))


@attrs.frozen
class Outgoing:
    """A packet to send: to node ``next_hop``."""

    next_hop: bytes
    packet: bytes


class ReplayWindow:
    """Sliding window over 64-bit sequence numbers (like IPsec's): highest seen + bitmap."""

    __slots__ = ("_bitmap", "_highest")

    def __init__(self) -> None:
        self._highest = -1
        self._bitmap = 0

    def check_and_set(self, seq: int) -> None:
        if seq > self._highest:
            shift = seq - self._highest
            self._bitmap = ((self._bitmap << shift) | 1) & ((1 << WINDOW) - 1)
            self._highest = seq
            return
        offset = self._highest - seq
        if offset >= WINDOW or self._bitmap >> offset & 1:
            raise ReplayError("duplicate or too old")
        self._bitmap |= 1 << offset


@attrs.frozen
class E2eFrame:
    """An opened end-to-end frame."""

    seq: int
    kind: int
    body: bytes


def seal_frame(aead: crypto.Aes256Gcm, seq: int, kind: int, body: bytes, size: int) -> bytes:
    """The end-to-end frame of ``size`` bytes: seq ‖ AEAD(kind ‖ len ‖ body ‖ 0…)."""
    room = size - E2E_OVERHEAD
    if len(body) > room:
        raise LocalProtocolError(f"message of {len(body)} bytes exceeds {room}")
    plain = b"".join((_KIND_LEN.pack(kind, len(body)), body, bytes(room - len(body))))
    seq_bytes = seq.to_bytes(SEQ_LEN, "big")
    return seq_bytes + aead.seal(_NONCE_PREFIX + seq_bytes, plain, None)


def open_frame(aead: crypto.Aes256Gcm, message: bytes, window: ReplayWindow) -> E2eFrame:
    """Authenticate a frame, then record its seq (raises ``ReplayError`` on a repeat)."""
    if len(message) < E2E_OVERHEAD:
        raise MalformedInputError("payload too small")
    seq = int.from_bytes(message[:SEQ_LEN], "big")
    plain = aead.open(_NONCE_PREFIX + message[:SEQ_LEN], message[SEQ_LEN:], None)
    length = int.from_bytes(plain[1:3], "big")
    if plain[0] not in (KIND_DATA, KIND_INIT) or length > len(plain) - 3:
        raise MalformedInputError("bad end-to-end frame")
    window.check_and_set(seq)
    return E2eFrame(seq, plain[0], plain[3 : 3 + length])


class SourceSession:
    """The initiating end: seals forward packets, opens backward ones."""

    def __init__(self, keys: CircuitKeys, payload_size: int) -> None:
        params = keys.params
        if payload_size < params.ahdr_len + E2E_OVERHEAD + 1:
            raise LocalProtocolError("payload size too small to carry AHDR^b")
        self.keys = keys
        self.params = params
        self.payload_size = payload_size
        self._send_key = e2e_aead(keys.session_secret, backward=False)
        self._recv_key = e2e_aead(keys.session_secret, backward=True)
        self._seq = 0
        self._window = ReplayWindow()
        self._forward = engine.forward_onion(params.profile, keys.forward_keys, params.max_hops)
        self._backward = engine.backward_onion(keys.backward_layer_keys)
        padding = params.max_hops - len(keys.forward_keys)
        self._padding = padding * TAG_LEN if params.profile is Profile.HARDENED else 0
        self._header = keys.ahdr_forward
        self.peer_has_reply_header = False

    def __repr__(self) -> str:
        return f"SourceSession(exp={self.keys.exp}, payload_size={self.payload_size})"

    @property
    def arrival_id(self) -> bytes:
        return self.keys.arrival_id

    @property
    def max_message(self) -> int:
        """Bytes of user data per packet once the destination holds AHDR^b."""
        return self.payload_size - E2E_OVERHEAD

    @property
    def max_init_message(self) -> int:
        return self.max_message - self.params.ahdr_len

    def seal(self, data: bytes, now: float, rng: Any) -> Outgoing:
        """Wrap ``data`` into one forward data packet."""
        keys = self.keys
        if now >= keys.exp:
            raise ExpiredError("circuit expired")
        kind, body = KIND_DATA, data
        if not self.peer_has_reply_header:
            kind, body = KIND_INIT, keys.ahdr_backward + data
        message = seal_frame(self._send_key, self._seq, kind, body, self.payload_size)
        self._seq += 1
        fresh = rng.randbytes(IV_LEN + self._padding)  # one call: the IV and T's padding
        iv, tags, payload = self._forward.wrap(fresh[:IV_LEN], message, fresh[IV_LEN:])
        packet = b"".join((data_chdr(self.params.max_hops, iv), self._header, tags, payload))
        return Outgoing(keys.first_hop, packet)

    def open(self, packet: bytes) -> bytes:
        """Open a backward packet addressed to this session (see ``arrival_id``)."""
        p = self.params
        if packet[:1] != bytes((TYPE_DATA,)) or len(packet) != p.data_packet_len(self.payload_size):
            raise MalformedInputError("not a data packet of this circuit's size")
        if not crypto.ct_equal(packet[CHDR_LEN : CHDR_LEN + 32], self.keys.arrival_id):
            raise IntegrityError("packet does not belong to this circuit")
        iv = packet[2:CHDR_LEN]
        payload = packet[CHDR_LEN + p.ahdr_len + p.tag_array_len :]
        message = self._backward.unwrap(iv, payload)
        body = open_frame(self._recv_key, message, self._window).body
        self.peer_has_reply_header = True
        return body


class DestinationSession:
    """The responding end, created from the first ``Deliver`` of a circuit."""

    def __init__(self, params: Params, deliver: Deliver, payload_size: int) -> None:
        self.params = params
        self.circuit_id = deliver.circuit_id
        self.reply_hop = deliver.reply_hop
        self.payload_size = payload_size
        self._layer = LayerCiphers(HopKeys(deliver.session_secret))  # s'_D: this end's layer
        self._recv_key = e2e_aead(deliver.session_secret, backward=False)
        self._send_key = e2e_aead(deliver.session_secret, backward=True)
        self._window = ReplayWindow()
        self._seq = 0
        self.ahdr_backward: bytes | None = None

    def __repr__(self) -> str:
        return f"DestinationSession(circuit_id={self.circuit_id.hex()})"

    @property
    def max_message(self) -> int:
        return self.payload_size - E2E_OVERHEAD

    def receive(self, deliver: Deliver) -> bytes:
        """Authenticate and decode one delivered payload; returns the user data."""
        if deliver.circuit_id != self.circuit_id:
            raise LocalProtocolError("deliver belongs to another circuit")
        frame = open_frame(self._recv_key, deliver.message, self._window)
        kind, body = frame.kind, frame.body
        if kind == KIND_INIT:
            ahdr_len = self.params.ahdr_len
            if len(body) < ahdr_len:
                raise MalformedInputError("INIT without a reply header")
            self.ahdr_backward, body = body[:ahdr_len], body[ahdr_len:]
        return body

    def seal(self, data: bytes, rng: Any) -> Outgoing:
        """Wrap ``data`` into one backward data packet (ADD_LAYER with s'_D)."""
        if self.ahdr_backward is None:
            raise LocalProtocolError("no reply header yet")
        message = seal_frame(self._send_key, self._seq, KIND_DATA, data, self.payload_size)
        self._seq += 1
        fresh = rng.randbytes(IV_LEN + self.params.tag_array_len)
        iv, payload = self._layer.add_layer(fresh[:IV_LEN], message)
        chdr = data_chdr(self.params.max_hops, iv)
        return Outgoing(
            self.reply_hop, b"".join((chdr, self.ahdr_backward, fresh[IV_LEN:], payload))
        )

"""Rendezvous: sender–receiver anonymity with nested AHDRs (HORNET §4.5, Alg. 5).

The destination D sets up a circuit to a rendezvous point RP with the RENDEZVOUS flag
and publishes a ``Descriptor``: RP's id, a rendezvous header RH_D and a public key. The
source S sets up its own RENDEZVOUS circuit to the same RP and sends *nested* packets:
its forward AHDR to RP, 2r·c bytes long, carries RH_D where Alg. 4 puts padding. RP
opens its own FS, removes its onion layer, finds RH_D = FS'‖γ'‖A, checks it (FS' is one
of RP's rendezvous FSes, γ' its MAC) and sends the packet on with header A, which is
D's backward AHDR from RP. D's backward relays add their layers and D removes them.
The first packet from S carries S's own RH_S, so D answers the same way in reverse.

What each side learns: S learns RP only (RH_D is sealed under RP's and D's relays'
secrets); D learns RP only; RP learns the relay before it and the first relay after it
on each side, as any relay does. RP keeps no state.

The end-to-end layer is keyed by an ECDH between S's ephemeral key X (sent in clear in
front of every S→D payload, since D serves many sources over one circuit) and D's
descriptor key; the frame itself is ``circuit.py``'s (sequence number, AEAD, replay
window). RP and D's first relay see the end-to-end frame (AEAD ciphertext) without
onion layers; they see X and the sequence number, as any relay of a circuit sees its
constant AHDR.

Deviation: Alg. 5 uses PRG2 (not PRG0) and the full XOR range; see ``ahdr.py``. The
paper leaves the splice open; SPEC.md §6 fixes it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

import attrs

from hornet.core import crypto, engine
from hornet.core.ahdr import create_ahdr
from hornet.core.chdr import TYPE_DATA, data_chdr
from hornet.core.e2e import (
    E2E_OVERHEAD,
    KIND_INIT,
    Outgoing,
    ReplayWindow,
    e2e_aead,
    open_frame,
    seal_frame,
)
from hornet.core.e2e import KIND_DATA as _KIND_DATA
from hornet.core.params import CHDR_LEN, IV_LEN, NODE_ID_LEN, TAG_LEN, C, Params, Profile
from hornet.core.setup import CircuitKeys
from hornet.errors import (
    ExpiredError,
    IntegrityError,
    LocalProtocolError,
    MalformedInputError,
)

DESCRIPTOR_VERSION: Final = 0x01
PUBKEY_LEN: Final = 33
#: version (1) ‖ r (1) ‖ payload size (2) ‖ EXP (4) ‖ RP id (8) ‖ D's key (33) ‖ RH_D
DESCRIPTOR_FIXED_LEN: Final = 1 + 1 + 2 + 4 + NODE_ID_LEN + PUBKEY_LEN
DEFAULT_MAX_CONNECTIONS: Final = 1024


def rendezvous_header(keys: CircuitKeys) -> bytes:
    """RH = FS_RP ‖ MAC(s_RP; FS_RP ‖ AHDR^b) ‖ AHDR^b, (r+1)·c bytes (SPEC.md §6.2).

    ``keys`` is a completed RENDEZVOUS circuit to RP: FS_RP is RP's FS on it, s_RP the
    key inside it, and AHDR^b leads from RP back to the circuit's owner.
    """
    if not keys.rendezvous:
        raise LocalProtocolError("the circuit was not set up with rendezvous=True")
    fs = keys.forward_fses[-1]
    gamma = crypto.mac16(keys.forward_keys[-1].mac, fs + keys.ahdr_backward)
    return fs + gamma + keys.ahdr_backward


def nested_ahdr(keys: CircuitKeys, inner: bytes, rng: Any) -> bytes:
    """CREATE_ANONYMOUS_HEADER_NESTED (Alg. 5): the forward AHDR of ``keys`` (to RP),
    2r·c bytes, carrying the rendezvous header ``inner`` for RP to splice."""
    params = keys.params
    r = params.max_hops
    if len(inner) != params.rendezvous_header_len:
        raise LocalProtocolError("inner header must be a rendezvous header, (r+1)·c bytes")
    hops = len(keys.forward_keys)
    if hops > r - 1:
        raise LocalProtocolError(f"a rendezvous circuit has at most r−1 = {r - 1} hops")
    padding = rng.randbytes((2 * r - hops) * C - len(inner))
    return create_ahdr(keys.forward_keys, keys.forward_fses, padding, slots=2 * r, inner=inner)


@attrs.frozen
class Descriptor:
    """What D publishes: how to reach it through RP, never where it is (SPEC.md §6.1)."""

    rp_id: bytes
    exp: int
    public_key: bytes  # D's rendezvous key: the end-to-end ECDH partner
    payload_size: int
    header: bytes = attrs.field(repr=False)  # RH_D

    def __attrs_post_init__(self) -> None:
        if len(self.rp_id) != NODE_ID_LEN or len(self.public_key) != PUBKEY_LEN:
            raise MalformedInputError("descriptor: bad RP id or key length")
        if not 0 <= self.exp < 2**32 or not 0 < self.payload_size < 2**16:
            raise MalformedInputError("descriptor: EXP or payload size out of range")

    def encode(self) -> bytes:
        r = (len(self.header) // C) - 1
        return b"".join(
            (
                bytes((DESCRIPTOR_VERSION, r)),
                self.payload_size.to_bytes(2, "big"),
                self.exp.to_bytes(4, "big"),
                self.rp_id,
                self.public_key,
                self.header,
            )
        )

    @classmethod
    def decode(cls, params: Params, data: bytes) -> Descriptor:
        """Parse and validate untrusted descriptor bytes (raises ``MalformedInputError``)."""
        if len(data) != DESCRIPTOR_FIXED_LEN + params.rendezvous_header_len:
            raise MalformedInputError("descriptor has the wrong length")
        if data[0] != DESCRIPTOR_VERSION or data[1] != params.max_hops:
            raise MalformedInputError("descriptor version or r does not match")
        key = bytes(data[16:DESCRIPTOR_FIXED_LEN])
        crypto.validate_pubkey(key)
        return cls(
            rp_id=bytes(data[8:16]),
            exp=int.from_bytes(data[4:8], "big"),
            public_key=key,
            payload_size=int.from_bytes(data[2:4], "big"),
            header=bytes(data[DESCRIPTOR_FIXED_LEN:]),
        )


def _session_secret(x_pub: bytes, d_pub: bytes, dh: bytes) -> bytes:
    return crypto.hmac_sha256(b"hornet-rv-e2e", x_pub + d_pub + dh)


class _Onions:
    """A rendezvous circuit's cached onion contexts (both ends use one each)."""

    __slots__ = ("backward", "forward", "keys", "padding")

    def __init__(self, keys: CircuitKeys) -> None:
        params = keys.params
        self.keys = keys
        self.forward = engine.forward_onion(params.profile, keys.forward_keys, params.max_hops)
        # RP splices instead of adding its layer, so only the relays' layers are on.
        self.backward = engine.backward_onion(keys.backward_layer_keys[1:])
        hardened = params.profile is Profile.HARDENED
        self.padding = (params.max_hops - len(keys.forward_keys)) * TAG_LEN if hardened else 0

    def __repr__(self) -> str:
        return "_Onions(<hidden>)"

    def seal_nested(self, ahdr: bytes, message: bytes, rng: Any) -> Outgoing:
        """Onion-wrap ``message`` for the forward path (RP last) under a nested AHDR."""
        fresh = rng.randbytes(IV_LEN + self.padding)
        iv, tags, payload = self.forward.wrap(fresh[:IV_LEN], message, fresh[IV_LEN:])
        chdr = data_chdr(self.keys.params.max_hops, iv, nested=True)
        return Outgoing(self.keys.first_hop, b"".join((chdr, ahdr, tags, payload)))

    def open_spliced(self, payload_size: int, packet: bytes) -> bytes:
        """Remove the layers the owner's backward relays added after RP's splice."""
        keys, params = self.keys, self.keys.params
        if packet[:1] != bytes((TYPE_DATA,)) or len(packet) != params.data_packet_len(
            payload_size
        ):
            raise MalformedInputError("not a data packet of this circuit's size")
        if not crypto.ct_equal(packet[CHDR_LEN : CHDR_LEN + 32], keys.arrival_id):
            raise IntegrityError("packet does not belong to this circuit")
        iv = packet[2:CHDR_LEN]
        return self.backward.unwrap(iv, packet[CHDR_LEN + params.ahdr_len + params.tag_array_len :])


def _check_circuit(keys: CircuitKeys) -> None:
    if not keys.rendezvous:
        raise LocalProtocolError("the circuit was not set up with rendezvous=True")
    if len(keys.forward_keys) > keys.params.max_hops - 1:
        raise LocalProtocolError("a rendezvous circuit has at most r−1 hops")


class RendezvousSource:
    """S's end of a rendezvous connection: S's RENDEZVOUS circuit to RP + D's descriptor."""

    def __init__(self, keys: CircuitKeys, descriptor: Descriptor, rng: Any) -> None:
        _check_circuit(keys)
        if keys.destination != descriptor.rp_id:
            raise LocalProtocolError("the circuit must end at the descriptor's RP")
        self.keys = keys
        self.descriptor = descriptor
        self.payload_size = descriptor.payload_size
        if self.max_init_message < 0:
            raise LocalProtocolError("payload size too small for a rendezvous INIT")
        ephemeral = crypto.SecretKey.from_rng(rng)
        self._x_pub = ephemeral.public_key
        secret = _session_secret(
            self._x_pub, descriptor.public_key, ephemeral.ecdh(descriptor.public_key)
        )
        self._send_key = e2e_aead(secret, backward=False)
        self._recv_key = e2e_aead(secret, backward=True)
        self._onions = _Onions(keys)
        self._ahdr = nested_ahdr(keys, descriptor.header, rng)
        self._reply_header = rendezvous_header(keys)
        self._exp = min(keys.exp, descriptor.exp)
        self._seq = 0
        self._window = ReplayWindow()
        self.peer_has_reply_header = False

    def __repr__(self) -> str:
        return f"RendezvousSource(rp={self.descriptor.rp_id.hex()}, exp={self._exp})"

    @property
    def arrival_id(self) -> bytes:
        return self.keys.arrival_id

    @property
    def max_message(self) -> int:
        return self.payload_size - PUBKEY_LEN - E2E_OVERHEAD

    @property
    def max_init_message(self) -> int:
        return self.max_message - self.keys.params.rendezvous_header_len

    def seal(self, data: bytes, now: float, rng: Any) -> Outgoing:
        """One nested data packet to D. Until D has answered, it carries RH_S (INIT)."""
        if now >= self._exp:
            raise ExpiredError("rendezvous circuit or descriptor expired")
        kind, body = _KIND_DATA, data
        if not self.peer_has_reply_header:
            kind, body = KIND_INIT, self._reply_header + data
        frame = seal_frame(self._send_key, self._seq, kind, body, self.payload_size - PUBKEY_LEN)
        self._seq += 1
        return self._onions.seal_nested(self._ahdr, self._x_pub + frame, rng)

    def open(self, packet: bytes) -> bytes:
        """Open a packet from D (it arrives on S's circuit's backward path)."""
        message = self._onions.open_spliced(self.payload_size, packet)
        body = open_frame(self._recv_key, message, self._window).body
        self.peer_has_reply_header = True
        return body


@attrs.frozen
class RendezvousMessage:
    """One message D received: ``connection`` (16 bytes) names the source's session."""

    connection: bytes
    data: bytes
    new: bool  # the first message of this connection


class _Connection:
    __slots__ = ("ahdr", "recv_key", "reply_header", "send_key", "seq", "window")

    def __init__(self, secret: bytes) -> None:
        self.recv_key = e2e_aead(secret, backward=False)
        self.send_key = e2e_aead(secret, backward=True)
        self.window = ReplayWindow()
        self.seq = 0
        self.reply_header = b""
        self.ahdr = b""

    def __repr__(self) -> str:
        return "_Connection(<hidden>)"


class RendezvousDestination:
    """D's end: one RENDEZVOUS circuit to RP serving any number of sources.

    Per-connection state (keys, replay window, reply header) lives in a bounded LRU
    table of ``max_connections``; an evicted source must start again with INIT.
    """

    def __init__(
        self,
        keys: CircuitKeys,
        identity: crypto.SecretKey,
        payload_size: int,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        _check_circuit(keys)
        self.keys = keys
        self.identity = identity
        self.payload_size = payload_size
        self.max_connections = max_connections
        self._connections: OrderedDict[bytes, _Connection] = OrderedDict()
        self._header = rendezvous_header(keys)
        self._onions = _Onions(keys)
        if payload_size - PUBKEY_LEN - E2E_OVERHEAD - keys.params.rendezvous_header_len < 0:
            raise LocalProtocolError("payload size too small for a rendezvous INIT")

    def __repr__(self) -> str:
        return f"RendezvousDestination(rp={self.keys.destination.hex()}, exp={self.keys.exp})"

    @property
    def arrival_id(self) -> bytes:
        return self.keys.arrival_id

    @property
    def max_message(self) -> int:
        return self.payload_size - E2E_OVERHEAD

    @property
    def connections(self) -> int:
        return len(self._connections)

    def descriptor(self) -> Descriptor:
        return Descriptor(
            rp_id=self.keys.destination,
            exp=self.keys.exp,
            public_key=self.identity.public_key,
            payload_size=self.payload_size,
            header=self._header,
        )

    def receive(self, packet: bytes) -> RendezvousMessage:
        """Open a packet that arrived on D's circuit; raises a ``HornetError`` if bad."""
        message = self._onions.open_spliced(self.payload_size, packet)
        x_pub, frame = message[:PUBKEY_LEN], message[PUBKEY_LEN:]
        connection_id = crypto.sha256(x_pub)[:16]
        connection = self._connections.get(connection_id)
        new = connection is None
        if connection is None:
            dh = self.identity.ecdh(crypto.validate_pubkey(x_pub))
            connection = _Connection(_session_secret(x_pub, self.identity.public_key, dh))
        opened = open_frame(connection.recv_key, frame, connection.window)
        kind, body = opened.kind, opened.body
        if kind == KIND_INIT:
            header_len = self.keys.params.rendezvous_header_len
            if len(body) < header_len:
                raise MalformedInputError("INIT without a reply header")
            if not connection.reply_header:
                connection.reply_header = body[:header_len]
            body = body[header_len:]
        elif new:
            raise IntegrityError("unknown connection")  # lost INIT, or evicted
        if new:
            self._connections[connection_id] = connection
            if len(self._connections) > self.max_connections:
                self._connections.popitem(last=False)
        else:
            self._connections.move_to_end(connection_id)
        return RendezvousMessage(connection=connection_id, data=body, new=new)

    def seal(self, connection_id: bytes, data: bytes, now: float, rng: Any) -> Outgoing:
        """One nested data packet to the source of ``connection_id``, through RP."""
        if now >= self.keys.exp:
            raise ExpiredError("rendezvous circuit expired")
        connection = self._connections.get(connection_id)
        if connection is None:
            raise LocalProtocolError("unknown connection")
        if not connection.ahdr:
            connection.ahdr = nested_ahdr(self.keys, connection.reply_header, rng)
        frame = seal_frame(connection.send_key, connection.seq, _KIND_DATA, data, self.payload_size)
        connection.seq += 1
        return self._onions.seal_nested(connection.ahdr, frame, rng)

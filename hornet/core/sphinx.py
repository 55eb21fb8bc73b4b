"""Sphinx onion packets, byte-compatible with Lightning's BOLT 4.

Packet: ``version (1) ‖ ephemeral key E (33) ‖ hop_payloads (L) ‖ HMAC (32)``, with
L = ``payload_size`` (1300 for payments, 32768 for large onion messages, smaller
compact sizes for HORNET setup). Each hop's frame inside hop_payloads is
``BigSize(len) ‖ TLV payload ‖ next HMAC (32)``; an all-zero next HMAC marks the
final hop.

Keys per hop (BOLT 4 §Key Generation): ss = SHA256(ECDH), and
``rho``/``mu``/``pad`` = HMAC-SHA256(key = ASCII name, msg = ss). Streams are ChaCha20
with a zero nonce. The hop_payloads start as ChaCha20(pad key derived from the
session key), never zeros, so the last hop cannot learn the path length.

HORNET extension (SPEC.md §2.6–2.7): ``build_onion`` may bind one extra associated-data
string per hop (appended after the common one), and ``peel_onion`` may check a tuple of
candidate associated data after one ECDH, reporting which one matched. Unused, both are
byte-for-byte BOLT 4.

Invariants:
- ``peel_onion`` on untrusted bytes raises only ``RemoteProtocolError`` subclasses.
- The HMAC is compared in constant time before anything else is derived from the
  decrypted payload. With candidates, every candidate's HMAC is computed and compared,
  so the time taken does not depend on which one matched.
- A peel parses E once, does one ECDH and (if not final) one blinding
  multiplication, and allocates a handful of packet-sized buffers. It keeps no state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

import attrs

from hornet.core import crypto
from hornet.core.wire import decode_bigsize, encode_bigsize
from hornet.errors import (
    IntegrityError,
    InvalidPointError,
    LocalProtocolError,
    MalformedInputError,
    UnknownVersionError,
)

VERSION: Final = 0
HMAC_LEN: Final = 32  # BOLT 4 HMAC_LEN: full HMAC-SHA256
PUBKEY_LEN: Final = crypto.PUBKEY_LEN
#: Bytes of a packet that are not hop_payloads: version, E, HMAC.
OVERHEAD: Final = 1 + PUBKEY_LEN + HMAC_LEN
DEFAULT_PAYLOAD_SIZE: Final = 1300
ONION_MESSAGE_LARGE_PAYLOAD_SIZE: Final = 32768
#: Smallest hop_payloads that can hold one frame with a 2-byte TLV record.
MIN_PAYLOAD_SIZE: Final = 1 + 2 + HMAC_LEN
#: Largest hop_payloads whose packet length fits a u16 (onion_message_packet's len).
MAX_PAYLOAD_SIZE: Final = 0xFFFF - OVERHEAD
#: A TLV payload has at least one record of type and length: 2 bytes. Length 0 was the
#: legacy fixed-size format (no longer supported) and 1 cannot hold a record.
MIN_HOP_PAYLOAD_LEN: Final = 2

_RHO: Final = b"rho"
_MU: Final = b"mu"
_PAD: Final = b"pad"
_ZERO_HMAC: Final = bytes(HMAC_LEN)

#: ``build_onion``'s per-hop associated-data hook: called once with every hop's shared
#: secret (first hop first), it returns one extra associated-data string per hop.
HopAssociatedData: TypeAlias = Callable[[Sequence[bytes]], Sequence[bytes]]


@attrs.frozen
class PeeledOnion:
    """What one hop learns from a Sphinx packet.

    ``next_onion`` is None at the final hop. ``shared_secret`` is the hop's ss; it is
    hidden from ``repr`` and excluded from equality. ``associated_data_index`` is the
    position of the candidate associated data the HMAC matched (0 when ``peel_onion``
    was given a single one).
    """

    payload: bytes
    next_onion: bytes | None
    shared_secret: bytes = attrs.field(repr=False, eq=False)
    associated_data_index: int = 0

    @property
    def is_final(self) -> bool:
        return self.next_onion is None


def derive_key(key_type: bytes, shared_secret: bytes) -> bytes:
    """BOLT 4 key generation: HMAC-SHA256(key = key_type, msg = shared_secret)."""
    return crypto.hmac_sha256(key_type, shared_secret)


def hop_frame_size(payload_len: int) -> int:
    """Bytes one hop consumes in hop_payloads: BigSize(len) ‖ payload ‖ HMAC."""
    return len(encode_bigsize(payload_len)) + payload_len + HMAC_LEN


def packet_size(payload_size: int = DEFAULT_PAYLOAD_SIZE) -> int:
    return payload_size + OVERHEAD


def _check_payload_size(payload_size: int) -> None:
    if not MIN_PAYLOAD_SIZE <= payload_size <= MAX_PAYLOAD_SIZE:
        raise LocalProtocolError(
            f"payload_size must be in [{MIN_PAYLOAD_SIZE}, {MAX_PAYLOAD_SIZE}]"
        )


def _filler(rho_keys: Sequence[bytes], frame_sizes: Sequence[int], payload_size: int) -> bytes:
    """BOLT 4 filler: what the last hop's shifted-in tail will decrypt to.

    After hop i shifts its frame off, it XORs the tail with rho_i's stream beyond L; the
    filler reproduces those bytes so the final HMAC covers them.
    """
    filler = b""
    for rho, size in zip(rho_keys[:-1], frame_sizes[:-1], strict=True):
        filler += bytes(size)
        stream = crypto.chacha20_stream(rho, payload_size + size)
        filler = crypto.xor_bytes(filler, stream[payload_size + size - len(filler) :])
    return filler


@attrs.frozen
class BuiltOnion:
    """``build_onion``'s result: the packet and every hop's shared secret (hidden)."""

    packet: bytes
    shared_secrets: tuple[bytes, ...] = attrs.field(repr=False, eq=False)


def create_onion(
    session_key: bytes,
    hops: Sequence[tuple[bytes, bytes]],
    *,
    associated_data: bytes = b"",
    payload_size: int = DEFAULT_PAYLOAD_SIZE,
    last_hop_next_hmac: bytes = _ZERO_HMAC,
) -> bytes:
    """Build a Sphinx packet (BOLT 4 §Packet Construction); see ``build_onion``."""
    return build_onion(
        session_key,
        hops,
        associated_data=associated_data,
        payload_size=payload_size,
        last_hop_next_hmac=last_hop_next_hmac,
    ).packet


def build_onion(
    session_key: bytes,
    hops: Sequence[tuple[bytes, bytes]],
    *,
    associated_data: bytes = b"",
    payload_size: int = DEFAULT_PAYLOAD_SIZE,
    last_hop_next_hmac: bytes = _ZERO_HMAC,
    hop_associated_data: HopAssociatedData | None = None,
) -> BuiltOnion:
    """Build a Sphinx packet and keep the per-hop shared secrets the sender derived.

    ``hops`` lists (33-byte compressed public key, TLV payload without its BigSize
    length prefix), first hop first. ``session_key`` is 32 random bytes chosen by the
    caller; it seeds the ephemeral keys and the initial padding, so equal inputs give
    equal packets. ``last_hop_next_hmac`` (HORNET extension, default all-zero = final)
    lets the last listed hop forward the packet to a party that needs no peeling: the
    HORNET source, which recognises the packet by that value.

    ``hop_associated_data`` (HORNET extension) is called once with the hops' shared
    secrets and returns one string per hop: hop i's HMAC then covers ``hop_payloads ‖
    associated_data ‖ extra_i``. HORNET binds the setup payload as each hop receives it
    this way (SPEC.md §4.4). Without it every hop's extra is empty: plain BOLT 4.
    """
    if len(last_hop_next_hmac) != HMAC_LEN:
        raise LocalProtocolError("last_hop_next_hmac must be 32 bytes")
    _check_payload_size(payload_size)
    if not hops:
        raise LocalProtocolError("a path needs at least one hop")
    pubkeys = [bytes(pub) for pub, _ in hops]
    payloads = [bytes(payload) for _, payload in hops]
    for payload in payloads:
        if len(payload) < MIN_HOP_PAYLOAD_LEN:
            raise LocalProtocolError("a hop payload must hold at least one TLV record")
    frame_sizes = [hop_frame_size(len(p)) for p in payloads]
    if sum(frame_sizes) > payload_size:
        raise LocalProtocolError("hop payloads do not fit in payload_size")
    try:
        first_ephemeral, secrets = crypto.sphinx_path_secrets(session_key, pubkeys)
    except InvalidPointError as exc:
        raise LocalProtocolError("a hop public key is not a valid point") from exc

    extra = [b""] * len(hops)
    if hop_associated_data is not None:
        extra = [bytes(ad) for ad in hop_associated_data(tuple(secrets))]
        if len(extra) != len(hops):
            raise LocalProtocolError("hop_associated_data must give one string per hop")

    rho_keys = [derive_key(_RHO, ss) for ss in secrets]
    filler = _filler(rho_keys, frame_sizes, payload_size)
    mix = crypto.chacha20_stream(derive_key(_PAD, session_key), payload_size)
    next_hmac = bytes(last_hop_next_hmac)
    for index in range(len(hops) - 1, -1, -1):
        frame = encode_bigsize(len(payloads[index])) + payloads[index] + next_hmac
        mix = crypto.chacha20_xor(rho_keys[index], frame + mix[: payload_size - len(frame)])
        if index == len(hops) - 1 and filler:
            mix = mix[: payload_size - len(filler)] + filler
        next_hmac = crypto.hmac_sha256(
            derive_key(_MU, secrets[index]), mix + associated_data + extra[index]
        )
    return BuiltOnion(
        packet=bytes((VERSION,)) + first_ephemeral + mix + next_hmac,
        shared_secrets=tuple(secrets),
    )


def peel_onion(
    node_private_key: bytes | crypto.SecretKey,
    onion: bytes,
    *,
    associated_data: bytes | tuple[bytes, ...] = b"",
) -> PeeledOnion:
    """Process a Sphinx packet as the hop owning ``node_private_key`` (BOLT 4 §Onion
    Decryption).

    ``associated_data`` is one string (BOLT 4) or a tuple of candidates (HORNET
    extension): after one ECDH the HMAC is checked against each, in constant time, and
    ``PeeledOnion.associated_data_index`` says which one matched. A HORNET relay uses
    this to accept both forward setup hops (CHDR ‖ SP bound) and backward ones (CHDR
    only) without a second ECDH; it must then check that the match fits the route.

    Pass a ``crypto.SecretKey`` rather than raw bytes on hot paths: it keeps the
    validated key. Raises ``MalformedInputError`` (length, version, point, frame) or
    ``IntegrityError`` (HMAC), never anything else, for any ``onion`` bytes.
    """
    candidates = associated_data if isinstance(associated_data, tuple) else (associated_data,)
    if not candidates:
        raise LocalProtocolError("give at least one candidate associated data")
    total = len(onion)
    payload_size = total - OVERHEAD
    if not MIN_PAYLOAD_SIZE <= payload_size <= MAX_PAYLOAD_SIZE:
        raise MalformedInputError("onion packet has an unsupported length")
    onion = bytes(onion)
    if onion[0] != VERSION:
        raise UnknownVersionError("unknown onion version")
    ephemeral = onion[1 : 1 + PUBKEY_LEN]
    hop_payloads = onion[1 + PUBKEY_LEN : total - HMAC_LEN]

    if isinstance(node_private_key, crypto.SecretKey):
        shared, parsed = node_private_key.sphinx_ecdh(ephemeral)
    else:
        if not crypto.is_valid_scalar(node_private_key):
            raise LocalProtocolError("node private key must be a valid 32-byte scalar")
        shared, parsed = crypto.sphinx_ecdh(node_private_key, ephemeral)

    mu = derive_key(_MU, shared)
    received = onion[total - HMAC_LEN :]
    matched = -1
    for index, candidate in enumerate(candidates):
        # Every candidate is checked, even after a match: no timing signal of which.
        ok = crypto.ct_equal(crypto.hmac_sha256(mu, hop_payloads + candidate), received)
        if ok and matched < 0:
            matched = index
    if matched < 0:
        raise IntegrityError("onion HMAC mismatch")

    # Decrypt hop_payloads followed by L zero bytes: the zeros become the stream bytes
    # this hop shifts in at the tail.
    plain = crypto.chacha20_xor(derive_key(_RHO, shared), hop_payloads + bytes(payload_size))
    length, start = decode_bigsize(plain)
    if length < MIN_HOP_PAYLOAD_LEN:
        raise MalformedInputError("hop payload too short (legacy or empty format)")
    shift = start + length + HMAC_LEN
    if shift > payload_size:
        raise MalformedInputError("hop payload frame overruns the packet")
    payload = plain[start : start + length]
    next_hmac = plain[start + length : shift]
    if next_hmac == _ZERO_HMAC:
        return PeeledOnion(payload, None, shared, matched)
    next_ephemeral = crypto.sphinx_blind(parsed, ephemeral, shared)
    next_onion = b"".join(
        (onion[:1], next_ephemeral, plain[shift : shift + payload_size], next_hmac)
    )
    return PeeledOnion(payload, next_onion, shared, matched)

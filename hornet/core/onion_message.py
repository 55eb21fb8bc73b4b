"""Lightning onion messages (BOLT 4 §Onion Messages), always through blinded paths.

Strategy:
- An onion message is a Sphinx packet (``hornet.core.sphinx``) with no associated
  data whose hop payloads are ``onionmsg_tlv`` streams, sent in the BOLT 1 message
  ``onion_message`` (type 513) next to the receiving node's route-blinding path key.
  Every hop is a blinded hop (``hornet.core.blinding``): the Sphinx layer of hop i is
  encrypted to its blinded node id B_i, never to its real key.
- Processing is one pure function, ``process_onion_message(node_key, message)``,
  returning ``Forward`` or ``Deliver``. Its cost is one ECDH with the path key, one
  Sphinx peel with the blinded private key, one AEAD open and, when forwarding, one
  point tweak for the next path key.

Invariants:
- Sans-IO: no clock, no randomness of its own, no I/O. Session keys and path keys are
  parameters.
- Untrusted bytes raise only ``RemoteProtocolError`` subclasses: ``MalformedInputError``
  (framing, TLV rules, policy "MUST ignore" cases), ``InvalidPointError``,
  ``UnknownVersionError``, ``IntegrityError`` (Sphinx HMAC or AEAD tag). A caller
  drops the message on any of them; onion messages have no error return.
- Packets are 1366 or 32834 bytes unless the caller asks otherwise; the reader
  accepts any length up to the BOLT 8 ceiling (65498).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Final

import attrs

from hornet.core import crypto, sphinx
from hornet.core.blinding import (
    BlindedPath,
    EncryptedData,
    create_blinded_path,
    decrypt_recipient_data,
    next_path_key,
    pad_to_equal_length,
    unblind,
)
from hornet.core.wire import decode_tlv_stream, encode_tlv_stream
from hornet.errors import LocalProtocolError, MalformedInputError

# --------------------------------------------------------------------------------------
# Constants

#: BOLT 1 message type of ``onion_message`` (feature ``option_onion_messages`` 38/39).
ONION_MESSAGE_TYPE: Final = 513
_TYPE_PREFIX: Final = ONION_MESSAGE_TYPE.to_bytes(2, "big")
PUBKEY_LEN: Final = crypto.PUBKEY_LEN
#: type (2) ‖ path_key (33) ‖ len (2), before ``onion_message_packet``.
HEADER_LEN: Final = 2 + PUBKEY_LEN + 2
#: Standard packet lengths: 1300- and 32768-byte ``onionmsg_payloads`` plus 66.
SMALL_PACKET_SIZE: Final = sphinx.packet_size(sphinx.DEFAULT_PAYLOAD_SIZE)  # 1366
LARGE_PACKET_SIZE: Final = sphinx.packet_size(sphinx.ONION_MESSAGE_LARGE_PAYLOAD_SIZE)  # 32834
STANDARD_PACKET_SIZES: Final = (SMALL_PACKET_SIZE, LARGE_PACKET_SIZE)
#: A BOLT 8 message is at most 65535 bytes, so the packet is at most 65535 - 37.
MAX_PACKET_SIZE: Final = 0xFFFF - HEADER_LEN
MIN_PACKET_SIZE: Final = sphinx.packet_size(sphinx.MIN_PAYLOAD_SIZE)

# onionmsg_tlv record types
TLV_REPLY_PATH: Final = 2
TLV_ENCRYPTED_RECIPIENT_DATA: Final = 4
TLV_INVOICE_REQUEST: Final = 64
TLV_INVOICE: Final = 66
TLV_INVOICE_ERROR: Final = 68
#: Types from 64 up are final-hop payload fields.
FIRST_PAYLOAD_TYPE: Final = 64
#: The even payload types BOLT 12 defines; a reader's default "known" set.
BOLT12_PAYLOAD_TYPES: Final = frozenset({TLV_INVOICE_REQUEST, TLV_INVOICE, TLV_INVOICE_ERROR})


# --------------------------------------------------------------------------------------
# Wire formats


@attrs.frozen
class OnionMessage:
    """``onion_message`` (type 513): [point path_key][u16 len][len*byte onion_message_packet].

    ``encode`` gives the full BOLT 1 message including its 2-byte type, as the BOLT 4
    vector does.
    """

    path_key: bytes
    packet: bytes

    def __attrs_post_init__(self) -> None:
        if len(self.path_key) != PUBKEY_LEN:
            raise LocalProtocolError("path_key must be 33 bytes")
        if not MIN_PACKET_SIZE <= len(self.packet) <= MAX_PACKET_SIZE:
            raise LocalProtocolError("onion_message_packet length out of range")

    def encode(self) -> bytes:
        return b"".join(
            (_TYPE_PREFIX, self.path_key, len(self.packet).to_bytes(2, "big"), self.packet)
        )

    @classmethod
    def decode(cls, message: bytes) -> OnionMessage:
        """Parse a type-513 message; raises ``MalformedInputError`` on bad framing.

        The path key is checked for length only; the ECDH that uses it validates it.
        """
        message = bytes(message)
        if len(message) < HEADER_LEN:
            raise MalformedInputError("onion_message truncated")
        if message[:2] != _TYPE_PREFIX:
            raise MalformedInputError("not an onion_message (type 513)")
        length = int.from_bytes(message[HEADER_LEN - 2 : HEADER_LEN], "big")
        if len(message) != HEADER_LEN + length:
            raise MalformedInputError("onion_message len does not match its packet")
        if not MIN_PACKET_SIZE <= length <= MAX_PACKET_SIZE:
            raise MalformedInputError("onion_message_packet length out of range")
        return cls(path_key=message[2 : 2 + PUBKEY_LEN], packet=message[HEADER_LEN:])


@attrs.frozen
class OnionMessagePayload:
    """One hop's ``onionmsg_tlv`` (BOLT 4 §Onion Messages).

    ``records`` are all other records, increasing by type: final-hop payload fields
    (64 and up) and odd types below 64.
    """

    encrypted_recipient_data: bytes | None = None
    reply_path: BlindedPath | None = None
    records: tuple[tuple[int, bytes], ...] = ()

    def __attrs_post_init__(self) -> None:
        last = -1
        for tlv_type, _ in self.records:
            if tlv_type in (TLV_REPLY_PATH, TLV_ENCRYPTED_RECIPIENT_DATA):
                raise LocalProtocolError("reply_path and encrypted_recipient_data are fields")
            if tlv_type <= last:
                raise LocalProtocolError("records must have strictly increasing types")
            last = tlv_type

    @property
    def payload_fields(self) -> tuple[tuple[int, bytes], ...]:
        """The records with type >= 64 (at most one is allowed at the final hop)."""
        return tuple(r for r in self.records if r[0] >= FIRST_PAYLOAD_TYPE)

    def encode(self) -> bytes:
        out = list(self.records)
        if self.reply_path is not None:
            out.append((TLV_REPLY_PATH, self.reply_path.encode()))
        if self.encrypted_recipient_data is not None:
            out.append((TLV_ENCRYPTED_RECIPIENT_DATA, self.encrypted_recipient_data))
        out.sort(key=lambda record: record[0])
        return encode_tlv_stream(out)

    @classmethod
    def decode(
        cls, data: bytes, *, known_payload_types: Set[int] = BOLT12_PAYLOAD_TYPES
    ) -> OnionMessagePayload:
        """Parse an ``onionmsg_tlv``; an even type other than 2, 4 and
        ``known_payload_types`` is rejected (``MalformedInputError``), as BOLT 4 requires.
        """
        fields = decode_tlv_stream(data)
        records = []
        reply_path = None
        for tlv_type, value in fields.items():
            if tlv_type == TLV_REPLY_PATH:
                reply_path = BlindedPath.decode(value)
            elif tlv_type != TLV_ENCRYPTED_RECIPIENT_DATA:
                if tlv_type % 2 == 0 and tlv_type not in known_payload_types:
                    raise MalformedInputError("onionmsg_tlv has an unknown even type")
                records.append((tlv_type, value))
        return cls(
            encrypted_recipient_data=fields.get(TLV_ENCRYPTED_RECIPIENT_DATA),
            reply_path=reply_path,
            records=tuple(records),
        )


# --------------------------------------------------------------------------------------
# Results


@attrs.frozen
class ForwardMessage:
    """Send ``message`` (a full type-513 message) to the next peer: the node
    ``next_node_id``, or the peer across ``short_channel_id`` (an announced channel
    or a local alias; otherwise the caller MUST drop it). Exactly one is set."""

    message: bytes
    next_node_id: bytes | None = None
    short_channel_id: int | None = None

    def __attrs_post_init__(self) -> None:
        if (self.next_node_id is None) == (self.short_channel_id is None):
            raise LocalProtocolError("Forward needs exactly one of next_node_id/short_channel_id")


@attrs.frozen
class DeliverMessage:
    """The message is for us. The caller MUST check ``path_id`` against the paths it
    published (BOLT 4: ignore a message whose ``path_id`` does not match) and reply only
    through ``reply_path``.

    ``payload`` holds the ``onionmsg_tlv`` records other than 2 and 4 (at most one of
    type >= 64); ``recipient_data`` is our own decrypted ``encrypted_data_tlv``;
    ``path_key`` is the E_r we received (some recipients store it instead of path_id).
    ``path_id`` is hidden from ``repr``; compare it with ``path_id_matches``.
    """

    path_id: bytes | None = attrs.field(repr=False)
    reply_path: BlindedPath | None
    payload: tuple[tuple[int, bytes], ...]
    recipient_data: EncryptedData
    path_key: bytes

    def path_id_matches(self, expected: bytes) -> bool:
        """Constant-time check of ``path_id`` against the one we published."""
        return self.path_id is not None and crypto.ct_equal(self.path_id, expected)


OnionMessageAction = ForwardMessage | DeliverMessage


@attrs.frozen
class OutgoingOnionMessage:
    """A message the sender hands to ``first_node_id`` (a ``sciddir_or_pubkey``)."""

    first_node_id: bytes
    message: bytes


# --------------------------------------------------------------------------------------
# Building


def create_message_path(
    path_privkey: bytes,
    node_ids: Sequence[bytes],
    *,
    path_id: bytes | None = None,
    pad: bool = True,
) -> BlindedPath:
    """A blinded path for onion messages over ``node_ids``, the last being the
    recipient (e.g. a ``reply_path``). Non-final hops get ``next_node_id``; the final
    hop gets ``path_id`` if given. Plaintexts are padded to equal length by default.
    """
    if not node_ids:
        raise LocalProtocolError("a path needs at least one node")
    items = [EncryptedData(next_node_id=bytes(n)) for n in node_ids[1:]]
    items.append(EncryptedData(path_id=path_id))
    if pad:
        items = pad_to_equal_length(items)
    return create_blinded_path(path_privkey, list(zip(node_ids, items, strict=True)))


def prepend_hops(
    path_privkey: bytes, node_ids: Sequence[bytes], path: BlindedPath, *, pad: bool = True
) -> BlindedPath:
    """Reach the introduction node of ``path`` through ``node_ids`` (BOLT 4 §Route
    Blinding, reader of a blinded_path, not a payment).

    The sender builds its own blinded hops with e_0 = ``path_privkey``; the last one
    names ``path.first_node_id`` and carries ``next_path_key_override =
    path.first_path_key``. ``path.first_node_id`` must be a public key (resolve a
    sciddir first).
    """
    if not node_ids:
        return path
    if not path.first_node_is_pubkey:
        raise LocalProtocolError("resolve the sciddir first_node_id to a node id first")
    targets = [*node_ids[1:], path.first_node_id]
    items = [EncryptedData(next_node_id=bytes(t)) for t in targets]
    items[-1] = attrs.evolve(items[-1], next_path_key_override=path.first_path_key)
    if pad:
        items = pad_to_equal_length(items)
    prefix = create_blinded_path(path_privkey, list(zip(node_ids, items, strict=True)))
    return prefix.concat(path)


def _choose_payload_size(payloads: Sequence[bytes], packet_size: int | None) -> int:
    needed = sum(sphinx.hop_frame_size(len(p)) for p in payloads)
    if packet_size is not None:
        if not MIN_PACKET_SIZE <= packet_size <= MAX_PACKET_SIZE:
            raise LocalProtocolError("packet_size out of range")
        sizes: tuple[int, ...] = (packet_size,)
    else:
        sizes = STANDARD_PACKET_SIZES
    for size in sizes:
        payload_size = size - sphinx.OVERHEAD
        if needed <= payload_size:
            return payload_size
    raise LocalProtocolError("onion message does not fit in the packet")


def create_onion_message(
    session_key: bytes,
    path: BlindedPath,
    *,
    payload: Sequence[tuple[int, bytes]] = (),
    reply_path: BlindedPath | None = None,
    packet_size: int | None = None,
) -> OutgoingOnionMessage:
    """Build an ``onion_message`` along ``path`` (BOLT 4 §Onion Messages, writer).

    ``session_key`` is the Sphinx session key (32 random bytes from the caller).
    ``payload`` lists the final hop's records other than 2 and 4 (at most one of type
    >= 64); ``reply_path`` becomes record 2. The packet is 1366 bytes if it fits,
    else 32834, unless ``packet_size`` names a length. To reach an introduction node
    that is not our peer, first extend the path with ``prepend_hops``.
    """
    records = tuple(sorted((int(t), bytes(v)) for t, v in payload))
    final = OnionMessagePayload(
        encrypted_recipient_data=path.hops[-1].encrypted_recipient_data,
        reply_path=reply_path,
        records=records,
    )
    if len(final.payload_fields) > 1:
        raise LocalProtocolError("an onion message carries at most one payload field")
    payloads = [
        OnionMessagePayload(encrypted_recipient_data=hop.encrypted_recipient_data).encode()
        for hop in path.hops[:-1]
    ]
    payloads.append(final.encode())
    payload_size = _choose_payload_size(payloads, packet_size)
    hops = [(hop.blinded_node_id, p) for hop, p in zip(path.hops, payloads, strict=True)]
    packet = sphinx.create_onion(session_key, hops, payload_size=payload_size)
    message = OnionMessage(path_key=path.first_path_key, packet=packet)
    return OutgoingOnionMessage(first_node_id=path.first_node_id, message=message.encode())


# --------------------------------------------------------------------------------------
# Processing


@attrs.frozen
class PeeledOnionMessage:
    """One hop's view of an ``onion_message``: its ``encrypted_data_tlv``, its
    ``onionmsg_tlv``, the message for the next hop (None at the final hop) and the Sphinx
    shared secret (hidden)."""

    path_key: bytes
    data: EncryptedData
    tlv: OnionMessagePayload
    next_message: bytes | None = attrs.field(repr=False)
    shared_secret: bytes = attrs.field(repr=False, eq=False)


def peel_onion_message(
    node_key: bytes | crypto.SecretKey,
    message: bytes,
    *,
    known_payload_types: Set[int] = BOLT12_PAYLOAD_TYPES,
) -> PeeledOnionMessage:
    """The reader's checks and one layer's removal (BOLT 4 §Onion Messages, reader;
    §Onion Decryption; §Route Blinding), for callers that need more than
    ``process_onion_message`` returns (the mixer reads the odd ``encrypted_data_tlv``
    records). Raises only ``RemoteProtocolError`` subclasses for any ``message`` bytes.
    """
    # Framing (inlined ``OnionMessage.decode``: this is the hot path).
    message = bytes(message)
    if len(message) < HEADER_LEN + MIN_PACKET_SIZE or message[:2] != _TYPE_PREFIX:
        raise MalformedInputError("not a well-formed onion_message")
    length = int.from_bytes(message[HEADER_LEN - 2 : HEADER_LEN], "big")
    if len(message) != HEADER_LEN + length:
        raise MalformedInputError("onion_message len does not match its packet")
    if length > MAX_PACKET_SIZE:
        raise MalformedInputError("onion_message exceeds a BOLT 8 message")
    path_key = message[2 : 2 + PUBKEY_LEN]

    # Route blinding: one ECDH gives ss, the blinded key b and rho.
    keys = unblind(node_key, path_key)
    peeled = sphinx.peel_onion(keys.blinded_private_key, message[HEADER_LEN:])
    is_final = peeled.next_onion is None
    tlv = OnionMessagePayload.decode(
        peeled.payload,
        known_payload_types=known_payload_types if is_final else frozenset(),
    )
    if tlv.encrypted_recipient_data is None:
        raise MalformedInputError("onionmsg_tlv lacks encrypted_recipient_data")
    data = EncryptedData.decode(decrypt_recipient_data(keys.rho, tlv.encrypted_recipient_data))
    features = data.allowed_features
    if features is not None and any(features):
        raise MalformedInputError("allowed_features names a feature we do not know")

    if peeled.next_onion is None:
        if len(tlv.payload_fields) > 1:
            raise MalformedInputError("onionmsg_tlv has more than one payload field")
        return PeeledOnionMessage(path_key, data, tlv, None, peeled.shared_secret)

    if tlv.reply_path is not None or tlv.records:
        raise MalformedInputError("non-final onionmsg_tlv has fields besides encrypted data")
    if data.path_id is not None:
        raise MalformedInputError("non-final encrypted_data_tlv has a path_id")
    if data.next_node_id is None and data.short_channel_id is None:
        raise MalformedInputError("non-final encrypted_data_tlv names no next hop")
    following = data.next_path_key_override or next_path_key(path_key, keys.shared_secret)
    out = b"".join(
        (_TYPE_PREFIX, following, message[HEADER_LEN - 2 : HEADER_LEN], peeled.next_onion)
    )
    return PeeledOnionMessage(path_key, data, tlv, out, peeled.shared_secret)


def process_onion_message(
    node_key: bytes | crypto.SecretKey,
    message: bytes,
    *,
    known_payload_types: Set[int] = BOLT12_PAYLOAD_TYPES,
) -> ForwardMessage | DeliverMessage:
    """Handle one received ``onion_message`` as the node owning ``node_key``
    (BOLT 4 §Onion Messages, reader; §Onion Decryption; §Route Blinding).

    Raises only ``RemoteProtocolError`` subclasses for any ``message`` bytes; the
    caller ignores the message on error. ``known_payload_types`` are the even types
    >= 64 the caller understands (odd types are always accepted).
    """
    peeled = peel_onion_message(node_key, message, known_payload_types=known_payload_types)
    data, tlv = peeled.data, peeled.tlv
    if peeled.next_message is None:
        return DeliverMessage(
            path_id=data.path_id,
            reply_path=tlv.reply_path,
            payload=tlv.records,
            recipient_data=data,
            path_key=peeled.path_key,
        )
    if data.next_node_id is not None:
        return ForwardMessage(message=peeled.next_message, next_node_id=data.next_node_id)
    return ForwardMessage(message=peeled.next_message, short_channel_id=data.short_channel_id)


__all__ = [
    "BOLT12_PAYLOAD_TYPES",
    "LARGE_PACKET_SIZE",
    "MAX_PACKET_SIZE",
    "ONION_MESSAGE_TYPE",
    "SMALL_PACKET_SIZE",
    "STANDARD_PACKET_SIZES",
    "DeliverMessage",
    "ForwardMessage",
    "OnionMessage",
    "OnionMessageAction",
    "OnionMessagePayload",
    "OutgoingOnionMessage",
    "PeeledOnionMessage",
    "create_message_path",
    "create_onion_message",
    "peel_onion_message",
    "prepend_hops",
    "process_onion_message",
]

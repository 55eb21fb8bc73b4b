"""The mixer's client protocol, carried inside onion messages (docs/spec-mixer.md §3).

Strategy:
- Requests the mixer answers (info, buy, reissue, register, renew, hints, circuit) ride
  in the final hop's ``onionmsg_tlv`` as one odd record ``MIXER_REQUEST_TLV`` (odd and
  ≥ 64: a final-hop payload any reader may ignore). Responses come back as one
  ``MIXER_RESPONSE_TLV`` record along the request's ``reply_path``.
- Sending a message *through* the mixer needs no request: the client builds a
  blinded hop for the mixer whose ``encrypted_data_tlv`` names the next hop and carries
  the payment in the odd record ``MIXER_PAYMENT_TLV``. Only the mixer can decrypt it.
- A payment is a list of presentation-only spends of unit credentials, each bound to
  a message hash that names what it pays for (``request_message_hash``,
  ``send_message_hash``), so a spend cannot be moved to another request.
- ``onion_message_drop`` (type 515) is the backpressure signal of the 2022 proposal:
  ``u8 rate_limited ‖ 32-byte shared_secret_hash``.

Invariants: pure codecs; decoders of untrusted bytes raise only ``MalformedInputError``;
owner secrets, payment ids and issued MACs are hidden from ``repr``.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum
from typing import Final

import attrs

from hornet.credentials.params import SIGNED_PARAMS_LEN
from hornet.errors import LocalProtocolError, MalformedInputError

# --------------------------------------------------------------------------------------
# Constants

PROTOCOL_VERSION: Final = 1
#: onionmsg_tlv record (final hop) carrying a request to the mixer ("HM" 01, odd, ≥ 64).
MIXER_REQUEST_TLV: Final = 0x484D01
#: onionmsg_tlv record (final hop) carrying the mixer's response.
MIXER_RESPONSE_TLV: Final = 0x484D03
#: encrypted_data_tlv record of the mixer's own hop: the payment for forwarding.
MIXER_PAYMENT_TLV: Final = 0x484D05
#: encrypted_data_tlv record of the mixer's own hop: a delivery receipt is wanted.
MIXER_RECEIPT_REQUEST_TLV: Final = 0x484D07
#: onionmsg_tlv record (final hop) carrying the mixer's delivery receipt.
MIXER_RECEIPT_TLV: Final = 0x484D09
RECEIPT_ID_LEN: Final = 16
#: encrypted_data_tlv record of the mixer's hop: a message of a prepaid bundle.
MIXER_BUNDLE_TLV: Final = 0x484D0B
BUNDLE_KEY_LEN: Final = 32
BUNDLE_ID_LEN: Final = 16
BUNDLE_MAC_LEN: Final = 16
#: BOLT 1 message type of ``onion_message_drop`` (proposal, never merged).
ONION_MESSAGE_DROP_TYPE: Final = 515
ONION_MESSAGE_DROP_LEN: Final = 2 + 1 + 32
REQUEST_ID_LEN: Final = 16
NODE_ID_LEN: Final = 33
OWNER_SECRET_LEN: Final = 32
MAX_SPENDS: Final = 64
#: u32 price meaning "this service is not offered".
NOT_OFFERED: Final = 0xFFFFFFFF

_REQUEST_TAG: Final = b"hornet/mixer/v1/request"
_SEND_TAG: Final = b"hornet/mixer/v1/send"
_OWNER_TAG: Final = b"hornet/mixer/v1/scid-owner"
_DROP_TAG: Final = b"hornet/mixer/v1/onion_message_drop"


class Kind(IntEnum):
    """Request kinds (the byte after the version)."""

    INFO = 1
    BUY = 2
    REISSUE = 3
    REGISTER = 4
    RENEW = 5
    HINTS = 6
    CIRCUIT = 7
    BUNDLE = 8


class Status(IntEnum):
    """Response status codes."""

    OK = 0
    MALFORMED = 1
    BAD_CREDENTIAL = 2
    INSUFFICIENT_VALUE = 3
    DOUBLE_SPEND = 4
    WRONG_EPOCH = 5
    PAYMENT_REQUIRED = 6
    UNKNOWN_SCID = 7
    UNAUTHORISED = 8
    UNSUPPORTED = 9
    UNAVAILABLE = 10
    TOO_EARLY = 11


_PAID_KINDS: Final = frozenset({Kind.REGISTER, Kind.RENEW, Kind.HINTS, Kind.CIRCUIT,
                                Kind.BUNDLE})


def _size(value: bytes) -> str:
    """The ``repr`` of a field that may hold a secret: its length only."""
    return f"<{len(value)} bytes>"


# --------------------------------------------------------------------------------------
# Hashes


def tagged_hash(tag: bytes, data: bytes) -> bytes:
    """BIP-340 tagged hash: SHA256(SHA256(tag) ‖ SHA256(tag) ‖ data)."""
    tag_hash = hashlib.sha256(tag).digest()
    return hashlib.sha256(tag_hash + tag_hash + data).digest()


def send_message_hash(path_key: bytes) -> bytes:
    """What a forwarding payment's spends are bound to: the path key E at the mixer."""
    return hashlib.sha256(_SEND_TAG + path_key).digest()


def owner_hash(owner_secret: bytes) -> bytes:
    """The stored form of an SCID owner's secret."""
    return hashlib.sha256(_OWNER_TAG + owner_secret).digest()


def shared_secret_hash(shared_secret: bytes) -> bytes:
    """``shared_secret_hash`` of onion_message_drop (tagged hash of the Sphinx ss)."""
    return tagged_hash(_DROP_TAG, shared_secret)


# --------------------------------------------------------------------------------------
# Payment


@attrs.frozen
class Payment:
    """u8 n ‖ n × (u16 len ‖ spend request): presentation-only spends of unit credentials."""

    spends: tuple[bytes, ...] = ()

    def __attrs_post_init__(self) -> None:
        if len(self.spends) > MAX_SPENDS:
            raise LocalProtocolError("too many spends in one payment")
        if any(not 0 < len(s) <= 0xFFFF for s in self.spends):
            raise LocalProtocolError("spend length out of range")

    def encode(self) -> bytes:
        parts = [bytes((len(self.spends),))]
        for spend in self.spends:
            parts += [len(spend).to_bytes(2, "big"), spend]
        return b"".join(parts)

    @classmethod
    def decode_prefix(cls, data: bytes, offset: int = 0) -> tuple[Payment, int]:
        if offset >= len(data):
            raise MalformedInputError("payment truncated")
        count = data[offset]
        if count > MAX_SPENDS:
            raise MalformedInputError("payment has too many spends")
        offset += 1
        spends = []
        for _ in range(count):
            if offset + 2 > len(data):
                raise MalformedInputError("payment truncated")
            length = int.from_bytes(data[offset : offset + 2], "big")
            offset += 2
            if length == 0 or offset + length > len(data):
                raise MalformedInputError("spend truncated")
            spends.append(bytes(data[offset : offset + length]))
            offset += length
        return cls(tuple(spends)), offset

    @classmethod
    def decode(cls, data: bytes) -> Payment:
        payment, end = cls.decode_prefix(data)
        if end != len(data):
            raise MalformedInputError("trailing bytes after payment")
        return payment


# --------------------------------------------------------------------------------------
# Requests


@attrs.frozen
class Request:
    """One client request: ``u8 version ‖ u8 kind ‖ request_id(16) ‖ fields ‖ [payment]``.

    Fields by kind: INFO none; BUY / REISSUE the credential request (rest of the
    record, no payment); REGISTER target node id(33) ‖ owner hash(32); RENEW scid(8)
    ‖ owner secret(32); HINTS none; CIRCUIT u16 len ‖ setup; BUNDLE bundle key(32).
    REGISTER, RENEW, HINTS, CIRCUIT and BUNDLE end with a ``Payment`` (possibly of zero
    spends).
    """

    kind: Kind
    request_id: bytes
    #: A BUY's issuance request carries the payment id, a bearer secret: size only.
    credential_request: bytes = attrs.field(default=b"", repr=_size)
    target: bytes | None = None
    owner_hash: bytes | None = None
    scid: int | None = None
    owner_secret: bytes | None = attrs.field(default=None, repr=False)
    setup: bytes = b""
    bundle_key: bytes = attrs.field(default=b"", repr=False)
    payment: Payment = Payment()

    def __attrs_post_init__(self) -> None:
        if len(self.request_id) != REQUEST_ID_LEN:
            raise LocalProtocolError("request_id must be 16 bytes")
        kind = self.kind
        if kind == Kind.REGISTER and (
            self.target is None or len(self.target) != NODE_ID_LEN
            or self.owner_hash is None or len(self.owner_hash) != 32
        ):
            raise LocalProtocolError("REGISTER needs a 33-byte target and a 32-byte owner hash")
        if kind == Kind.RENEW and (
            self.scid is None or not 0 <= self.scid < 1 << 64
            or self.owner_secret is None or len(self.owner_secret) != OWNER_SECRET_LEN
        ):
            raise LocalProtocolError("RENEW needs an SCID and a 32-byte owner secret")
        if kind in (Kind.BUY, Kind.REISSUE) and not self.credential_request:
            raise LocalProtocolError("BUY/REISSUE carry a credential request")
        if len(self.setup) > 0xFFFF:
            raise LocalProtocolError("circuit setup too long")
        if kind == Kind.BUNDLE and len(self.bundle_key) != BUNDLE_KEY_LEN:
            raise LocalProtocolError("BUNDLE needs a 32-byte bundle key")

    def fields(self) -> bytes:
        """The kind-specific fields, i.e. everything the payment is bound to."""
        kind = self.kind
        if kind in (Kind.BUY, Kind.REISSUE):
            return self.credential_request
        if kind == Kind.REGISTER:
            assert self.target is not None and self.owner_hash is not None
            return self.target + self.owner_hash
        if kind == Kind.RENEW:
            assert self.scid is not None and self.owner_secret is not None
            return self.scid.to_bytes(8, "big") + self.owner_secret
        if kind == Kind.CIRCUIT:
            return len(self.setup).to_bytes(2, "big") + self.setup
        if kind == Kind.BUNDLE:
            return self.bundle_key
        return b""

    def header(self) -> bytes:
        return bytes((PROTOCOL_VERSION, self.kind)) + self.request_id

    def message_hash(self) -> bytes:
        """What this request's spends are bound to."""
        return hashlib.sha256(_REQUEST_TAG + self.header() + self.fields()).digest()

    def encode(self) -> bytes:
        out = self.header() + self.fields()
        if self.kind in _PAID_KINDS:
            out += self.payment.encode()
        return out

    @classmethod
    def decode(cls, data: bytes) -> Request:
        """Parse a ``MIXER_REQUEST_TLV`` value; ``MalformedInputError`` on any defect."""
        data = bytes(data)
        if len(data) < 2 + REQUEST_ID_LEN:
            raise MalformedInputError("mixer request truncated")
        if data[0] != PROTOCOL_VERSION:
            raise MalformedInputError("unknown mixer protocol version")
        try:
            kind = Kind(data[1])
        except ValueError as exc:
            raise MalformedInputError("unknown mixer request kind") from exc
        request_id = data[2 : 2 + REQUEST_ID_LEN]
        offset = 2 + REQUEST_ID_LEN
        rest = data[offset:]
        if kind == Kind.INFO:
            if rest:
                raise MalformedInputError("INFO carries no fields")
            return cls(kind, request_id)
        if kind in (Kind.BUY, Kind.REISSUE):
            if not rest:
                raise MalformedInputError("credential request missing")
            return cls(kind, request_id, credential_request=rest)
        fields: dict[str, object] = {}
        if kind == Kind.REGISTER:
            if len(rest) < NODE_ID_LEN + 32:
                raise MalformedInputError("REGISTER truncated")
            fields = {"target": rest[:NODE_ID_LEN],
                      "owner_hash": rest[NODE_ID_LEN : NODE_ID_LEN + 32]}
            offset += NODE_ID_LEN + 32
        elif kind == Kind.RENEW:
            if len(rest) < 8 + OWNER_SECRET_LEN:
                raise MalformedInputError("RENEW truncated")
            fields = {
                "scid": int.from_bytes(rest[:8], "big"),
                "owner_secret": rest[8 : 8 + OWNER_SECRET_LEN],
            }
            offset += 8 + OWNER_SECRET_LEN
        elif kind == Kind.CIRCUIT:
            if len(rest) < 2:
                raise MalformedInputError("CIRCUIT truncated")
            length = int.from_bytes(rest[:2], "big")
            if len(rest) < 2 + length:
                raise MalformedInputError("CIRCUIT setup truncated")
            fields = {"setup": rest[2 : 2 + length]}
            offset += 2 + length
        elif kind == Kind.BUNDLE:
            if len(rest) < BUNDLE_KEY_LEN:
                raise MalformedInputError("BUNDLE truncated")
            fields = {"bundle_key": rest[:BUNDLE_KEY_LEN]}
            offset += BUNDLE_KEY_LEN
        payment, end = Payment.decode_prefix(data, offset)
        if end != len(data):
            raise MalformedInputError("trailing bytes after mixer request")
        try:
            return cls(kind, request_id, payment=payment, **fields)  # type: ignore[arg-type]
        except LocalProtocolError as exc:  # pragma: no cover - lengths checked above
            raise MalformedInputError("mixer request fields out of range") from exc


# --------------------------------------------------------------------------------------
# Responses


@attrs.frozen
class Response:
    """``u8 version ‖ u8 kind ‖ request_id(16) ‖ u8 status ‖ body``."""

    kind: Kind
    request_id: bytes
    status: Status
    #: A BUY or REISSUE body holds the new credentials' MACs: size only.
    body: bytes = attrs.field(default=b"", repr=_size)

    def encode(self) -> bytes:
        return (bytes((PROTOCOL_VERSION, self.kind)) + self.request_id
                + bytes((self.status,)) + self.body)

    @classmethod
    def decode(cls, data: bytes) -> Response:
        data = bytes(data)
        if len(data) < 3 + REQUEST_ID_LEN:
            raise MalformedInputError("mixer response truncated")
        if data[0] != PROTOCOL_VERSION:
            raise MalformedInputError("unknown mixer protocol version")
        try:
            kind = Kind(data[1])
            status = Status(data[2 + REQUEST_ID_LEN])
        except ValueError as exc:
            raise MalformedInputError("unknown mixer response kind or status") from exc
        return cls(kind, data[2 : 2 + REQUEST_ID_LEN], status, data[3 + REQUEST_ID_LEN :])


@attrs.frozen
class Prices:
    """Prices in credential value units; ``None`` means the service is not offered."""

    message: int = 1
    scid_register: int = 2
    scid_renew: int = 1
    hints: int = 0
    circuit_open: int | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("message", "scid_register", "scid_renew", "hints", "circuit_open"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < NOT_OFFERED:
                raise LocalProtocolError(f"price {name} out of range")

    def encode(self) -> bytes:
        values = (self.message, self.scid_register, self.scid_renew, self.hints,
                  NOT_OFFERED if self.circuit_open is None else self.circuit_open)
        return b"".join(v.to_bytes(4, "big") for v in values)

    @classmethod
    def decode(cls, data: bytes) -> Prices:
        if len(data) != 20:
            raise MalformedInputError("prices must be 20 bytes")
        v = [int.from_bytes(data[i : i + 4], "big") for i in range(0, 20, 4)]
        if NOT_OFFERED in v[:4]:
            raise MalformedInputError("core prices must be offered")
        return cls(v[0], v[1], v[2], v[3], None if v[4] == NOT_OFFERED else v[4])


@attrs.frozen
class MixerInfo:
    """INFO body: node id(33) ‖ u64 now_ms ‖ prices(20) ‖ u32 scid_lifetime_s ‖
    u8 n ‖ n × signed issuer parameters (``SIGNED_PARAMS_LEN`` each) ‖ [relay key(33)].

    ``relay_key`` is the public key of the mixer's HORNET relay, present exactly when
    ``prices.circuit_open`` is offered (spec §9): the client finds the relay in the
    HORNET directory by it.
    """

    node_id: bytes
    now: float
    prices: Prices
    scid_lifetime_s: int
    signed_params: tuple[bytes, ...]
    relay_key: bytes | None = None

    def __attrs_post_init__(self) -> None:
        if (self.relay_key is None) != (self.prices.circuit_open is None):
            raise LocalProtocolError("a relay key comes exactly with a circuit_open price")
        if self.relay_key is not None and len(self.relay_key) != NODE_ID_LEN:
            raise LocalProtocolError("the relay key must be 33 bytes")

    def encode(self) -> bytes:
        return b"".join((
            self.node_id,
            int(self.now * 1000).to_bytes(8, "big"),
            self.prices.encode(),
            self.scid_lifetime_s.to_bytes(4, "big"),
            bytes((len(self.signed_params),)),
            *self.signed_params,
            self.relay_key or b"",
        ))

    @classmethod
    def decode(cls, data: bytes) -> MixerInfo:
        head = NODE_ID_LEN + 8 + 20 + 4 + 1
        if len(data) < head:
            raise MalformedInputError("INFO body truncated")
        count = data[head - 1]
        end = head + count * SIGNED_PARAMS_LEN
        prices = Prices.decode(data[NODE_ID_LEN + 8 : NODE_ID_LEN + 28])
        relay_len = 0 if prices.circuit_open is None else NODE_ID_LEN
        if len(data) != end + relay_len:
            raise MalformedInputError("INFO body length mismatch")
        params = tuple(
            bytes(data[head + i * SIGNED_PARAMS_LEN : head + (i + 1) * SIGNED_PARAMS_LEN])
            for i in range(count)
        )
        return cls(
            node_id=bytes(data[:NODE_ID_LEN]),
            now=int.from_bytes(data[NODE_ID_LEN : NODE_ID_LEN + 8], "big") / 1000,
            prices=prices,
            scid_lifetime_s=int.from_bytes(data[NODE_ID_LEN + 28 : NODE_ID_LEN + 32], "big"),
            signed_params=params,
            relay_key=bytes(data[end:]) if relay_len else None,
        )


@attrs.frozen
class ScidGrant:
    """REGISTER / RENEW body: scid(8) ‖ u64 expires_at_ms."""

    scid: int
    expires_at: float

    def encode(self) -> bytes:
        return self.scid.to_bytes(8, "big") + int(self.expires_at * 1000).to_bytes(8, "big")

    @classmethod
    def decode(cls, data: bytes) -> ScidGrant:
        if len(data) != 16:
            raise MalformedInputError("SCID grant must be 16 bytes")
        return cls(int.from_bytes(data[:8], "big"), int.from_bytes(data[8:], "big") / 1000)


# --------------------------------------------------------------------------------------
# onion_message_drop


@attrs.frozen
class OnionMessageDrop:
    """type 515: ``u8 rate_limited ‖ shared_secret_hash(32)``."""

    rate_limited: bool
    shared_secret_hash: bytes

    def encode(self) -> bytes:
        return (ONION_MESSAGE_DROP_TYPE.to_bytes(2, "big") + bytes((int(self.rate_limited),))
                + self.shared_secret_hash)

    @classmethod
    def decode(cls, message: bytes) -> OnionMessageDrop:
        if len(message) != ONION_MESSAGE_DROP_LEN:
            raise MalformedInputError("onion_message_drop must be 35 bytes")
        if int.from_bytes(message[:2], "big") != ONION_MESSAGE_DROP_TYPE:
            raise MalformedInputError("not an onion_message_drop")
        if message[2] > 1:
            raise MalformedInputError("rate_limited must be 0 or 1")
        return cls(bool(message[2]), bytes(message[3:]))


__all__ = [
    "MIXER_BUNDLE_TLV",
    "MIXER_PAYMENT_TLV",
    "MIXER_RECEIPT_REQUEST_TLV",
    "MIXER_RECEIPT_TLV",
    "MIXER_REQUEST_TLV",
    "MIXER_RESPONSE_TLV",
    "ONION_MESSAGE_DROP_TYPE",
    "PROTOCOL_VERSION",
    "REQUEST_ID_LEN",
    "Kind",
    "MixerInfo",
    "OnionMessageDrop",
    "Payment",
    "Prices",
    "Request",
    "Response",
    "ScidGrant",
    "Status",
    "owner_hash",
    "send_message_hash",
    "shared_secret_hash",
    "tagged_hash",
]

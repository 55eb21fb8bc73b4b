"""What may ride with a message the mixer forwards, besides a payment (spec §3.7-3.8).

- A bundle ticket (``MIXER_BUNDLE_TLV`` in the mixer's hop): message ``seq`` of a
  prepaid bundle, authenticated by a MAC under the bundle key and bound to the path key
  the mixer receives, in place of a payment.
- A receipt request (``MIXER_RECEIPT_REQUEST_TLV``): the mixer answers a paid message
  handed on with a ``Receipt`` along the given blinded path.

Invariants: pure codecs; decoders of untrusted bytes raise only ``MalformedInputError``;
the ticket MAC is hidden from ``repr``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

import attrs

from hornet.core.blinding import BlindedPath
from hornet.core.crypto import hmac_sha256
from hornet.errors import MalformedInputError
from hornet.mixer.protocol import (
    BUNDLE_ID_LEN,
    BUNDLE_MAC_LEN,
    PROTOCOL_VERSION,
    RECEIPT_ID_LEN,
)

_BUNDLE_TAG: Final = b"hornet/mixer/v1/bundle"


# --------------------------------------------------------------------------------------
# Bundles: one spend buys ``k`` messages


@attrs.frozen
class BundleGrant:
    """BUNDLE body: ``bundle_id (16) ‖ u16 k ‖ u64 expires_at_ms``."""

    bundle_id: bytes
    k: int
    expires_at: float

    def encode(self) -> bytes:
        return (self.bundle_id + self.k.to_bytes(2, "big")
                + int(self.expires_at * 1000).to_bytes(8, "big"))

    @classmethod
    def decode(cls, data: bytes) -> BundleGrant:
        if len(data) != BUNDLE_ID_LEN + 10:
            raise MalformedInputError("bundle grant must be 26 bytes")
        return cls(bytes(data[:BUNDLE_ID_LEN]),
                   int.from_bytes(data[BUNDLE_ID_LEN : BUNDLE_ID_LEN + 2], "big"),
                   int.from_bytes(data[BUNDLE_ID_LEN + 2 :], "big") / 1000)


def bundle_mac(bundle_key: bytes, seq: int, path_key: bytes) -> bytes:
    """The tag of message ``seq`` of a bundle, bound to the path key the mixer receives
    (as a spend is bound by ``send_message_hash``)."""
    return hmac_sha256(bundle_key, _BUNDLE_TAG + seq.to_bytes(4, "big")
                       + path_key)[:BUNDLE_MAC_LEN]


@attrs.frozen
class BundleTicket:
    """``mixer_bundle`` (the mixer's hop): ``bundle_id (16) ‖ u32 seq ‖ mac (16)``."""

    bundle_id: bytes
    seq: int
    mac: bytes = attrs.field(repr=False)

    def encode(self) -> bytes:
        return self.bundle_id + self.seq.to_bytes(4, "big") + self.mac

    @classmethod
    def decode(cls, data: bytes) -> BundleTicket:
        if len(data) != BUNDLE_ID_LEN + 4 + BUNDLE_MAC_LEN:
            raise MalformedInputError("bundle ticket must be 36 bytes")
        return cls(bytes(data[:BUNDLE_ID_LEN]),
                   int.from_bytes(data[BUNDLE_ID_LEN : BUNDLE_ID_LEN + 4], "big"),
                   bytes(data[BUNDLE_ID_LEN + 4 :]))


# --------------------------------------------------------------------------------------
# Delivery receipts


class ReceiptStatus(IntEnum):
    """What the mixer did with a paid message that asked for a receipt."""

    SENT = 0  # written to the next hop's connection
    QUEUED = 1  # waiting in the next hop's queue (its rate limit)


@attrs.frozen
class ReceiptRequest:
    """``mixer_receipt_request`` (the mixer's hop): ``receipt_id (16) ‖ blinded_path``."""

    receipt_id: bytes
    path: BlindedPath

    def encode(self) -> bytes:
        return self.receipt_id + self.path.encode()

    @classmethod
    def decode(cls, data: bytes) -> ReceiptRequest:
        if len(data) <= RECEIPT_ID_LEN:
            raise MalformedInputError("receipt request too short")
        path = BlindedPath.decode(bytes(data[RECEIPT_ID_LEN:]))
        return cls(bytes(data[:RECEIPT_ID_LEN]), path)


@attrs.frozen
class Receipt:
    """``mixer_receipt`` (final hop): ``u8 version ‖ receipt_id (16) ‖ u8 status``."""

    receipt_id: bytes
    status: ReceiptStatus

    def encode(self) -> bytes:
        return bytes((PROTOCOL_VERSION,)) + self.receipt_id + bytes((self.status,))

    @classmethod
    def decode(cls, data: bytes) -> Receipt:
        if len(data) != 2 + RECEIPT_ID_LEN:
            raise MalformedInputError("receipt must be 18 bytes")
        if data[0] != PROTOCOL_VERSION:
            raise MalformedInputError("unknown receipt version")
        try:
            status = ReceiptStatus(data[-1])
        except ValueError:
            raise MalformedInputError("unknown receipt status") from None
        return cls(bytes(data[1:-1]), status)


__all__ = ["BundleGrant", "BundleTicket", "Receipt", "ReceiptRequest", "ReceiptStatus",
           "bundle_mac"]

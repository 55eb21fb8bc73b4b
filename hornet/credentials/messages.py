"""The scheme's wire messages and the client's credential record (SPEC.md §9).

Every request of a type has one fixed length for given ``CredentialParams``, so
``decode`` checks the length first and then reads fields in order with a strict
``Reader``: only ``MalformedCredentialError`` / ``InvalidPointError`` escape on
untrusted bytes. Secret fields (client blindings, MACs, payment ids) stay out of
``repr``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence, Sized
from typing import Final

import attrs

from hornet.credentials.encoding import (
    POINT_LEN,
    SCALAR_LEN,
    Reader,
    encode_scalar,
    expect_length,
)
from hornet.credentials.group import GroupElement, hash_to_u
from hornet.credentials.params import CredentialParams
from hornet.errors import MalformedCredentialError

#: Request and response type bytes (first byte of every message).
ISSUANCE: Final = 0x01
REISSUE: Final = 0x02
SPEND: Final = 0x03
ROLLOVER: Final = 0x04
CREDENTIALS_RESPONSE: Final = 0x80

_REQUEST_ID_TAG: Final = b"hornet/credentials/v1/request-id"
PRESENTATION_LEN: Final = 5 * POINT_LEN
MESSAGE_HASH_LEN: Final = 32
#: Wallet encoding of a ``Credential``: epoch ‖ value ‖ r ‖ t ‖ V.
CREDENTIAL_LEN: Final = 4 + 8 + 32 + 32 + 33
#: Witness responses of a presentation-only spend: z, z0, t, r.
SPEND_RESPONSES: Final = 4
#: Witness responses of the issuance proof: w, w', x0, x1, ya.
ISSUER_RESPONSES: Final = 5


def request_id(data: bytes, message_hash: bytes) -> bytes:
    """The idempotency key of a request: SHA-256(tag ‖ message hash ‖ request bytes)."""
    return hashlib.sha256(_REQUEST_ID_TAG + message_hash + data).digest()


def size_repr(unit: str) -> Callable[[Sized], str]:
    """A ``repr`` for a field whose contents are secret: its size only."""
    return lambda value: f"<{len(value)} {unit}>"


# --------------------------------------------------------------------------------------
# Credentials and presentations


@attrs.frozen(eq=False)
class Credential:
    """Client state of one credential: (a, r, t, V) plus U = HashToG(t), T = t·U (§4.1)."""

    epoch: int
    value: int
    r: int = attrs.field(repr=False)
    t: int = attrs.field(repr=False)
    V: GroupElement = attrs.field(repr=False)
    U: GroupElement = attrs.field(repr=False)
    T: GroupElement = attrs.field(repr=False)

    def to_bytes(self) -> bytes:
        """epoch(4) ‖ value(8) ‖ r(32) ‖ t(32) ‖ V(33): wallet storage (secret!)."""
        return (
            self.epoch.to_bytes(4, "big")
            + self.value.to_bytes(8, "big")
            + encode_scalar(self.r)
            + encode_scalar(self.t)
            + self.V.encode()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Credential:
        expect_length(data, CREDENTIAL_LEN, "credential")
        r = Reader(data, "credential")
        epoch, value, blind, t, v = r.uint(4), r.uint(8), r.scalar(), r.scalar(), r.point()
        return _make_credential(epoch, value, blind, t, v)


def _make_credential(epoch: int, value: int, r: int, t: int, v: GroupElement) -> Credential:
    u = hash_to_u(t)
    return Credential(epoch, value, r, t, v, u, u * t)


@attrs.frozen(eq=False)
class Presentation:
    """Show of one credential: Ca, Cx0, Cx1, CV and the serial S = r·Gs (§1.6, §1.7)."""

    Ca: GroupElement
    Cx0: GroupElement
    Cx1: GroupElement
    CV: GroupElement
    S: GroupElement

    def encode(self) -> bytes:
        return b"".join(p.encode() for p in (self.Ca, self.Cx0, self.Cx1, self.CV, self.S))

    @classmethod
    def read(cls, reader: Reader) -> Presentation:
        return cls(reader.point(), reader.point(), reader.point(), reader.point(), reader.point())

    @property
    def serial(self) -> bytes:
        return self.S.encode()


# --------------------------------------------------------------------------------------
# Requests and responses


def spend_request_len(params: CredentialParams) -> int:
    del params  # the spend shape does not depend on n or k
    return 1 + 4 + PRESENTATION_LEN + SCALAR_LEN * (1 + SPEND_RESPONSES)


def reissue_request_len(params: CredentialParams) -> int:
    k, n = params.k, params.range_bits
    return (
        1 + 4 + 4 + 8
        + k * PRESENTATION_LEN
        + k * n * POINT_LEN
        + SCALAR_LEN * (1 + 5 * k + 2)
        + k * n * 3 * SCALAR_LEN
    )


def issuance_request_len(params: CredentialParams) -> int:
    return 1 + 4 + 32 + params.issuance_k * (8 + POINT_LEN) + SCALAR_LEN * (1 + params.issuance_k)


def response_len(count: int) -> int:
    return 1 + 4 + count * (SCALAR_LEN + POINT_LEN) + SCALAR_LEN * (1 + ISSUER_RESPONSES)


def _read_type(reader: Reader, expected: Sequence[int], what: str) -> int:
    kind = reader.uint(1)
    if kind not in expected:
        raise MalformedCredentialError(f"{what}: unexpected message type")
    return kind


@attrs.frozen(eq=False)
class SpendRequest:
    """type(1) ‖ epoch(4) ‖ Ca Cx0 Cx1 CV S (5×33) ‖ e(32) ‖ s_z s_z0 s_t s_r (4×32)."""

    epoch: int
    presentation: Presentation
    e: int
    responses: tuple[int, ...]

    def encode(self) -> bytes:
        return (
            bytes((SPEND,))
            + self.epoch.to_bytes(4, "big")
            + self.presentation.encode()
            + encode_scalar(self.e)
            + b"".join(encode_scalar(s) for s in self.responses)
        )

    @classmethod
    def decode(cls, data: bytes, params: CredentialParams) -> SpendRequest:
        expect_length(data, spend_request_len(params), "spend request")
        r = Reader(data, "spend request")
        _read_type(r, (SPEND,), "spend request")
        epoch = r.uint(4)
        pres = Presentation.read(r)
        e = r.scalar()
        responses = tuple(r.scalar() for _ in range(SPEND_RESPONSES))
        r.end()
        return cls(epoch, pres, e, responses)


@attrs.frozen(eq=False)
class ReissueRequest:
    """REISSUE / ROLLOVER: type ‖ epoch_in ‖ epoch_out ‖ Δ(i64) ‖ k presentations ‖
    k×n bit commitments ‖ e ‖ (5k+2) responses ‖ k×n (c0, s0, s1)."""

    kind: int
    epoch_in: int
    epoch_out: int
    delta: int
    presentations: tuple[Presentation, ...]
    bit_commitments: tuple[tuple[GroupElement, ...], ...]
    e: int
    responses: tuple[int, ...]
    bit_responses: tuple[tuple[int, int, int], ...]

    def encode(self) -> bytes:
        parts = [
            bytes((self.kind,)),
            self.epoch_in.to_bytes(4, "big"),
            self.epoch_out.to_bytes(4, "big"),
            self.delta.to_bytes(8, "big", signed=True),
        ]
        parts.extend(p.encode() for p in self.presentations)
        parts.extend(b.encode() for row in self.bit_commitments for b in row)
        parts.append(encode_scalar(self.e))
        parts.extend(encode_scalar(s) for s in self.responses)
        parts.extend(encode_scalar(x) for triple in self.bit_responses for x in triple)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes, params: CredentialParams) -> ReissueRequest:
        expect_length(data, reissue_request_len(params), "reissue request")
        k, n = params.k, params.range_bits
        r = Reader(data, "reissue request")
        kind = _read_type(r, (REISSUE, ROLLOVER), "reissue request")
        epoch_in, epoch_out, delta = r.uint(4), r.uint(4), r.sint(8)
        presentations = tuple(Presentation.read(r) for _ in range(k))
        bits = tuple(tuple(r.point() for _ in range(n)) for _ in range(k))
        e = r.scalar()
        responses = tuple(r.scalar() for _ in range(5 * k + 2))
        bit_responses = tuple((r.scalar(), r.scalar(), r.scalar()) for _ in range(k * n))
        r.end()
        return cls(kind, epoch_in, epoch_out, delta, presentations, bits, e, responses,
                   bit_responses)


@attrs.frozen(eq=False)
class IssuanceRequest:
    """type(1) ‖ epoch(4) ‖ payment_id(32) ‖ K×(value(8) ‖ M(33)) ‖ e(32) ‖ K×s_r(32).

    ``payment_id`` (a voucher code or paid invoice id) is a bearer secret until the
    issuer has used it: it stays out of ``repr``."""

    epoch: int
    payment_id: bytes = attrs.field(repr=False)
    values: tuple[int, ...]
    commitments: tuple[GroupElement, ...]
    e: int
    responses: tuple[int, ...]

    def encode(self) -> bytes:
        parts = [bytes((ISSUANCE,)), self.epoch.to_bytes(4, "big"), self.payment_id]
        for value, m in zip(self.values, self.commitments, strict=True):
            parts.append(value.to_bytes(8, "big") + m.encode())
        parts.append(encode_scalar(self.e))
        parts.extend(encode_scalar(s) for s in self.responses)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes, params: CredentialParams) -> IssuanceRequest:
        expect_length(data, issuance_request_len(params), "issuance request")
        r = Reader(data, "issuance request")
        _read_type(r, (ISSUANCE,), "issuance request")
        epoch = r.uint(4)
        payment_id = r.take(32)
        values: list[int] = []
        commitments: list[GroupElement] = []
        for _ in range(params.issuance_k):
            value = r.uint(8)
            if value > params.max_value:
                raise MalformedCredentialError("issuance request: value out of range")
            values.append(value)
            commitments.append(r.point())
        e = r.scalar()
        responses = tuple(r.scalar() for _ in range(params.issuance_k))
        r.end()
        return cls(epoch, payment_id, tuple(values), tuple(commitments), e, responses)


@attrs.frozen(eq=False)
class CredentialsResponse:
    """type(1) ‖ epoch(4) ‖ m×(t(32) ‖ V(33)) ‖ e(32) ‖ 5 responses: MACs + π_iparams.

    The MACs (t, V) become the client's credentials: kept out of ``repr``."""

    epoch: int
    macs: tuple[tuple[int, GroupElement], ...] = attrs.field(repr=size_repr("MACs"))
    e: int
    responses: tuple[int, ...]

    def encode(self) -> bytes:
        parts = [bytes((CREDENTIALS_RESPONSE,)), self.epoch.to_bytes(4, "big")]
        parts.extend(encode_scalar(t) + v.encode() for t, v in self.macs)
        parts.append(encode_scalar(self.e))
        parts.extend(encode_scalar(s) for s in self.responses)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes, count: int) -> CredentialsResponse:
        expect_length(data, response_len(count), "credentials response")
        r = Reader(data, "credentials response")
        _read_type(r, (CREDENTIALS_RESPONSE,), "credentials response")
        epoch = r.uint(4)
        macs: list[tuple[int, GroupElement]] = []
        for _ in range(count):
            t = r.scalar()
            if t == 0:
                raise MalformedCredentialError("credentials response: zero MAC nonce")
            macs.append((t, r.point()))
        e = r.scalar()
        responses = tuple(r.scalar() for _ in range(ISSUER_RESPONSES))
        r.end()
        return cls(epoch, tuple(macs), e, responses)

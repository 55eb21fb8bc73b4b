"""WabiSabi-style KVAC: issuance, k-in/k-out reissuance, presentation-only spend, rollover.

The credential scheme is CPZ19 with one group attribute Ma = a·Gg + r·Gh, a Pedersen
commitment to the amount a (WabiSabi, Ficsór–Kogman–Ontivero–Seres 2021). Statements
and layouts are those of wabisabi.md §4.3 and SPEC.md §9.

Strategy (sans-IO):
- Pure functions of (bytes, keys, rng, now). Nothing here reads a clock or an RNG of
  its own, or touches storage: ``hornet.credentials.service`` joins this module with
  a ``SpentSerialStore`` and a payment backend.
- Request types and fixed shapes (every request of a type has the same length):
  ISSUANCE (known public values, no range proof, bound to a payment id);
  REISSUE (k in, k out, range proofs of n bits, balance with public Δ, serials);
  SPEND (one unit credential, no outputs: the hot path, bound to a message hash);
  ROLLOVER (REISSUE from epoch e − 1 into epoch e with Δ = 0).
- Issuer verification (``Issuer.verify_*``) parses strictly, checks epochs and cheap
  shape conditions, then the single Fiat–Shamir proof. It returns a ticket; MACs are
  made by ``Issuer.issue`` only after the store has accepted the serials.

Invariants:
- Verification raises (``InvalidProofError`` and friends) and never returns False.
- Only ``RemoteProtocolError`` subclasses escape on untrusted bytes.
- Client secrets (r, t, z, bit blindings) and issuer keys never appear in ``repr``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Final

import attrs

from hornet.core.crypto import SECP256K1_ORDER, ct_equal
from hornet.credentials.encoding import (
    POINT_LEN,
    SCALAR_LEN,
    Reader,
    encode_scalar,
    expect_length,
)
from hornet.credentials.group import (
    FixedBase,
    Generators,
    GroupElement,
    generators,
    group_sum,
    hash_to_u,
    powers_of_two_sum,
)
from hornet.credentials.params import CredentialParams, IssuerPublicParams, IssuerSecretKey
from hornet.credentials.proofs import (
    BitProverState,
    Equation,
    absorb_commitments,
    absorb_statement,
    bit_commit,
    bit_commitment,
    bit_recompute,
    bit_respond,
    commit,
    recompute,
    respond,
    term,
)
from hornet.credentials.transcript import NonceSource, Rng, Transcript, random_scalar
from hornet.errors import (
    DoubleSpendError,
    InsufficientValueError,
    InvalidProofError,
    LocalProtocolError,
    MalformedCredentialError,
    WrongEpochError,
)

q: Final = SECP256K1_ORDER

#: Request and response type bytes (first byte of every message).
ISSUANCE: Final = 0x01
REISSUE: Final = 0x02
SPEND: Final = 0x03
ROLLOVER: Final = 0x04
CREDENTIALS_RESPONSE: Final = 0x80

_LABELS: Final = {
    ISSUANCE: b"issuance",
    REISSUE: b"reissue",
    SPEND: b"spend",
    ROLLOVER: b"rollover",
}
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


def _count(unit: str) -> Callable[[Sized], str]:
    """A ``repr`` for a field whose contents are secret: its size only."""
    return lambda value: f"<{len(value)} {unit}>"


def _check_message_hash(message_hash: bytes) -> None:
    if len(message_hash) != MESSAGE_HASH_LEN:
        raise LocalProtocolError("message_hash must be 32 bytes")


def _check_challenge(expected: int, received: int) -> None:
    if received == 0 or not ct_equal(encode_scalar(expected), encode_scalar(received)):
        raise InvalidProofError("credential proof does not verify")


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


def _present(g: Generators, cred: Credential, z: int) -> Presentation:
    """Ca = z·Ga + Ma, Cx0 = z·Gx0 + U, Cx1 = z·Gx1 + t·U, CV = z·GV + V, S = r·Gs.

    a·Gg is computed as (a+1)·Gg − Gg, so that a zero-value credential (a secret)
    costs the same multiplication as any other instead of skipping it.
    """
    ca_parts = (g.Ga.mul_secret(z), g.Gg.mul_secret(cred.value + 1), -g.Gg.point,
                g.Gh.mul_secret(cred.r))
    return Presentation(
        Ca=group_sum(ca_parts),  # one 4-point combine for every value
        Cx0=group_sum((g.Gx0.point * z, cred.U)),
        Cx1=group_sum((g.Gx1.point * z, cred.T)),
        CV=group_sum((g.GV.point * z, cred.V)),
        S=g.Gs.point * cred.r,
    )


def _presentation_equations(g: Generators, i_base: FixedBase, pres: Presentation,
                            z_point: GroupElement, first: int) -> list[Equation]:
    """ShowCredential (witness z, z0 = −t·z, t, a, r at indices first..first+4):

    Z = z·I;  Cx1 = z·Gx1 + z0·Gx0 + t·Cx0;  Ca = z·Ga + a·Gg + r·Gh;  S = r·Gs.
    """
    z, z0, t, a, r = range(first, first + 5)
    return [
        Equation(z_point, (term(z, i_base),)),
        Equation(pres.Cx1, (term(z, g.Gx1), term(z0, g.Gx0), term(t, pres.Cx0))),
        Equation(pres.Ca, (term(z, g.Ga), term(a, g.Gg), term(r, g.Gh))),
        Equation(pres.S, (term(r, g.Gs),)),
    ]


def _spend_equations(g: Generators, i_base: FixedBase, pres: Presentation,
                     z_point: GroupElement, ca_minus_value: GroupElement) -> list[Equation]:
    """Presentation-only spend of a credential of public value u (witness z, z0, t, r):

    Z = z·I;  Cx1 = z·Gx1 + z0·Gx0 + t·Cx0;  Ca − u·Gg = z·Ga + r·Gh;  S = r·Gs.
    The third equation is also the balance equation Δ·Gg + Ca = z·Ga + r·Gh, Δ = −u.
    """
    return [
        Equation(z_point, (term(0, i_base),)),
        Equation(pres.Cx1, (term(0, g.Gx1), term(1, g.Gx0), term(2, pres.Cx0))),
        Equation(ca_minus_value, (term(0, g.Ga), term(3, g.Gh))),
        Equation(pres.S, (term(3, g.Gs),)),
    ]


def _issuance_equations(g: Generators, public: IssuerPublicParams, gv_minus_i: GroupElement,
                        macs: Sequence[tuple[int, GroupElement, GroupElement]],
                        requested: Sequence[GroupElement]) -> list[Equation]:
    """π_iparams over witness (w, w', x0, x1, ya), one proof for every MAC (§4.3):

    Cw = w·Gw + w'·Gwp;  GV − I = x0·Gx0 + x1·Gx1 + ya·Ga;
    V_j = w·Gw + x0·U_j + t_j·x1·U_j + ya·M_j   for each (t_j, U_j, V_j).
    """
    eqs = [
        Equation(public.Cw, (term(0, g.Gw), term(1, g.Gwp))),
        Equation(gv_minus_i, (term(2, g.Gx0), term(3, g.Gx1), term(4, g.Ga))),
    ]
    for (t, u, v), m in zip(macs, requested, strict=True):
        eqs.append(Equation(v, (term(0, g.Gw), term(2, u), term(3, u, t), term(4, m))))
    return eqs


def _open_transcript(kind: int, params: CredentialParams, message_hash: bytes) -> Transcript:
    transcript = Transcript(_LABELS[kind])
    transcript.append(b"params", params.digest())
    transcript.append(b"message", message_hash)
    return transcript


# --------------------------------------------------------------------------------------
# Wire messages


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
    macs: tuple[tuple[int, GroupElement], ...] = attrs.field(repr=_count("MACs"))
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


# --------------------------------------------------------------------------------------
# Issuer


@attrs.frozen
class VerifiedSpend:
    """A verified presentation-only spend: record ``serial`` in ``epoch``'s spent set."""

    epoch: int
    serial: bytes
    request_id: bytes


@attrs.frozen(eq=False)
class IssuanceTicket:
    """A verified issuance/reissuance/rollover request waiting for its MACs.

    ``serials`` must be committed to the store of ``epoch_in`` before ``Issuer.issue``.
    ``value`` is the total public value requested (issuance; 0 otherwise).
    """

    kind: int
    epoch_in: int | None
    epoch_out: int
    serials: tuple[bytes, ...]
    request_id: bytes
    requested: tuple[GroupElement, ...] = attrs.field(repr=False)
    payment_id: bytes | None = attrs.field(default=None, repr=False)  # a bearer secret
    value: int = 0


@attrs.frozen(eq=False)
class _EpochKey:
    """One epoch's key with the per-epoch constants the verifiers need every time."""

    key: IssuerSecretKey = attrs.field(repr=False)
    public: IssuerPublicParams
    W: GroupElement = attrs.field(repr=False)
    i_base: FixedBase
    gv_minus_i: GroupElement
    #: −W and (−x0, −x1, −ya) mod q, so that Z is one 5-point combine.
    minus_w: GroupElement = attrs.field(repr=False)
    minus_x: tuple[int, int, int] = attrs.field(repr=False)
    public_encoded: bytes


@attrs.define
class Issuer:
    """The issuer's (mixer's) half of the scheme: verify requests, issue MACs.

    Holds one ``IssuerSecretKey`` per epoch. Time is passed in as ``now`` (seconds).
    """

    params: CredentialParams
    _epochs: dict[int, _EpochKey] = attrs.field(factory=dict, repr=False)
    _minus_unit_gg: GroupElement | None = attrs.field(default=None, repr=False)

    @classmethod
    def create(cls, params: CredentialParams, keys: Mapping[int, IssuerSecretKey]) -> Issuer:
        issuer = cls(params)
        for epoch, key in keys.items():
            issuer.add_epoch_key(epoch, key)
        return issuer

    def add_epoch_key(self, epoch: int, key: IssuerSecretKey) -> IssuerPublicParams:
        g = generators()
        public = key.public(epoch)
        w_point = g.Gw.point * key.w
        i_base = FixedBase("I", public.I)
        # Build the verifiers' fixed-base tables now (about 30 ms each, the generators'
        # once per process) rather than inside the first spend of the epoch.
        for base in (i_base, g.Gx0, g.Gx1, g.Ga, g.Gs, g.Gg):
            base.table()
        self._epochs[epoch] = _EpochKey(
            key, public, w_point, i_base, g.GV.point - public.I,
            minus_w=-w_point, minus_x=((-key.x0) % q, (-key.x1) % q, (-key.ya) % q),
            public_encoded=public.encode(),
        )
        return public

    def drop_epoch_key(self, epoch: int) -> None:
        self._epochs.pop(epoch, None)

    def public_params(self, epoch: int) -> IssuerPublicParams:
        return self._key(epoch).public

    def epochs(self) -> tuple[int, ...]:
        return tuple(sorted(self._epochs))

    def _minus_unit(self) -> GroupElement:
        """−u·Gg for the spend value u (cached: the hot path needs it every time)."""
        if self._minus_unit_gg is None:
            self._minus_unit_gg = -(generators().Gg.point * self.params.unit_value)
        return self._minus_unit_gg

    def _key(self, epoch: int) -> _EpochKey:
        ek = self._epochs.get(epoch)
        if ek is None:
            raise WrongEpochError("no issuer key for this epoch")
        return ek

    def _presentable(self, epoch: int, now: float) -> _EpochKey:
        if epoch not in self.params.presentable_epochs(now):
            raise WrongEpochError("credential epoch is not accepted now")
        return self._key(epoch)

    def _current(self, epoch: int, now: float) -> _EpochKey:
        if epoch != self.params.epoch_at(now):
            raise WrongEpochError("requested epoch is not the current epoch")
        return self._key(epoch)

    @staticmethod
    def _z(ek: _EpochKey, pres: Presentation) -> GroupElement:
        """Z = CV − (W + x0·Cx0 + x1·Cx1 + ya·Ca) = CV + (−W) + (−x0)·Cx0 + …, one combine.

        The three multiplications by secret-key scalars are ``tweak_mul``
        (libsecp256k1 ``ecmult_const``, constant time): never a table.
        """
        m0, m1, ma = ek.minus_x
        return group_sum((pres.CV, ek.minus_w, pres.Cx0 * m0, pres.Cx1 * m1, pres.Ca * ma))

    # -- presentation-only spend (hot path) ------------------------------------------
    def verify_spend(self, data: bytes, *, message_hash: bytes, now: float) -> VerifiedSpend:
        """Verify a SPEND of one credential of value ``unit_value`` bound to ``message_hash``."""
        _check_message_hash(message_hash)
        req = SpendRequest.decode(data, self.params)
        ek = self._presentable(req.epoch, now)
        g = generators()
        pres = req.presentation
        ca_minus_value = group_sum((pres.Ca, self._minus_unit()))
        eqs = _spend_equations(g, ek.i_base, pres, self._z(ek, pres), ca_minus_value)
        commitments = recompute(eqs, req.responses, req.e)
        transcript = _open_transcript(SPEND, self.params, message_hash)
        transcript.append(b"iparams", ek.public_encoded)
        absorb_statement(transcript, eqs)
        absorb_commitments(transcript, commitments)
        _check_challenge(transcript.challenge(), req.e)
        return VerifiedSpend(req.epoch, pres.serial, request_id(data, message_hash))

    # -- reissuance and rollover ------------------------------------------------------
    def verify_reissue(self, data: bytes, *, message_hash: bytes, now: float,
                       price: int = 0) -> IssuanceTicket:
        """Verify a REISSUE (Δ ≤ −price) or ROLLOVER (epoch e−1 → e, Δ = 0) request."""
        _check_message_hash(message_hash)
        params = self.params
        req = ReissueRequest.decode(data, params)
        if req.kind == ROLLOVER:
            if req.epoch_in + 1 != req.epoch_out:
                raise WrongEpochError("rollover must go from the previous epoch")
            if req.delta != 0:
                raise MalformedCredentialError("rollover must have a zero balance")
        elif req.epoch_in != req.epoch_out:
            raise WrongEpochError("reissue must stay in one epoch")
        ek_out = self._current(req.epoch_out, now)
        ek_in = self._presentable(req.epoch_in, now)
        if abs(req.delta) > params.k * params.max_value:
            raise MalformedCredentialError("reissue request: balance out of range")
        if req.kind == REISSUE and req.delta > -price:
            raise InsufficientValueError("reissue balance does not pay the price")
        serials = tuple(p.serial for p in req.presentations)
        if len(set(serials)) != len(serials):
            raise DoubleSpendError("a credential is presented twice in one request")
        g = generators()
        requested = tuple(powers_of_two_sum(row) for row in req.bit_commitments)
        if any(m.is_infinity for m in requested):
            raise MalformedCredentialError("reissue request: requested commitment is infinity")
        eqs = _reissue_equations(g, ek_in.i_base, req.presentations,
                                 z_points=[self._z(ek_in, p) for p in req.presentations],
                                 requested=requested, delta=req.delta)
        commitments = recompute(eqs, req.responses, req.e)
        minus_gg = -g.Gg.point
        bit_rs: list[bytes] = []
        flat_bits = [b for row in req.bit_commitments for b in row]
        for b, (c0, s0, s1) in zip(flat_bits, req.bit_responses, strict=True):
            r0, r1 = bit_recompute(b, minus_gg, req.e, c0=c0, s0=s0, s1=s1)
            bit_rs.append(r0.encode() + r1.encode())
        transcript = _reissue_transcript(req.kind, params, message_hash,
                                         public_in=ek_in.public, public_out=ek_out.public,
                                         delta=req.delta, eqs=eqs, flat_bits=flat_bits)
        absorb_commitments(transcript, commitments)
        transcript.append_many(b"bit-R", bit_rs)
        _check_challenge(transcript.challenge(), req.e)
        return IssuanceTicket(req.kind, req.epoch_in, req.epoch_out, serials,
                              request_id(data, message_hash), requested)

    # -- known-value issuance ---------------------------------------------------------
    def verify_issuance(self, data: bytes, *, now: float) -> IssuanceTicket:
        """Verify an ISSUANCE request: PK{r_j: M_j − v_j·Gg = r_j·Gh} for every slot."""
        req = IssuanceRequest.decode(data, self.params)
        ek = self._current(req.epoch, now)
        g = generators()
        eqs = _known_value_equations(
            g, [m - g.Gg.mul_public(v) for v, m in zip(req.values, req.commitments, strict=True)]
        )
        commitments = recompute(eqs, req.responses, req.e)
        transcript = _issuance_request_transcript(
            self.params, ek.public, payment_id=req.payment_id, values=req.values,
            commitments=req.commitments, eqs=eqs)
        absorb_commitments(transcript, commitments)
        _check_challenge(transcript.challenge(), req.e)
        return IssuanceTicket(ISSUANCE, None, req.epoch, (), request_id(data, bytes(32)),
                              req.commitments, req.payment_id, sum(req.values))

    # -- MACs and π_iparams -----------------------------------------------------------
    def issue(self, ticket: IssuanceTicket, rng: Rng) -> bytes:
        """MAC every requested attribute under epoch_out's key and prove it (§1.5).

        V = W + (x0 + x1·t)·U + ya·M with t random and U = HashToG(t). ``rng`` must
        be a CSPRNG in production.
        """
        ek = self._key(ticket.epoch_out)
        key = ek.key
        g = generators()
        macs: list[tuple[int, GroupElement, GroupElement]] = []
        for m in ticket.requested:
            while True:
                t = random_scalar(rng)
                u = hash_to_u(t)
                v = group_sum((ek.W, u * ((key.x0 + key.x1 * t) % q), m * key.ya))
                if not v.is_infinity:
                    break
            macs.append((t, u, v))
        eqs = _issuance_equations(g, ek.public, ek.gv_minus_i, macs, ticket.requested)
        transcript = _response_transcript(self.params, ek.public, ticket.request_id, eqs)
        nonces_src = NonceSource(transcript, key.scalars(), rng)
        nonces = [nonces_src.scalar() for _ in range(ISSUER_RESPONSES)]
        absorb_commitments(transcript, commit(eqs, nonces))
        e = transcript.challenge()
        response = CredentialsResponse(
            ticket.epoch_out,
            tuple((t, v) for t, _, v in macs),
            e,
            tuple(respond(nonces, key.scalars(), e)),
        )
        return response.encode()


def _reissue_equations(g: Generators, i_base: FixedBase, presentations: Sequence[Presentation],
                       *, z_points: Sequence[GroupElement], requested: Sequence[GroupElement],
                       delta: int) -> list[Equation]:
    """k ShowCredential statements plus the balance (§1.8, witness Σz, Δr last):

    Δ·Gg + ΣCa − ΣM' = (Σz)·Ga + Δr·Gh.
    """
    eqs: list[Equation] = []
    for i, (pres, z_point) in enumerate(zip(presentations, z_points, strict=True)):
        eqs.extend(_presentation_equations(g, i_base, pres, z_point, 5 * i))
    k = len(presentations)
    balance = group_sum(
        (g.Gg.mul_public(delta), *(p.Ca for p in presentations), *(-m for m in requested))
    )
    eqs.append(Equation(balance, (term(5 * k, g.Ga), term(5 * k + 1, g.Gh))))
    return eqs


def _reissue_transcript(kind: int, params: CredentialParams, message_hash: bytes,
                        *, public_in: IssuerPublicParams, public_out: IssuerPublicParams,
                        delta: int, eqs: Sequence[Equation],
                        flat_bits: Sequence[GroupElement]) -> Transcript:
    transcript = _open_transcript(kind, params, message_hash)
    transcript.append(b"iparams-in", public_in.encode())
    transcript.append(b"iparams-out", public_out.encode())
    transcript.append(b"delta", delta.to_bytes(8, "big", signed=True))
    absorb_statement(transcript, eqs)
    transcript.append_many(b"bits", (b.encode() for b in flat_bits))
    return transcript


def _known_value_equations(g: Generators, lhs: Sequence[GroupElement]) -> list[Equation]:
    """M_j − v_j·Gg = r_j·Gh (witness r_j at index j)."""
    return [Equation(point, (term(j, g.Gh),)) for j, point in enumerate(lhs)]


def _issuance_request_transcript(params: CredentialParams, public: IssuerPublicParams,
                                 *, payment_id: bytes, values: Sequence[int],
                                 commitments: Sequence[GroupElement],
                                 eqs: Sequence[Equation]) -> Transcript:
    transcript = _open_transcript(ISSUANCE, params, bytes(32))
    transcript.append(b"iparams", public.encode())
    transcript.append(b"payment", payment_id)
    transcript.append_many(
        b"values", (v.to_bytes(8, "big") + m.encode() for v, m in zip(values, commitments,
                                                                       strict=True))
    )
    absorb_statement(transcript, eqs)
    return transcript


def _response_transcript(params: CredentialParams, public: IssuerPublicParams,
                         req_id: bytes, eqs: Sequence[Equation]) -> Transcript:
    transcript = Transcript(b"issue")
    transcript.append(b"params", params.digest())
    transcript.append(b"iparams", public.encode())
    transcript.append(b"request", req_id)
    absorb_statement(transcript, eqs)
    return transcript


# --------------------------------------------------------------------------------------
# Client


@attrs.frozen(eq=False)
class PendingRequest:
    """A request the client sent and the secrets it needs to read the response.

    ``request`` holds an ISSUANCE's payment id (a bearer secret): ``repr`` shows only its
    length, like the blindings it hides."""

    kind: int
    request: bytes = attrs.field(repr=_count("bytes"))
    request_id: bytes
    epoch_out: int
    values: tuple[int, ...]
    blindings: tuple[int, ...] = attrs.field(repr=False)
    requested: tuple[GroupElement, ...] = attrs.field(repr=False)


@attrs.define
class Client:
    """The client's half: build requests, verify issuance, keep credentials.

    Issuer parameters must come from ``verify_issuer_params`` (signed by the node key).
    """

    params: CredentialParams
    _iparams: dict[int, tuple[IssuerPublicParams, GroupElement]] = attrs.field(
        factory=dict, repr=False
    )

    def add_issuer_params(self, public: IssuerPublicParams) -> None:
        gv = generators().GV.point
        self._iparams[public.epoch] = (public, gv - public.I)

    def _public(self, epoch: int) -> tuple[IssuerPublicParams, GroupElement]:
        entry = self._iparams.get(epoch)
        if entry is None:
            raise LocalProtocolError("no issuer parameters for this epoch")
        return entry

    def _check_value(self, value: int) -> None:
        if not 0 <= value <= self.params.max_value:
            raise LocalProtocolError("credential value out of range")

    # -- issuance -------------------------------------------------------------------
    def issuance_request(self, values: Sequence[int], payment_id: bytes, *, epoch: int,
                         rng: Rng) -> PendingRequest:
        """ISSUANCE of ``issuance_k`` credentials of the given public values."""
        if len(values) != self.params.issuance_k:
            raise LocalProtocolError("issuance requests carry exactly issuance_k values")
        if len(payment_id) != 32:
            raise LocalProtocolError("payment_id must be 32 bytes")
        for value in values:
            self._check_value(value)
        public, _ = self._public(epoch)
        g = generators()
        blindings = [random_scalar(rng) for _ in values]
        lhs = [g.Gh.mul_secret(r) for r in blindings]
        commitments = [
            group_sum((point, g.Gg.mul_secret(v))) for point, v in zip(lhs, values, strict=True)
        ]
        eqs = _known_value_equations(g, lhs)
        transcript = _issuance_request_transcript(
            self.params, public, payment_id=payment_id, values=values, commitments=commitments,
            eqs=eqs)
        nonce_src = NonceSource(transcript, blindings, rng)
        nonces = [nonce_src.scalar() for _ in blindings]
        absorb_commitments(transcript, commit(eqs, nonces))
        e = transcript.challenge()
        data = IssuanceRequest(epoch, bytes(payment_id), tuple(values), tuple(commitments), e,
                               tuple(respond(nonces, blindings, e))).encode()
        return PendingRequest(ISSUANCE, data, request_id(data, bytes(32)), epoch,
                              tuple(values), tuple(blindings), tuple(commitments))

    # -- presentation-only spend ------------------------------------------------------
    def spend_request(self, credential: Credential, *, message_hash: bytes, rng: Rng) -> bytes:
        """SPEND one credential of value ``unit_value``, bound to ``message_hash``."""
        _check_message_hash(message_hash)
        if credential.value != self.params.unit_value:
            raise LocalProtocolError("only a unit-value credential can be spent this way")
        public, _ = self._public(credential.epoch)
        g = generators()
        i_base = FixedBase("I", public.I)
        z = random_scalar(rng)
        pres = _present(g, credential, z)
        ca_minus_value = pres.Ca - g.Gg.mul_secret(self.params.unit_value)
        eqs = _spend_equations(g, i_base, pres, public.I * z, ca_minus_value)
        transcript = _open_transcript(SPEND, self.params, message_hash)
        transcript.append(b"iparams", public.encode())
        absorb_statement(transcript, eqs)
        witness = [z, (-credential.t * z) % q, credential.t, credential.r]
        nonce_src = NonceSource(transcript, witness, rng)
        nonces = [nonce_src.scalar() for _ in witness]
        absorb_commitments(transcript, commit(eqs, nonces))
        e = transcript.challenge()
        return SpendRequest(credential.epoch, pres, e, tuple(respond(nonces, witness, e))).encode()

    # -- reissuance and rollover ------------------------------------------------------
    def reissue_request(self, credentials: Sequence[Credential], out_values: Sequence[int], *,
                        message_hash: bytes = bytes(32), rng: Rng) -> PendingRequest:
        """REISSUE k credentials into k new ones; Δ = Σ out − Σ in must be ≤ 0 (the fee)."""
        for value in out_values:
            self._check_value(value)
        if len({c.epoch for c in credentials}) != 1:
            raise LocalProtocolError("reissue presents credentials of one epoch")
        epoch = credentials[0].epoch
        delta = sum(out_values) - sum(c.value for c in credentials)
        return build_reissue_request(self, REISSUE, credentials, out_values, epoch_out=epoch,
                                     delta=delta, message_hash=message_hash, rng=rng)

    def rollover_request(self, credentials: Sequence[Credential], out_values: Sequence[int], *,
                         rng: Rng) -> PendingRequest:
        """ROLLOVER k credentials of epoch e − 1 into epoch e, value preserved (Δ = 0)."""
        for value in out_values:
            self._check_value(value)
        if len({c.epoch for c in credentials}) != 1:
            raise LocalProtocolError("rollover presents credentials of one epoch")
        if sum(out_values) != sum(c.value for c in credentials):
            raise LocalProtocolError("rollover preserves the total value")
        return build_reissue_request(self, ROLLOVER, credentials, out_values,
                                     epoch_out=credentials[0].epoch + 1, delta=0,
                                     message_hash=bytes(32), rng=rng)

    # -- responses ------------------------------------------------------------------
    def finish(self, pending: PendingRequest, response: bytes) -> tuple[Credential, ...]:
        """Verify the issuer's MACs and π_iparams; return the new credentials.

        Raises ``InvalidProofError`` if the issuer used another key than its published
        parameters (a tagging attempt) or the response is for another request.
        """
        resp = CredentialsResponse.decode(response, len(pending.requested))
        if resp.epoch != pending.epoch_out:
            raise WrongEpochError("response is for another epoch")
        public, gv_minus_i = self._public(resp.epoch)
        g = generators()
        macs = [(t, hash_to_u(t), v) for t, v in resp.macs]
        eqs = _issuance_equations(g, public, gv_minus_i, macs, pending.requested)
        commitments = recompute(eqs, resp.responses, resp.e)
        transcript = _response_transcript(self.params, public, pending.request_id, eqs)
        absorb_commitments(transcript, commitments)
        _check_challenge(transcript.challenge(), resp.e)
        return tuple(
            Credential(resp.epoch, value, r, t, v, u, u * t)
            for (t, u, v), value, r in zip(macs, pending.values, pending.blindings, strict=True)
        )


def _bit_digits(value: int, n: int) -> list[int]:
    if 0 <= value < (1 << n):
        return [(value >> i) & 1 for i in range(n)]
    # Not representable: a cheating prover's digits (value, 0, 0, …). The bit proof for
    # the first digit cannot verify; used by soundness tests through build_reissue_request.
    return [value] + [0] * (n - 1)


def build_reissue_request(client: Client, kind: int, credentials: Sequence[Credential],
                          out_values: Sequence[int], *, epoch_out: int, delta: int,
                          message_hash: bytes, rng: Rng) -> PendingRequest:
    """Low-level REISSUE/ROLLOVER builder with NO policy checks (Δ and values as given).

    ``Client.reissue_request`` / ``rollover_request`` are the checked entry points; this
    one also lets tests play a cheating client (wrong Δ, out-of-range values).
    """
    _check_message_hash(message_hash)
    params = client.params
    k, n = params.k, params.range_bits
    if len(credentials) != k or len(out_values) != k:
        raise LocalProtocolError("reissue presents and requests exactly k credentials")
    if not -(1 << 63) <= delta < (1 << 63):
        raise LocalProtocolError("delta must fit in a signed 64-bit integer")
    epoch_in = credentials[0].epoch
    public_in, _ = client._public(epoch_in)
    public_out, _ = client._public(epoch_out)
    g = generators()
    i_base = FixedBase("I", public_in.I)
    zs = [random_scalar(rng) for _ in credentials]
    presentations = [_present(g, c, z) for c, z in zip(credentials, zs, strict=True)]
    z_points = [public_in.I * z for z in zs]
    # Outputs: bit commitments B_i = ρ_i·Gh + b_i·Gg, r' = Σ 2^i·ρ_i, M' = Σ 2^i·B_i.
    bit_rows: list[list[GroupElement]] = []
    bit_secrets: list[tuple[int, int]] = []
    out_blindings: list[int] = []
    requested: list[GroupElement] = []
    for value in out_values:
        row: list[GroupElement] = []
        r_out = 0
        for i, bit in enumerate(_bit_digits(value, n)):
            rho = random_scalar(rng)
            r_out += rho << i
            row.append(bit_commitment(rho, bit, g.Gg))
            bit_secrets.append((bit, rho))
        bit_rows.append(row)
        out_blindings.append(r_out % q)
        requested.append(powers_of_two_sum(row))
    eqs = _reissue_equations(g, i_base, presentations, z_points=z_points, requested=requested,
                             delta=delta)
    flat_bits = [b for row in bit_rows for b in row]
    transcript = _reissue_transcript(kind, params, message_hash, public_in=public_in,
                                     public_out=public_out, delta=delta, eqs=eqs,
                                     flat_bits=flat_bits)
    witness: list[int] = []
    for c, z in zip(credentials, zs, strict=True):
        witness.extend((z, (-c.t * z) % q, c.t, c.value, c.r))
    witness.append(sum(zs) % q)
    witness.append((sum(c.r for c in credentials) - sum(out_blindings)) % q)
    nonce_src = NonceSource(transcript, witness + out_blindings, rng)
    nonces = [nonce_src.scalar() for _ in witness]
    commitments = commit(eqs, nonces)
    states: list[BitProverState] = [
        bit_commit(bit, rho, b, g.Gg, nonce_src)
        for (bit, rho), b in zip(bit_secrets, flat_bits, strict=True)
    ]
    absorb_commitments(transcript, commitments)
    transcript.append_many(b"bit-R", (s.r0.encode() + s.r1.encode() for s in states))
    e = transcript.challenge()
    req = ReissueRequest(
        kind, epoch_in, epoch_out, delta, tuple(presentations),
        tuple(tuple(row) for row in bit_rows), e, tuple(respond(nonces, witness, e)),
        tuple(bit_respond(s, e) for s in states),
    )
    data = req.encode()
    return PendingRequest(kind, data, request_id(data, message_hash), epoch_out,
                          tuple(out_values), tuple(out_blindings), tuple(requested))

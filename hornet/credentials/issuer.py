"""The issuer's (mixer's) half of the scheme: verify requests, then issue MACs (sans-IO).

Verification (``Issuer.verify_*``) parses strictly, checks epochs and cheap shape
conditions, then the single Fiat–Shamir proof, and returns a result record. MACs are
made by ``Issuer.issue`` only after the store has accepted the serials
(``hornet.credentials.service`` joins the two). Verification raises and never returns
False; issuer keys never appear in ``repr``. Time comes in as ``now``, randomness as
``rng``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from hornet.core.crypto import SECP256K1_ORDER
from hornet.credentials.group import (
    FixedBase,
    GroupElement,
    generators,
    group_sum,
    hash_to_u,
    powers_of_two_sum,
)
from hornet.credentials.messages import (
    ISSUANCE,
    ISSUER_RESPONSES,
    REISSUE,
    ROLLOVER,
    SPEND,
    CredentialsResponse,
    IssuanceRequest,
    Presentation,
    ReissueRequest,
    SpendRequest,
    request_id,
)
from hornet.credentials.params import CredentialParams, IssuerPublicParams, IssuerSecretKey
from hornet.credentials.proofs import (
    absorb_commitments,
    absorb_statement,
    bit_recompute,
    commit,
    recompute,
    respond,
)
from hornet.credentials.statements import (
    check_challenge,
    check_message_hash,
    issuance_equations,
    issuance_request_transcript,
    known_value_equations,
    open_transcript,
    reissue_equations,
    reissue_transcript,
    response_transcript,
    spend_equations,
)
from hornet.credentials.transcript import NonceSource, Rng, random_scalar
from hornet.errors import (
    DoubleSpendError,
    InsufficientValueError,
    MalformedCredentialError,
    WrongEpochError,
)

q: Final = SECP256K1_ORDER


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
        # Build the verifiers' fixed-base tables now (the generators' once per process)
        # rather than inside the first spend of the epoch.
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
        check_message_hash(message_hash)
        req = SpendRequest.decode(data, self.params)
        ek = self._presentable(req.epoch, now)
        g = generators()
        pres = req.presentation
        ca_minus_value = group_sum((pres.Ca, self._minus_unit()))
        eqs = spend_equations(g, ek.i_base, pres, self._z(ek, pres), ca_minus_value)
        commitments = recompute(eqs, req.responses, req.e)
        transcript = open_transcript(SPEND, self.params, message_hash)
        transcript.append(b"iparams", ek.public_encoded)
        absorb_statement(transcript, eqs)
        absorb_commitments(transcript, commitments)
        check_challenge(transcript.challenge(), req.e)
        return VerifiedSpend(req.epoch, pres.serial, request_id(data, message_hash))

    # -- reissuance and rollover ------------------------------------------------------
    def verify_reissue(self, data: bytes, *, message_hash: bytes, now: float,
                       price: int = 0) -> IssuanceTicket:
        """Verify a REISSUE (Δ ≤ −price) or ROLLOVER (epoch e−1 → e, Δ = 0) request."""
        check_message_hash(message_hash)
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
        eqs = reissue_equations(g, ek_in.i_base, req.presentations,
                                z_points=[self._z(ek_in, p) for p in req.presentations],
                                requested=requested, delta=req.delta)
        commitments = recompute(eqs, req.responses, req.e)
        minus_gg = -g.Gg.point
        bit_rs: list[bytes] = []
        flat_bits = [b for row in req.bit_commitments for b in row]
        for b, (c0, s0, s1) in zip(flat_bits, req.bit_responses, strict=True):
            r0, r1 = bit_recompute(b, minus_gg, req.e, c0=c0, s0=s0, s1=s1)
            bit_rs.append(r0.encode() + r1.encode())
        transcript = reissue_transcript(req.kind, params, message_hash,
                                        public_in=ek_in.public, public_out=ek_out.public,
                                        delta=req.delta, eqs=eqs, flat_bits=flat_bits)
        absorb_commitments(transcript, commitments)
        transcript.append_many(b"bit-R", bit_rs)
        check_challenge(transcript.challenge(), req.e)
        return IssuanceTicket(req.kind, req.epoch_in, req.epoch_out, serials,
                              request_id(data, message_hash), requested)

    # -- known-value issuance ---------------------------------------------------------
    def verify_issuance(self, data: bytes, *, now: float) -> IssuanceTicket:
        """Verify an ISSUANCE request: PK{r_j: M_j − v_j·Gg = r_j·Gh} for every slot."""
        req = IssuanceRequest.decode(data, self.params)
        ek = self._current(req.epoch, now)
        g = generators()
        eqs = known_value_equations(
            g, [m - g.Gg.mul_public(v) for v, m in zip(req.values, req.commitments, strict=True)]
        )
        commitments = recompute(eqs, req.responses, req.e)
        transcript = issuance_request_transcript(
            self.params, ek.public, payment_id=req.payment_id, values=req.values,
            commitments=req.commitments, eqs=eqs)
        absorb_commitments(transcript, commitments)
        check_challenge(transcript.challenge(), req.e)
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
        eqs = issuance_equations(g, ek.public, ek.gv_minus_i, macs, ticket.requested)
        transcript = response_transcript(self.params, ek.public, ticket.request_id, eqs)
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

"""The client's half of the scheme: build requests, verify issuance, hold credentials.

Sans-IO: requests are bytes built from (credentials, values, rng); ``Client.finish``
checks the issuer's response against the issuer parameters the client was given
(``verify_issuer_params``), so an issuer that tags a client with another key is caught.
Blindings and credential secrets never appear in ``repr``.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    REISSUE,
    ROLLOVER,
    SPEND,
    Credential,
    CredentialsResponse,
    IssuanceRequest,
    ReissueRequest,
    SpendRequest,
    request_id,
    size_repr,
)
from hornet.credentials.params import CredentialParams, IssuerPublicParams
from hornet.credentials.proofs import (
    BitProverState,
    absorb_commitments,
    absorb_statement,
    bit_commit,
    bit_commitment,
    bit_respond,
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
    present,
    reissue_equations,
    reissue_transcript,
    response_transcript,
    spend_equations,
)
from hornet.credentials.transcript import NonceSource, Rng, random_scalar
from hornet.errors import LocalProtocolError, WrongEpochError

q: Final = SECP256K1_ORDER


@attrs.frozen(eq=False)
class PendingRequest:
    """A request the client sent and the secrets it needs to read the response.

    ``request`` holds an ISSUANCE's payment id (a bearer secret): ``repr`` shows only its
    length, like the blindings it hides."""

    kind: int
    request: bytes = attrs.field(repr=size_repr("bytes"))
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
        eqs = known_value_equations(g, lhs)
        transcript = issuance_request_transcript(
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
        check_message_hash(message_hash)
        if credential.value != self.params.unit_value:
            raise LocalProtocolError("only a unit-value credential can be spent this way")
        public, _ = self._public(credential.epoch)
        g = generators()
        i_base = FixedBase("I", public.I)
        z = random_scalar(rng)
        pres = present(g, credential, z)
        ca_minus_value = pres.Ca - g.Gg.mul_secret(self.params.unit_value)
        eqs = spend_equations(g, i_base, pres, public.I * z, ca_minus_value)
        transcript = open_transcript(SPEND, self.params, message_hash)
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
        eqs = issuance_equations(g, public, gv_minus_i, macs, pending.requested)
        commitments = recompute(eqs, resp.responses, resp.e)
        transcript = response_transcript(self.params, public, pending.request_id, eqs)
        absorb_commitments(transcript, commitments)
        check_challenge(transcript.challenge(), resp.e)
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
    check_message_hash(message_hash)
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
    presentations = [present(g, c, z) for c, z in zip(credentials, zs, strict=True)]
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
    eqs = reissue_equations(g, i_base, presentations, z_points=z_points, requested=requested,
                            delta=delta)
    flat_bits = [b for row in bit_rows for b in row]
    transcript = reissue_transcript(kind, params, message_hash, public_in=public_in,
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

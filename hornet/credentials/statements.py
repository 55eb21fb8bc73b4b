"""The statements both sides of the scheme prove and check (internal to the scheme).

One function per Σ-protocol statement of wabisabi.md §4.3 (``*_equations``) and one per
Fiat–Shamir transcript (``*_transcript``). The client (``hornet.credentials.client``)
proves them and the issuer (``hornet.credentials.issuer``) recomputes them from the
same functions, so the two cannot drift apart. Witness indices are fixed per statement
and documented next to each equation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from hornet.core.crypto import ct_equal
from hornet.credentials.encoding import encode_scalar
from hornet.credentials.group import FixedBase, Generators, GroupElement, group_sum
from hornet.credentials.messages import (
    ISSUANCE,
    MESSAGE_HASH_LEN,
    REISSUE,
    ROLLOVER,
    SPEND,
    Credential,
    Presentation,
)
from hornet.credentials.params import CredentialParams, IssuerPublicParams
from hornet.credentials.proofs import Equation, absorb_statement, term
from hornet.credentials.transcript import Transcript
from hornet.errors import InvalidProofError, LocalProtocolError

_LABELS: Final = {
    ISSUANCE: b"issuance",
    REISSUE: b"reissue",
    SPEND: b"spend",
    ROLLOVER: b"rollover",
}


def check_message_hash(message_hash: bytes) -> None:
    if len(message_hash) != MESSAGE_HASH_LEN:
        raise LocalProtocolError("message_hash must be 32 bytes")


def check_challenge(expected: int, received: int) -> None:
    if received == 0 or not ct_equal(encode_scalar(expected), encode_scalar(received)):
        raise InvalidProofError("credential proof does not verify")


# --------------------------------------------------------------------------------------
# Statements


def present(g: Generators, cred: Credential, z: int) -> Presentation:
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


def presentation_equations(g: Generators, i_base: FixedBase, pres: Presentation,
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


def spend_equations(g: Generators, i_base: FixedBase, pres: Presentation,
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


def issuance_equations(g: Generators, public: IssuerPublicParams, gv_minus_i: GroupElement,
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


def reissue_equations(g: Generators, i_base: FixedBase, presentations: Sequence[Presentation],
                      *, z_points: Sequence[GroupElement], requested: Sequence[GroupElement],
                      delta: int) -> list[Equation]:
    """k ShowCredential statements plus the balance (§1.8, witness Σz, Δr last):

    Δ·Gg + ΣCa − ΣM' = (Σz)·Ga + Δr·Gh.
    """
    eqs: list[Equation] = []
    for i, (pres, z_point) in enumerate(zip(presentations, z_points, strict=True)):
        eqs.extend(presentation_equations(g, i_base, pres, z_point, 5 * i))
    k = len(presentations)
    balance = group_sum(
        (g.Gg.mul_public(delta), *(p.Ca for p in presentations), *(-m for m in requested))
    )
    eqs.append(Equation(balance, (term(5 * k, g.Ga), term(5 * k + 1, g.Gh))))
    return eqs


def known_value_equations(g: Generators, lhs: Sequence[GroupElement]) -> list[Equation]:
    """M_j − v_j·Gg = r_j·Gh (witness r_j at index j)."""
    return [Equation(point, (term(j, g.Gh),)) for j, point in enumerate(lhs)]


# --------------------------------------------------------------------------------------
# Transcripts


def open_transcript(kind: int, params: CredentialParams, message_hash: bytes) -> Transcript:
    transcript = Transcript(_LABELS[kind])
    transcript.append(b"params", params.digest())
    transcript.append(b"message", message_hash)
    return transcript


def reissue_transcript(kind: int, params: CredentialParams, message_hash: bytes,
                       *, public_in: IssuerPublicParams, public_out: IssuerPublicParams,
                       delta: int, eqs: Sequence[Equation],
                       flat_bits: Sequence[GroupElement]) -> Transcript:
    transcript = open_transcript(kind, params, message_hash)
    transcript.append(b"iparams-in", public_in.encode())
    transcript.append(b"iparams-out", public_out.encode())
    transcript.append(b"delta", delta.to_bytes(8, "big", signed=True))
    absorb_statement(transcript, eqs)
    transcript.append_many(b"bits", (b.encode() for b in flat_bits))
    return transcript


def issuance_request_transcript(params: CredentialParams, public: IssuerPublicParams,
                                *, payment_id: bytes, values: Sequence[int],
                                commitments: Sequence[GroupElement],
                                eqs: Sequence[Equation]) -> Transcript:
    transcript = open_transcript(ISSUANCE, params, bytes(32))
    transcript.append(b"iparams", public.encode())
    transcript.append(b"payment", payment_id)
    transcript.append_many(
        b"values", (v.to_bytes(8, "big") + m.encode() for v, m in zip(values, commitments,
                                                                       strict=True))
    )
    absorb_statement(transcript, eqs)
    return transcript


def response_transcript(params: CredentialParams, public: IssuerPublicParams,
                        req_id: bytes, eqs: Sequence[Equation]) -> Transcript:
    transcript = Transcript(b"issue")
    transcript.append(b"params", params.digest())
    transcript.append(b"iparams", public.encode())
    transcript.append(b"request", req_id)
    absorb_statement(transcript, eqs)
    return transcript

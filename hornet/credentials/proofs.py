"""Compact Σ-protocols: linear relations and CDS bit proofs (wabisabi.md §4.3).

Strategy:
- A statement is a list of ``Equation``s ``P = Σ c·x_j·G`` over one witness vector x
  (c is a public coefficient, 1 unless stated). The prover sends the challenge e and
  one response s_j = k_j + e·x_j per witness (the "compact" form). The verifier
  recomputes R = Σ c·s_j·G − e·P and re-derives e from the transcript.
- Terms over the same generator are merged before multiplying (e.g. x0·U + t·x1·U
  becomes (s_x0 + t·s_x1)·U), and a prover reuses k·G products across equations.
- A range proof is Σ 2^i·B_i == M' (checked by the verifier with additions only)
  plus one CDS OR-proof per bit: B = ρ·Gh ∨ B − Gg = ρ·Gh, sharing the request's
  single challenge: c0 + c1 = e, with responses (c0, s0, s1).

Invariants:
- Provers use constant-time multiplications (``secret_lincomb``); verifiers use
  tables and ``mul_add_base`` on public scalars only.
- Everything a verifier reads is hashed: the equation structure (witness index,
  coefficient, generator encoding, public point) and every commitment R.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from hornet.core.crypto import SECP256K1_ORDER, GroupElement, group_sum, mul_add_base
from hornet.credentials.group import (
    Base,
    FixedBase,
    base_encoding,
    public_lincomb,
    secret_lincomb,
)
from hornet.credentials.transcript import NonceSource, Transcript

q = SECP256K1_ORDER

#: One term c·x_j·G of an equation: (witness index j, generator G, coefficient c).
Term = tuple[int, Base, int]


def term(index: int, base: Base, coeff: int = 1) -> Term:
    return (index, base, coeff % q)


@attrs.frozen(eq=False)
class Equation:
    """lhs = Σ coeff·x[index]·base."""

    lhs: GroupElement
    terms: tuple[Term, ...]


def absorb_statement(transcript: Transcript, equations: Sequence[Equation]) -> None:
    """Hash the sparse statement: each public point, then (index, coeff, generator)."""
    for eq in equations:
        parts = [eq.lhs.encode()]
        for index, base, coeff in eq.terms:
            parts.append(index.to_bytes(2, "big"))
            parts.append(coeff.to_bytes(32, "big"))
            parts.append(base_encoding(base))
        transcript.append_many(b"eq", parts)


def _merged(terms: Sequence[Term], scalars: Sequence[int]) -> list[tuple[int, Base]]:
    """Σ over terms sharing a generator: one multiplication per distinct generator."""
    sums: dict[int, int] = {}
    bases: dict[int, Base] = {}
    for index, base, coeff in terms:
        key = id(base)
        sums[key] = sums.get(key, 0) + scalars[index] * coeff
        bases[key] = base
    return [(total % q, bases[key]) for key, total in sums.items()]


def commit(equations: Sequence[Equation], nonces: Sequence[int]) -> list[GroupElement]:
    """R_i = Σ c·k_j·G_ij with constant-time multiplications (prover side)."""
    cache: dict[tuple[int, int], GroupElement] = {}
    out: list[GroupElement] = []
    for eq in equations:
        parts: list[GroupElement] = []
        for scalar, base in _merged(eq.terms, nonces):
            key = (id(base), scalar)
            product = cache.get(key)
            if product is None:
                product = cache[key] = secret_lincomb(((scalar, base),))
            parts.append(product)
        out.append(group_sum(parts))
    return out


def respond(nonces: Sequence[int], witness: Sequence[int], e: int) -> list[int]:
    """s_j = k_j + e·x_j mod n."""
    return [(k + e * x) % q for k, x in zip(nonces, witness, strict=True)]


def recompute(
    equations: Sequence[Equation], responses: Sequence[int], e: int
) -> list[GroupElement]:
    """R_i = Σ c·s_j·G_ij − e·P_i (verifier side, public scalars)."""
    minus_e = (-e) % q
    out: list[GroupElement] = []
    for eq in equations:
        terms: list[tuple[int, Base]] = _merged(eq.terms, responses)
        terms.append((minus_e, eq.lhs))
        out.append(public_lincomb(terms))
    return out


def absorb_commitments(transcript: Transcript, commitments: Sequence[GroupElement]) -> None:
    transcript.append_many(b"R", (r.encode() for r in commitments))


# --------------------------------------------------------------------------------------
# CDS bit proofs: B = ρ·Gh (bit 0)  ∨  B − Gg = ρ·Gh (bit 1)


@attrs.frozen(eq=False, repr=False)
class BitProverState:
    """Prover state of one bit between commitment and challenge (secret)."""

    bit: int
    rho: int
    k: int
    c_sim: int
    s_sim: int
    r0: GroupElement
    r1: GroupElement


def bit_commit(bit: int, rho: int, commitment: GroupElement, gg: FixedBase,
               nonces: NonceSource) -> BitProverState:
    """Real branch R_b = k·Gh; the other branch simulated as R = s·Gh − c·(B − b'·Gg).

    An honest prover passes bit ∈ {0, 1}. Any other value is proven as if it were 0,
    which cannot verify (used by soundness tests).
    """
    k = nonces.scalar()
    c_sim = nonces.scalar()
    s_sim = nonces.scalar()
    real = GroupElement.base_mul(k)
    if bit == 1:
        # simulate branch 0: R0 = s·Gh − c·B (c, s are revealed: public scalars)
        r0 = mul_add_base(commitment, -c_sim, s_sim)
        return BitProverState(bit, rho, k, c_sim, s_sim, r0, real)
    # simulate branch 1: R1 = s·Gh − c·(B − Gg)
    r1 = mul_add_base(commitment - gg.point, -c_sim, s_sim)
    return BitProverState(bit, rho, k, c_sim, s_sim, real, r1)


def bit_respond(state: BitProverState, e: int) -> tuple[int, int, int]:
    """(c0, s0, s1) with c0 + c1 = e."""
    c_real = (e - state.c_sim) % q
    s_real = (state.k + c_real * state.rho) % q
    if state.bit == 1:
        return state.c_sim, state.s_sim, s_real
    return c_real, s_real, state.s_sim


def bit_recompute(commitment: GroupElement, minus_gg: GroupElement, e: int,
                  *, c0: int, s0: int, s1: int) -> tuple[GroupElement, GroupElement]:
    """R0 = s0·Gh − c0·B and R1 = s1·Gh − c1·(B − Gg), c1 = e − c0 (verifier)."""
    c1 = (e - c0) % q
    r0 = mul_add_base(commitment, -c0, s0)
    r1 = mul_add_base(group_sum((commitment, minus_gg)), -c1, s1)
    return r0, r1

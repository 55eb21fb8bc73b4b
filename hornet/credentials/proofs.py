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

import functools
from collections.abc import Sequence

import attrs

from hornet.core.crypto import SECP256K1_ORDER
from hornet.credentials.group import (
    Base,
    FixedBase,
    GroupElement,
    base_encoding,
    generators,
    group_sum,
    mul_add_base,
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
    """lhs = Σ coeff·x[index]·base.

    A client's statements hold its credentials' MACs (V as lhs, t as a coefficient):
    ``repr`` shows the shape only."""

    lhs: GroupElement = attrs.field(repr=False)
    terms: tuple[Term, ...] = attrs.field(repr=lambda terms: f"<{len(terms)} terms>")


def absorb_statement(transcript: Transcript, equations: Sequence[Equation]) -> None:
    """Hash the sparse statement: each public point, then (index:2, coeff:32, generator:33)."""
    for eq in equations:
        parts = [eq.lhs.encode()]
        for index, base, coeff in eq.terms:
            parts.append(_term_prefix(index, coeff))
            parts.append(base_encoding(base))
        transcript.append_many(b"eq", parts)


@functools.lru_cache(maxsize=1024)
def _term_prefix(index: int, coeff: int) -> bytes:
    """index:2 ‖ coeff:32 (cached: statements reuse a few (index, coefficient) pairs)."""
    return index.to_bytes(2, "big") + coeff.to_bytes(32, "big")


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


@functools.cache
def _gg_offsets(gg: FixedBase) -> tuple[tuple[GroupElement, GroupElement], GroupElement,
                                        GroupElement]:
    """((Gg, 2·Gg), −Gg, −2·Gg): the constants of the branch-free bit operations."""
    two = gg.point + gg.point
    return (gg.point, two), -gg.point, -two


def bit_commitment(rho: int, bit: int, gg: FixedBase) -> GroupElement:
    """B = ρ·Gh + b·Gg without a branch or an operation count that depends on b.

    Computed as ρ·G + (b+1)·Gg − Gg: one ``ecmult_gen``, a table pick of (Gg, 2·Gg)
    by index and one 3-point combine, whatever the bit. A digit outside {0, 1} (only
    a cheating prover in the soundness tests) takes a separate, plain path.
    """
    if bit not in (0, 1):
        return secret_lincomb(((rho, generators().Gh), (bit, gg)))
    ones, minus_gg, _ = _gg_offsets(gg)
    return group_sum((GroupElement.base_mul(rho), ones[bit], minus_gg))


def bit_commit(bit: int, rho: int, commitment: GroupElement, gg: FixedBase,
               nonces: NonceSource) -> BitProverState:
    """CDS commitment: real branch R_b = k·Gh, the other simulated (§4.3).

    The simulated branch is R_{1−b} = s·Gh − c·(B − (1−b)·Gg) with (c, s) random; both
    are revealed in the proof, so ``mul_add_base`` (variable time) sees only public
    scalars. Uniform in b: the same operations run for both bit values, B − (1−b)·Gg
    is B + (b+1)·Gg − 2·Gg (a 3-point combine), and (R0, R1) is picked from
    (real, simulated) by index, not by an ``if``.

    An honest prover passes bit ∈ {0, 1}. Any other value is proven as if it were 0,
    which cannot verify (used by soundness tests).
    """
    b = bit if bit in (0, 1) else 0
    k = nonces.scalar()
    c_sim = nonces.scalar()
    s_sim = nonces.scalar()
    real = GroupElement.base_mul(k)
    ones, _, minus_two_gg = _gg_offsets(gg)
    simulated_base = group_sum((commitment, ones[b], minus_two_gg))  # B − (1−b)·Gg
    simulated = mul_add_base(simulated_base, -c_sim, s_sim)
    pair = (real, simulated)
    return BitProverState(b, rho, k, c_sim, s_sim, pair[b], pair[1 - b])


def bit_respond(state: BitProverState, e: int) -> tuple[int, int, int]:
    """(c0, s0, s1) with c0 + c1 = e; the real and simulated values are placed by index."""
    b = state.bit
    c_real = (e - state.c_sim) % q
    s_real = (state.k + c_real * state.rho) % q
    return (c_real, state.c_sim)[b], (s_real, state.s_sim)[b], (state.s_sim, s_real)[b]


def bit_recompute(commitment: GroupElement, minus_gg: GroupElement, e: int,
                  *, c0: int, s0: int, s1: int) -> tuple[GroupElement, GroupElement]:
    """R0 = s0·Gh − c0·B and R1 = s1·Gh − c1·(B − Gg), c1 = e − c0 (verifier)."""
    c1 = (e - c0) % q
    r0 = mul_add_base(commitment, -c0, s0)
    r1 = mul_add_base(group_sum((commitment, minus_gg)), -c1, s1)
    return r0, r1

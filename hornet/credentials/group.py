"""Generators and multi-scalar arithmetic for the credential scheme.

Strategy:
- Every generator except Gh is a NUMS point: ``hash_to_group(GENERATOR_TAG ‖ name)``
  (SHA-256 try-and-increment, even y). Gh is the secp256k1 base point G, so every
  r·Gh goes through libsecp256k1's constant-time ``ecmult_gen`` (wabisabi.md §4.1).
- ``FixedBase`` wraps a generator and, on first public use, builds an 8-bit window
  table (``hornet.core.crypto.PublicBaseTable``: 32 rows × 255 multiples). A public
  scalar multiple is then at most 32 table entries.
- ``public_lincomb`` (verifier, public scalars) gathers the table entries of every
  fixed-base term, multiplies each other point once (``tweak_mul``), folds the G
  coefficient into one of those products (``mul_add_base``) and sums the whole
  linear combination in ONE libsecp256k1 ``combine``.
- ``secret_lincomb`` (provers, issuer key) uses only the constant-time
  ``ecmult_gen`` / ``ecmult_const`` paths: never tables.

Invariants:
- Table lookups are variable time: only challenges, responses and other public
  scalars may reach ``FixedBase.table()`` / ``mul_public``.
- Sums that cancel give the point at infinity (``GroupElement`` models it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from hornet.core.crypto import (
    GroupElement,
    PublicBaseTable,
    group_sum,
    public_combination,
)

#: Domain prefix of every NUMS generator name.
GENERATOR_TAG: Final = b"hornet/credentials/v1/generator/"
#: Domain prefix of U = HashToG(t) (CPZ19 MAC randomness, WabiSabi §"Credentials").
U_TAG: Final = b"hornet/credentials/v1/U/"


class FixedBase:
    """A generator with a lazily built fixed-base window table (public scalars only)."""

    __slots__ = ("_table", "encoded", "is_g", "name", "point")

    def __init__(self, name: str, point: GroupElement, *, is_g: bool = False) -> None:
        self.name = name
        self.point = point
        self.encoded = point.encode()
        self.is_g = is_g
        self._table: PublicBaseTable | None = None

    def table(self) -> PublicBaseTable:
        """The 8-bit window table (built on first use, about 30 ms; variable-time lookups)."""
        table = self._table
        if table is None:
            table = self._table = PublicBaseTable(self.point)
        return table

    def mul_public(self, scalar: int) -> GroupElement:
        return public_combination(((scalar, self.table()),))

    def mul_secret(self, scalar: int) -> GroupElement:
        """scalar·P in constant time (ecmult_gen for G, ecmult_const otherwise)."""
        if self.is_g:
            return GroupElement.base_mul(scalar)
        return self.point * scalar

    def __repr__(self) -> str:
        return f"FixedBase({self.name})"


#: A generator of a statement: fixed (named, tabled) or a point chosen by a party.
Base = FixedBase | GroupElement


def base_encoding(base: Base) -> bytes:
    return base.encoded if isinstance(base, FixedBase) else base.encode()


def public_lincomb(terms: Iterable[tuple[int, Base]]) -> GroupElement:
    """Σ k_i·B_i for PUBLIC scalars in one combine (``public_combination``): table
    entries for fixed bases, one ``tweak_mul`` per other point, G folded into one of
    those through ``mul_add_base``."""
    fixed: list[tuple[int, PublicBaseTable]] = []
    variable: list[tuple[int, GroupElement]] = []
    g_coeff = 0
    for scalar, base in terms:
        if isinstance(base, FixedBase):
            if base.is_g:
                g_coeff += scalar
            else:
                fixed.append((scalar, base.table()))
        else:
            variable.append((scalar, base))
    return public_combination(fixed, variable, g_coeff)


def secret_lincomb(terms: Iterable[tuple[int, Base]]) -> GroupElement:
    """Σ k_i·B_i with constant-time multiplications only (secret scalars)."""
    parts: list[GroupElement] = []
    for scalar, base in terms:
        if isinstance(base, FixedBase):
            parts.append(base.mul_secret(scalar))
        else:
            parts.append(base * scalar)
    return group_sum(parts)


def powers_of_two_sum(points: Sequence[GroupElement]) -> GroupElement:
    """Σ 2^i·P_i by Horner's rule with additions only (no scalar multiplication)."""
    acc = GroupElement.infinity()
    for point in reversed(points):
        acc = group_sum((acc, acc, point))
    return acc


class Generators:
    """The generator set of wabisabi.md §1.2 with Gh = G (§4.1)."""

    NAMES: Final = ("Gw", "Gwp", "Gx0", "Gx1", "GV", "Gg", "Ga", "Gs")

    def __init__(self) -> None:
        nums = {
            name: FixedBase(name, GroupElement.hash_to_group(GENERATOR_TAG + name.encode()))
            for name in self.NAMES
        }
        self.Gw = nums["Gw"]
        self.Gwp = nums["Gwp"]
        self.Gx0 = nums["Gx0"]
        self.Gx1 = nums["Gx1"]
        self.GV = nums["GV"]
        self.Gg = nums["Gg"]
        self.Ga = nums["Ga"]
        self.Gs = nums["Gs"]
        self.Gh = FixedBase("Gh", GroupElement.base_mul(1), is_g=True)
        self.all: tuple[FixedBase, ...] = (*nums.values(), self.Gh)

    def encoding(self) -> bytes:
        """Every generator's name and encoding, in a fixed order (hashed into transcripts)."""
        return b"".join(
            len(g.name).to_bytes(1, "big") + g.name.encode() + g.encoded for g in self.all
        )


_GENERATORS: Generators | None = None


def generators() -> Generators:
    """The process-wide generator set (tables are shared and built lazily)."""
    global _GENERATORS  # noqa: PLW0603  (a lazily built constant)
    if _GENERATORS is None:
        _GENERATORS = Generators()
    return _GENERATORS


def hash_to_u(t: int) -> GroupElement:
    """U = HashToG(t), t as 32 bytes big-endian (WabiSabi "U = HashToG(t)")."""
    return GroupElement.hash_to_group(U_TAG + t.to_bytes(32, "big"))

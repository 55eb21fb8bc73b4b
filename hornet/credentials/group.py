"""Generators and multi-scalar arithmetic for the credential scheme.

Strategy:
- Every generator except Gh is a NUMS point: ``hash_to_group(GENERATOR_TAG ‖ name)``
  (SHA-256 try-and-increment, even y). Gh is the secp256k1 base point G, so every
  r·Gh goes through libsecp256k1's constant-time ``ecmult_gen`` (wabisabi.md §4.1).
- ``FixedBase`` wraps a generator and, on first public use, builds an 8-bit window
  table (32 rows × 255 multiples, built with ``group_sum`` additions). A public
  scalar multiple is then 32 table lookups and one libsecp256k1 ``combine``.
- ``public_lincomb`` (verifier, public scalars) gathers table lookups, folds the G
  coefficient into one variable-base term through ``mul_add_base`` and sums
  everything in one ``group_sum``. ``secret_lincomb`` (provers, issuer key) uses only
  the constant-time ``ecmult_gen`` / ``ecmult_const`` paths: never tables.

Invariants:
- Table lookups are variable time: only challenges, responses and other public
  scalars may reach ``FixedBase.table_terms``.
- Sums that cancel give the point at infinity (``GroupElement`` models it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from hornet.core.crypto import SECP256K1_ORDER, GroupElement, group_sum, mul_add_base

#: Domain prefix of every NUMS generator name.
GENERATOR_TAG: Final = b"hornet/credentials/v1/generator/"
#: Domain prefix of U = HashToG(t) (CPZ19 MAC randomness, WabiSabi §"Credentials").
U_TAG: Final = b"hornet/credentials/v1/U/"
_WINDOW_BITS: Final = 8
_WINDOWS: Final = 32
_DIGITS: Final = 255


class FixedBase:
    """A generator with a lazily built fixed-base window table (public scalars only)."""

    __slots__ = ("_table", "encoded", "is_g", "name", "point")

    def __init__(self, name: str, point: GroupElement, *, is_g: bool = False) -> None:
        self.name = name
        self.point = point
        self.encoded = point.encode()
        self.is_g = is_g
        self._table: list[list[GroupElement]] | None = None

    def _build(self) -> list[list[GroupElement]]:
        rows: list[list[GroupElement]] = []
        base = self.point
        for _ in range(_WINDOWS):
            row = [base]
            acc = base
            for _ in range(_DIGITS - 1):
                acc = acc + base
                row.append(acc)
            rows.append(row)
            base = acc + base  # 256 · (previous row base)
        return rows

    def table_terms(self, scalar: int) -> list[GroupElement]:
        """The table points whose sum is scalar·P (variable time: public scalars only)."""
        table = self._table
        if table is None:
            table = self._table = self._build()
        digits = (scalar % SECP256K1_ORDER).to_bytes(32, "little")
        return [row[d - 1] for row, d in zip(table, digits, strict=True) if d]

    def mul_public(self, scalar: int) -> GroupElement:
        return group_sum(self.table_terms(scalar))

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
    """Σ k_i·B_i for PUBLIC scalars: tables, one ``mul_add_base`` for G, one combine."""
    parts: list[GroupElement] = []
    g_coeff = 0
    variable: list[tuple[int, GroupElement]] = []
    for scalar, base in terms:
        if isinstance(base, FixedBase):
            if base.is_g:
                g_coeff += scalar
            else:
                parts.extend(base.table_terms(scalar))
        else:
            variable.append((scalar, base))
    g_coeff %= SECP256K1_ORDER
    if variable:
        first_k, first_p = variable[0]
        parts.append(mul_add_base(first_p, first_k, g_coeff) if g_coeff else first_p * first_k)
        parts.extend(point * k for k, point in variable[1:])
    elif g_coeff:
        parts.append(GroupElement.base_mul(g_coeff))
    return group_sum(parts)


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

"""The credential group: secp256k1 points and scalars, generators, multi-scalar arithmetic.

Strategy:
- ``GroupElement`` is a secp256k1 point on libsecp256k1 (through coincurve's cffi
  binding), with the point at infinity that libsecp256k1's public-key API cannot
  represent. Scalars are Python ints reduced mod n. Additive notation: P + Q, k * P.
- Every generator except Gh is a NUMS point: ``hash_to_group(GENERATOR_TAG ‖ name)``
  (SHA-256 try-and-increment, even y). Gh is the secp256k1 base point G, so every
  r·Gh goes through libsecp256k1's constant-time ``ecmult_gen`` (wabisabi.md §4.1).
- ``FixedBase`` wraps a generator and, on first public use, builds an 8-bit window
  table (``PublicBaseTable``: 32 rows × 255 multiples). A public scalar multiple is
  then at most 32 table entries.
- ``public_lincomb`` (verifier, public scalars) gathers the table entries of every
  fixed-base term, multiplies each other point once (``tweak_mul``), folds the G
  coefficient into one of those products (``mul_add_base``) and sums the whole
  linear combination in ONE libsecp256k1 ``combine``.
- ``secret_lincomb`` (provers, issuer key) uses only the constant-time
  ``ecmult_gen`` / ``ecmult_const`` paths: never tables.

Invariants:
- Decoding untrusted bytes raises ``InvalidPointError`` only.
- Table lookups and ``mul_add_base`` are variable time: only challenges, responses
  and other public scalars may reach ``FixedBase.table()``, ``mul_public``,
  ``public_combination`` or ``mul_add_base``.
- Sums that cancel give the point at infinity (``GroupElement`` models it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Final

from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT as _GLOBAL_CONTEXT

from hornet.core.crypto import (
    PUBKEY_LEN,
    SCALAR_LEN,
    SECP256K1_ORDER,
    parse_point,
    serialize_point,
)
from hornet.errors import LocalProtocolError

#: Domain prefix of every NUMS generator name.
GENERATOR_TAG: Final = b"hornet/credentials/v1/generator/"
#: Domain prefix of U = HashToG(t) (CPZ19 MAC randomness, WabiSabi §"Credentials").
U_TAG: Final = b"hornet/credentials/v1/U/"

_CTX: Final = _GLOBAL_CONTEXT.ctx


# --------------------------------------------------------------------------------------
# Group elements and the group law


class GroupElement:
    """An element of the secp256k1 group, including the point at infinity.

    libsecp256k1's public-key API cannot represent infinity, so it is modelled here
    as ``_point is None``; addition, negation and scalar multiplication handle it, as
    well as sums that cancel (P + (−P)). Scalars are Python ints reduced mod n.
    Encoding: 33-byte compressed point; infinity encodes as 33 zero bytes. ``repr``
    shows no point, since a client's V and T are secrets.
    """

    __slots__ = ("_enc", "_point")

    def __init__(self, point: Any) -> None:
        self._point = point
        self._enc: bytes | None = None

    # -- construction ------------------------------------------------------------------
    @classmethod
    def infinity(cls) -> GroupElement:
        return cls(None)

    @classmethod
    def decode(cls, data: bytes, *, allow_infinity: bool = False) -> GroupElement:
        """Parse a 33-byte encoding from untrusted input (raises ``InvalidPointError``)."""
        if allow_infinity and data == bytes(PUBKEY_LEN):
            return cls(None)
        return cls(parse_point(bytes(data)))

    @classmethod
    def base_mul(cls, scalar: int) -> GroupElement:
        """scalar · G with libsecp256k1's precomputed generator tables."""
        k = scalar % SECP256K1_ORDER
        if k == 0:
            return cls(None)
        point = _ffi.new("secp256k1_pubkey *")
        _lib.secp256k1_ec_pubkey_create(_CTX, point, k.to_bytes(SCALAR_LEN, "big"))
        return cls(point)

    @classmethod
    def hash_to_group(cls, tag: bytes) -> GroupElement:
        """A NUMS generator: x = SHA256(tag ‖ counter) tried until 0x02‖x parses (even y).

        Nobody knows its discrete log with respect to G or any other generator.
        """
        counter = 0
        while True:
            x = hashlib.sha256(tag + counter.to_bytes(4, "big")).digest()
            point = _ffi.new("secp256k1_pubkey *")
            if _lib.secp256k1_ec_pubkey_parse(_CTX, point, b"\x02" + x, PUBKEY_LEN):
                return cls(point)
            counter += 1

    # -- predicates and encoding ------------------------------------------------------
    @property
    def is_infinity(self) -> bool:
        return self._point is None

    def encode(self) -> bytes:
        if self._enc is None:
            self._enc = (
                bytes(PUBKEY_LEN) if self._point is None else serialize_point(self._point)
            )
        return self._enc

    # -- group law --------------------------------------------------------------------
    def __add__(self, other: GroupElement) -> GroupElement:
        return group_sum((self, other))

    def __neg__(self) -> GroupElement:
        if self._point is None:
            return self
        point = _ffi.new("secp256k1_pubkey *", self._point[0])
        _lib.secp256k1_ec_pubkey_negate(_CTX, point)
        return GroupElement(point)

    def __sub__(self, other: GroupElement) -> GroupElement:
        return group_sum((self, -other))

    def __mul__(self, scalar: int) -> GroupElement:
        k = scalar % SECP256K1_ORDER
        if k == 0 or self._point is None:
            return GroupElement(None)
        point = _ffi.new("secp256k1_pubkey *", self._point[0])
        _lib.secp256k1_ec_pubkey_tweak_mul(_CTX, point, k.to_bytes(SCALAR_LEN, "big"))
        return GroupElement(point)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupElement):
            return NotImplemented
        return self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(self.encode())

    def __repr__(self) -> str:
        # A point may be a client's secret (a credential's V or T): never show it.
        return "GroupElement(infinity)" if self._point is None else "GroupElement(<point>)"


def group_sum(elements: Iterable[GroupElement]) -> GroupElement:
    """Σ elements, skipping infinity; a sum that cancels to infinity returns infinity."""
    points = [e._point for e in elements if e._point is not None]
    if not points:
        return GroupElement(None)
    if len(points) == 1:
        return GroupElement(points[0])
    out = _ffi.new("secp256k1_pubkey *")
    inputs = _ffi.new("secp256k1_pubkey *[]", points)
    if not _lib.secp256k1_ec_pubkey_combine(_CTX, out, inputs, len(points)):
        return GroupElement(None)  # the only failure mode: the sum is the point at infinity
    return GroupElement(out)




def mul_add_base(point: GroupElement, a: int, b: int) -> GroupElement:
    """a·point + b·G in one libsecp256k1 ``ecmult`` call. PUBLIC scalars only.

    libsecp256k1 exposes no double-scalar multiplication, but ECDSA public-key recovery
    computes Q = r⁻¹·(s·R − m·G), where R is the point whose x-coordinate is r (recid
    picks its y parity). With R = point, s = a·r and m = −b·r this is exactly
    a·point + b·G, at the cost of one Strauss double multiplication instead of a
    multiply plus a base multiply. ``ecmult`` is variable time: use it for
    verifier-side public scalars (challenges, responses), never for secrets.
    """
    a %= SECP256K1_ORDER
    b %= SECP256K1_ORDER
    if point._point is None or a == 0:
        return GroupElement.base_mul(b)
    enc = point.encode()
    r = int.from_bytes(enc[1:], "big")
    recid = enc[0] - 2
    if r >= SECP256K1_ORDER:
        r -= SECP256K1_ORDER
        recid |= 2
    if r == 0:  # pragma: no cover  (x = n is not a curve x-coordinate we can reach)
        return group_sum((point * a, GroupElement.base_mul(b)))
    s = a * r % SECP256K1_ORDER
    m = -b * r % SECP256K1_ORDER
    sig = _ffi.new("secp256k1_ecdsa_recoverable_signature *")
    compact = r.to_bytes(SCALAR_LEN, "big") + s.to_bytes(SCALAR_LEN, "big")
    if not _lib.secp256k1_ecdsa_recoverable_signature_parse_compact(_CTX, sig, compact, recid):
        raise LocalProtocolError("mul_add_base: internal signature encoding failed")
    out = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ecdsa_recover(_CTX, out, sig, m.to_bytes(SCALAR_LEN, "big")):
        return GroupElement(None)  # the only failure left: the result is infinity
    return GroupElement(out)


# --------------------------------------------------------------------------------------
# Fixed-base tables and public linear combinations (credential verifiers)

#: A fixed-base table splits a 256-bit scalar into 32 windows of 8 bits.
_TABLE_WINDOWS: Final = 32
_TABLE_DIGITS: Final = 255  # non-zero digit values per window
#: Index of each window's first entry (digit 1) in a table's array.
_WINDOW_OFFSETS: Final = tuple(range(0, _TABLE_WINDOWS * _TABLE_DIGITS, _TABLE_DIGITS))


def _combine_raw(points: Sequence[Any]) -> GroupElement:
    """Σ of raw libsecp256k1 points into a NEW point (never aliases an input)."""
    if not points:
        return GroupElement(None)
    out = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ec_pubkey_combine(
        _CTX, out, _ffi.new("secp256k1_pubkey *[]", points), len(points)
    ):
        return GroupElement(None)  # the only failure mode: the sum is the point at infinity
    return GroupElement(out)


class PublicBaseTable:
    """k·P for PUBLIC scalars k from a precomputed 8-bit window table of a fixed P.

    Entry 255·i + d − 1 holds d·256^i·P (d = 1..255, i = 0..31): 8,160 affine points
    in one contiguous libsecp256k1 array (522 KB). k·P is the sum of at most 32
    entries, which ``public_combination`` adds together with every other term of a
    linear combination in one ``secp256k1_ec_pubkey_combine``. Entry pointers are made
    by pointer arithmetic on demand, so the table holds no Python object per entry
    (a list of 8,160 cdata pointers is slower to walk once caches are cold).

    Lookups index memory by the scalar's bytes, so they are VARIABLE TIME: use them
    for challenges and responses, never for a secret scalar.
    """

    __slots__ = ("_array",)

    def __init__(self, point: GroupElement) -> None:
        if point._point is None:
            raise LocalProtocolError("a fixed-base table needs a finite point")
        array = _ffi.new(f"secp256k1_pubkey[{_TABLE_WINDOWS * _TABLE_DIGITS}]")
        pair = _ffi.new("secp256k1_pubkey *[2]")
        base = _ffi.new("secp256k1_pubkey *", point._point[0])
        for row in _WINDOW_OFFSETS:
            array[row] = base[0]
            pair[1] = base
            for digit in range(1, _TABLE_DIGITS):
                # (d+1)·B = d·B + B is never infinity: n is prime and does not divide
                # (d+1)·256^i for d + 1 ≤ 255, i ≤ 31.
                pair[0] = array + (row + digit - 1)
                if not _lib.secp256k1_ec_pubkey_combine(_CTX, array + (row + digit), pair, 2):
                    raise LocalProtocolError("fixed-base table: unexpected infinity")
            pair[0] = array + (row + _TABLE_DIGITS - 1)
            base = _ffi.new("secp256k1_pubkey *")
            if not _lib.secp256k1_ec_pubkey_combine(_CTX, base, pair, 2):  # 256·B
                raise LocalProtocolError("fixed-base table: unexpected infinity")
        self._array = array

    def gather(self, scalar: int, out: list[Any]) -> None:
        """Append pointers to the entries whose sum is scalar·P (variable time).

        The pointers borrow this table's memory: sum them before the table is dropped.
        """
        array = self._array
        digits = (scalar % SECP256K1_ORDER).to_bytes(SCALAR_LEN, "little")
        out.extend(
            [array + (i + d - 1) for i, d in zip(_WINDOW_OFFSETS, digits, strict=True) if d]
        )

    def __repr__(self) -> str:
        return "PublicBaseTable()"


def public_combination(
    fixed: Iterable[tuple[int, PublicBaseTable]],
    variable: Iterable[tuple[int, GroupElement]] = (),
    base_coeff: int = 0,
) -> GroupElement:
    """Σ k_i·T_i + Σ m_j·P_j + b·G for PUBLIC scalars, added up by one combine call.

    - Fixed-base terms: entries of their ``PublicBaseTable``.
    - Variable points: one ``tweak_mul`` each (``ecmult_const``, which beats the
      ECDSA-recovery ``ecmult`` for a single point: that also pays a square root and
      an inversion).
    - b·G is folded into the first variable term with ``mul_add_base`` (cheaper than a
      table or an ``ecmult_gen`` of its own), or is one ``ecmult_gen`` otherwise.

    Verifier side only: the scalars' bytes pick table entries (variable time).
    """
    points: list[Any] = []
    for scalar, table in fixed:
        table.gather(scalar, points)
    b = base_coeff % SECP256K1_ORDER
    for scalar, element in variable:
        k = scalar % SECP256K1_ORDER
        if k == 0 or element._point is None:
            continue
        if b:
            folded = mul_add_base(element, k, b)._point
            b = 0
            if folded is not None:
                points.append(folded)
            continue
        product = _ffi.new("secp256k1_pubkey *", element._point[0])
        _lib.secp256k1_ec_pubkey_tweak_mul(_CTX, product, k.to_bytes(SCALAR_LEN, "big"))
        points.append(product)
    if b:
        points.append(GroupElement.base_mul(b)._point)
    return _combine_raw(points)


# --------------------------------------------------------------------------------------
# The generators of the scheme and linear combinations over them


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
        """The 8-bit window table (built on first use; variable-time lookups)."""
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

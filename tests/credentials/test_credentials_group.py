"""Fixed-base tables and public linear combinations agree with plain multiplication."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.core.crypto import SECP256K1_ORDER
from hornet.credentials.group import (
    GroupElement,
    PublicBaseTable,
    generators,
    group_sum,
    public_combination,
    public_lincomb,
)

P = GroupElement.hash_to_group(b"test/P")
Q = GroupElement.hash_to_group(b"test/Q")
TABLE = PublicBaseTable(P)
SCALARS = st.one_of(
    st.integers(0, 2**256 - 1),
    st.sampled_from([0, 1, 2, 255, 256, 257, 2**248, SECP256K1_ORDER - 1, SECP256K1_ORDER,
                     SECP256K1_ORDER + 1]),
)


@settings(max_examples=60, deadline=None)
@given(SCALARS, SCALARS, SCALARS)
def test_public_combination_equals_the_naive_sum(k: int, m: int, b: int) -> None:
    expected = group_sum((P * k, Q * m, GroupElement.base_mul(b)))
    assert public_combination(((k, TABLE),), ((m, Q),), b) == expected
    assert public_combination(((k, TABLE),)) == P * k


def test_public_combination_handles_cancellation_and_empty_sums() -> None:
    assert public_combination(((5, TABLE),), ((-5, P),)).is_infinity
    assert public_combination(((0, TABLE),)).is_infinity
    assert public_combination((), ()).is_infinity
    assert public_combination((), (), 7) == GroupElement.base_mul(7)
    # the G coefficient folds into the first variable term even when that term cancels
    assert public_combination((), ((3, P), (-3, P)), 7) == GroupElement.base_mul(7)


def test_public_lincomb_matches_secret_arithmetic_over_every_generator() -> None:
    g = generators()
    terms = [(i * 0x1F3D5B79 + 3, base) for i, base in enumerate(g.all)] + [(11, Q)]
    expected = group_sum(
        [base.mul_secret(k) for k, base in terms[:-1]] + [Q * 11]
    )
    assert public_lincomb(terms) == expected


def test_a_group_elements_repr_shows_no_part_of_its_point() -> None:
    # A credential's V and T are client secrets: reprs of them must not leak.
    secret = GroupElement.hash_to_group(b"test/secret point")
    text = repr(secret)
    encoded = secret.encode()
    assert not any(encoded[i:i + 4].hex() in text for i in range(len(encoded) - 3))
    assert repr(GroupElement.infinity()) == "GroupElement(infinity)"
    assert text == "GroupElement(<point>)"

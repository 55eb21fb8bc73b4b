"""Synthetic SCIDs: realistic shape, hidden namespace, no collisions, expiry."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hornet.errors import LocalProtocolError, MalformedInputError
from hornet.mixer.scid import (
    MAX_TX_INDEX,
    MIXER_NAMESPACE,
    SEGWIT_ACTIVATION_HEIGHT,
    Registration,
    ScidBook,
    ScidCipher,
    decode_scid,
    encode_scid,
    estimated_tip_height,
    format_scid,
    mint_scid,
    randbelow,
)

NOW = 1_750_000_000.0


def test_minted_scids_look_like_real_ones() -> None:
    rng = random.Random(1)
    cipher = ScidCipher(rng.randbytes(32))
    tip = estimated_tip_height(NOW)
    assert 900_000 < tip < 910_000  # mid-2025
    for _ in range(500):
        height, tx, out = decode_scid(mint_scid(cipher, rng, tip_height=tip))
        assert SEGWIT_ACTIVATION_HEIGHT <= height <= tip - 4320
        assert 0 <= tx < MAX_TX_INDEX
        assert 0 <= out < 8


def test_the_namespace_is_hidden_without_the_key() -> None:
    rng = random.Random(2)
    ours, other = ScidCipher(rng.randbytes(32)), ScidCipher(rng.randbytes(32))
    tip = estimated_tip_height(NOW)
    scids = [mint_scid(ours, rng, tip_height=tip) for _ in range(400)]
    assert all(ours.namespace_of(s) == MIXER_NAMESPACE for s in scids)
    outputs = [decode_scid(s)[2] for s in scids]
    assert len(set(outputs)) == 8  # every output index occurs
    guessed = sum(other.namespace_of(s) == MIXER_NAMESPACE for s in scids)
    assert guessed < 100  # about 1/8 by chance, not all
    assert ours.namespace_of(encode_scid(800_000, 3000, 1)) is None  # tx index too large
    assert ours.namespace_of(encode_scid(800_000, 3, 9)) is None


@given(st.integers(0, 2**24 - 1), st.integers(0, 2**24 - 1), st.integers(0, 2**16 - 1))
def test_scid_fields_round_trip(height: int, tx: int, out: int) -> None:
    scid = encode_scid(height, tx, out)
    assert decode_scid(scid) == (height, tx, out)
    assert format_scid(scid) == f"{height}x{tx}x{out}"


def test_bad_scid_values_raise_typed_errors() -> None:
    with pytest.raises(MalformedInputError):
        decode_scid(1 << 64)
    with pytest.raises(LocalProtocolError):
        encode_scid(1 << 24, 0, 0)
    with pytest.raises(LocalProtocolError):
        ScidCipher(bytes(31))
    assert "key" not in repr(ScidCipher(bytes(32))).replace("ScidCipher", "")


@given(st.integers(1, 10**12), st.integers(0, 2**32))
def test_randbelow_stays_in_range(n: int, seed: int) -> None:
    assert 0 <= randbelow(random.Random(seed), n) < n


class _StuckRng:
    """Returns the same bytes forever: every mint attempt draws the same SCID."""

    def randbytes(self, n: int) -> bytes:
        return bytes(range(n))


def test_minting_never_returns_a_live_tombstoned_or_reserved_scid() -> None:
    book = ScidBook(ScidCipher(bytes(32)), tombstone_s=100.0)
    first = book.mint(_StuckRng(), NOW)
    book.add(Registration(first, b"\x02" * 33, bytes(32), NOW + 10, NOW))
    with pytest.raises(LocalProtocolError):
        book.mint(_StuckRng(), NOW)  # would collide with a live SCID
    book.expire(NOW + 10)
    with pytest.raises(LocalProtocolError):
        book.mint(_StuckRng(), NOW + 20)  # would collide with its tombstone
    book.expire(NOW + 111)
    assert book.mint(_StuckRng(), NOW + 111) == first
    with pytest.raises(LocalProtocolError):
        book.mint(_StuckRng(), NOW + 111, reserved={first})


def test_a_registration_is_live_strictly_before_its_deadline() -> None:
    book = ScidBook(ScidCipher(bytes(32)), tombstone_s=100.0)
    reg = Registration(42, b"\x02" * 33, bytes(32), NOW + 10, NOW)
    book.add(reg)
    assert book.lookup(42, NOW + 9.999) == reg
    assert book.lookup(42, NOW + 10) is None  # even before expire() runs
    book.renew(42, NOW + 20)
    assert book.next_deadline() == NOW + 20
    assert book.expire(NOW + 15) == []  # the old deadline is stale
    assert [r.scid for r in book.expire(NOW + 20)] == [42]
    assert book.next_deadline() is None
    assert 42 in book.tombstones()

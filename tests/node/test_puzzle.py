"""Setup puzzles (hornet.core.puzzle): layout, solving, checking, and the client side."""

from __future__ import annotations

import hashlib
import random

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.circuit.circuit import SetupTimeoutError
from hornet.circuit.puzzle import PuzzleEscalation, solve_setup
from hornet.core import puzzle
from hornet.core.chdr import PUZZLE_OFFSET, bound_setup_chdr
from hornet.core.crypto import SecretKey
from hornet.core.params import CHDR_LEN, Params
from hornet.core.relay import node_id_of
from hornet.core.setup import HopSpec, build_setup
from hornet.errors import LocalProtocolError


def _setup_packet(seed: int = 1) -> bytes:
    rng = random.Random(seed)
    keys = [SecretKey.from_rng(rng) for _ in range(3)]
    hops = [HopSpec(node_id_of(k.public_key), k.public_key) for k in keys]
    request = build_setup(Params(), hops, hops[:2], b"\xfe\x04" + bytes(6), 1_000_010, rng)
    return request.packet


def _leading_zeros_by_spec(packet: bytes) -> int:
    """The digest exactly as SPEC/hardening_design §1 words it, computed independently."""
    chdr = packet[:CHDR_LEN]
    bound = chdr[:7] + bytes(11)
    message = bound + packet[19:52] + chdr[8:18]
    digest = hashlib.blake2b(message, digest_size=32, person=b"hornet-puzzle").digest()
    bits = bin(int.from_bytes(digest, "big"))[2:].zfill(256)
    return len(bits) - len(bits.lstrip("0"))


def test_a_solved_puzzle_has_the_leading_zero_bits_the_layout_defines() -> None:
    packet = _setup_packet()
    solved = puzzle.solve(packet, 12)
    assert solved[PUZZLE_OFFSET] == 12
    assert _leading_zeros_by_spec(solved) >= 12
    # Only the 11 puzzle bytes changed: the bound CHDR and everything after it did not.
    assert bound_setup_chdr(solved[:CHDR_LEN]) == bound_setup_chdr(packet[:CHDR_LEN])
    assert solved[CHDR_LEN:] == packet[CHDR_LEN:] and solved[:PUZZLE_OFFSET] == packet[:7]


def test_puzzle_digest_is_blake2b_over_bound_chdr_x_and_nonce() -> None:
    bound = bytes((1, 7)) + (1_000_010).to_bytes(4, "big") + b"\x05" + bytes(11)
    x, nonce = b"\x02" + bytes(range(32)), bytes(range(10))
    expected = hashlib.blake2b(bound + x + nonce, digest_size=32, person=b"hornet-puzzle").digest()
    assert puzzle.puzzle_digest(bound, x, nonce) == expected
    assert puzzle.leading_zero_bits(bytes(2) + b"\x1f" + bytes(29)) == 19
    with pytest.raises(LocalProtocolError):
        puzzle.puzzle_digest(bound, x[:32], nonce)


def test_check_accepts_the_required_difficulty_and_below() -> None:
    solved = puzzle.solve(_setup_packet(), 10, start=1234)
    assert puzzle.check(solved, 10) and puzzle.check(solved, 4) and puzzle.check(solved, 0)


def test_an_unsolved_or_underclaimed_puzzle_is_refused() -> None:
    packet = _setup_packet()
    assert not puzzle.check(packet, 1)  # no puzzle at all
    solved = puzzle.solve(packet, 10)
    assert not puzzle.check(solved, 11)  # claims 10, 11 required
    # Claiming more than was solved does not help: the digest is checked.
    overclaimed = solved[:PUZZLE_OFFSET] + b"\x18" + solved[PUZZLE_OFFSET + 1 :]
    assert _leading_zeros_by_spec(overclaimed) < 24
    assert not puzzle.check(overclaimed, 24)


@pytest.mark.parametrize("offset", [2, 6, 10, CHDR_LEN + 1, CHDR_LEN + 33])
def test_the_puzzle_is_bound_to_exp_epoch_nonce_and_ephemeral_key(offset: int) -> None:
    solved = puzzle.solve(_setup_packet(), 16)
    tampered = bytearray(solved)
    tampered[offset] ^= 0x01
    # A 16-bit puzzle survives a change of its inputs with probability 2^-16.
    assert not puzzle.check(bytes(tampered), 16)


def test_a_puzzle_for_one_setup_does_not_solve_another() -> None:
    first, second = _setup_packet(1), _setup_packet(2)
    solved = puzzle.solve(first, 14)
    transplanted = solved[:CHDR_LEN] + second[CHDR_LEN:]
    assert not puzzle.check(transplanted, 14)


def test_solve_refuses_what_is_not_a_setup_packet() -> None:
    with pytest.raises(LocalProtocolError):
        puzzle.solve(b"\x02" + bytes(100), 4)
    with pytest.raises(LocalProtocolError):
        puzzle.solve(_setup_packet(), 256)
    assert puzzle.solve(_setup_packet(), 0)[PUZZLE_OFFSET:CHDR_LEN] == bytes(11)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.integers(min_value=-5, max_value=300))
def test_check_never_raises_on_arbitrary_bytes(data: bytes, required: int) -> None:
    assert puzzle.check(data, required) in (True, False)
    if required <= 0:
        assert puzzle.check(data, required)


# -- the client: solving off the event loop, escalation on timeouts ---------------------


async def test_large_puzzles_are_solved_without_blocking_the_event_loop() -> None:
    packet = _setup_packet()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(0.001)
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        solved = await solve_setup(packet, 15)
        nursery.cancel_scope.cancel()
    assert puzzle.check(solved, 15)
    assert ticks > 0  # the loop ran while the worker thread hashed


async def test_each_timeout_raises_the_entry_relays_level_and_a_reply_keeps_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    escalation = PuzzleEscalation((0, 8, 12, 16), fade_s=30.0)
    entry, other, required = b"e" * 8, b"o" * 8, 10
    tried: list[int] = []

    async def attempt(difficulty: int) -> int:
        tried.append(difficulty)
        await trio.sleep(2)  # the relay drops what is too easy: the client times out
        if difficulty < required:
            raise SetupTimeoutError("no setup reply within 2 s")
        return difficulty

    async def until_it_works() -> int:
        while True:  # the caller's attempts: one setup each
            try:
                return await escalation.run(entry, attempt)
            except SetupTimeoutError:
                continue

    assert await until_it_works() == 12
    assert tried == [0, 8, 12]
    assert await escalation.run(entry, attempt) == 12  # a reply keeps the level
    assert tried == [0, 8, 12, 12]
    assert escalation.start_level(other, trio.current_time()) == 0  # per entry relay
    await trio.sleep(65)  # two fade periods: two levels down
    assert escalation.start_level(entry, trio.current_time()) == 0
    required = 99  # nothing works: the level tops out, the error names the puzzle
    for _ in range(4):
        with pytest.raises(SetupTimeoutError):
            await escalation.run(entry, attempt)
    with pytest.raises(SetupTimeoutError, match="puzzle of 16 bits"):
        await escalation.run(entry, attempt)
    assert tried[-5:] == [0, 8, 12, 16, 16]


def test_escalation_levels_are_validated() -> None:
    for levels in [(), (8, 0), (-1, 4), (0, 300)]:
        with pytest.raises(LocalProtocolError):
            PuzzleEscalation(levels)

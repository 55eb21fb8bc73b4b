"""Client puzzles on setup packets (the layout is SPEC.md §3.2's setup CHDR).

A relay under a setup flood asks its clients to pay for each setup with work before it
spends an ECDH on it. The puzzle lives in the last 11 bytes of the setup CHDR:

    type (1) ‖ hops (1) ‖ EXP (4) ‖ key_epoch (1) ‖ difficulty (1) ‖ nonce (10)

digest = BLAKE2b-256(person = "hornet-puzzle"; bound CHDR (18) ‖ X (33) ‖ nonce (10)),
where the bound CHDR is the CHDR with the 11 puzzle bytes zeroed (what the Sphinx HMACs
cover and what relays forward) and X is the Sphinx ephemeral key at the entry relay
(``packet[19:52]``: SHDR = version (1) ‖ X (33) ‖ ...). A packet is solved at difficulty
d when the digest's first d bits are zero. Binding X ties the work to one setup: X fixes
the Sphinx shared secret, so a solved packet cannot be reused for another setup; the
entry relay's admission remembers the X of each setup it admitted under a puzzle, so a
copy of the same one is refused before the ECDH (``hornet.node.admission``).

Rules:
1. Pure functions: no clock, no randomness. ``solve`` searches nonces from a counter the
   caller chooses; ``check`` never raises for any bytes.
2. ``check(packet, required)`` accepts iff required is 0, or the claimed difficulty is at
   least ``required`` (a cheap filter first) and the digest has ``required`` leading zero
   bits. It costs one BLAKE2b call, a small fraction of the ECDH it protects.
3. Only the entry relay looks at the puzzle; every relay forwards the bound CHDR.
"""

from __future__ import annotations

import hashlib
from typing import Final

from hornet.core.chdr import (
    NONCE_LEN,
    PUZZLE_LEN,
    PUZZLE_OFFSET,
    TYPE_SETUP,
    bound_setup_chdr,
    with_puzzle,
)
from hornet.core.params import CHDR_LEN
from hornet.errors import LocalProtocolError

PERSON: Final = b"hornet-puzzle"
DIGEST_LEN: Final = 32
DIGEST_BITS: Final = 8 * DIGEST_LEN
_NONCE_OFFSET: Final = PUZZLE_OFFSET + 1
#: X, the Sphinx ephemeral key at the entry relay: after the CHDR and the version byte.
X_OFFSET: Final = CHDR_LEN + 1
X_LEN: Final = 33
#: A setup packet must hold at least the CHDR and X for the puzzle to be defined.
MIN_PACKET_LEN: Final = X_OFFSET + X_LEN
MAX_DIFFICULTY: Final = 255  # the field is one byte; anything above ~30 is unsolvable
_NONCE_SPACE: Final = 1 << (8 * NONCE_LEN)
_ZERO_PUZZLE: Final = bytes(PUZZLE_LEN)


def puzzle_digest(bound_chdr: bytes, ephemeral_key: bytes, nonce: bytes) -> bytes:
    """BLAKE2b-256(person="hornet-puzzle"; bound CHDR ‖ X ‖ nonce)."""
    if len(bound_chdr) != CHDR_LEN or len(ephemeral_key) != X_LEN or len(nonce) != NONCE_LEN:
        raise LocalProtocolError("puzzle input: CHDR 18, X 33 and nonce 10 bytes")
    return hashlib.blake2b(
        bound_chdr + ephemeral_key + nonce, digest_size=DIGEST_LEN, person=PERSON
    ).digest()


def leading_zero_bits(digest: bytes) -> int:
    """How many of ``digest``'s first bits are zero."""
    value = int.from_bytes(digest, "big")
    return 8 * len(digest) - value.bit_length()


def claimed_difficulty(packet: bytes) -> int:
    """The difficulty a setup packet claims (0 when it is too short to carry one)."""
    return packet[PUZZLE_OFFSET] if len(packet) >= CHDR_LEN else 0


def solve(packet: bytes, difficulty: int, start: int = 0) -> bytes:
    """The setup ``packet`` with a puzzle solved at ``difficulty`` written into its CHDR.

    Tries the nonces ``start``, ``start + 1``, ... (10-byte big-endian, wrapping), about
    2^difficulty BLAKE2b calls on average. Difficulty 0 writes a zero puzzle field.
    Callers run large difficulties in a worker thread (``hornet.circuit.puzzle``).
    """
    if len(packet) < MIN_PACKET_LEN or packet[0] != TYPE_SETUP:
        raise LocalProtocolError("a puzzle needs a setup packet")
    if not 0 <= difficulty <= MAX_DIFFICULTY:
        raise LocalProtocolError(f"puzzle difficulty must be in [0, {MAX_DIFFICULTY}]")
    if difficulty == 0:
        return with_puzzle(packet, 0, bytes(NONCE_LEN))
    prefix = hashlib.blake2b(digest_size=DIGEST_LEN, person=PERSON)
    prefix.update(bound_setup_chdr(packet[:CHDR_LEN]))
    prefix.update(packet[X_OFFSET:MIN_PACKET_LEN])
    shift = DIGEST_BITS - difficulty
    counter = start % _NONCE_SPACE
    while True:
        nonce = counter.to_bytes(NONCE_LEN, "big")
        attempt = prefix.copy()
        attempt.update(nonce)
        if not int.from_bytes(attempt.digest(), "big") >> shift:
            return with_puzzle(packet, difficulty, nonce)
        counter = (counter + 1) % _NONCE_SPACE


def check(packet: bytes, required: int) -> bool:
    """Whether ``packet`` carries a puzzle solved at ``required`` bits (never raises)."""
    if required <= 0:
        return True
    if len(packet) < MIN_PACKET_LEN or packet[0] != TYPE_SETUP or required > DIGEST_BITS:
        return False
    if packet[PUZZLE_OFFSET] < required:
        return False  # the claim is too low: no hash needed
    digest = hashlib.blake2b(
        b"".join(
            (
                packet[:PUZZLE_OFFSET],
                _ZERO_PUZZLE,
                packet[X_OFFSET:MIN_PACKET_LEN],
                packet[_NONCE_OFFSET:CHDR_LEN],
            )
        ),
        digest_size=DIGEST_LEN,
        person=PERSON,
    ).digest()
    return not int.from_bytes(digest, "big") >> (DIGEST_BITS - required)


__all__ = [
    "MAX_DIFFICULTY",
    "PERSON",
    "check",
    "claimed_difficulty",
    "leading_zero_bits",
    "puzzle_digest",
    "solve",
]

"""Common header (CHDR, HORNET §3.3): ``type (1) ‖ hops (1) ‖ specific (16)``.

Setup packets: ``EXP (u32, Unix seconds) ‖ key epoch (u8) ‖ puzzle (11)``. The key epoch is
the low byte of the relay key epoch the source built the setup under (SPEC.md §7.1). The
puzzle field (difficulty u8 ‖ nonce 10) is read by the entry relay only (SPEC.md §7.6):
the *bound* CHDR, with the puzzle zeroed, is what every Sphinx HMAC covers and what every
relay forwards, so a puzzle never travels past the first link.

Data packets carry the per-packet IV, which every relay replaces with a PRP of it, so it is
never an identifier across links. ``hops`` is r, the maximum path length of the network,
never the real length.
"""

from __future__ import annotations

from typing import Final

from hornet.core.params import CHDR_LEN
from hornet.errors import LocalProtocolError, MalformedInputError

TYPE_SETUP: Final = 0x01
TYPE_DATA: Final = 0x02
TYPE_DATA_NESTED: Final = 0x03  # rendezvous: the AHDR is 2r·c bytes until the RP
EPOCH_OFFSET: Final = 6
PUZZLE_OFFSET: Final = 7
PUZZLE_LEN: Final = 11  # difficulty (1) ‖ nonce (10)
NONCE_LEN: Final = 10
_NO_PUZZLE: Final = bytes(PUZZLE_LEN)


def setup_chdr(max_hops: int, exp: int, key_epoch: int = 0) -> bytes:
    """A bound setup CHDR (puzzle zeroed) for key epoch ``key_epoch`` (its low byte is sent)."""
    return (
        bytes((TYPE_SETUP, max_hops))
        + exp.to_bytes(4, "big")
        + bytes((key_epoch & 0xFF,))
        + _NO_PUZZLE
    )


def data_chdr(max_hops: int, iv: bytes, *, nested: bool = False) -> bytes:
    return bytes((TYPE_DATA_NESTED if nested else TYPE_DATA, max_hops)) + iv


def setup_exp(chdr: bytes) -> int:
    """EXP of a setup CHDR."""
    if len(chdr) != CHDR_LEN:
        raise MalformedInputError("setup CHDR must be 18 bytes")
    return int.from_bytes(chdr[2:6], "big")


def bound_setup_chdr(chdr: bytes) -> bytes:
    """The CHDR with its puzzle field zeroed: what Sphinx HMACs cover and relays forward."""
    return chdr[:PUZZLE_OFFSET] + _NO_PUZZLE


def with_puzzle(packet: bytes, difficulty: int, nonce: bytes) -> bytes:
    """``packet`` (a setup packet) with the puzzle field set to ``difficulty ‖ nonce``."""
    if not 0 <= difficulty <= 255 or len(nonce) != NONCE_LEN:
        raise LocalProtocolError("puzzle: difficulty is a byte and the nonce 10 bytes")
    return packet[:PUZZLE_OFFSET] + bytes((difficulty,)) + nonce + packet[CHDR_LEN:]

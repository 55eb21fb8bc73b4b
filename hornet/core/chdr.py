"""Common header (CHDR, HORNET §3.3): ``type (1) ‖ hops (1) ‖ specific (16)``.

Setup packets carry EXP (u32, Unix seconds) in the first 4 specific bytes, then 12 zero
bytes; data packets carry the per-packet IV, which every relay replaces with a PRP of
it, so it is never an identifier across links. ``hops`` is r, the maximum path length
of the network, never the real length.
"""

from __future__ import annotations

from typing import Final

from hornet.core.params import CHDR_LEN
from hornet.errors import MalformedInputError

TYPE_SETUP: Final = 0x01
TYPE_DATA: Final = 0x02
TYPE_DATA_NESTED: Final = 0x03  # rendezvous: the AHDR is 2r·c bytes until the RP
_SETUP_PAD: Final = bytes(12)


def setup_chdr(max_hops: int, exp: int) -> bytes:
    return bytes((TYPE_SETUP, max_hops)) + exp.to_bytes(4, "big") + _SETUP_PAD


def data_chdr(max_hops: int, iv: bytes, *, nested: bool = False) -> bytes:
    return bytes((TYPE_DATA_NESTED if nested else TYPE_DATA, max_hops)) + iv


def setup_exp(chdr: bytes) -> int:
    """EXP of a setup CHDR (raises on a non-zero reserved field)."""
    if len(chdr) != CHDR_LEN or chdr[6:] != _SETUP_PAD:
        raise MalformedInputError("setup CHDR reserved bytes must be zero")
    return int.from_bytes(chdr[2:6], "big")

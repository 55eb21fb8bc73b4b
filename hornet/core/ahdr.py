"""Anonymous headers (HORNET §4.4.1, Alg. 3–5).

AHDR = FS_0 ‖ γ_0 ‖ β_0, ``slots``·c bytes (r·c; 2r·c when it nests a rendezvous header).
Each relay opens its FS, checks γ over FS ‖ β in constant time, and shifts the header by
one block, XORing it with PRG2(s): the next relay's FS comes to the front and the tail
fills with stream bytes that the sender's filler anticipated.

Deviations from the paper: Alg. 5 (nested) uses PRG2 like Alg. 3, not PRG0, and XORs
the whole inner header (the paper's PRG choice and XOR range are errata).
"""

from __future__ import annotations

from collections.abc import Sequence

from hornet.core import crypto
from hornet.core.fs import HopKeys, filler
from hornet.core.params import FS_LEN, MAC_LEN, C
from hornet.errors import LocalProtocolError


def create_ahdr(
    hop_keys: Sequence[HopKeys],
    fses: Sequence[bytes],
    padding: bytes,
    *,
    slots: int,
    inner: bytes = b"",
) -> bytes:
    """CREATE_AHDR (Alg. 4), or CREATE_ANONYMOUS_HEADER_NESTED (Alg. 5) with ``inner``.

    ``padding`` is (slots − l)·c − |inner| random bytes from the caller's rng: the last
    hop sees random bytes, never zeros. With ``inner``, the last hop's shifted header
    starts with ``inner`` exactly.
    """
    hops = len(hop_keys)
    if not 1 <= hops <= slots or len(fses) != hops:
        raise LocalProtocolError("path length must be in [1, slots] with one FS per hop")
    if len(padding) != (slots - hops) * C - len(inner):
        raise LocalProtocolError("padding has the wrong length")
    size = slots * C
    streams = [crypto.aes_ctr_stream(k.prg2, size) for k in hop_keys]
    phi = filler(streams, C, slots)
    head = inner + padding
    if inner:
        head = crypto.xor_bytes(head, streams[-1][: len(head)])
    beta = head + phi
    gamma = crypto.mac16(hop_keys[-1].mac, fses[-1] + beta)
    for i in range(hops - 2, -1, -1):
        beta = crypto.xor_bytes(fses[i + 1] + gamma + beta[: size - 2 * C], streams[i][: size - C])
        gamma = crypto.mac16(hop_keys[i].mac, fses[i] + beta)
    return fses[0] + gamma + beta


def shift_ahdr(keys: HopKeys, ahdr: bytes) -> bytes:
    """The header after one PROC_AHDR: (β ‖ 0^c) ⊕ PRG2(s)."""
    size = len(ahdr)
    return crypto.xor_bytes(ahdr[C:] + bytes(C), crypto.aes_ctr_stream(keys.prg2, size))


def expected_arrival(hop_keys: Sequence[HopKeys], ahdr: bytes) -> bytes:
    """What the header looks like after every hop in ``hop_keys`` has shifted it.

    The source uses it to recognise its backward packets without any identifier on
    the wire: the bytes are pseudo-random, and only the last link ever carries them.
    """
    for keys in hop_keys:
        ahdr = shift_ahdr(keys, ahdr)
    return ahdr


def ahdr_mac_ok(keys: HopKeys, ahdr: bytes) -> bool:
    """γ == MAC(h_MAC(s); FS ‖ β), compared in constant time (Alg. 3)."""
    expected = crypto.mac16(keys.mac, ahdr[:FS_LEN] + ahdr[FS_LEN + MAC_LEN :])
    return crypto.ct_equal(expected, ahdr[FS_LEN : FS_LEN + MAC_LEN])

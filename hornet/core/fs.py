"""Forwarding segments and the FS payload (HORNET §4.3.2–4.3.3, Alg. 1–2).

An FS is ``PRP_SV(s ‖ R ‖ EXP)``: the relay's per-circuit state, sealed under its local
secret SV and carried by the packets themselves. The PRP is one 32-byte Luby–Rackoff
permutation (``crypto.Prp256``), never two 16-byte halves: with halves, someone holding
two FSes could splice one's s onto another's R and EXP (research notes §7.4).

The FS payload is r·c bytes. Each relay prepends its FS and a MAC and drops the last
block (ADD_FS), so its length never changes. It starts as PRG1 output, never zeros,
so the destination learns nothing about the path length from it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Final

import attrs

from hornet.core import crypto
from hornet.core.params import FS_LEN, NODE_ID_LEN, ROUTE_LEN, C, K
from hornet.errors import IntegrityError, MalformedInputError

_RESERVED: Final = bytes(3)


class Flag(enum.IntFlag):
    """Bits of R's flag byte."""

    NONE = 0
    BACKWARD = 0x01  # data: add an onion layer (backward path) instead of removing one
    DELIVER = 0x02  # this node is the circuit's endpoint
    RENDEZVOUS = 0x04  # this node splices a nested AHDR (rendezvous point)


_KNOWN_FLAGS: Final = int(Flag.BACKWARD | Flag.DELIVER | Flag.RENDEZVOUS)


@attrs.frozen
class Route:
    """R: where the relay sends the packet next, and how it treats the circuit."""

    next_hop: bytes  # 8-byte node id (or endpoint id, for the last backward relay)
    flags: Flag = Flag.NONE

    def __attrs_post_init__(self) -> None:
        if len(self.next_hop) != NODE_ID_LEN:
            raise MalformedInputError("next hop id must be 8 bytes")

    def encode(self) -> bytes:
        return self.next_hop + bytes((int(self.flags),)) + _RESERVED

    @classmethod
    def decode(cls, data: bytes) -> Route:
        if len(data) != ROUTE_LEN or data[9:12] != _RESERVED or data[8] & ~_KNOWN_FLAGS:
            raise MalformedInputError("bad routing info")
        return cls(next_hop=bytes(data[:8]), flags=Flag(data[8]))


@attrs.frozen
class OpenedFs:
    """FS_OPEN's result: the circuit key s, the route R and EXP."""

    s: bytes = attrs.field(repr=False)
    route: Route
    exp: int


class HopKeys:
    """HORNET's per-hop keys, all derived from s (h_op in the paper, §4.1).

    mac, prg0, prg1, prg2, prp, enc, tag, gcm = AES_s(1), …, AES_s(8)
    (``crypto.derive_keys``). ``enc`` keys AES-CTR layers only and ``gcm`` the hardened
    profile's AES-GCM layers only: a destination uses one s for its forward (GCM) and
    backward (CTR) layers, and no key serves both modes.
    """

    __slots__ = ("enc", "gcm", "mac", "prg0", "prg1", "prg2", "prp", "tag")

    def __init__(self, s: bytes) -> None:
        self.mac, self.prg0, self.prg1, self.prg2, self.prp, self.enc, self.tag, self.gcm = (
            crypto.derive_keys(s, 8)
        )

    def __repr__(self) -> str:
        return "HopKeys(<hidden>)"


def fs_create(prp: crypto.Prp256, s: bytes, route: Route, exp: int) -> bytes:
    """FS_CREATE (§4.3.2): PRP_{h(SV)}(s ‖ R ‖ EXP)."""
    return prp.encrypt(s + route.encode() + exp.to_bytes(4, "big"))


def fs_open(prp: crypto.Prp256, fs: bytes) -> OpenedFs:
    """FS_OPEN: invert the PRP. A forged FS decodes to junk, usually bad routing info."""
    plain = prp.decrypt(fs)
    return OpenedFs(
        s=plain[:K],
        route=Route.decode(plain[K : K + ROUTE_LEN]),
        exp=int.from_bytes(plain[K + ROUTE_LEN : FS_LEN], "big"),
    )


def init_fs_payload(seed: bytes, max_hops: int) -> bytes:
    """INIT_FS_PAYLOAD (§4.3.3): PRG1(h_PRG1(seed)), r·c pseudo-random bytes."""
    return crypto.aes_ctr_stream(HopKeys(seed).prg1, max_hops * C)


def add_fs(keys: HopKeys, fs: bytes, payload: bytes) -> bytes:
    """ADD_FS (Alg. 1): α ‖ ((FS ‖ P[0:(r−1)c]) ⊕ PRG0(s)[k:rc]), α = MAC(s; that)."""
    size = len(payload)
    tmp = crypto.xor_bytes(fs + payload[: size - C], crypto.aes_ctr_stream(keys.prg0, size)[K:])
    return crypto.mac16(keys.mac, tmp) + tmp


def retrieve_fses(
    payload: bytes, seed: bytes, hop_keys: Sequence[HopKeys], max_hops: int
) -> list[bytes]:
    """RETRIEVE_FSES (Alg. 2): the FSes the l relays added, first relay first.

    The blocks each relay dropped depend only on the initial payload and the PRG0
    streams, never on FSes, so the source first replays the shifts on the initial
    blocks to rebuild the dropped tail ψ, then peels the FSes off from the last relay
    backwards, checking every MAC; what is left must be the initial payload again.
    Raises ``IntegrityError`` on any mismatch.
    """
    r, hops = max_hops, len(hop_keys)
    streams = [crypto.aes_ctr_stream(k.prg0, r * C) for k in hop_keys]
    initial = init_fs_payload(seed, r)
    blocks = {j: initial[j * C : (j + 1) * C] for j in range(r)}
    for stream in streams:
        shifted: dict[int, bytes] = {}
        for index, block in blocks.items():
            new = index + 1
            shifted[new] = (
                crypto.xor_bytes(block, stream[new * C : (new + 1) * C]) if new < r else block
            )
        blocks = shifted
    tail = b"".join(blocks[j] for j in range(r, r + hops))
    full = payload + tail
    fses: list[bytes] = []
    for keys, stream in zip(reversed(hop_keys), reversed(streams), strict=True):
        if not crypto.ct_equal(full[:K], crypto.mac16(keys.mac, full[K : r * C])):
            raise IntegrityError("FS payload MAC mismatch")
        fses.append(crypto.xor_bytes(full[K:C], stream[K:C]))
        full = crypto.xor_bytes(full[C : r * C], stream[C:]) + full[r * C :]
    if not crypto.ct_equal(full, initial):
        # The padding that survived every hop was changed on the way.
        raise IntegrityError("FS payload padding was modified")
    fses.reverse()
    return fses


def filler(streams: Sequence[bytes], block: int, slots: int) -> bytes:
    """Sphinx-style filler for a header of ``slots`` blocks of ``block`` bytes.

    ``streams[i]`` is hop i's stream of slots·block bytes; the result is what the tail of
    the last hop's header must hold so that every MAC sees the bytes it will receive.
    """
    phi = b""
    for i, stream in enumerate(streams[:-1]):
        phi = crypto.xor_bytes(phi + bytes(block), stream[(slots - 1 - i) * block :])
    return phi

"""Synthetic short channel ids: minting, classification and expiry (docs/spec-mixer.md §4).

Strategy:
- A synthetic SCID looks like a real one (BOLT 7: block height 3 bytes, tx index 3
  bytes, output 2 bytes), built the way LDK builds its fake SCIDs: a block height drawn
  uniformly from [segwit activation, tip − 4320] (never a block too recent to be
  checked), a transaction index below 2500, and an output index that is the mixer's
  3-bit namespace encrypted with ChaCha20 under a secret key and the nonce
  ``0^4 ‖ be32(height) ‖ be32(tx_index)``. Without the key the output index is a
  uniform value in 0..7, as common as real ones; with it the mixer classifies an SCID
  before any table lookup.
- ``ScidBook`` keeps the live registrations and a min-heap of deadlines. A registration
  is live while ``now < expires_at``: routing checks the deadline itself, so a message
  arriving after it is dropped even if ``expire`` has not run yet. Expired SCIDs become
  tombstones for ``tombstone_s`` so that a late reply can never reach a new client
  through a re-minted SCID; minting avoids live SCIDs, tombstones and any SCID the
  caller reserves (the mixer's real channels).

Invariants: sans-IO (``now`` and ``rng`` are parameters); the cipher key and the
owners' secrets never appear in ``repr``.
"""

from __future__ import annotations

import heapq
from collections.abc import Container
from typing import Final

import attrs

from hornet.core import crypto
from hornet.credentials.transcript import Rng
from hornet.errors import LocalProtocolError, MalformedInputError

# --------------------------------------------------------------------------------------
# Constants (LDK ``util::scid_utils::fake_scid``; BOLT 7 short_channel_id)

#: First block of segwit on mainnet: no lightning channel is older.
SEGWIT_ACTIVATION_HEIGHT: Final = 481_824
#: LDK ``MAX_SCID_BLOCKS_FROM_NOW``: 30 days of blocks, so a recent real block never collides.
MAX_SCID_BLOCKS_FROM_NOW: Final = 144 * 30
#: LDK ``MAX_TX_INDEX``: transaction indexes of fake SCIDs stay below this.
MAX_TX_INDEX: Final = 2500
#: 3 namespace bits in the output index (LDK ``NAMESPACE_ID_BITMASK``).
NAMESPACE_MASK: Final = 0b111
#: LDK uses 0 (phantom), 1 (outbound alias) and 2 (intercept); the mixer's reply SCIDs use 3.
MIXER_NAMESPACE: Final = 3
#: An anchor for estimating the chain tip from the clock: block 840000 (2024-04-20).
ANCHOR_HEIGHT: Final = 840_000
ANCHOR_TIME: Final = 1_713_571_767
BLOCK_INTERVAL_S: Final = 600
SCID_KEY_LEN: Final = 32
_MAX_MINT_ATTEMPTS: Final = 64


def encode_scid(height: int, tx_index: int, output: int) -> int:
    """``(height << 40) | (tx_index << 16) | output`` (BOLT 7)."""
    if not (0 <= height < 1 << 24 and 0 <= tx_index < 1 << 24 and 0 <= output < 1 << 16):
        raise LocalProtocolError("short_channel_id field out of range")
    return (height << 40) | (tx_index << 16) | output


def decode_scid(scid: int) -> tuple[int, int, int]:
    """(block height, transaction index, output index) of an 8-byte SCID."""
    if not 0 <= scid < 1 << 64:
        raise MalformedInputError("short_channel_id must fit in 8 bytes")
    return scid >> 40, (scid >> 16) & 0xFFFFFF, scid & 0xFFFF


def format_scid(scid: int) -> str:
    """The usual ``HEIGHTxTXxOUT`` spelling, e.g. ``539268x845x1``."""
    height, tx_index, output = decode_scid(scid)
    return f"{height}x{tx_index}x{output}"


def estimated_tip_height(now: float) -> int:
    """The chain tip expected at unix time ``now`` (one block per 600 s from the anchor)."""
    return max(ANCHOR_HEIGHT + int((now - ANCHOR_TIME) // BLOCK_INTERVAL_S), ANCHOR_HEIGHT)


def randbelow(rng: Rng, n: int) -> int:
    """A uniform integer in [0, n) from ``rng.randbytes`` (rejection sampling)."""
    if n <= 0:
        raise LocalProtocolError("randbelow needs a positive bound")
    nbytes = (n.bit_length() + 7) // 8 + 1
    limit = (1 << (8 * nbytes)) - (1 << (8 * nbytes)) % n
    while True:
        value = int.from_bytes(rng.randbytes(nbytes), "big")
        if value < limit:
            return value % n


@attrs.frozen
class ScidCipher:
    """Hides a namespace in the output index: vout = (ns ⊕ ChaCha20(key, nonce)[0]) & 7."""

    key: bytes = attrs.field(repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if len(self.key) != SCID_KEY_LEN:
            raise LocalProtocolError("the SCID key must be 32 bytes")

    def _mask(self, height: int, tx_index: int) -> int:
        nonce = bytes(4) + height.to_bytes(4, "big") + tx_index.to_bytes(4, "big")
        return crypto.chacha20_xor(self.key, b"\x00", nonce)[0]

    def output_for(self, height: int, tx_index: int, namespace: int) -> int:
        if not 0 <= namespace <= NAMESPACE_MASK:
            raise LocalProtocolError("namespace must be in 0..7")
        return (namespace ^ self._mask(height, tx_index)) & NAMESPACE_MASK

    def namespace_of(self, scid: int) -> int | None:
        """The namespace hidden in ``scid``, or None if its output index cannot hold one."""
        height, tx_index, output = decode_scid(scid)
        if output > NAMESPACE_MASK or tx_index >= MAX_TX_INDEX:
            return None
        return (output ^ self._mask(height, tx_index)) & NAMESPACE_MASK


def mint_scid(cipher: ScidCipher, rng: Rng, *, tip_height: int,
              namespace: int = MIXER_NAMESPACE) -> int:
    """One realistic-looking SCID in ``namespace`` (LDK ``get_fake_scid``)."""
    span = tip_height - MAX_SCID_BLOCKS_FROM_NOW - SEGWIT_ACTIVATION_HEIGHT + 1
    if span <= 0:
        raise LocalProtocolError("tip height is below segwit activation + 4320")
    height = SEGWIT_ACTIVATION_HEIGHT + randbelow(rng, span)
    tx_index = randbelow(rng, MAX_TX_INDEX)
    return encode_scid(height, tx_index, cipher.output_for(height, tx_index, namespace))


# --------------------------------------------------------------------------------------
# Registrations


@attrs.frozen
class Registration:
    """A live synthetic SCID: messages to ``scid`` go to node ``target`` until ``expires_at``.

    ``owner_hash`` = SHA-256(owner secret) authorises renewals; hidden from ``repr``.
    """

    scid: int
    target: bytes
    owner_hash: bytes = attrs.field(repr=False)
    expires_at: float
    created_at: float

    def live(self, now: float) -> bool:
        return now < self.expires_at


@attrs.define
class ScidBook:
    """Live synthetic SCIDs, their deadlines and recent tombstones (all in memory)."""

    cipher: ScidCipher
    tombstone_s: float
    namespace: int = MIXER_NAMESPACE
    _live: dict[int, Registration] = attrs.field(factory=dict, repr=False)
    _deadlines: list[tuple[float, int]] = attrs.field(factory=list, repr=False)
    _tombstones: dict[int, float] = attrs.field(factory=dict, repr=False)
    _tomb_heap: list[tuple[float, int]] = attrs.field(factory=list, repr=False)

    def __len__(self) -> int:
        return len(self._live)

    def is_synthetic(self, scid: int) -> bool:
        """True if ``scid`` carries our namespace (it may still be unknown or expired)."""
        try:
            return self.cipher.namespace_of(scid) == self.namespace
        except MalformedInputError:
            return False

    def mint(self, rng: Rng, now: float, reserved: Container[int] = ()) -> int:
        """A fresh SCID colliding with no live SCID, tombstone or reserved SCID."""
        tip = estimated_tip_height(now)
        for _ in range(_MAX_MINT_ATTEMPTS):
            scid = mint_scid(self.cipher, rng, tip_height=tip, namespace=self.namespace)
            if scid not in self._live and scid not in self._tombstones and scid not in reserved:
                return scid
        raise LocalProtocolError("could not mint a fresh SCID (rng or table exhausted)")

    def add(self, registration: Registration) -> None:
        if registration.scid in self._live or registration.scid in self._tombstones:
            raise LocalProtocolError("SCID already in use")
        self._live[registration.scid] = registration
        heapq.heappush(self._deadlines, (registration.expires_at, registration.scid))

    def add_tombstone(self, scid: int, until: float) -> None:
        self._tombstones[scid] = until
        heapq.heappush(self._tomb_heap, (until, scid))

    def renew(self, scid: int, expires_at: float) -> Registration:
        current = self._live[scid]
        renewed = attrs.evolve(current, expires_at=expires_at)
        self._live[scid] = renewed
        heapq.heappush(self._deadlines, (expires_at, scid))
        return renewed

    def get(self, scid: int) -> Registration | None:
        """The registration of ``scid`` even if past its deadline (not yet expired)."""
        return self._live.get(scid)

    def lookup(self, scid: int, now: float) -> Registration | None:
        """The live registration of ``scid`` at ``now``, or None (unknown or expired)."""
        registration = self._live.get(scid)
        if registration is None or not registration.live(now):
            return None
        return registration

    def remove(self, scid: int) -> None:
        self._live.pop(scid, None)

    def expire(self, now: float) -> list[Registration]:
        """Remove every registration whose deadline is ≤ ``now``; tombstone them."""
        expired: list[Registration] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, scid = heapq.heappop(self._deadlines)
            registration = self._live.get(scid)
            if registration is None or registration.expires_at != deadline:
                continue  # renewed (a later heap entry) or already removed
            del self._live[scid]
            self.add_tombstone(scid, now + self.tombstone_s)
            expired.append(registration)
        while self._tomb_heap and self._tomb_heap[0][0] <= now:
            until, scid = heapq.heappop(self._tomb_heap)
            if self._tombstones.get(scid) == until:
                del self._tombstones[scid]
        return expired

    def next_deadline(self) -> float | None:
        """The earliest deadline still pending (stale heap entries are dropped first)."""
        while self._deadlines:
            deadline, scid = self._deadlines[0]
            registration = self._live.get(scid)
            if registration is not None and registration.expires_at == deadline:
                return deadline
            heapq.heappop(self._deadlines)
        return None

    def registrations(self) -> list[Registration]:
        return list(self._live.values())

    def tombstones(self) -> dict[int, float]:
        return dict(self._tombstones)


__all__ = [
    "MAX_TX_INDEX",
    "MIXER_NAMESPACE",
    "SEGWIT_ACTIVATION_HEIGHT",
    "Registration",
    "ScidBook",
    "ScidCipher",
    "decode_scid",
    "encode_scid",
    "estimated_tip_height",
    "format_scid",
    "mint_scid",
    "randbelow",
]

"""Replay filters for setup tags (HORNET §7.3 leaves replay open; we close it).

A relay remembers the 16-byte replay tag of every setup packet it accepted until its
key rotates. ``BloomFilter`` does that in fixed memory: m bits and k probes for n
expected entries at false-positive rate p (m = −n·ln p / ln² 2, k = (m/n)·ln 2). A false
positive drops a fresh setup (the source retries); a replay is never accepted.
Tags are pseudo-random, so the probes are taken straight from the tag (double hashing).
"""

from __future__ import annotations

import math
import struct

from hornet.errors import LocalProtocolError

_SLICES = struct.Struct("<4I").unpack


class BloomFilter:
    __slots__ = ("_bits", "capacity", "count", "fp_rate", "k", "m")

    def __init__(self, capacity: int = 1_000_000, fp_rate: float = 1e-6) -> None:
        if capacity < 1 or not 0 < fp_rate < 1:
            raise LocalProtocolError("capacity >= 1 and 0 < fp_rate < 1")
        self.capacity = capacity
        self.fp_rate = fp_rate
        self.m = max(64, math.ceil(-capacity * math.log(fp_rate) / math.log(2) ** 2))
        self.k = max(1, round(self.m / capacity * math.log(2)))
        self._bits = bytearray((self.m + 7) // 8)
        self.count = 0

    @property
    def memory_bytes(self) -> int:
        return len(self._bits)

    def _probes(self, tag: bytes) -> list[int]:
        h1 = int.from_bytes(tag[:8], "big")
        h2 = int.from_bytes(tag[8:16], "big") | 1
        return [(h1 + i * h2) % self.m for i in range(self.k)]

    def __contains__(self, tag: bytes) -> bool:
        bits = self._bits
        return all(bits[p >> 3] >> (p & 7) & 1 for p in self._probes(tag))

    def check_and_add(self, tag: bytes) -> bool:
        """Add ``tag``; return True if it (probably) was already present."""
        bits = self._bits
        seen = True
        for p in self._probes(tag):
            byte, bit = p >> 3, 1 << (p & 7)
            if not bits[byte] & bit:
                seen = False
                bits[byte] |= bit
        if not seen:
            self.count += 1
        return seen

    def clear(self) -> None:
        self._bits = bytearray(len(self._bits))
        self.count = 0

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    def load(self, data: bytes, count: int) -> None:
        if len(data) != len(self._bits):
            raise LocalProtocolError("bloom filter size mismatch")
        self._bits = bytearray(data)
        self.count = count


class DataReplayFilter:
    """Per-EXP-window filter over (FS, IV) for data packets (hardened profile, SPEC.md §7.4).

    The relay feeds it the packet's *outgoing* IV, a PRP of the arriving IV under the
    circuit's own key: distinct (FS, IV) pairs give independent pseudo-random 128-bit
    values, so the four probes are four 32-bit slices of it and no hashing is needed.
    Packets are filed under their circuit's EXP window (``window_s`` seconds); a window's
    bits are freed once every EXP in it has passed (plus the tolerated skew), so memory
    is at most ``max_windows × 2^bits_log2 / 8`` bytes however many packets arrive. With k = 4
    probes and n packets in one window the false-positive rate is (1 − e^(−4n/m))⁴: at
    m/n = 40 bits per packet about 8·10⁻⁵. A false positive drops one fresh packet;
    a replay within its EXP is never accepted.
    """

    __slots__ = ("_shift", "_windows", "bits_log2", "max_windows", "window_s")

    def __init__(self, bits_log2: int = 23, window_s: int = 120, max_windows: int = 8) -> None:
        if not 10 <= bits_log2 <= 32 or window_s < 1 or max_windows < 1:
            raise LocalProtocolError("bits_log2 in [10, 32], window_s >= 1, max_windows >= 1")
        self.bits_log2 = bits_log2
        self.window_s = window_s
        self.max_windows = max_windows
        self._shift = 32 - (bits_log2 - 3)  # a slice's top bits_log2 − 3 bits index a byte
        self._windows: dict[int, bytearray] = {}

    @property
    def memory_bytes(self) -> int:
        return sum(len(bits) for bits in self._windows.values())

    def _window(self, exp: int, now: float, skew: int) -> bytearray:
        index = exp // self.window_s
        bits = self._windows.get(index)
        if bits is None:
            # Free windows whose every EXP has passed, then (if a flood of far-apart EXPs
            # still exceeds the bound) the oldest: a dropped window can only let replays
            # of *its* circuits through, and those circuits then have the oldest EXPs.
            horizon = int(now) - skew
            for old in [i for i in self._windows if (i + 1) * self.window_s <= horizon]:
                del self._windows[old]
            while len(self._windows) >= self.max_windows:
                del self._windows[min(self._windows)]
            bits = self._windows[index] = bytearray(1 << (self.bits_log2 - 3))
        return bits

    def seen(self, value: bytes, exp: int, now: float, skew: int) -> bool:
        """Record the 16-byte ``value``; True if it (probably) was recorded before."""
        bits = self._windows.get(exp // self.window_s)
        if bits is None:
            bits = self._window(exp, now, skew)
        # Four probes, one per 32-bit slice: the top bits pick a byte, the low 3 a bit.
        a, b, c, d = _SLICES(value)
        shift = self._shift
        ia, ib, ic, id_ = a >> shift, b >> shift, c >> shift, d >> shift
        ma, mb, mc, md = 1 << (a & 7), 1 << (b & 7), 1 << (c & 7), 1 << (d & 7)
        if bits[ia] & ma and bits[ib] & mb and bits[ic] & mc and bits[id_] & md:
            return True
        bits[ia] |= ma
        bits[ib] |= mb
        bits[ic] |= mc
        bits[id_] |= md
        return False

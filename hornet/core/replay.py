"""Replay filters for setup tags (HORNET §7.3 leaves replay open; we close it).

A relay remembers the 16-byte replay tag of every setup packet it accepted until its
key rotates. ``BloomFilter`` does that in fixed memory: m bits and k probes for n
expected entries at false-positive rate p (m = −n·ln p / ln² 2, k = (m/n)·ln 2). A false
positive drops a fresh setup (the source retries); a replay is never accepted.
Tags are pseudo-random, so the probes are taken straight from the tag (double hashing).
"""

from __future__ import annotations

import math

from hornet.errors import LocalProtocolError


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

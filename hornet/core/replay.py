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


class _Window:
    """One EXP window's filter: a list of bit arrays ("slices"), the newest last.

    New packets go into the newest slice; a packet is a replay if any slice has all four
    of its bits set. When the newest slice holds ``room`` more packets no longer, a slice
    twice its size follows it (if the memory bound allows).
    """

    __slots__ = ("bits", "older", "room", "shift")

    def __init__(self, bits_log2: int, bits_per_packet: int) -> None:
        self.older: tuple[tuple[bytearray, int], ...] = ()
        self.bits = bytearray(1 << (bits_log2 - 3))
        self.shift = 32 - (bits_log2 - 3)  # a u32's top bits_log2 − 3 bits index a byte
        self.room = (1 << bits_log2) // bits_per_packet

    @property
    def bits_log2(self) -> int:
        return 35 - self.shift

    @property
    def memory_bytes(self) -> int:
        return len(self.bits) + sum(len(bits) for bits, _ in self.older)


class DataReplayFilter:
    """Per-EXP-window filter over (FS, IV) for data packets (hardened profile, SPEC.md §7.4).

    The relay feeds it the packet's *outgoing* IV, a PRP of the arriving IV under the
    circuit's own key: distinct (FS, IV) pairs give independent pseudo-random 128-bit
    values, so the four probes are four 32-bit slices of it and no hashing is needed.
    Packets are filed under their circuit's EXP window (``window_s`` seconds); a window's
    bits are freed once every EXP in it has passed (plus the tolerated skew).

    A window's filter grows with the packets it holds, so that one busy neighbour cannot
    saturate the filter that other circuits of the window share: it starts as one slice
    of ``2^bits_log2`` bits, and each slice takes ``2^L / bits_per_packet`` packets (its
    false-positive rate then reaches (1 − e^(−4/bits_per_packet))⁴, 5.5·10⁻⁴ at 24 bits)
    before a slice of twice the size follows. A fresh packet is checked against every
    slice of its window, so its false-drop rate is at most the sum of theirs: j slices
    hold ``(2^j − 1)·2^bits_log2 / bits_per_packet`` packets at under j·5.5·10⁻⁴. All
    windows together never hold more than ``max_bytes``: at that bound the newest slice
    stops growing and keeps filling, so false drops rise but a replay within its EXP is
    still never accepted. At most ``max_windows`` windows exist; past that the oldest is
    freed (see ``_window``).
    """

    __slots__ = (
        "_bytes",
        "_windows",
        "bits_log2",
        "bits_per_packet",
        "max_bytes",
        "max_windows",
        "window_s",
    )

    def __init__(
        self,
        bits_log2: int = 23,
        window_s: int = 120,
        max_windows: int = 8,
        *,
        bits_per_packet: int = 24,
        max_bytes: int = 256 << 20,
    ) -> None:
        if not 10 <= bits_log2 <= 32 or window_s < 1 or max_windows < 1:
            raise LocalProtocolError("bits_log2 in [10, 32], window_s >= 1, max_windows >= 1")
        if bits_per_packet < 1 or max_bytes < max_windows << (bits_log2 - 3):
            raise LocalProtocolError("bits_per_packet >= 1; max_bytes must hold every window")
        self.bits_log2 = bits_log2
        self.window_s = window_s
        self.max_windows = max_windows
        self.bits_per_packet = bits_per_packet
        self.max_bytes = max_bytes
        self._windows: dict[int, _Window] = {}
        self._bytes = 0

    @property
    def memory_bytes(self) -> int:
        return self._bytes

    def _window(self, exp: int, now: float, skew: int) -> _Window:
        index = exp // self.window_s
        window = self._windows.get(index)
        if window is None:
            # Free windows whose every EXP has passed, then (if a flood of far-apart EXPs
            # still exceeds the bound) the oldest: a dropped window can only let replays
            # of *its* circuits through, and those circuits then have the oldest EXPs.
            horizon = int(now) - skew
            for old in [i for i in self._windows if (i + 1) * self.window_s <= horizon]:
                self._bytes -= self._windows.pop(old).memory_bytes
            while len(self._windows) >= self.max_windows:
                self._bytes -= self._windows.pop(min(self._windows)).memory_bytes
            window = self._windows[index] = _Window(self.bits_log2, self.bits_per_packet)
            self._bytes += len(window.bits)
        return window

    def _grow(self, window: _Window) -> None:
        """The newest slice is full: add one twice its size, if ``max_bytes`` allows."""
        size = window.bits_log2 + 1
        if size > 32 or self._bytes + (1 << (size - 3)) > self.max_bytes:
            window.room = (1 << window.bits_log2) // self.bits_per_packet  # ask again later
            return
        window.older += ((window.bits, window.shift),)
        window.bits = bytearray(1 << (size - 3))
        window.shift -= 1
        window.room = (1 << size) // self.bits_per_packet
        self._bytes += len(window.bits)

    def seen(self, value: bytes, exp: int, now: float, skew: int) -> bool:
        """Record the 16-byte ``value``; True if it (probably) was recorded before."""
        window = self._windows.get(exp // self.window_s)
        if window is None:
            window = self._window(exp, now, skew)
        # Four probes, one per 32-bit slice: the top bits pick a byte, the low 3 a bit.
        a, b, c, d = _SLICES(value)
        ma, mb, mc, md = 1 << (a & 7), 1 << (b & 7), 1 << (c & 7), 1 << (d & 7)
        bits = window.bits
        shift = window.shift
        ia, ib, ic, id_ = a >> shift, b >> shift, c >> shift, d >> shift
        if bits[ia] & ma and bits[ib] & mb and bits[ic] & mc and bits[id_] & md:
            return True
        if window.older:  # only once the window outgrew its first slice
            for old, s in window.older:
                if old[a >> s] & ma and old[b >> s] & mb and old[c >> s] & mc and old[d >> s] & md:
                    return True
        bits[ia] |= ma
        bits[ib] |= mb
        bits[ic] |= mc
        bits[id_] |= md
        room = window.room - 1
        window.room = room
        if not room:
            self._grow(window)
        return False

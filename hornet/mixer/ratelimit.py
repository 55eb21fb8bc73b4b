"""Per-peer onion-message limits, backpressure allowances and load meters.

Strategy (docs/spec-mixer.md §5):
- A ``Limit`` is a sustained rate and a burst in one unit (messages or bytes). The
  published defaults of each implementation are in ``PROFILES``: CLN's connectd bucket
  (4/s, burst 4), Eclair's sliding window (10 in any second), lnd's byte bucket
  (512 kbit/s, burst 256 KiB) and LDK's 32 messages per ping round trip.
- Outgoing: the mixer keeps, per next-hop peer, a limiter that models *that peer's*
  incoming limit on us, so we never send faster than it accepts; messages beyond it
  wait in a bounded per-peer queue. Incoming: a limiter per peer with our own
  allowance, scaled by the peer's backpressure ``Allowance``.
- ``Allowance`` is the onion_message_drop rule (t-bast/Rusty 2022): an overflow
  downstream caused by a peer's traffic halves that peer's allowance (at most once per
  ``min_interval``, never below ``floor``); each ``recover_interval`` without a new
  overflow doubles it again, up to 1.
- ``RateMeter`` is an exponentially decayed counter: ``rate = value / tau``.

Invariants: sans-IO, time is a parameter; every object is O(1) in memory except the
sliding window, which holds at most ``burst`` timestamps.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final, Literal, Protocol

import attrs

from hornet.core.ratelimit import TokenBucket
from hornet.errors import LocalProtocolError

Unit = Literal["msg", "byte"]


@attrs.frozen
class Limit:
    """``rate`` units per second, at most ``burst`` at once; ``window`` selects a sliding
    window of ``burst / rate`` seconds instead of a token bucket."""

    rate: float
    burst: float
    unit: Unit = "msg"
    window: bool = False

    def __attrs_post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise LocalProtocolError("limit rate must be positive and finite")
        if not (self.burst >= 1 and math.isfinite(self.burst)):
            raise LocalProtocolError("limit burst must be at least 1")
        if self.unit not in ("msg", "byte"):
            raise LocalProtocolError("limit unit must be 'msg' or 'byte'")
        if self.window and (self.unit != "msg" or self.burst > 100_000):
            raise LocalProtocolError("a sliding window counts at most 100000 messages")

    def cost(self, size: int) -> float:
        return 1.0 if self.unit == "msg" else float(size)

    @property
    def message_rate(self) -> float:
        """Messages per second, counting a byte limit in 1403-byte (small) messages."""
        return self.rate if self.unit == "msg" else self.rate / SMALL_MESSAGE_BYTES


#: Wire size of an onion_message with a 1366-byte packet (2 + 33 + 2 + 1366).
SMALL_MESSAGE_BYTES: Final = 1403

#: Published per-peer defaults (lightning.md §2). The mixer applies a peer's profile to
#: what it sends to that peer.
PROFILES: Final[dict[str, Limit]] = {
    # CLN connectd: 1 token per ms, 250 per message, ONION_MSG_TOKENS_MAX = 4 * 250.
    "cln": Limit(4.0, 4.0, "msg"),
    # Eclair: onion-messages.max-per-peer-per-second = 10, a sliding one-second window.
    "eclair": Limit(10.0, 10.0, "msg", window=True),
    # lnd 0.21: onion-msg-peer-kbps = 512 (64000 B/s), burst 262144 B.
    "lnd": Limit(64_000.0, 262_144.0, "byte"),
    # LDK: no rate limit; at most 32 messages per ping round trip (1 s assumed).
    "ldk": Limit(32.0, 32.0, "msg"),
    # hornet's own client library: what a MixerClient accepts from its mixer.
    "hornet": Limit(50.0, 100.0, "msg"),
    # No limit worth modelling (benchmarks, local links).
    "unlimited": Limit(1e9, 1e9, "msg"),
}


class Limiter(Protocol):
    """What the mixer needs of a per-peer limiter: ``TokenBucket`` (hornet.core.ratelimit)
    or ``SlidingWindow``; costs are in the unit of the limiter's ``Limit``."""

    def take(self, now: float, cost: float = 1.0, scale: float = 1.0) -> bool: ...

    def delay(self, now: float, cost: float = 1.0, scale: float = 1.0) -> float:
        """Seconds from ``now`` until ``take(cost)`` would succeed (0 if it would now)."""
        ...

    def fill(self, now: float, scale: float = 1.0) -> float:
        """Used fraction of the (scaled) burst at ``now`` (0 = idle, 1 = exhausted)."""
        ...


class SlidingWindow:
    """Eclair's ``RateLimiter``: at most ``burst`` messages in any ``burst / rate`` seconds."""

    __slots__ = ("limit", "period", "times")

    def __init__(self, limit: Limit, now: float) -> None:
        del now
        self.limit = limit
        self.period = limit.burst / limit.rate
        self.times: deque[float] = deque(maxlen=int(limit.burst))

    def _allowed(self, scale: float) -> int:
        return max(1, int(self.limit.burst * scale))

    def _in_window(self, now: float) -> int:
        while self.times and self.times[0] <= now - self.period:
            self.times.popleft()
        return len(self.times)

    def take(self, now: float, cost: float = 1.0, scale: float = 1.0) -> bool:
        del cost
        if self._in_window(now) >= self._allowed(scale):
            return False
        self.times.append(now)
        return True

    def delay(self, now: float, cost: float = 1.0, scale: float = 1.0) -> float:
        del cost
        count = self._in_window(now)
        allowed = self._allowed(scale)
        if count < allowed:
            return 0.0
        # The (count - allowed + 1)-th oldest accept must leave the window.
        return max(0.0, self.times[count - allowed] + self.period - now)

    def fill(self, now: float, scale: float = 1.0) -> float:
        return min(1.0, self._in_window(now) / self._allowed(scale))


def make_limiter(limit: Limit, now: float) -> Limiter:
    """The limiter ``limit`` describes: a sliding window or a token bucket."""
    if limit.window:
        return SlidingWindow(limit, now)
    return TokenBucket(limit.rate, limit.burst, now)


@attrs.define
class Allowance:
    """Backpressure state of one incoming peer (onion_message_drop: halve, then recover)."""

    recover_interval: float = 30.0
    min_interval: float = 1.0
    floor: float = 1 / 64
    _factor: float = 1.0
    _last_change: float = -math.inf
    _last_penalty: float = -math.inf
    penalties: int = 0

    def factor(self, now: float) -> float:
        """The current multiplier in [floor, 1], recovering lazily (×2 per quiet interval)."""
        if self._factor < 1.0 and now > self._last_change:
            steps = int((now - self._last_change) // self.recover_interval)
            if steps > 0:
                self._factor = min(1.0, self._factor * (2.0 ** min(steps, 64)))
                self._last_change += steps * self.recover_interval
        return self._factor

    def penalise(self, now: float) -> bool:
        """Halve the allowance (not twice within ``min_interval``); True if it changed."""
        current = self.factor(now)
        if now - self._last_penalty < self.min_interval or current <= self.floor:
            return False
        self._factor = max(self.floor, current / 2.0)
        self._last_penalty = now
        self._last_change = now
        self.penalties += 1
        return True


@attrs.define
class RateMeter:
    """An exponentially decayed event counter with time constant ``tau`` seconds."""

    tau: float
    _value: float = 0.0
    _updated: float = 0.0

    def _decay(self, now: float) -> None:
        if now > self._updated:
            self._value *= math.exp(-(now - self._updated) / self.tau)
            self._updated = now

    def add(self, amount: float, now: float) -> None:
        self._decay(now)
        self._value += amount

    def rate(self, now: float) -> float:
        """Units per second, averaged over about ``tau`` seconds."""
        self._decay(now)
        return self._value / self.tau


__all__ = [
    "PROFILES",
    "SMALL_MESSAGE_BYTES",
    "Allowance",
    "Limit",
    "Limiter",
    "RateMeter",
    "SlidingWindow",
    "make_limiter",
]

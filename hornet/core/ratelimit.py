"""A token bucket: ``rate`` tokens per second, at most ``burst`` at once.

The one rate limiter of hornet's per-peer policies (the relay's admission buckets, the
mixer's per-peer onion-message limits).

Rules:
1. Sans-IO: the clock is a parameter (``now``, seconds, any monotonic origin); the
   bucket never reads one. A ``now`` earlier than the last one adds no tokens.
2. The bucket starts full.
3. ``scale`` (0 < scale <= 1) shrinks rate and burst together, for a backpressure
   allowance; a scaled burst never falls below one token (unless the burst itself
   is smaller), so a scaled-down peer can still send one message at a time.
4. A cost larger than the whole (scaled) burst is charged as the whole burst: such a
   request passes when the bucket is full, instead of never.
5. O(1) memory and time per call.
"""

from __future__ import annotations

from typing import Final

from hornet.errors import LocalProtocolError

#: Tolerance for floating-point refills (a bucket refilled to 0.9999999999 is full).
_EPSILON: Final = 1e-9


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``take`` is False when empty.

    Args:
        rate: tokens added per second (positive).
        burst: the bucket's capacity (positive); it starts full.
        now: the current time.
    Raises:
        LocalProtocolError: ``rate`` or ``burst`` is not positive and finite.
    """

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if not (0.0 < rate < float("inf")) or not (0.0 < burst < float("inf")):
            raise LocalProtocolError("token bucket rate and burst must be positive and finite")
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = self.burst
        self.stamp = now

    def _scaled(self, scale: float) -> tuple[float, float]:
        if scale == 1.0:
            return self.rate, self.burst
        return self.rate * scale, max(self.burst * scale, min(self.burst, 1.0))

    def _refill(self, now: float, rate: float, burst: float) -> None:
        if now > self.stamp:
            self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
            self.stamp = now
        elif self.tokens > burst:
            self.tokens = burst

    def take(self, now: float, cost: float = 1.0, scale: float = 1.0) -> bool:
        """Take ``cost`` tokens if the bucket holds them at ``now``.

        Returns:
            True if taken; False (nothing taken) if the bucket holds too few.
        """
        if scale == 1.0:  # the per-packet case, inline: the relay calls it for every datagram
            rate, burst = self.rate, self.burst
        else:
            rate, burst = self._scaled(scale)
        tokens = self.tokens
        if now > self.stamp:
            tokens += (now - self.stamp) * rate
            self.stamp = now
        tokens = min(tokens, burst)
        need = cost if cost < burst else burst
        if tokens + _EPSILON >= need:
            self.tokens = tokens - need
            return True
        self.tokens = tokens
        return False

    def delay(self, now: float, cost: float = 1.0, scale: float = 1.0) -> float:
        """Seconds from ``now`` until ``take(cost)`` would succeed (0.0 if it would now)."""
        rate, burst = self._scaled(scale)
        self._refill(now, rate, burst)
        need = cost if cost < burst else burst
        return 0.0 if self.tokens + _EPSILON >= need else (need - self.tokens) / rate

    def fill(self, now: float, scale: float = 1.0) -> float:
        """The used fraction of the (scaled) burst at ``now``: 0 idle, 1 exhausted."""
        rate, burst = self._scaled(scale)
        self._refill(now, rate, burst)
        return max(0.0, 1.0 - self.tokens / burst)

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate}, burst={self.burst}, tokens={self.tokens:.3f})"


__all__ = ["TokenBucket"]

"""Limiters, published defaults, backpressure allowances and load meters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hornet.core.ratelimit import TokenBucket
from hornet.errors import LocalProtocolError
from hornet.mixer.ratelimit import (
    PROFILES,
    Allowance,
    Limit,
    RateMeter,
    SlidingWindow,
)


def test_published_defaults() -> None:
    assert (PROFILES["cln"].rate, PROFILES["cln"].burst) == (4.0, 4.0)
    assert PROFILES["eclair"] == Limit(10.0, 10.0, "msg", window=True)
    assert (PROFILES["lnd"].rate, PROFILES["lnd"].burst, PROFILES["lnd"].unit) == (
        512_000 / 8, 262_144, "byte")
    assert PROFILES["ldk"].rate == 32.0


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(4.0, 4.0, now=0.0)
    assert [bucket.take(0.0, 1) for _ in range(5)] == [True] * 4 + [False]
    assert bucket.delay(0.0, 1) == pytest.approx(0.25)
    assert not bucket.take(0.2, 1)
    assert bucket.take(0.25, 1)
    assert bucket.fill(0.25) == pytest.approx(1.0)
    assert bucket.fill(10.0) == 0.0


def test_a_byte_bucket_counts_bytes() -> None:
    limit = PROFILES["lnd"]
    bucket = TokenBucket(limit.rate, limit.burst, now=0.0)
    sent = 0
    while bucket.take(0.0, limit.cost(32_834)):
        sent += 1
    assert sent == 262_144 // 32_834  # 7 large messages in the burst


def test_a_scaled_bucket_has_a_smaller_burst_and_rate() -> None:
    bucket = TokenBucket(10.0, 10.0, now=0.0)
    assert sum(bucket.take(0.0, 1, scale=0.5) for _ in range(10)) == 5
    assert bucket.delay(0.0, 1, scale=0.5) == pytest.approx(0.2)


@given(st.lists(st.floats(0, 0.999), min_size=1, max_size=60))
def test_a_sliding_window_never_admits_more_than_its_burst_per_window(offsets: list[float]) -> None:
    window = SlidingWindow(PROFILES["eclair"], now=0.0)
    times = sorted(t * 5 for t in offsets)
    accepted = [t for t in times if window.take(t, 1)]
    for t in accepted:
        assert sum(1 for u in accepted if t <= u < t + 1.0) <= 10


def test_a_sliding_window_reports_when_it_reopens() -> None:
    window = SlidingWindow(Limit(10.0, 10.0, window=True), now=0.0)
    for i in range(10):
        assert window.take(i * 0.01, 1)
    assert not window.take(0.5, 1)
    assert window.delay(0.5, 1) == pytest.approx(0.5)
    assert window.take(1.0, 1)


def test_allowance_halves_once_per_interval_and_recovers_by_doubling() -> None:
    allowance = Allowance(recover_interval=30.0, min_interval=1.0, floor=1 / 8)
    assert allowance.penalise(0.0)
    assert not allowance.penalise(0.5)  # not twice within a second
    assert allowance.factor(0.5) == 0.5
    assert allowance.penalise(1.0) and allowance.penalise(2.0)
    assert allowance.factor(2.0) == 1 / 8
    assert not allowance.penalise(3.0)  # at the floor
    assert allowance.factor(31.9) == 1 / 8
    assert allowance.factor(32.0) == 1 / 4
    assert allowance.factor(62.0) == 1 / 2
    assert allowance.factor(500.0) == 1.0
    assert allowance.penalties == 3


def test_a_rate_meter_converges_to_the_rate() -> None:
    meter = RateMeter(tau=10.0)
    for i in range(1000):
        meter.add(1.0, i * 0.1)
    assert meter.rate(100.0) == pytest.approx(10.0, rel=0.05)
    assert meter.rate(200.0) < 0.01


@pytest.mark.parametrize("kwargs", [{"rate": 0, "burst": 1}, {"rate": 1, "burst": 0.5},
                                    {"rate": float("inf"), "burst": 1},
                                    {"rate": 1, "burst": 1, "unit": "byte", "window": True}])
def test_bad_limits_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        Limit(**kwargs)  # type: ignore[arg-type]

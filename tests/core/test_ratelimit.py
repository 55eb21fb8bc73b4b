"""The shared sans-IO token bucket (hornet/core/ratelimit.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hornet.core.ratelimit
from hornet.core.ratelimit import TokenBucket
from hornet.errors import LocalProtocolError


def test_a_bucket_gives_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=5.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.1) and not bucket.take(0.1)  # 0.1 s at 10/s: one token
    assert bucket.take(100.0)  # refills, but never beyond the burst
    assert sum(bucket.take(100.0) for _ in range(10)) == 4


def test_delay_says_when_the_next_take_succeeds() -> None:
    bucket = TokenBucket(4.0, 4.0, now=0.0)
    assert all(bucket.take(0.0) for _ in range(4))
    assert bucket.delay(0.0) == pytest.approx(0.25)
    assert not bucket.take(0.2)
    assert bucket.take(0.25)
    assert bucket.delay(10.0) == 0.0


def test_fill_is_the_used_fraction_of_the_burst() -> None:
    bucket = TokenBucket(4.0, 4.0, now=0.0)
    assert bucket.fill(0.0) == 0.0
    bucket.take(0.0, cost=3.0)
    assert bucket.fill(0.0) == pytest.approx(0.75)
    assert bucket.fill(10.0) == 0.0


def test_a_scale_shrinks_rate_and_burst_together() -> None:
    bucket = TokenBucket(10.0, 10.0, now=0.0)
    assert sum(bucket.take(0.0, scale=0.5) for _ in range(10)) == 5
    assert bucket.delay(0.0, scale=0.5) == pytest.approx(0.2)


def test_a_scaled_burst_never_falls_below_one_token() -> None:
    bucket = TokenBucket(4.0, 4.0, now=0.0)
    assert bucket.take(0.0, scale=1 / 64)
    assert not bucket.take(0.0, scale=1 / 64)


def test_a_cost_above_the_burst_passes_only_from_a_full_bucket() -> None:
    bucket = TokenBucket(100.0, 1000.0, now=0.0)
    assert bucket.take(0.0, cost=5000.0)  # charged as the whole burst
    assert not bucket.take(0.0, cost=1.0)
    assert not bucket.take(5.0, cost=5000.0)  # half full
    assert bucket.take(10.0, cost=5000.0)


def test_time_going_backwards_adds_no_tokens() -> None:
    bucket = TokenBucket(1.0, 1.0, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0),
                                             (float("inf"), 1.0), (1.0, float("nan"))])
def test_a_bucket_refuses_a_bad_rate_or_burst(rate: float, burst: float) -> None:
    with pytest.raises(LocalProtocolError):
        TokenBucket(rate, burst, now=0.0)


@given(st.floats(0.5, 100.0), st.floats(1.0, 100.0),
       st.lists(st.floats(0.0, 10.0), min_size=1, max_size=80))
def test_a_bucket_never_passes_more_than_its_burst_plus_its_rate_over_time(
        rate: float, burst: float, offsets: list[float]) -> None:
    bucket = TokenBucket(rate, burst, now=0.0)
    times = sorted(offsets)
    taken = sum(bucket.take(t) for t in times)
    assert taken <= burst + rate * times[-1] + 1e-6


def test_the_bucket_reads_no_clock() -> None:
    tree = ast.parse(Path(hornet.core.ratelimit.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"time", "trio", "os", "random", "secrets", "socket"}

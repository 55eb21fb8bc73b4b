"""The data replay filter (hornet.core.replay, SPEC.md §7.4): growth, bounds, and the
targeted false-drop attack through the relay's shared filter."""

from __future__ import annotations

import random

import pytest

from hornet.core.e2e import SourceSession
from hornet.core.params import Params
from hornet.core.relay import Drop, DropReason
from hornet.core.replay import DataReplayFilter
from hornet.errors import LocalProtocolError
from hornet.testing.sim import SimNetwork

#: One neighbour's data allowance (``Limits.data_rate``) and the filter's EXP window.
NEIGHBOUR_PPS = 50_000
WINDOW_S = 120


def _values(rng: random.Random, n: int) -> list[bytes]:
    blob = rng.randbytes(16 * n)
    return [blob[i : i + 16] for i in range(0, len(blob), 16)]


def test_one_neighbour_at_its_full_allowance_keeps_false_drops_for_others_under_one_percent(
) -> None:
    """The attack: a neighbour sends its full allowance of authentic data packets, 50 000
    per second for a whole 120 s EXP window, on circuits whose EXP it chose to share the
    window of an honest circuit through the same relay. Its packets' filter values are
    pseudo-random (the PRP'd IV of each packet), so random values stand for them. Then
    the honest circuit sends fresh packets through the relay: each one the filter calls
    a replay is a false drop."""
    params = Params(max_hops=3)
    net = SimNetwork(3, params, seed=21)
    relay = net.relays[1]  # the middle relay of the honest circuit's forward path
    source = SourceSession(net.setup([0, 1, 2], [1, 0], now=0, exp=600), 256)
    data_filter = relay.data_filter
    assert data_filter is not None
    window_exp = 600 + params.max_skew_s  # the deadline the relay files this EXP under

    rng = random.Random(22)
    flood = NEIGHBOUR_PPS * WINDOW_S
    for start in range(0, flood, 500_000):
        for value in _values(rng, min(500_000, flood - start)):
            data_filter.seen(value, window_exp, 1.0, params.max_skew_s)

    honest = 4_000
    false_drops = 0
    for _ in range(honest):
        trip = net.deliver(source.seal(b"fresh", 2.0, net.rng), 2.0)
        if any(hop.result == Drop(DropReason.REPLAY) for hop in trip.hops):
            false_drops += 1
    rate = false_drops / honest
    assert rate <= 0.01, f"{false_drops}/{honest} fresh packets dropped as replays"
    assert data_filter.memory_bytes <= 64 << 20
    # The flood's own packets are still refused if replayed.
    rng = random.Random(22)
    replayed = _values(rng, 10_000)
    assert all(data_filter.seen(v, window_exp, 3.0, params.max_skew_s) for v in replayed)


def test_a_window_grows_by_doubling_slices_and_still_refuses_every_replay() -> None:
    f = DataReplayFilter(bits_log2=10, window_s=120, max_windows=2, bits_per_packet=16,
                         max_bytes=1 << 20)
    rng = random.Random(5)
    values = _values(rng, 2000)
    # Slices of 2^10, 2^11, 2^12, ... bits take 64, 128, 256, ... packets.
    assert not any(f.seen(v, 600, 0.0, 30) for v in values[:63])
    assert f.memory_bytes == 128
    f.seen(values[63], 600, 0.0, 30)  # the 64th packet fills the first slice
    assert f.memory_bytes == 128 + 256
    fresh = sum(not f.seen(v, 600, 0.0, 30) for v in values[64:])
    assert fresh >= (len(values) - 64) * 0.985  # a few false positives at most
    assert f.memory_bytes == 128 + 256 + 512 + 1024 + 2048 + 4096  # 64 · 63 >= 2000
    assert all(f.seen(v, 600, 0.0, 30) for v in values)  # every packet is remembered
    # Another window starts small again; expired windows give their memory back.
    f.seen(values[0], 720, 0.0, 30)
    assert f.memory_bytes == 128 + 256 + 512 + 1024 + 2048 + 4096 + 128
    f.seen(values[0], 2000, 900.0, 30)
    assert f.memory_bytes == 128


def test_at_the_memory_bound_a_window_stops_growing_and_still_refuses_replays() -> None:
    f = DataReplayFilter(bits_log2=10, window_s=120, max_windows=1, bits_per_packet=16,
                         max_bytes=128 + 256)
    values = _values(random.Random(6), 1000)
    for v in values:
        f.seen(v, 600, 0.0, 30)
    assert f.memory_bytes == 128 + 256
    assert all(f.seen(v, 600, 0.0, 30) for v in values)


def test_filter_bounds_are_validated() -> None:
    with pytest.raises(LocalProtocolError):
        DataReplayFilter(bits_log2=9)
    with pytest.raises(LocalProtocolError):
        DataReplayFilter(bits_per_packet=0)
    with pytest.raises(LocalProtocolError):
        DataReplayFilter(bits_log2=23, max_windows=8, max_bytes=(8 << 20) - 1)

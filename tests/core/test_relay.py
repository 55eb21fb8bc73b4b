"""The relay decision function (``hornet/core/relay.py``): sizes, expiry, setup replay,
untrusted bytes, the circuit cache and the drop vocabulary."""

from __future__ import annotations

from core_kit import R, backward_path, forward_path
from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.core.e2e import SourceSession
from hornet.core.params import Params, Profile
from hornet.core.relay import Deliver, Drop, DropReason, Forward
from hornet.core.setup import build_setup, complete_setup
from hornet.errors import RemoteProtocolError, ReplayError
from hornet.testing.sim import SOURCE_ID, SimNetwork, open_session

# --- sizes ----------------------------------------------------------------------------


def test_setup_and_data_packets_have_one_size_whatever_the_path(net: SimNetwork) -> None:
    setup_sizes, data_sizes = set(), set()
    for length in (1, 4, R):
        request = build_setup(
            net.params,
            [net.spec(i) for i in forward_path(length)],
            [net.spec(i) for i in backward_path(length)],
            SOURCE_ID,
            600,
            net.rng,
        )
        trip = net.send(request.first_hop, request.packet, 0)
        setup_sizes.update(len(h.packet) for h in trip.hops)
        keys = complete_setup(request.pending, trip.exit_packet, net.rng)
        out = SourceSession(keys, 512).seal(b"x", 1, net.rng)
        data_sizes.update(len(h.packet) for h in net.deliver(out, 1).hops)
    assert setup_sizes == {net.params.setup_packet_len}
    assert data_sizes == {net.params.data_packet_len(512)}


# --- expiry and setup replay ----------------------------------------------------------


def test_expired_setup_and_data_are_dropped(net: SimNetwork) -> None:
    skew = net.params.max_skew_s  # a relay tolerates clocks this far behind the source's
    request = build_setup(net.params, [net.spec(0)], [net.spec(R)], SOURCE_ID, 100, net.rng)
    late = net.send(request.first_hop, request.packet, 100 + skew)
    assert isinstance(late.final, Drop) and late.final.reason is DropReason.EXPIRED
    keys = net.setup([0, 1], [R], exp=50)
    out = SourceSession(keys, 1024).seal(b"x", 1, net.rng)
    assert isinstance(net.deliver(out, 49 + skew).final, Deliver)
    expired = net.deliver(out, 50 + skew)  # now served from the cache: still checked
    assert isinstance(expired.final, Drop) and expired.final.reason is DropReason.EXPIRED


def test_replayed_setup_packets_are_dropped(net: SimNetwork) -> None:
    request = build_setup(
        net.params, [net.spec(i) for i in forward_path(2)], [net.spec(R)], SOURCE_ID, 600, net.rng
    )
    assert isinstance(net.send(request.first_hop, request.packet, 0).final, Forward)
    replay = net.send(request.first_hop, request.packet, 0)
    assert isinstance(replay.final, Drop) and replay.final.reason is DropReason.REPLAY


# --- untrusted bytes ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_only_ever_drop(data: bytes) -> None:
    net = _garbage_net()
    for relay in net.relays[:1]:
        result = relay.process(data, 0)
        assert isinstance(result, Drop)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(min_size=1, max_size=1600), kind=st.sampled_from([1, 2, 3]))
def test_well_typed_garbage_only_ever_drops(body: bytes, kind: int) -> None:
    net = _garbage_net()
    params = net.params
    size = params.setup_packet_len if kind == 1 else params.data_packet_len(512)
    packet = (bytes((kind, params.max_hops)) + body * (size // len(body) + 1))[:size]
    assert isinstance(net.relays[0].process(packet, 0), Drop)


_GARBAGE_NET: list[SimNetwork] = []


def _garbage_net() -> SimNetwork:
    if not _GARBAGE_NET:
        _GARBAGE_NET.append(SimNetwork(1, Params()))
    return _GARBAGE_NET[0]


# --- the circuit cache ----------------------------------------------------------------


def test_relay_state_is_bounded_by_its_cache() -> None:
    net = SimNetwork(3, Params(profile=Profile.PAPER), cache_size=64)
    relay = net.by_id[net.relays[0].node_id]
    for _ in range(200):
        keys = net.setup([0, 1], [2])
        net.deliver(SourceSession(keys, 512).seal(b"", 1, net.rng), 1)
    assert relay.cached_circuits == 64


def test_relays_work_without_a_cache() -> None:
    net = SimNetwork(4, Params(), cache_size=0)
    source, dest = open_session(net, [0, 1, 2], [3])
    assert dest.receive(net.deliver(source.seal(b"nc", 2, net.rng), 2).delivered) == b"nc"
    assert all(relay.cached_circuits == 0 for relay in net.relays)


# --- drop reasons ---------------------------------------------------------------------


def test_drop_reasons_never_leak_exception_types() -> None:
    assert {r.value for r in DropReason} == {
        "malformed",
        "integrity",
        "expired",
        "replay",
        "route",
        "lifetime",
        "key_epoch",
    }
    assert issubclass(ReplayError, RemoteProtocolError)

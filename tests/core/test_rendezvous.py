"""Rendezvous: nested AHDRs spliced by a stateless rendezvous point (SPEC.md §6)."""

from __future__ import annotations

import contextlib

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.core import crypto
from hornet.core.chdr import TYPE_DATA, TYPE_DATA_NESTED
from hornet.core.e2e import SourceSession
from hornet.core.params import CHDR_LEN, C, Params, Profile
from hornet.core.relay import Deliver, Drop, DropReason, Forward
from hornet.core.rendezvous import (
    Descriptor,
    RendezvousDestination,
    RendezvousSource,
    nested_ahdr,
)
from hornet.errors import (
    ExpiredError,
    HornetError,
    IntegrityError,
    LocalProtocolError,
    ReplayError,
)
from hornet.testing.sim import SOURCE_ID, SimNetwork

R = 7
RP = 0
DEST_ID = b"dest\x00\x00\x00\x01"
PAYLOAD = 1024
# Relay indices: 0 is RP; S uses 1..12, D uses 13..24.
S_FWD, S_BWD = list(range(1, 7)), list(range(7, 13))
D_FWD, D_BWD = list(range(13, 19)), list(range(19, 25))
ALL_IDS = {"dest": DEST_ID, "source": SOURCE_ID}


@pytest.fixture(
    scope="module",
    params=[(Profile.PAPER, 1024), (Profile.HARDENED, 1024), (Profile.HARDENED, 0)],
    ids=["paper", "hardened", "hardened-nocache"],
)
def net(request: pytest.FixtureRequest) -> SimNetwork:
    profile, cache = request.param
    return SimNetwork(25, Params(max_hops=R, profile=profile), seed=7, cache_size=cache)


def _dest(net: SimNetwork, hops: int, exp: int = 600) -> RendezvousDestination:
    """D: a RENDEZVOUS circuit D → relays → RP, and back."""
    keys = net.setup(
        [*D_FWD[: hops - 1], RP], D_BWD[:hops], endpoint=DEST_ID, rendezvous=True, exp=exp
    )
    return RendezvousDestination(keys, crypto.SecretKey.from_rng(net.rng), PAYLOAD)


def _source(net: SimNetwork, descriptor: Descriptor, hops: int, exp: int = 600) -> RendezvousSource:
    keys = net.setup([*S_FWD[: hops - 1], RP], S_BWD[:hops], rendezvous=True, exp=exp)
    return RendezvousSource(keys, descriptor, net.rng)


@pytest.mark.parametrize("hops", range(1, R))
def test_round_trip_through_a_rendezvous_point_for_every_path_length(
    net: SimNetwork, hops: int
) -> None:
    dest = _dest(net, hops)
    source = _source(net, Descriptor.decode(net.params, dest.descriptor().encode()), hops)
    trip = net.deliver(source.seal(b"hello D", 1, net.rng), 1)
    # S's relays, then RP, then D's backward relays; the packet leaves towards D.
    rp_index = hops - 1
    expected = [net.relays[i].node_id for i in [*S_FWD[:rp_index], RP, *D_BWD[:hops]]]
    assert [hop.node_id for hop in trip.hops] == expected
    assert all(hop.packet[0] == TYPE_DATA_NESTED for hop in trip.hops[: rp_index + 1])
    assert all(hop.packet[0] == TYPE_DATA for hop in trip.hops[rp_index + 1 :])
    assert isinstance(trip.final, Forward) and trip.final.next_hop == DEST_ID
    first = dest.receive(trip.exit_packet)
    assert first.data == b"hello D" and first.new

    for i in range(3):
        back = net.deliver(dest.seal(first.connection, b"pong %d" % i, 2, net.rng), 2)
        expected_back = [net.relays[j].node_id for j in [*D_FWD[:rp_index], RP, *S_BWD[:hops]]]
        assert [hop.node_id for hop in back.hops] == expected_back
        assert isinstance(back.final, Forward) and back.final.next_hop == SOURCE_ID
        assert source.open(back.exit_packet) == b"pong %d" % i
        again = dest.receive(net.deliver(source.seal(b"ping %d" % i, 3, net.rng), 3).exit_packet)
        assert (again.data, again.new, again.connection) == (
            b"ping %d" % i,
            False,
            first.connection,
        )


def test_packet_sizes_do_not_depend_on_path_lengths(net: SimNetwork) -> None:
    nested, plain = set(), set()
    for hops in (1, 3, R - 1):
        dest = _dest(net, hops)
        trip = net.deliver(_source(net, dest.descriptor(), hops).seal(b"x", 1, net.rng), 1)
        for hop in trip.hops:
            (nested if hop.packet[0] == TYPE_DATA_NESTED else plain).add(len(hop.packet))
    assert nested == {net.params.data_packet_len(PAYLOAD, nested=True)}
    assert plain == {net.params.data_packet_len(PAYLOAD)}


def test_neither_end_learns_the_others_relays(net: SimNetwork) -> None:
    dest = _dest(net, 4)
    descriptor = dest.descriptor().encode()
    source = _source(net, dest.descriptor(), 4)
    trip = net.deliver(source.seal(b"who are you", 1, net.rng), 1)
    got = dest.receive(trip.exit_packet)
    back = net.deliver(dest.seal(got.connection, b"nobody", 2, net.rng), 2)
    assert source.open(back.exit_packet) == b"nobody"

    rp_id = net.relays[RP].node_id
    s_side = {net.relays[i].node_id for i in S_FWD + S_BWD} | {SOURCE_ID}
    d_side = {net.relays[i].node_id for i in D_FWD + D_BWD} | {DEST_ID}
    # What S holds about D: the descriptor. It names RP and nothing on D's side.
    assert rp_id in descriptor
    assert not any(node in descriptor for node in d_side)
    # What D receives: the packets on its last link, and the decoded message.
    assert not any(node in trip.exit_packet or node in got.data for node in s_side)
    # And S's packets from D name nobody on D's side.
    assert not any(node in back.exit_packet for node in d_side)


def test_rendezvous_point_keeps_no_state_for_the_splice() -> None:
    net = SimNetwork(25, Params(max_hops=R), seed=8, cache_size=0)
    dest = _dest(net, 3)
    source = _source(net, dest.descriptor(), 3)
    for i in range(3):
        trip = net.deliver(source.seal(b"m%d" % i, 1, net.rng), 1)
        assert dest.receive(trip.exit_packet).data == b"m%d" % i
    assert all(relay.cached_circuits == 0 for relay in net.relays)


def test_flipped_rendezvous_header_bits_are_dropped_at_the_rp(net: SimNetwork) -> None:
    dest = _dest(net, 2)
    descriptor = dest.descriptor()
    header = descriptor.header
    for bit in range(0, len(header) * 8, 29):
        flipped = bytearray(header)
        flipped[bit // 8] ^= 1 << (bit % 8)
        source = _source_on(net, attrs.evolve(descriptor, header=bytes(flipped)))
        trip = net.deliver(source.seal(b"x", 1, net.rng), 1)
        assert len(trip.hops) == 2, bit  # dropped by RP, the second hop
        assert isinstance(trip.final, Drop), bit
        assert trip.final.reason in (DropReason.INTEGRITY, DropReason.MALFORMED), bit


_SOURCE_CIRCUITS: dict[int, object] = {}


def _source_on(net: SimNetwork, descriptor: Descriptor) -> RendezvousSource:
    """A source on one cached 2-hop circuit per network (setup is the slow part)."""
    keys = _SOURCE_CIRCUITS.get(id(net))
    if keys is None:
        keys = _SOURCE_CIRCUITS[id(net)] = net.setup([S_FWD[0], RP], S_BWD[:2], rendezvous=True)
    return RendezvousSource(keys, descriptor, net.rng)  # type: ignore[arg-type]


def test_flipped_nested_ahdr_bits_are_dropped_at_the_next_relay(net: SimNetwork) -> None:
    dest = _dest(net, 3)
    packet = _source(net, dest.descriptor(), 3).seal(b"x", 1, net.rng).packet
    first = net.relays[S_FWD[0]]
    assert isinstance(first.process(packet, 1), Forward)
    for bit in range(CHDR_LEN * 8, (CHDR_LEN + net.params.nested_ahdr_len) * 8, 7):
        tampered = bytearray(packet)
        tampered[bit // 8] ^= 1 << (bit % 8)
        result = first.process(bytes(tampered), 1)
        assert isinstance(result, Drop), bit


def test_expired_descriptor_is_dropped_at_the_rp(net: SimNetwork) -> None:
    dest = _dest(net, 2, exp=100)
    source = _source(net, dest.descriptor(), 2, exp=600)
    packet = source.seal(b"late", 50, net.rng)
    trip = net.deliver(packet, 150)
    assert len(trip.hops) == 2
    assert trip.final == Drop(DropReason.EXPIRED)
    with pytest.raises(ExpiredError):
        source.seal(b"later", 100, net.rng)


def test_rp_refuses_to_splice_for_a_circuit_that_did_not_ask(net: SimNetwork) -> None:
    dest = _dest(net, 2)
    plain = net.setup([S_FWD[0], RP], S_BWD[:2])  # no RENDEZVOUS flag at RP
    with pytest.raises(LocalProtocolError):
        RendezvousSource(plain, dest.descriptor(), net.rng)
    forged = RendezvousSource(attrs.evolve(plain, rendezvous=True), dest.descriptor(), net.rng)
    trip = net.deliver(forged.seal(b"x", 1, net.rng), 1)
    assert trip.final == Drop(DropReason.ROUTE)


def test_rp_refuses_a_header_from_a_plain_circuit(net: SimNetwork) -> None:
    plain = net.setup([D_FWD[0], RP], D_BWD[:2], endpoint=DEST_ID)
    forged = RendezvousDestination(
        attrs.evolve(plain, rendezvous=True), crypto.SecretKey.from_rng(net.rng), PAYLOAD
    )
    trip = net.deliver(_source_on(net, forged.descriptor()).seal(b"x", 1, net.rng), 1)
    assert trip.final == Drop(DropReason.INTEGRITY)


def test_plain_data_to_a_rendezvous_point_is_still_delivered(net: SimNetwork) -> None:
    keys = net.setup([S_FWD[0], RP], S_BWD[:2], rendezvous=True)
    trip = net.deliver(SourceSession(keys, PAYLOAD).seal(b"for RP itself", 1, net.rng), 1)
    assert isinstance(trip.final, Deliver)


def test_replayed_and_forged_packets_are_rejected_by_the_destination(net: SimNetwork) -> None:
    dest = _dest(net, 2)
    source = _source(net, dest.descriptor(), 2)
    packet = net.deliver(source.seal(b"once", 1, net.rng), 1).exit_packet
    assert dest.receive(packet).data == b"once"
    with pytest.raises(ReplayError):
        dest.receive(packet)
    forged = bytearray(packet)
    forged[-1] ^= 1
    with pytest.raises(IntegrityError):
        dest.receive(bytes(forged))


def test_destination_connection_table_is_bounded(net: SimNetwork) -> None:
    keys = net.setup([D_FWD[0], RP], D_BWD[:2], endpoint=DEST_ID, rendezvous=True)
    dest = RendezvousDestination(
        keys, crypto.SecretKey.from_rng(net.rng), PAYLOAD, max_connections=2
    )
    sources = [_source_on(net, dest.descriptor()) for _ in range(3)]
    for source in sources:
        dest.receive(net.deliver(source.seal(b"init", 1, net.rng), 1).exit_packet)
    assert dest.connections == 2
    source = sources[0]  # evicted: it is not INIT any more, so D cannot take it back
    source.peer_has_reply_header = True
    with pytest.raises(IntegrityError):
        dest.receive(net.deliver(source.seal(b"data", 1, net.rng), 1).exit_packet)


def test_nested_header_needs_room_for_the_inner_header(net: SimNetwork) -> None:
    keys = net.setup([*S_FWD[: R - 1], RP], S_BWD[:2], rendezvous=True)  # r hops: too long
    with pytest.raises(LocalProtocolError):
        nested_ahdr(keys, bytes(net.params.rendezvous_header_len), net.rng)


def test_descriptor_round_trips_and_rejects_bad_versions(net: SimNetwork) -> None:
    descriptor = _dest(net, 2).descriptor()
    data = descriptor.encode()
    assert len(data) == 49 + (R + 1) * C
    assert Descriptor.decode(net.params, data) == descriptor
    for index in (0, 1):
        bad = bytearray(data)
        bad[index] ^= 0xFF
        with pytest.raises(HornetError):
            Descriptor.decode(net.params, bytes(bad))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=1600))
def test_arbitrary_bytes_never_raise_anything_but_hornet_errors(data: bytes) -> None:
    net = _FUZZ_NET
    with contextlib.suppress(HornetError):
        Descriptor.decode(net.params, data)
    with contextlib.suppress(HornetError):
        _FUZZ_DEST.receive(data)
    nested = bytes((TYPE_DATA_NESTED, R)) + data
    assert isinstance(net.relays[RP].process(nested, 1), Drop)


_FUZZ_NET = SimNetwork(25, Params(max_hops=R), seed=9)
_FUZZ_DEST = _dest(_FUZZ_NET, 2)

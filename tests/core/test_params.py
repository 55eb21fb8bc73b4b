"""Packet sizes against the path MTU: every packet the runtime sends by default fits one
unfragmented datagram (SPEC.md §3.4), and every class the runtime uses carries a circuit
and a rendezvous connection end to end in both profiles."""

from __future__ import annotations

import random

import pytest

from hornet.core.crypto import SecretKey
from hornet.core.e2e import DestinationSession, SourceSession
from hornet.core.params import (
    DEFAULT_MAX_HOPS,
    ETHERNET_MTU,
    IPV6_MIN_MTU,
    LINK_OVERHEAD,
    UDP_IPV4_OVERHEAD,
    UDP_IPV6_OVERHEAD,
    Params,
    Profile,
)
from hornet.core.rendezvous import RendezvousDestination, RendezvousSource
from hornet.errors import LocalProtocolError
from hornet.link.channel import DATA_OVERHEAD
from hornet.testing.sim import SimNetwork

PROFILES = [Params(), Params(profile=Profile.PAPER)]
PROFILE_KINDS = [Profile.PAPER, Profile.HARDENED]
NOW = 2
# The classes the runtime picks: for IPv4's 1500-byte and IPv6's 1280-byte paths.
CIRCUIT_CLASSES = sorted({
    size
    for p in PROFILES
    for size in (p.default_payload_size, p.max_payload(IPV6_MIN_MTU, ipv6=True))
})
RENDEZVOUS_CLASSES = sorted({
    size
    for p in PROFILES
    for size in (
        p.default_rendezvous_payload_size,
        p.max_payload(IPV6_MIN_MTU, ipv6=True, nested=True),
    )
})


def test_the_link_overhead_the_budget_assumes_is_the_link_layers() -> None:
    assert LINK_OVERHEAD == DATA_OVERHEAD


@pytest.mark.parametrize("params", PROFILES, ids=lambda p: p.profile.value)
def test_the_default_class_fits_a_1500_byte_ipv4_path_with_the_link_layer(params: Params) -> None:
    udp = params.data_packet_len(params.default_payload_size) + LINK_OVERHEAD
    assert udp <= ETHERNET_MTU - UDP_IPV4_OVERHEAD == 1472
    assert udp == 1472  # the class uses the whole budget
    nested = params.data_packet_len(params.default_rendezvous_payload_size, nested=True)
    assert nested + LINK_OVERHEAD == 1472


@pytest.mark.parametrize("params", PROFILES, ids=lambda p: p.profile.value)
def test_the_ipv6_class_fits_the_1280_byte_ipv6_minimum(params: Params) -> None:
    for nested in (False, True):
        payload = params.max_payload(IPV6_MIN_MTU, ipv6=True, nested=nested)
        udp = params.data_packet_len(payload, nested=nested) + LINK_OVERHEAD
        assert udp == IPV6_MIN_MTU - UDP_IPV6_OVERHEAD == 1232


@pytest.mark.parametrize("params", PROFILES, ids=lambda p: p.profile.value)
def test_setup_packets_fit_the_ipv6_minimum_too(params: Params) -> None:
    assert params.setup_packet_len + LINK_OVERHEAD <= 1232


def test_the_default_header_budget() -> None:
    params = Params()
    assert params.max_hops == 5
    assert params.data_packet_len(0) == 18 + 5 * 48 + 5 * 16 == 338
    assert params.default_payload_size == 1109
    assert params.default_rendezvous_payload_size == 869
    assert params.max_payload(IPV6_MIN_MTU, ipv6=True) == 869


def test_a_path_mtu_with_no_room_for_a_payload_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="path MTU"):
        Params().max_payload(576)


@pytest.mark.parametrize("profile", PROFILE_KINDS, ids=lambda p: p.value)
@pytest.mark.parametrize("size", CIRCUIT_CLASSES)
def test_every_default_payload_class_carries_a_circuit_end_to_end(
    size: int, profile: Profile
) -> None:
    """INIT, then a full-size message each way, on a 3-hop circuit of class ``size``."""
    net = SimNetwork(5, Params(profile=profile), seed=size)
    assert net.params.max_hops == DEFAULT_MAX_HOPS
    source = SourceSession(net.setup([0, 1, 2], [3, 4]), size)
    first = net.deliver(source.seal(b"i" * source.max_init_message, NOW, net.rng), NOW)
    assert len(first.hops[0].packet) == net.params.data_packet_len(size)
    dest = DestinationSession(net.params, first.delivered, size)
    assert dest.receive(first.delivered) == b"i" * source.max_init_message
    back = net.deliver(dest.seal(b"b" * dest.max_message, net.rng), NOW)
    assert source.open(back.exit_packet) == b"b" * dest.max_message
    again = net.deliver(source.seal(b"f" * source.max_message, NOW, net.rng), NOW)
    assert dest.receive(again.delivered) == b"f" * source.max_message


@pytest.mark.parametrize("profile", PROFILE_KINDS, ids=lambda p: p.value)
@pytest.mark.parametrize("size", RENDEZVOUS_CLASSES)
def test_every_default_payload_class_carries_a_rendezvous_end_to_end(
    size: int, profile: Profile
) -> None:
    """S → RP → D (INIT with RH_S) and D's answer, with payload class ``size``."""
    net = SimNetwork(5, Params(profile=profile), seed=size)
    rng = random.Random(size)
    rp = 2
    d_keys = net.setup([3, rp], [4], endpoint=b"dest\x00\x00\x00\x01", rendezvous=True)
    dest = RendezvousDestination(d_keys, SecretKey.from_rng(rng), size)
    source = RendezvousSource(net.setup([0, rp], [1], rendezvous=True), dest.descriptor(), rng)
    to_d = net.deliver(source.seal(b"s" * source.max_init_message, NOW, rng), NOW)
    got = dest.receive(to_d.exit_packet)
    assert got.data == b"s" * source.max_init_message
    to_s = net.deliver(dest.seal(got.connection, b"d" * dest.max_message, NOW, rng), NOW)
    assert source.open(to_s.exit_packet) == b"d" * dest.max_message

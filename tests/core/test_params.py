"""Packet sizes against the path MTU: every packet the runtime sends by default fits one
unfragmented datagram (SPEC.md §3.4)."""

from __future__ import annotations

import pytest

from hornet.core.params import (
    ETHERNET_MTU,
    IPV6_MIN_MTU,
    LINK_OVERHEAD,
    UDP_IPV4_OVERHEAD,
    UDP_IPV6_OVERHEAD,
    Params,
    Profile,
)
from hornet.errors import LocalProtocolError
from hornet.link.channel import DATA_OVERHEAD

PROFILES = [Params(), Params(profile=Profile.PAPER)]


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

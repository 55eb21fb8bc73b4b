"""Params: the default payload classes work end to end in both profiles."""

from __future__ import annotations

import random

import pytest

from hornet.core.circuit import DestinationSession, SourceSession
from hornet.core.crypto import SecretKey
from hornet.core.params import DEFAULT_MAX_HOPS, DEFAULT_PAYLOAD_SIZES, Params, Profile
from hornet.core.rendezvous import RendezvousDestination, RendezvousSource
from hornet.testing.sim import SimNetwork

PROFILES = [Profile.PAPER, Profile.HARDENED]
NOW = 2


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.value)
@pytest.mark.parametrize("size", DEFAULT_PAYLOAD_SIZES)
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


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.value)
@pytest.mark.parametrize("size", DEFAULT_PAYLOAD_SIZES)
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

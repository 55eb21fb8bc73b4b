"""HORNET setup (``hornet/core/setup.py``, SPEC.md §4): every tampered setup header or
setup payload bit is dropped at the next hop or refused by the source."""

from __future__ import annotations

import pytest
from core_kit import setup_request

from hornet.core.chdr import PUZZLE_OFFSET, bound_setup_chdr, setup_chdr, with_puzzle
from hornet.core.fs import Flag, Route, init_fs_payload
from hornet.core.params import CHDR_LEN
from hornet.core.relay import Drop, DropReason, Forward, Relay, SetupDrop
from hornet.core.setup import CircuitKeys, SetupRequest, complete_setup, route_tlv
from hornet.core.sphinx import build_onion
from hornet.errors import IntegrityError
from hornet.testing.sim import SimNetwork

# --- the setup header -----------------------------------------------------------------


def test_flipped_setup_header_bits_are_dropped_at_the_next_relay(net: SimNetwork) -> None:
    request = setup_request(net, 3, 3)
    relay = net.by_id[request.first_hop]
    header_end = CHDR_LEN + net.params.shdr_len
    puzzle = range(PUZZLE_OFFSET * 8, CHDR_LEN * 8)  # read by the entry relay's node only
    for bit in range(0, header_end * 8, 3):  # CHDR and Sphinx header, every third bit
        if bit in puzzle:
            continue
        tampered = bytearray(request.packet)
        tampered[bit // 8] ^= 1 << (bit % 8)
        assert isinstance(relay.process(bytes(tampered), 0), Drop), bit


def test_the_puzzle_field_is_not_forwarded(net: SimNetwork) -> None:
    # The entry relay's puzzle (SPEC.md §7.6) is zeroed before the CHDR goes on: the
    # packet that leaves is the one a puzzle-free setup would give.
    request = setup_request(net, 3, 3)
    relay = net.by_id[request.first_hop]
    with_nonce = with_puzzle(request.packet, 9, bytes(range(10)))
    assert with_nonce != request.packet
    first = relay.process(with_nonce, 0)
    assert isinstance(first, Forward)
    assert first.packet[:CHDR_LEN] == bound_setup_chdr(request.packet[:CHDR_LEN])
    assert first.packet[PUZZLE_OFFSET:CHDR_LEN] == bytes(CHDR_LEN - PUZZLE_OFFSET)


# --- the setup payload ----------------------------------------------------------------


@pytest.mark.parametrize("receiver", [0, 1, 2], ids=["first-link", "by-relay-0", "by-relay-1"])
def test_every_flipped_forward_setup_payload_bit_is_dropped_at_the_next_hop(
    net: SimNetwork, receiver: int
) -> None:
    # Flip SP on the link into hop ``receiver`` of a 3-hop forward path: on the first
    # link, or by a corrupt relay before it. Hop 2 is the destination.
    request = setup_request(net, 3, 3)
    hop, packet = request.first_hop, request.packet
    for _ in range(receiver):
        result = net.by_id[hop].process(packet, 0)
        assert isinstance(result, Forward)
        hop, packet = result.next_hop, result.packet
    sp_start = CHDR_LEN + net.params.shdr_len
    for bit in range(sp_start * 8 + receiver, (sp_start + net.params.sp_len) * 8, 3):
        tampered = bytearray(packet)
        tampered[bit // 8] ^= 1 << (bit % 8)
        trip = net.send(hop, bytes(tampered), 0)
        assert len(trip.hops) == 1, bit  # no tag reaches anyone beyond the next hop
        assert trip.final == Drop(DropReason.INTEGRITY), bit
    assert isinstance(net.by_id[hop].process(packet, 0), Forward)  # the original passes


def _backward_setup(net: SimNetwork) -> tuple[SetupRequest, Forward]:
    """A setup over 2 forward and 3 backward hops, run up to the destination's P➋."""
    request = setup_request(net, 2, 3)
    relay = net.by_id[request.first_hop].process(request.packet, 0)
    assert isinstance(relay, Forward)
    answer = net.by_id[relay.next_hop].process(relay.packet, 0)
    assert isinstance(answer, Forward)
    return request, answer


@pytest.mark.parametrize("offset", [0, 200, -1])
def test_flipped_backward_setup_payload_fails_at_the_source(net: SimNetwork, offset: int) -> None:
    # SP^b is made by the destination: backward hops cannot check it, the source does.
    request, answer = _backward_setup(net)
    tampered = bytearray(answer.packet)
    tampered[CHDR_LEN + net.params.shdr_len + offset % net.params.sp_len] ^= 0x04
    back = net.send(answer.next_hop, bytes(tampered), 0)
    assert len(back.hops) == 3 and isinstance(back.final, Forward)
    with pytest.raises(IntegrityError):
        complete_setup(request.pending, back.exit_packet, net.rng)
    request, answer = _backward_setup(net)
    back = net.send(answer.next_hop, answer.packet, 0)
    assert isinstance(complete_setup(request.pending, back.exit_packet, net.rng), CircuitKeys)


def _setup_hop_packet(net: SimNetwork, flags: Flag, *, bind_sp: bool) -> bytes:
    """A one-hop setup packet for relay 0 with route ``flags``, its SP bound or not."""
    p = net.params
    chdr = setup_chdr(p.max_hops, 600)
    sp = net.rng.randbytes(p.sp_len)
    onion = build_onion(
        net.rng.randbytes(32),
        [(net.spec(0).public_key, route_tlv(Route(net.relays[1].node_id, flags)))],
        associated_data=chdr,
        payload_size=p.sphinx_payload_size,
        last_hop_next_hmac=net.rng.randbytes(32),
        hop_associated_data=(lambda _: [sp]) if bind_sp else None,
    )
    return chdr + onion.packet + sp + init_fs_payload(net.rng.randbytes(16), p.max_hops)


def test_a_setup_dropped_after_its_ecdh_still_hands_out_its_tag(net: SimNetwork) -> None:
    # Its tag entered the replay filter, so the caller must persist it too: a relay
    # restarted with that tag refuses the replay before the ECDH (REPLAY, not ROUTE).
    original = net.relays[0]
    relay = Relay(original.node_key, net.secrets[0], net.params, record_setup_tags=True)
    packet = _setup_hop_packet(net, Flag.NONE, bind_sp=False)
    result = relay.process(packet, 0)
    assert isinstance(result, SetupDrop) and result.reason is DropReason.ROUTE
    assert relay.unpersisted_setup_tags == 1
    restarted = Relay(
        original.node_key, net.secrets[0], net.params, generation=1, record_setup_tags=True
    )
    restarted.restore_setup_tags(result.setup_tag.epoch, [result.setup_tag.tag])
    assert restarted.process(packet, 0) == Drop(DropReason.REPLAY)


def test_unbound_setup_payload_is_refused_on_a_forward_hop(net: SimNetwork) -> None:
    # A P➋-style header (HMAC over CHDR only) must travel a BACKWARD route, and a bound
    # one must not: otherwise a source could send P➊ without per-hop SP integrity.
    relay = net.relays[0]
    unbound_forward = _setup_hop_packet(net, Flag.NONE, bind_sp=False)
    assert relay.process(unbound_forward, 0) == Drop(DropReason.ROUTE)
    bound_backward = _setup_hop_packet(net, Flag.BACKWARD, bind_sp=True)
    assert relay.process(bound_backward, 0) == Drop(DropReason.ROUTE)
    for flags, bind_sp in ((Flag.BACKWARD, False), (Flag.NONE, True)):
        accepted = relay.process(_setup_hop_packet(net, flags, bind_sp=bind_sp), 0)
        assert isinstance(accepted, Forward)
        assert accepted.next_hop == net.relays[1].node_id

"""End-to-end sessions (``SourceSession`` and ``DestinationSession``, SPEC.md §5.5): round
trips over every path length, the first packet's backward header, replay and forgery,
and the frame layout byte for byte."""

from __future__ import annotations

import pytest
from core_kit import R, backward_path, forward_path

from hornet.core.e2e import DestinationSession, SourceSession
from hornet.core.params import Profile
from hornet.core.relay import Drop, DropReason
from hornet.errors import ReplayError
from hornet.testing.sim import SimNetwork, open_session

# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("length", range(1, R + 1))
def test_round_trip_for_every_path_length(net: SimNetwork, length: int) -> None:
    source, dest = open_session(net, forward_path(length), backward_path(length))
    for i in range(3):
        trip = net.deliver(source.seal(b"ping %d" % i, 2, net.rng), 2)
        assert len(trip.hops) == length
        assert dest.receive(trip.delivered) == b"ping %d" % i
        back = net.deliver(dest.seal(b"pong %d" % i, net.rng), 2)
        assert len(back.hops) == length
        assert source.open(back.exit_packet) == b"pong %d" % i


@pytest.mark.parametrize(("forward", "backward"), [(1, R), (R, 1), (3, 5)])
def test_paths_of_different_lengths_each_way(net: SimNetwork, forward: int, backward: int) -> None:
    source, dest = open_session(net, forward_path(forward), backward_path(backward))
    back = net.deliver(dest.seal(b"reply", net.rng), 2)
    assert source.open(back.exit_packet) == b"reply"


def test_first_packet_carries_the_backward_header(net: SimNetwork) -> None:
    source = SourceSession(net.setup(forward_path(3), backward_path(3)), 1024)
    trip = net.deliver(source.seal(b"hello", 1, net.rng), 1)
    dest = DestinationSession(net.params, trip.delivered, 1024)
    assert dest.receive(trip.delivered) == b"hello"
    assert dest.ahdr_backward == source.keys.ahdr_backward
    with pytest.raises(Exception, match="no reply header"):
        DestinationSession(net.params, trip.delivered, 1024).seal(b"x", net.rng)


# --- replay, forgery and the frame layout ---------------------------------------------


def test_forged_replayed_and_duplicated_payloads_are_rejected(net: SimNetwork) -> None:
    source, dest = open_session(net, forward_path(2), backward_path(2))
    out = source.seal(b"once", 2, net.rng)
    delivered = net.deliver(out, 2).delivered
    assert dest.receive(delivered) == b"once"
    again = net.deliver(out, 2)  # the same packet again
    if net.params.profile is Profile.HARDENED:
        # The first relay's (FS, IV) filter refuses it (SPEC.md §7.5).
        assert len(again.hops) == 1 and again.final == Drop(DropReason.REPLAY)
    else:
        delivered = again.delivered
    with pytest.raises(ReplayError):
        dest.receive(delivered)  # and the destination's window too
    back_packet = dest.seal(b"r", net.rng)
    back = net.deliver(back_packet, 2).exit_packet
    assert source.open(back) == b"r"
    with pytest.raises(ReplayError):
        source.open(back)
    again = net.deliver(back_packet, 2)
    if net.params.profile is Profile.HARDENED:
        assert len(again.hops) == 1 and again.final == Drop(DropReason.REPLAY)


def test_end_to_end_frame_is_seq_then_aes256gcm_under_the_hmac_derived_key() -> None:
    """SPEC §5.5 byte for byte, checked with an independent AES-GCM and HMAC."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    net = SimNetwork(4)
    source, _ = open_session(net, [0, 1, 2, 3], [2, 1, 0])
    source.peer_has_reply_header = True  # plain DATA frames from here on
    trip = net.deliver(source.seal(b"watchtower blob", 1, net.rng), 1)
    deliver = trip.delivered
    key = hmac.new(b"hornet-e2e-fwd", deliver.session_secret, hashlib.sha256).digest()
    seq = deliver.message[:8]
    assert int.from_bytes(seq, "big") == 1  # frame 0 was the INIT
    plain = AESGCM(key).decrypt(bytes(4) + seq, deliver.message[8:], None)
    assert plain[:3] == bytes((0x00,)) + len(b"watchtower blob").to_bytes(2, "big")
    assert plain[3:18] == b"watchtower blob"
    assert plain[18:] == bytes(len(plain) - 18)

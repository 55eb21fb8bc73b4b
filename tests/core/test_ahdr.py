"""Anonymous headers (``hornet/core/ahdr.py``, HORNET Alg. 3): what a relay sees of
the AHDR, and every flipped AHDR bit dropped at the next relay."""

from __future__ import annotations

import collections

from core_kit import R, backward_path, forward_path

from hornet.core.e2e import SourceSession
from hornet.core.params import CHDR_LEN, C, Params, Profile
from hornet.core.relay import Drop, DropReason, Forward
from hornet.testing.sim import SimNetwork, open_session


def test_last_hop_view_of_the_ahdr_looks_random() -> None:
    net = SimNetwork(4, Params(max_hops=R, profile=Profile.PAPER), seed=5)
    counts: collections.Counter[int] = collections.Counter()
    ahdr = slice(CHDR_LEN, CHDR_LEN + net.params.ahdr_len)
    for _ in range(40):
        keys = net.setup([0, 1], [2])
        packet = SourceSession(keys, 1024).seal(b"x", 1, net.rng).packet
        at_last_hop = net.send(keys.first_hop, packet, 1).hops[-1].packet[ahdr]
        view = net.relays[1]._circuit(at_last_hop, 1).next_ahdr  # what PROC_AHDR leaves
        assert bytes(C) not in view  # no zero block: padding is random, not zeros
        counts.update(view)
    total = sum(counts.values())
    # 40 × 336 bytes: every byte value appears, none far above its share.
    assert len(counts) == 256
    assert max(counts.values()) < 3 * total / 256


def test_every_flipped_ahdr_bit_is_dropped_at_the_next_relay(net: SimNetwork) -> None:
    source, _ = open_session(net, forward_path(3), backward_path(2))
    packet = source.seal(b"data", 2, net.rng).packet
    relay = net.by_id[source.keys.first_hop]
    assert isinstance(relay.process(packet, 2), Forward)
    for bit in range(CHDR_LEN * 8, (CHDR_LEN + net.params.ahdr_len) * 8):
        tampered = bytearray(packet)
        tampered[bit // 8] ^= 1 << (bit % 8)
        result = relay.process(bytes(tampered), 2)
        assert isinstance(result, Drop), bit
        assert result.reason in (DropReason.INTEGRITY, DropReason.MALFORMED, DropReason.EXPIRED)

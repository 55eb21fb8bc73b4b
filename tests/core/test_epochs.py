"""Key epochs, coarse EXP, clock skew and restart generations (SPEC.md §7)."""

from __future__ import annotations

import random

import pytest

from hornet.core import crypto
from hornet.core.e2e import SourceSession
from hornet.core.keys import epoch_public_key
from hornet.core.params import EXP_GRANULARITY_S, LIFETIMES_S, Params
from hornet.core.relay import Deliver, Drop, DropReason, Forward, Relay, SetupForward, SetupTag
from hornet.core.setup import (
    CircuitKeys,
    HopSpec,
    SetupRequest,
    build_setup,
    coarse_exp,
    complete_setup,
)
from hornet.errors import LocalDropReason, LocalProtocolError
from hornet.testing.sim import SOURCE_ID

PARAMS = Params(max_hops=4)
E = PARAMS.epoch_s
SKEW = PARAMS.max_skew_s
T0 = 1_700_000_000 - 1_700_000_000 % E + 1000  # 1000 s into an epoch
EPOCH0 = PARAMS.epoch_of(T0)


class Net:
    """Four relays (two forward, the destination, one backward), each with its own clock
    offset, driven hop by hop so every relay sees its own ``now``."""

    def __init__(self, offsets: tuple[float, ...] = (0, 0, 0, 0), generation: int = 0) -> None:
        rng = random.Random(7)
        self.rng = rng
        self.secrets = [rng.randbytes(32) for _ in offsets]
        self.keys = [crypto.SecretKey.from_rng(rng) for _ in offsets]
        self.offsets = offsets
        self.relays = [
            Relay(k, s, PARAMS, generation=generation, record_setup_tags=True)
            for k, s in zip(self.keys, self.secrets, strict=True)
        ]
        self.by_id = {r.node_id: i for i, r in enumerate(self.relays)}

    def spec(self, i: int, epoch: int) -> HopSpec:
        # What a directory publishes: computed from the local secret alone.
        return HopSpec(self.relays[i].node_id, epoch_public_key(self.secrets[i], epoch))

    def request(
        self, now: float, *, epoch: int | None = None, exp: int | None = None
    ) -> SetupRequest:
        epoch = PARAMS.epoch_of(now) if epoch is None else epoch
        return build_setup(
            PARAMS,
            [self.spec(0, epoch), self.spec(1, epoch), self.spec(2, epoch)],
            [self.spec(3, epoch)],
            SOURCE_ID,
            coarse_exp(now, 600) if exp is None else exp,
            self.rng,
            key_epoch=epoch,
        )

    def send(self, hop: bytes, packet: bytes, now: float) -> Forward | Deliver | Drop:
        """Run ``packet`` until it leaves the relays; each relay uses now + its offset."""
        while True:
            i = self.by_id[hop]
            result = self.relays[i].process(packet, now + self.offsets[i])
            if not isinstance(result, Forward) or result.next_hop not in self.by_id:
                return result
            hop, packet = result.next_hop, result.packet

    def setup(self, now: float, **kwargs: int) -> CircuitKeys:
        request = self.request(now, **kwargs)
        result = self.send(request.first_hop, request.packet, now)
        assert isinstance(result, Forward), result
        return complete_setup(request.pending, result.packet, self.rng)


def _data(net: Net, keys: CircuitKeys, now: float) -> Forward | Deliver | Drop:
    out = SourceSession(keys, 256).seal(b"hello", 1, net.rng)
    return net.send(out.next_hop, out.packet, now)


def test_setup_keys_rotate_and_the_directory_can_compute_them() -> None:
    net = Net()
    relay = net.relays[0]
    assert relay.setup_public_key(EPOCH0) == epoch_public_key(net.secrets[0], EPOCH0)
    keys = {relay.setup_public_key(e) for e in range(EPOCH0, EPOCH0 + 4)}
    assert len(keys) == 4 and relay.node_key.public_key not in keys


def test_a_circuit_set_up_late_in_an_epoch_outlives_it() -> None:
    net = Net()
    late = (EPOCH0 + 1) * E - 5  # 5 s before the next epoch
    keys = net.setup(late)
    assert isinstance(_data(net, keys, late), Deliver)
    # The relays have rotated; the circuit's FSes, sealed under the old epoch, still open.
    assert isinstance(_data(net, keys, late + 500), Deliver)
    assert _data(net, keys, keys.exp + SKEW) == Drop(DropReason.EXPIRED)


def test_setup_key_epochs_are_accepted_only_around_their_epoch() -> None:
    net = Net()
    boundary = (EPOCH0 + 1) * E
    # The next epoch's key, by a source whose clock runs up to SKEW ahead: accepted.
    assert isinstance(net.setup(boundary - SKEW + 1, epoch=EPOCH0 + 1), CircuitKeys)
    # The previous epoch's key just after the boundary: accepted within the skew.
    assert isinstance(net.setup(boundary + SKEW - 1, epoch=EPOCH0), CircuitKeys)
    # Outside the skew: the relay no longer (or not yet) holds that key.
    for now, epoch in ((boundary + SKEW + 1, EPOCH0), (boundary - SKEW - 1, EPOCH0 + 1)):
        request = net.request(now, epoch=epoch)
        assert net.send(request.first_hop, request.packet, now) == Drop(DropReason.KEY_EPOCH)
    # A key epoch far away whose low byte matches the current one is refused too.
    request = net.request(T0, epoch=EPOCH0 + 256)
    result = net.relays[0].process(request.packet, T0)
    assert isinstance(result, Drop)


@pytest.mark.parametrize("lifetime", [1, 10, 11, 60, 61, 600, 10_000])
def test_coarse_exp_uses_the_allowed_lifetimes_and_granularity(lifetime: float) -> None:
    exp = coarse_exp(T0 + 3.7, lifetime)
    assert exp % EXP_GRANULARITY_S == 0
    chosen = exp - (T0 + 3.7)
    allowed = [t for t in LIFETIMES_S if t >= min(lifetime, max(LIFETIMES_S))]
    assert allowed[0] <= chosen < allowed[0] + EXP_GRANULARITY_S


def test_setups_with_fine_grained_or_distant_exp_are_refused() -> None:
    net = Net()
    for exp in (T0 + 605, T0 + 600 + EXP_GRANULARITY_S + SKEW + 10):
        request = net.request(T0, exp=exp)
        assert net.relays[0].process(request.packet, T0) == Drop(DropReason.LIFETIME)


@pytest.mark.parametrize(
    "offsets", [(SKEW, -SKEW, SKEW, -SKEW), (-SKEW, SKEW, -SKEW, SKEW), (0, SKEW, 0, -SKEW)]
)
def test_relays_with_clocks_up_to_the_skew_apart_work_together(offsets: tuple[int, ...]) -> None:
    net = Net(offsets)
    # Also across an epoch boundary: the source's clock says epoch e, a relay's e + 1.
    for now in (T0, (EPOCH0 + 1) * E - 1):
        keys = net.setup(now)
        assert isinstance(_data(net, keys, now), Deliver)
        assert isinstance(_data(net, keys, keys.exp - 1), Deliver)  # until EXP at the source


def test_a_relay_beyond_the_skew_refuses_an_expired_circuit() -> None:
    net = Net((0, 2 * SKEW, 0, 0))
    keys = net.setup(T0)
    assert _data(net, keys, keys.exp - 1) == Drop(DropReason.EXPIRED)


def test_a_restart_generation_closes_old_circuits_and_keeps_setup_tags() -> None:
    before = Net(generation=3)
    request = before.request(T0)
    first = before.relays[0].process(request.packet, T0)
    assert isinstance(first, SetupForward)
    tags = [first.setup_tag]
    assert tags == [SetupTag(EPOCH0, tags[0].tag)] and before.relays[0].unpersisted_setup_tags == 1
    before.relays[0].setup_tags_persisted(1)
    keys = before.setup(T0)
    # "Restart": same key file, next generation, persisted tags restored.
    after = Net(generation=4)
    after.relays[0].restore_setup_tags(EPOCH0, [t.tag for t in tags])
    assert after.relays[0].process(request.packet, T0) == Drop(DropReason.REPLAY)
    # Data on a circuit from before the restart: its FS no longer opens.
    assert _data(after, keys, T0 + 1) == Drop(DropReason.INTEGRITY)
    # New setups and circuits work.
    assert isinstance(_data(after, after.setup(T0 + 1), T0 + 2), Deliver)


def test_params_refuse_epochs_shorter_than_a_circuit() -> None:
    with pytest.raises(LocalProtocolError):
        Params(epoch_s=600)


def test_a_relay_hands_out_every_setup_tag_and_forgets_none() -> None:
    # The caller persists 100 setups' tags before acknowledging any: each result carries
    # its own tag, none is dropped on the way, and after a "restart" with those tags
    # every one of the 100 setup packets is refused as a replay before its ECDH.
    before = Net(generation=1)
    relay = before.relays[0]
    relay.max_unpersisted_setup_tags = 128
    packets = [before.request(T0).packet for _ in range(100)]
    results = [relay.process(packet, T0) for packet in packets]
    assert all(isinstance(result, SetupForward) for result in results)
    persisted = [result.setup_tag for result in results if isinstance(result, SetupForward)]
    assert len({tag.tag for tag in persisted}) == 100
    assert relay.unpersisted_setup_tags == 100
    relay.setup_tags_persisted(100)
    assert relay.unpersisted_setup_tags == 0
    after = Net(generation=2)
    after.relays[0].restore_setup_tags(EPOCH0, [tag.tag for tag in persisted])
    replays = [after.relays[0].process(packet, T0) for packet in packets]
    assert replays == [Drop(DropReason.REPLAY)] * 100


def test_unacknowledged_setup_tags_make_the_relay_refuse_setups_not_forget_tags() -> None:
    net = Net()
    relay = net.relays[0]
    relay.max_unpersisted_setup_tags = 3
    packets = [net.request(T0).packet for _ in range(5)]
    first = [relay.process(packet, T0) for packet in packets[:3]]
    assert all(isinstance(result, SetupForward) for result in first)
    # The bound is reached: the next setups are refused before their ECDH, and their
    # tags do not enter the filter (they are neither recorded nor lost).
    refused = Drop(LocalDropReason.SETUP_TAGS_UNPERSISTED)
    assert [relay.process(packet, T0) for packet in packets[3:]] == [refused] * 2
    assert relay.unpersisted_setup_tags == 3
    with pytest.raises(LocalProtocolError):
        relay.setup_tags_persisted(4)
    relay.setup_tags_persisted(3)
    later = [relay.process(packet, T0) for packet in packets[3:]]
    assert all(isinstance(result, SetupForward) for result in later)
    assert relay.process(packets[0], T0) == Drop(DropReason.REPLAY)
    with pytest.raises(LocalProtocolError):
        Relay(net.keys[0], net.secrets[0], PARAMS, max_unpersisted_setup_tags=0)

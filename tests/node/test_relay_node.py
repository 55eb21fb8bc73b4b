"""The relay service (hornet.node.relay) and its state file: every setup tag the core
hands out is persisted and acknowledged, including the tags of setups that fail after
their ECDH, so the core never reaches its bound of unacknowledged tags."""

from __future__ import annotations

import random
from pathlib import Path

from hornet.core.chdr import setup_chdr
from hornet.core.fs import Flag, Route, init_fs_payload
from hornet.core.params import Params
from hornet.core.relay import DEFAULT_MAX_UNPERSISTED_SETUP_TAGS
from hornet.core.setup import coarse_exp, route_tlv
from hornet.core.sphinx import build_onion
from hornet.directory.model import Directory, NodeKeys, relay_info
from hornet.node.relay import RelayNode
from hornet.node.state import RelayState
from hornet.testing.memnet import MemoryNetwork
from hornet.transport.udp import unix_now

PARAMS = Params()


def _unbound_setup(node: RelayNode, rng: random.Random) -> bytes:
    """A one-hop setup for ``node`` whose Sphinx HMAC verifies (so its tag enters the
    filter) but whose role is refused after the ECDH: a forward hop without bound SP."""
    now = unix_now()
    chdr = setup_chdr(PARAMS.max_hops, coarse_exp(now, 600), PARAMS.epoch_of(now))
    onion = build_onion(
        rng.randbytes(32),
        [(node.core.setup_public_key(PARAMS.epoch_of(now)),
          route_tlv(Route(rng.randbytes(8), Flag.NONE)))],
        associated_data=chdr,
        payload_size=PARAMS.sphinx_payload_size,
        last_hop_next_hmac=rng.randbytes(32),
    )
    sp = rng.randbytes(PARAMS.sp_len)
    return chdr + onion.packet + sp + init_fs_payload(rng.randbytes(16), PARAMS.max_hops)


async def test_the_tags_of_setups_dropped_after_their_ecdh_are_persisted(tmp_path: Path) -> None:
    rng = random.Random(11)
    keys = NodeKeys.generate(rng)
    sock = await MemoryNetwork().bind(("127.0.0.1", 0))
    state = RelayState(tmp_path / "relay.state.sqlite")
    try:
        node = RelayNode(keys, Directory((relay_info(keys, sock.address),)), sock, state=state)
        count = DEFAULT_MAX_UNPERSISTED_SETUP_TAGS + 6  # past the core's bound
        packets = [_unbound_setup(node, rng) for _ in range(count)]
        for packet in packets:
            await node.handle(packet)
        assert node.statistics().dropped == {"route": count}
        assert node.core.unpersisted_setup_tags == 0
        assert len(state.tags(PARAMS.epoch_of(unix_now()))) == count
        await node.handle(packets[0])
        assert node.statistics().dropped == {"route": count, "replay": 1}
    finally:
        state.close()
        sock.close()



"""Interop with a real Lightning implementation: LDK 0.1 (``lightningdevkit`` on npm,
its TypeScript/WASM bindings) peers with the mixer over BOLT 8 / TCP.

Each test starts scripted LDK nodes (``ldk_node.mjs``, driven by JSON lines) and a
mixer service in this process, then checks, on the wire and in the counters:

- LDK → mixer → LDK forwarding (free, BOLT 4 route blinding), with the reply coming
  back over LDK's blinded reply path through the mixer;
- a bit-flipped onion from LDK is dropped and every connection survives;
- a paying hornet client → mixer → LDK, with LDK's reply arriving through the
  client's synthetic SCID.

The npm packages are installed with ``npm ci`` from ``package-lock.json`` (skipped,
naming npm, when Node.js/npm are missing).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from externals import require

from hornet.core import crypto
from hornet.core.blinding import BlindedPath
from hornet.core.onion_message import create_message_path, create_onion_message
from hornet.credentials.params import CredentialParams
from hornet.mixer.client import MixerClient
from hornet.mixer.config import MixerConfig, PeerConfig
from hornet.mixer.network import PeerNetwork
from hornet.mixer.peer import PeerTimers
from hornet.mixer.protocol import Prices
from hornet.mixer.ratelimit import Limit
from hornet.mixer.service import MixerService, MixerState, open_mixer
from hornet.mixer.session import Wallet
from hornet.testing.ldk import APP_TLV, LdkNode, open_ldk_node

HERE = Path(__file__).resolve().parent
PONG_TLV = APP_TLV + 2  # the script answers "ping…" with TLV + 2
STEP_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def ldk_modules(request: pytest.FixtureRequest) -> Path:
    """``npm ci`` in tests/ldk once per session (when node_modules is not in place)."""
    require("npm")
    installed = HERE / "node_modules" / "lightningdevkit" / "package.json"
    if not installed.exists() or os.environ.get("HORNET_LDK_NPM_CI"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                       capture_output=True, timeout=600)
    return HERE


@asynccontextmanager
async def ldk_node(nursery: trio.Nursery) -> AsyncIterator[LdkNode]:
    async with open_ldk_node(nursery, HERE) as node:
        yield node


@asynccontextmanager
async def mixer(tmp_path: Path, nursery: trio.Nursery, *, dial: list[LdkNode],
                dials_in: list[LdkNode], timers: PeerTimers | None = None,
                **config: Any) -> AsyncIterator[tuple[MixerState, PeerNetwork, MixerService]]:
    """A mixer whose config names the LDK nodes as peers: it dials ``dial`` (they have
    an address) and waits for ``dials_in``."""
    peers = [PeerConfig(n.node_id, "ldk", ("127.0.0.1", n.port)) for n in dial]
    peers += [PeerConfig(n.node_id, "ldk") for n in dials_in]
    settings = MixerConfig(prices=Prices(message=1, scid_register=2, scid_renew=1),
                           credential_params=CredentialParams(issuance_k=8),
                           peers=tuple(peers), **config)
    state = open_mixer(settings, tmp_path, now=time.time())
    try:
        directory = {p.node_id: p.address for p in peers if p.address is not None}
        network = PeerNetwork(state.core.node_key, directory=directory,
                              listen=("127.0.0.1", 0), persistent=list(directory),
                              timers=timers)
        await nursery.start(network.serve)
        service = MixerService(state.core, network)
        await nursery.start(service.serve)
        yield state, network, service
    finally:
        state.close()


async def _wait_for(predicate: Any) -> None:
    with trio.fail_after(STEP_TIMEOUT):
        while not predicate():
            await trio.sleep(0.02)


async def _event(node: LdkNode, name: str, **match: Any) -> dict[str, Any]:
    with trio.fail_after(STEP_TIMEOUT):
        return await node.event(name, **match)


async def test_ldk_to_ldk_through_the_mixer_and_back_over_a_blinded_reply_path(
        tmp_path: Path, ldk_modules: Path) -> None:
    async with trio.open_nursery() as nursery:
        async with ldk_node(nursery) as alice, ldk_node(nursery) as bob, \
                mixer(tmp_path, nursery, dial=[bob], dials_in=[alice]) as (state, network, svc):
            mixer_id = state.core.node_key.public_key
            await alice.connect(mixer_id, network.address)  # alice dials in
            with trio.fail_after(STEP_TIMEOUT):
                await network.wait_connected(bob.node_id)  # the mixer dialled bob
            assert mixer_id.hex() in await bob.peers()
            bob_path = await bob.path([mixer_id], b"bob-context")
            await alice.send(bob_path, b"ping from alice", reply_via=[mixer_id],
                             context=b"alice-context")
            got = await _event(bob, "om")
            assert got["tlv"] == APP_TLV and bytes.fromhex(got["data"]) == b"ping from alice"
            assert bytes.fromhex(got["context"]) == b"bob-context" and got["responder"]
            reply = await _event(alice, "om")  # bob answered along alice's reply path
            assert reply["tlv"] == PONG_TLV
            assert bytes.fromhex(reply["data"]) == b"pong:ping from alice"
            assert bytes.fromhex(reply["context"]) == b"alice-context"
            stats = svc.statistics()
            assert stats["free_forwards"] == 2 and stats["forwarded"] == 2
            assert network.connected(alice.node_id) and network.connected(bob.node_id)
            nursery.cancel_scope.cancel()


async def test_a_bit_flipped_onion_from_ldk_is_dropped_and_connections_survive(
        tmp_path: Path, ldk_modules: Path) -> None:
    async with trio.open_nursery() as nursery:
        async with ldk_node(nursery) as alice, ldk_node(nursery) as bob, \
                mixer(tmp_path, nursery, dial=[alice, bob], dials_in=[]) as (state, network,
                                                                           svc):
            mixer_id = state.core.node_key.public_key
            with trio.fail_after(STEP_TIMEOUT):
                await network.wait_connected(alice.node_id)
                await network.wait_connected(bob.node_id)
            bob_path = await bob.path([mixer_id], b"ctx")
            # onion_message body: path_key (33) ‖ u16 len ‖ version ‖ key (33) ‖ hop
            # payloads ‖ hmac; byte 120 lies in the hop payloads
            await alice.send(bob_path, b"tampered", flip_at=120, first_hop=mixer_id)
            await _wait_for(lambda: svc.statistics().get("dropped_bad_credential_or_mac") == 1)
            await alice.send(bob_path, b"intact")
            got = await _event(bob, "om")
            assert bytes.fromhex(got["data"]) == b"intact"
            assert bob.events("om") == []  # the tampered one never arrived
            assert mixer_id.hex() in await alice.peers()
            assert network.connected(alice.node_id) and network.connected(bob.node_id)
            assert not [k for k in network.statistics() if k.startswith("closed_")]
            assert network.statistics()["peers_ready"] == 2  # no reconnection happened
            nursery.cancel_scope.cancel()


async def test_a_paying_hornet_client_reaches_ldk_and_the_reply_uses_its_scid(
        tmp_path: Path, ldk_modules: Path) -> None:
    async with trio.open_nursery() as nursery:
        async with ldk_node(nursery) as bob, \
                mixer(tmp_path, nursery, dial=[bob], dials_in=[]) as (state, network, svc):
            mixer_id = state.core.node_key.public_key
            with trio.fail_after(STEP_TIMEOUT):
                await network.wait_connected(bob.node_id)
            fresh = crypto.SecretKey.from_rng(secrets.SystemRandom())
            transport = PeerNetwork(fresh, directory={mixer_id: network.address})
            await nursery.start(transport.serve)
            wallet = Wallet(state.core.listing(time.time()))  # as the directory lists it
            client = MixerClient.create(transport, fresh, wallet)
            await nursery.start(client.run)
            with trio.fail_after(STEP_TIMEOUT):
                await client.get_info()
                assert await client.buy(state.payments.mint(8, secrets.SystemRandom())) == 8
                registration = await client.register_scid()
            bob_path = BlindedPath.decode(bytes.fromhex(await bob.path([], b"bob")))
            assert bob_path.first_node_id == bob.node_id
            await client.send(bob_path, [(APP_TLV, b"ping from hornet")],
                              reply_path=client.reply_path(registration))
            got = await _event(bob, "om")
            assert bytes.fromhex(got["data"]) == b"ping from hornet" and got["responder"]
            with trio.fail_after(STEP_TIMEOUT):
                reply = await client.receive()
            assert dict(reply.payload)[PONG_TLV] == b"pong:ping from hornet"
            stats = svc.statistics()
            assert stats["paid_messages"] == 1 and stats["scid_deliveries"] == 1
            assert len(client.wallet) == 8 - 2 - 1
            nursery.cancel_scope.cancel()


async def test_pings_both_ways_keep_an_idle_ldk_connection_up(
        tmp_path: Path, ldk_modules: Path) -> None:
    """LDK pings on every timer tick and drops a peer that left the previous ping
    unanswered; the mixer pings every second here and drops a peer silent for 2.5 s."""
    fast = PeerTimers(ping_interval_s=1.0, silent_after_s=2.5)
    async with trio.open_nursery() as nursery:
        async with ldk_node(nursery) as carol, \
                mixer(tmp_path, nursery, dial=[], dials_in=[carol], timers=fast) as (
                    state, network, _):
            mixer_id = state.core.node_key.public_key
            await carol.connect(mixer_id, network.address)
            for _ in range(6):  # six LDK timer ticks, 0.6 s apart: six pings to answer
                await carol.command("tick")
                await _event(carol, "ticked")
                await trio.sleep(0.6)
            assert mixer_id.hex() in await carol.peers()
            assert network.connected(carol.node_id)
            link = network._links[carol.node_id].machine
            assert link.stats["pongs_sent"] >= 5 and link.stats["pings_sent"] >= 2
            assert not [k for k in network.statistics() if k.startswith("closed_")]
            nursery.cancel_scope.cancel()


async def test_onion_message_drop_reaches_hornet_peers_and_never_ldk(
        tmp_path: Path, ldk_modules: Path) -> None:
    """Backpressure over BOLT 8: a rate-limited hornet client gets an onion_message_drop
    (its init set bit 515); a rate-limited LDK node, which did not set it, gets none and
    stays connected."""
    tiny = Limit(0.001, 2.0)
    async with trio.open_nursery() as nursery:
        async with ldk_node(nursery) as alice, ldk_node(nursery) as bob, \
                mixer(tmp_path, nursery, dial=[alice, bob], dials_in=[], incoming_peer=tiny,
                      incoming_client=tiny) as (state, network, svc):
            mixer_id = state.core.node_key.public_key
            with trio.fail_after(STEP_TIMEOUT):
                await network.wait_connected(alice.node_id)
                await network.wait_connected(bob.node_id)
            await alice.command("flood", path=await bob.path([mixer_id], b"x"), tlv=APP_TLV,
                                data=b"flood".hex(), count=8)
            await _event(alice, "flooded")
            await _wait_for(lambda: svc.statistics().get("dropped_rate_limited", 0) >= 1
                            and network.statistics().get("dropped_refused", 0) >= 1)
            ldk_link = network._links[alice.node_id].machine
            assert ldk_link.stats["dropped_unsupported_515"] >= 1
            fresh = crypto.SecretKey.from_rng(secrets.SystemRandom())
            transport = PeerNetwork(fresh, directory={mixer_id: network.address})
            await nursery.start(transport.serve)
            wallet = Wallet(state.core.listing(time.time()))  # as the directory lists it
            client = MixerClient.create(transport, fresh, wallet)
            await nursery.start(client.run)
            rng = secrets.SystemRandom()
            for _ in range(6):
                path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                           [mixer_id, bob.node_id])
                junk = create_onion_message(crypto.SecretKey.from_rng(rng).secret_bytes(), path,
                                            payload=[(APP_TLV, b"unpaid flood")])
                await transport.send(mixer_id, junk.message)
            await _wait_for(lambda: client.stats["drop_notices"] >= 1)
            assert mixer_id.hex() in await alice.peers()
            assert network.connected(alice.node_id)
            assert not [k for k in network.statistics() if k.startswith("closed_")]
            nursery.cancel_scope.cancel()

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

import json
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

from hornet.core import crypto
from hornet.core.blinding import BlindedPath
from hornet.credentials.params import CredentialParams
from hornet.mixer.client import MixerClient
from hornet.mixer.config import MixerConfig, PeerConfig
from hornet.mixer.network import PeerNetwork
from hornet.mixer.peer import PeerTimers
from hornet.mixer.protocol import Prices
from hornet.mixer.service import MixerService, MixerState, open_mixer
from hornet.mixer.session import Wallet

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "ldk_node.mjs"
APP_TLV = 77_771  # odd, ≥ 64: a custom onion-message content TLV
PONG_TLV = APP_TLV + 2
STEP_TIMEOUT = 30.0


def _require(config: pytest.Config, name: str) -> None:
    """tests/conftest.py's ``require`` (the module name ``conftest`` is ambiguous here:
    tests/fuzz has one too, so it is found among the loaded plugins by its path)."""
    root = str(HERE.parent / "conftest.py")
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) == root:
            plugin.require(name)
            return
    raise AssertionError("tests/conftest.py is not loaded")


@pytest.fixture(scope="session")
def ldk_modules(request: pytest.FixtureRequest) -> Path:
    """``npm ci`` in tests/ldk once per session (when node_modules is not in place)."""
    _require(request.config, "npm")
    installed = HERE / "node_modules" / "lightningdevkit" / "package.json"
    if not installed.exists() or os.environ.get("HORNET_LDK_NPM_CI"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                       capture_output=True, timeout=600)
    return HERE


class LdkNode:
    """One scripted LDK node: commands in on stdin, events out on stdout."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.node_id = b""
        self.port = 0
        self._events: list[dict[str, Any]] = []
        self._arrived = trio.Event()
        self.log: list[str] = []

    async def _read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        while True:
            chunk = await self.process.stdout.receive_some(65_536)
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                text = line.decode(errors="replace").strip()
                if not text.startswith("{"):
                    self.log.append(text)  # the bindings' banner
                    continue
                self._events.append(json.loads(text))
                self._arrived.set()

    async def event(self, name: str, **match: Any) -> dict[str, Any]:
        """The next event called ``name`` whose fields include ``match``."""
        with trio.fail_after(STEP_TIMEOUT):
            while True:
                for i, event in enumerate(self._events):
                    if event.get("event") == "error":
                        raise AssertionError(f"LDK script error: {event}")
                    if event.get("event") == name and all(event.get(k) == v
                                                           for k, v in match.items()):
                        return self._events.pop(i)
                self._arrived = trio.Event()
                await self._arrived.wait()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self._events if e.get("event") == name]

    async def command(self, cmd: str, **fields: Any) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all((json.dumps({"cmd": cmd, **fields}) + "\n").encode())

    async def connect(self, node_id: bytes, address: tuple[str, int]) -> None:
        await self.command("connect", node_id=node_id.hex(), host=address[0], port=address[1])
        await self.event("connected", node_id=node_id.hex())

    async def peers(self) -> list[str]:
        await self.command("peers")
        return list((await self.event("peers"))["node_ids"])

    async def path(self, via: list[bytes], context: bytes) -> str:
        await self.command("path", via=[v.hex() for v in via], context=context.hex())
        return str((await self.event("path"))["path"])

    async def send(self, path: str, data: bytes, *, reply_via: list[bytes] | None = None,
                   context: bytes = b"", flip_at: int | None = None,
                   first_hop: bytes | None = None) -> None:
        await self.command("send", path=path, tlv=APP_TLV, data=data.hex(),
                           reply_via=None if reply_via is None else [v.hex() for v in reply_via],
                           context=context.hex(), flip_at=flip_at,
                           first_hop=None if first_hop is None else first_hop.hex())
        sent = await self.event("sent")
        assert sent["ok"], sent


@asynccontextmanager
async def ldk_node(nursery: trio.Nursery) -> AsyncIterator[LdkNode]:
    process = await trio.lowlevel.open_process(
        ["node", str(SCRIPT), secrets.token_bytes(32).hex()], cwd=HERE,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    node = LdkNode(process)
    nursery.start_soon(node._read)
    try:
        ready = await node.event("ready")
        node.node_id, node.port = bytes.fromhex(ready["node_id"]), int(ready["port"])
        yield node
    finally:
        with trio.CancelScope(shield=True):
            if process.stdin is not None:
                await process.stdin.aclose()
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


@asynccontextmanager
async def mixer(tmp_path: Path, nursery: trio.Nursery, *, dial: list[LdkNode],
                dials_in: list[LdkNode], timers: PeerTimers | None = None,
                ) -> AsyncIterator[tuple[MixerState, PeerNetwork, MixerService]]:
    """A mixer whose config names the LDK nodes as peers: it dials ``dial`` (they have
    an address) and waits for ``dials_in``."""
    peers = [PeerConfig(n.node_id, "ldk", ("127.0.0.1", n.port)) for n in dial]
    peers += [PeerConfig(n.node_id, "ldk") for n in dials_in]
    config = MixerConfig(prices=Prices(message=1, scid_register=2, scid_renew=1),
                         credential_params=CredentialParams(issuance_k=8), peers=tuple(peers))
    state = open_mixer(config, tmp_path, now=time.time())
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
            got = await bob.event("om")
            assert got["tlv"] == APP_TLV and bytes.fromhex(got["data"]) == b"ping from alice"
            assert bytes.fromhex(got["context"]) == b"bob-context" and got["responder"]
            reply = await alice.event("om")  # bob answered along alice's reply path
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
            got = await bob.event("om")
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
            client = MixerClient.create(transport, fresh, Wallet(mixer_id))
            await nursery.start(client.run)
            with trio.fail_after(STEP_TIMEOUT):
                await client.get_info()
                assert await client.buy(state.payments.mint(8, secrets.SystemRandom())) == 8
                registration = await client.register_scid()
            bob_path = BlindedPath.decode(bytes.fromhex(await bob.path([], b"bob")))
            assert bob_path.first_node_id == bob.node_id
            await client.send(bob_path, [(APP_TLV, b"ping from hornet")],
                              reply_path=client.reply_path(registration))
            got = await bob.event("om")
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
                await carol.event("ticked")
                await trio.sleep(0.6)
            assert mixer_id.hex() in await carol.peers()
            assert network.connected(carol.node_id)
            link = network._links[carol.node_id].machine
            assert link.stats["pongs_sent"] >= 5 and link.stats["pings_sent"] >= 2
            assert not [k for k in network.statistics() if k.startswith("closed_")]
            nursery.cancel_scope.cancel()

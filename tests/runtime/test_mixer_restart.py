"""Replays into the mixer's co-hosted relay after SIGKILL and restart (SPEC.md §7.5).

The mixer is a real process (``hornet mixer``'s ``mixer_main``, with a ``[relay]``
section and link encryption off, so that HORNET packets can be replayed as they are).
The test plays every other part with plain sockets and the sans-IO core: a relay A
listed in the directory (the mixer relay's previous hop, whose setups pass the gate),
the next hop D (a core ``Relay``), and a paying client over the onion-message UDP
transport. What the mixer relay sends D is what it accepted.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from restart_kit import QUIET, Process, bound, drain, free_port, receive, setup_through

from hornet.core import crypto
from hornet.core.chdr import TYPE_SETUP
from hornet.core.e2e import SourceSession
from hornet.core.relay import Forward, Relay
from hornet.core.setup import SetupRequest, complete_setup
from hornet.directory.model import Directory, NodeKeys, mixer_listing_from_json, relay_info
from hornet.mixer.client import MixerClient
from hornet.mixer.entry import relay_keys
from hornet.mixer.network import PeerNetwork
from hornet.mixer.service import KEYS_FILE, load_or_create_keys, mint_voucher
from hornet.mixer.session import Wallet
from hornet.mixer.transport import TapTransport

CONFIG = """
listen = "127.0.0.1:{mixer_port}"
state_dir = "{state_dir}"
synchronous = "NORMAL"

[prices]
message = 1
scid_register = 2
scid_renew = 1
circuit_open = 2

[credentials]
issuance_k = 8

[relay]
listen = "127.0.0.1:{relay_port}"
directory = "{directory}"
link = false
"""


class MixerWorld:
    def __init__(self, tmp_path: Path) -> None:
        self.rng = random.Random(29)
        state_dir = tmp_path / "state"
        state_dir.mkdir()
        node_key, master = load_or_create_keys(state_dir / KEYS_FILE)
        self.mixer_id = node_key.public_key
        self.mixer_relay = relay_keys(master)
        self.a_keys, self.d_keys = NodeKeys.generate(self.rng), NodeKeys.generate(self.rng)
        self.a_sock, self.d_sock = bound(), bound()
        self.mixer_address = ("127.0.0.1", free_port())
        self.relay_address = ("127.0.0.1", free_port())
        self.directory = Directory(
            (
                relay_info(self.mixer_relay, self.relay_address),
                relay_info(self.a_keys, self.a_sock.getsockname()),
                relay_info(self.d_keys, self.d_sock.getsockname()),
            )
        )
        self.params = self.directory.params
        self.directory.write(tmp_path / "directory.json")
        self.d = Relay(self.d_keys.node_key, self.d_keys.local_secret, self.params)
        self.config = tmp_path / "mixer.toml"
        self.config.write_text(
            CONFIG.format(
                mixer_port=self.mixer_address[1],
                relay_port=self.relay_address[1],
                state_dir=state_dir,
                directory=tmp_path / "directory.json",
            )
        )
        self.process = Process(
            [
                sys.executable,
                "-c",
                "import sys; from hornet.mixer.service import mixer_main; "
                "sys.exit(mixer_main(sys.argv[1]))",
                str(self.config),
            ],
            ready="hornet mixer: relay",
        )

    def start(self) -> None:
        self.process.start(lines=2)

    def setup_request(self) -> SetupRequest:
        """P➊ for the path mixer relay → D, backward through the mixer relay to A."""
        return setup_through(
            self.directory, self.mixer_relay, self.d_keys, self.a_sock.getsockname(), self.rng
        )

    def from_a(self, packet: bytes) -> None:
        self.a_sock.sendto(packet, self.relay_address)

    def arrivals_at_d(self, quiet: float = QUIET) -> tuple[int, int]:
        """(setups, data packets) the mixer relay sent D until it was quiet ``quiet`` s."""
        packets = drain(self.d_sock, quiet)
        setups = sum(1 for p in packets if p[0] == TYPE_SETUP)
        return setups, len(packets) - setups


@pytest.fixture
def world(tmp_path: Path) -> Iterator[MixerWorld]:
    w = MixerWorld(tmp_path)
    try:
        yield w
    finally:
        w.process.stop()
        w.a_sock.close()
        w.d_sock.close()


def test_the_mixer_relay_forwards_no_replay_after_sigkill_and_restart(
    world: MixerWorld,
) -> None:
    world.start()
    request = world.setup_request()
    setup = request.packet
    world.from_a(setup)  # A is a listed relay: its setups pass the gate
    at_d = receive(world.d_sock, 10)
    assert at_d is not None, "the mixer relay did not forward a fresh setup"
    answer = world.d.process(at_d, time.time())
    assert isinstance(answer, Forward)
    world.d_sock.sendto(answer.packet, world.relay_address)
    reply = receive(world.a_sock, 10)
    assert reply is not None
    session = SourceSession(complete_setup(request.pending, reply, world.rng), 512)
    data = [session.seal(b"recorded %d" % i, time.time(), world.rng).packet for i in range(5)]
    for packet in data:
        world.from_a(packet)
        assert receive(world.d_sock, 10) is not None  # fresh data is forwarded

    world.process.kill()
    world.start()
    for packet in (setup, *data):
        world.from_a(packet)
    setups, data_packets = world.arrivals_at_d(quiet=2.0)
    print(f"forwarded after restart: setups={setups} data={data_packets}")
    assert (setups, data_packets) == (0, 0)


async def test_a_replayed_circuit_request_injects_nothing_after_sigkill_and_restart(
    world: MixerWorld,
) -> None:
    voucher = bytes.fromhex(mint_voucher(str(world.config), 8))
    world.start()
    identity = crypto.SecretKey.from_rng(world.rng)
    # BOLT 8 over TCP; after the restart it dials the mixer again on the next send.
    network = PeerNetwork(identity, directory={world.mixer_id: world.mixer_address})
    transport = TapTransport(network)
    # The wallet holds the mixer to its published listing, as a directory carries it.
    entry = subprocess.run(
        [sys.executable, "-m", "hornet.cli", "mixer-entry", "--config", str(world.config)],
        capture_output=True, text=True, check=True,
    )
    wallet = Wallet(mixer_listing_from_json(json.loads(entry.stdout)))
    client = MixerClient.create(transport, identity, wallet, rng=world.rng)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.serve)
        await nursery.start(client.run)
        with trio.fail_after(30):
            await client.get_info()
            assert await client.buy(voucher) == 8
            await client.request_circuit(world.setup_request().packet)
        first = await trio.to_thread.run_sync(receive, world.d_sock, 10)
        assert first is not None and first[0] == TYPE_SETUP  # injected, forwarded to D
        assert await trio.to_thread.run_sync(world.arrivals_at_d) == (0, 0)
        recorded = [f.message for f in transport.log if f.receiver == world.mixer_id][-1]

        world.process.kill()
        await trio.to_thread.run_sync(world.start)
        heard = sum(1 for f in transport.log if f.sender == world.mixer_id)
        await transport.send(world.mixer_id, recorded)  # the same message again
        with trio.fail_after(20):  # the setup would be injected right after the answer
            while sum(1 for f in transport.log if f.sender == world.mixer_id) == heard:
                await trio.sleep(0.05)
        setups, _ = await trio.to_thread.run_sync(world.arrivals_at_d, 2.0)
        answered = sum(1 for f in transport.log if f.sender == world.mixer_id) - heard
        print(f"setups injected and forwarded after the replay: {setups}")
        assert answered == 1  # the restarted mixer answered the replay (cached OK) ...
        assert setups == 0  # ... and its setup reached no one
        nursery.cancel_scope.cancel()


"""The watchtower example, the demo and the README's client example run to completion
on UDP loopback."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from hornet.circuit.circuit import Circuit
from hornet.core import crypto
from hornet.core.onion_message import create_message_path, create_onion_message
from hornet.core.params import Params
from hornet.directory.model import relay_info
from hornet.mixer.config import MixerConfig, PeerConfig
from hornet.mixer.core import peel_message
from hornet.mixer.entry import EntryRelay, relay_keys, serve_entry_relay
from hornet.mixer.network import PeerNetwork
from hornet.mixer.node import OnionNode
from hornet.mixer.protocol import MIXER_PAYMENT_TLV, MIXER_REQUEST_TLV, Prices, Request
from hornet.mixer.service import MixerService, open_mixer
from hornet.mixer.transport import LoggedMessage, TapTransport
from hornet.testing.local import local_network
from hornet.transport.udp import UdpNetwork

REPO = Path(__file__).resolve().parents[2]


def test_the_watchtower_example_exits_0_and_checks_its_claims() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "mixer_watchtower.py")],
                          capture_output=True, text=True, timeout=180, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok] the LSP relayed nothing after the purchase" in proc.stdout
    assert "FAILED" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_the_mixer_demo_passes_its_checks() -> None:
    code = ("import sys, trio; from hornet.cli.mixer_demo import run_mixer_demo; "
            "sys.exit(trio.run(run_mixer_demo, print))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("all checks passed")


# --------------------------------------------------------------------------------------
# The README's client example, run against a live mixer, relay and watchtower


def _readme_mixer_example() -> Callable[..., Awaitable[None]]:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    (code,) = [b for b in blocks if "MixerClient" in b]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    main: Callable[..., Awaitable[None]] = namespace["main"]
    return main


async def _echo(circuit: Circuit) -> None:
    async for blob in circuit:
        await circuit.send(b"ack " + blob[:8])


def _requests_by_sender(node_key: crypto.SecretKey, frames: list[LoggedMessage],
                        mixer_id: bytes) -> dict[bytes, list[str]]:
    """What each identity asked of the mixer, as the mixer reads it: request kinds, and
    'spend' for every message that carried credentials."""
    seen: dict[bytes, list[str]] = {}
    for frame in frames:
        if frame.receiver != mixer_id:
            continue
        peeled = peel_message(node_key, frame.message)
        asked = seen.setdefault(frame.sender, [])
        if any(t == MIXER_PAYMENT_TLV for t, _ in peeled.data.records):
            asked.append("spend")
        raw = dict(peeled.tlv.records).get(MIXER_REQUEST_TLV)
        if raw is not None:
            request = Request.decode(raw)
            asked.append(request.kind.name)
            if request.payment.spends:
                asked.append("spend")
    return seen


async def test_the_readme_mixer_example_buys_and_spends_under_two_identities(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example loads directory.json from here
    readme_main = _readme_mixer_example()
    rng = secrets.SystemRandom()
    tower_key = crypto.SecretKey.from_rng(rng)
    config = MixerConfig(prices=Prices(message=1, scid_register=2, scid_renew=1,
                                       circuit_open=2),
                         peers=(PeerConfig(tower_key.public_key, "eclair"),))
    state = open_mixer(config, tmp_path / "state", now=time.time(), relay_params=Params())
    mixer_id = state.core.node_key.public_key
    keys = relay_keys(state.master_secret)
    udp = UdpNetwork()
    relay_sock = await udp.bind(("127.0.0.1", 0))
    try:
        async with local_network(3, service=_echo, network=udp,
                                 extra_relays=[relay_info(keys, relay_sock.address)]) as hornet, \
                trio.open_nursery() as nursery:
            attrs.evolve(hornet.directory, mixers=(state.core.listing(time.time()),)).write(
                tmp_path / "directory.json")
            entry: EntryRelay = await nursery.start(
                lambda task_status: serve_entry_relay(keys, hornet.directory,
                                                      relay_sock.address, sock=relay_sock,
                                                      state=tmp_path / "relay.state.sqlite",
                                                      task_status=task_status))
            addresses: dict[bytes, tuple[str, int]] = {}
            mixer_tcp = PeerNetwork(state.core.node_key, directory=addresses,
                                    listen=("127.0.0.1", 0))
            tower_tcp = PeerNetwork(tower_key, directory=addresses, listen=("127.0.0.1", 0))
            await nursery.start(mixer_tcp.serve)
            await nursery.start(tower_tcp.serve)
            addresses.update({mixer_id: mixer_tcp.address, tower_key.public_key: tower_tcp.address})
            mixer_net = TapTransport(mixer_tcp)
            await nursery.start(MixerService(state.core, mixer_net, clock=time.time,
                                             on_circuit=entry.submit).serve)
            tower = OnionNode(tower_key, tower_tcp, name="tower")
            await nursery.start(tower.run)

            async def answer() -> None:
                while True:
                    got = await tower.receive()
                    if got.deliver.reply_path is not None:
                        await tower.send(create_onion_message(
                            secrets.token_bytes(32), got.deliver.reply_path,
                            payload=[(77_773, b"accepted")]))

            nursery.start_soon(answer)
            tower_path = create_message_path(secrets.token_bytes(32), [tower_key.public_key])
            with trio.fail_after(60):
                await readme_main(mixer_id, mixer_tcp.address, state.payments.mint(16, rng),
                                  tower_path, hornet.service_id, [b"a" * 64, b"b" * 64])
            nursery.cancel_scope.cancel()
        asked = _requests_by_sender(state.core.node_key, list(mixer_net.log), mixer_id)
    finally:
        relay_sock.close()
        state.close()
    clients = {sender: kinds for sender, kinds in asked.items()
               if sender != tower_key.public_key}
    buyers = {s for s, kinds in clients.items() if "BUY" in kinds}
    spenders = {s for s, kinds in clients.items() if "spend" in kinds}
    assert len(buyers) == 1 and spenders, clients
    assert not buyers & spenders, "the identity that bought also spent"
    assert entry.statistics()["setups_injected"] == 1

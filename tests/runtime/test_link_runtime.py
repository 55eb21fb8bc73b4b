"""The link layer in the runtime: on by default, relays authenticated, clients held.

In memory under trio's autojump clock, except the CLI tests (``hornet relay`` processes).
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import hornet
from hornet.circuit.circuit import Circuit
from hornet.core.chdr import TYPE_DATA
from hornet.core.crypto import SecretKey
from hornet.core.params import CHDR_LEN
from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file
from hornet.link.channel import (
    TYPE_ACT_ONE,
    TYPE_ACT_THREE,
    TYPE_ACT_TWO,
    TYPE_DATA_FROM_INITIATOR,
    TYPE_DATA_FROM_RESPONDER,
)
from hornet.node.destination import serve, serve_rendezvous
from hornet.testing.memnet import MemoryNetwork
from hornet.transport.link import LinkNetwork, LinkSocket, directory_resolver
from hornet.transport.udp import Address, unix_now

LINK_TYPES = {
    TYPE_ACT_ONE,
    TYPE_ACT_TWO,
    TYPE_ACT_THREE,
    TYPE_DATA_FROM_INITIATOR,
    TYPE_DATA_FROM_RESPONDER,
}
Wire = list[tuple[bytes, Address, Address]]


async def echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(b"echo:" + message)


class _Recorder:
    """A relay core that remembers every packet it is given (the plaintext side)."""

    def __init__(self, core: Any, seen: list[bytes]) -> None:
        self._core = core
        self._seen = seen

    def process(self, packet: bytes, now: float) -> Any:
        self._seen.append(bytes(packet))
        return self._core.process(packet, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)


def _capture(wire: Wire) -> MemoryNetwork:
    def keep(data: bytes, source: Address, destination: Address) -> bool:
        wire.append((data, source, destination))
        return True

    return MemoryNetwork(filter=keep)


@pytest.mark.parametrize("link", [True, False], ids=["link", "no-link"])
async def test_the_wire_between_relays_carries_link_datagrams_not_ahdrs(
    autojump_clock: trio.testing.MockClock, link: bool
) -> None:
    wire: Wire = []
    mem = _capture(wire)
    plaintext: list[bytes] = []
    async with hornet.local_network(5, service=echo, network=mem, seed=31, link=link) as net:
        for node in net.relays:
            node.core = _Recorder(node.core, plaintext)  # type: ignore[assignment]
        async with hornet.open_circuit(
            net.directory, net.service_id, network=mem, link=link
        ) as circuit:
            for i in range(5):
                await circuit.send(b"message %d" % i)
                assert await circuit.receive() == b"echo:message %d" % i
        relays = {r.address for r in net.directory}
    # Each data packet's AHDR, as the relay that processed it saw it (its FS is the same
    # on every packet of the circuit at that hop).
    ahdrs = {p[CHDR_LEN : CHDR_LEN + 32] for p in plaintext if p[0] == TYPE_DATA}
    assert len(ahdrs) >= 3
    between_relays = [d for d, s, t in wire if s in relays and t in relays]
    assert len(between_relays) > 10
    in_clear = [d for d, _, _ in wire if any(a in d for a in ahdrs)]
    if link:
        assert in_clear == []
        assert all(d[0] in LINK_TYPES for d, _, _ in wire)
        assert all(d[0] in (TYPE_DATA_FROM_INITIATOR, TYPE_DATA_FROM_RESPONDER)
                   for d in between_relays if len(d) > 100)
    else:  # the control: without the link layer the same observer links the packets
        assert len(in_clear) > 10
        assert not any(d[0] in LINK_TYPES for d, _, _ in wire)


async def test_a_relay_refuses_a_relay_link_whose_key_is_not_the_directory_key(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork()
    rng = random.Random(32)
    listed = NodeKeys.generate(rng)  # the key the directory lists for the impostor's address
    impostor_address: Address = ("127.0.0.9", 9000)
    entry = relay_info(listed, impostor_address, now=unix_now())
    async with hornet.local_network(3, network=mem, seed=33, extra_relays=[entry]) as net:
        target = net.relays[0]
        resolve = directory_resolver(net.directory)
        results = {}
        for name, key in (("wrong key", SecretKey.from_rng(rng)), ("listed key", listed.node_key)):
            async with trio.open_nursery() as nursery:
                sock = await LinkNetwork(mem, key, resolve, nursery).bind(impostor_address)
                nursery.start_soon(sock.receive)  # handshakes progress while receiving
                with trio.move_on_after(15) as scope:
                    await sock.connect(target.address)
                results[name] = not scope.cancelled_caught
                nursery.cancel_scope.cancel()
            sock.close()
        assert isinstance(target.socket, LinkSocket)
        dropped = target.socket.statistics().dropped
    assert results == {"wrong key": False, "listed key": True}
    assert dropped["link_authentication"] >= 1


async def test_an_idle_hidden_destination_stays_reachable_past_link_expiry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The relay at the end of the hidden destination's backward path cannot open a link
    # to it: the destination holds that link for the circuit's lifetime.
    mem = MemoryNetwork()
    async with hornet.local_network(6, network=mem, seed=34) as net:
        async with trio.open_nursery() as nursery:
            descriptor = await nursery.start(
                lambda task_status: serve_rendezvous(
                    net.directory, echo, network=mem, task_status=task_status
                )
            )
            await trio.sleep(400)  # > 180 s: every unheld session has expired by now
            async with hornet.open_circuit(net.directory, descriptor, network=mem, hops=2) as c:
                await c.send(b"late visitor")
                with trio.fail_after(30):
                    assert await c.receive() == b"echo:late visitor"
            nursery.cancel_scope.cancel()


# -- the CLI: "link": false ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _relay_config(tmp: Path, keys: NodeKeys, port: int, link: object) -> Path:
    write_key_file(tmp / "relay.key", keys)
    config = tmp / "relay.json"
    config.write_text(
        json.dumps(
            {
                "key_file": "relay.key",
                "directory": "directory.json",
                "listen": f"127.0.0.1:{port}",
                "link": link,
            }
        )
    )
    return config


async def test_a_relay_configured_with_link_false_serves_clients_without_link(
    tmp_path: Path,
) -> None:
    rng = random.Random(35)
    relay_keys, service_keys = NodeKeys.generate(rng), NodeKeys.generate(rng)
    infos = [relay_info(k, ("127.0.0.1", _free_port())) for k in (relay_keys, service_keys)]
    directory = Directory(tuple(infos))
    directory.write(tmp_path / "directory.json")
    config = _relay_config(tmp_path, relay_keys, infos[0].address[1], False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hornet.cli", "relay", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "(link encryption off)" in proc.stdout.readline()
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve(
                    service_keys, directory, infos[1].address, echo, link=False,
                    state=tmp_path / "service.state.sqlite", task_status=task_status,
                )
            )
            with trio.fail_after(30):
                async with hornet.open_circuit(
                    directory, service_keys.node_id, hops=1, link=False
                ) as circuit:
                    await circuit.send(b"plain hornet")
                    assert await circuit.receive() == b"echo:plain hornet"
            nursery.cancel_scope.cancel()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_a_link_setting_that_is_not_a_boolean_is_a_config_error(tmp_path: Path) -> None:
    Directory(()).write(tmp_path / "directory.json")
    config = _relay_config(tmp_path, NodeKeys.generate(random.Random(36)), _free_port(), "no")
    out = subprocess.run(
        [sys.executable, "-m", "hornet.cli", "relay", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode != 0
    assert "'link' must be true or false" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_the_e2e_benchmark_measures_the_chain_with_and_without_link() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hornet.cli.bench", "--json", "--packets", "3000",
         "--circuits", "5", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["link"] is True
    for prefix, suffix in (("plain_", ""), ("", "_nolink"), ("", "")):
        assert figures[f"{prefix}delivered{suffix}"] > 0.9
        assert figures[f"{prefix}goodput_mbps{suffix}"] > 0
    on, off = figures["goodput_mbps"], figures["goodput_mbps_nolink"]
    assert abs(figures["link_cost"] - (1 - on / off)) < 0.01  # one round: the ratio itself
    assert figures["setup_ms_median"] > 0
    for suffix in ("", "_nolink"):
        assert figures[f"compute_us_per_packet{suffix}"] > 0
        assert 0 < figures[f"goodput_ratio_ceiling{suffix}"] < 1


def test_the_in_process_compute_chain_delivers_every_packet() -> None:
    """``compute_us_per_packet`` runs source → 3 relays → sink with and without link
    sessions; it raises unless every packet is delivered and its frame decodes."""
    from hornet.cli.bench import compute_us_per_packet

    for link in (True, False):
        assert compute_us_per_packet(1024, link=link, packets=50, rounds=1) > 0

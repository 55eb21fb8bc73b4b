"""A running node picks up a new directory file on its own and on SIGHUP: a relay added to
the file carries traffic within one check interval, without a restart anywhere."""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import trio

import hornet
from hornet.circuit.circuit import Circuit
from hornet.client import Entry
from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file
from hornet.errors import ConfigError
from hornet.node.relay import RelayNode, serve_relay
from hornet.node.reload import reload_directory, watch_directory
from hornet.transport.udp import UdpNetwork

INTERVAL = 0.2  # how often the nodes check the file here


async def _echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(b"echo:" + message)


def _write(directory: Directory, path: Path) -> None:
    """Replace the file in one rename, as an operator's tooling should."""
    directory.write(path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


async def _through_new_relay(directory: Directory, service: bytes, new: RelayNode) -> bytes:
    """One message over a circuit whose entry (first forward, last backward hop) is the
    new relay: the old relays must know its address and key to answer through it."""
    info = directory.get(new.node_id)
    assert info is not None
    async with hornet.open_circuit(
        directory, service, hops=3, entry=Entry(info), attempts=1, setup_timeout=2.0
    ) as circuit:
        await circuit.send(b"hello")
        with trio.fail_after(5):
            return await circuit.receive()


async def test_a_relay_added_to_the_file_carries_traffic_without_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "directory.json"
    async with hornet.local_network(3, service=_echo, directory_path=path, seed=11) as net:
        assert net.service is not None
        nodes = [*net.relays, net.service.node]
        async with trio.open_nursery() as nursery:
            for node in nodes:
                await nursery.start(
                    partial(watch_directory, [node], path, interval=INTERVAL, sighup=False)
                )
            keys = NodeKeys.generate(random.Random(12))
            sock = await UdpNetwork().bind(("127.0.0.1", 0))
            bigger = Directory(
                (*net.directory.relays, relay_info(keys, sock.address)), net.directory.params
            )
            new: RelayNode = await nursery.start(
                partial(serve_relay, keys, bigger, sock.address, sock=sock,
                        state=tmp_path / "new.state.sqlite")
            )
            _write(bigger, path)
            await trio.sleep(INTERVAL * 3)  # one check interval, with room to spare
            assert all(node.directory == bigger for node in nodes)
            assert await _through_new_relay(bigger, net.service_id, new) == b"echo:hello"
            assert new.statistics().forwarded > 0
            nursery.cancel_scope.cancel()


async def test_an_unusable_new_file_keeps_the_current_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "directory.json"
    async with hornet.local_network(2, directory_path=path, seed=13) as net:
        node = net.relays[0]
        before = node.directory
        path.write_text('{"hornet_directory": 1, "relays": [')  # half written
        with caplog.at_level(logging.WARNING, logger="hornet.directory"):
            assert not await reload_directory([node], path)
        assert node.directory is before
        assert "not reloaded, keeping the current one" in caplog.text
        other = Directory(net.directory.relays, hornet.core.params.Params(max_hops=6))
        with pytest.raises(ConfigError, match="changes params"):
            node.replace_directory(other)
        assert node.directory is before


def test_sighup_reloads_the_directory_of_a_running_relay(tmp_path: Path) -> None:
    keys = [NodeKeys.generate(random.Random(20 + i)) for i in range(3)]
    write_key_file(tmp_path / "node.key", keys[0])
    first = Directory((relay_info(keys[0], ("127.0.0.1", 47301)),))
    first.write(tmp_path / "directory.json")
    config = {"key_file": "node.key", "directory": "directory.json", "listen": "127.0.0.1:47301"}
    (tmp_path / "relay.json").write_text(json.dumps(config))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hornet.cli",
            "relay",
            "--config",
            str(tmp_path / "relay.json"),
            "--reload-interval",
            "86400",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
        bigger = Directory(
            tuple(relay_info(k, ("127.0.0.1", 47301 + i)) for i, k in enumerate(keys))
        )
        _write(bigger, tmp_path / "directory.json")
        proc.send_signal(signal.SIGHUP)
        trio.run(trio.sleep, 1.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "SIGHUP: reloading the directory" in err
    assert "directory replaced: 3 nodes" in err

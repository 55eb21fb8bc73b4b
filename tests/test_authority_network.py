"""A network from the command line with authorities: 3 ``hornet authority serve`` and 4
``hornet relay`` processes whose directory comes from 2 of the 3 authorities; a
destination publishes its entry, and a client opens a circuit over the consensus. No
directory file is written by hand and nothing restarts."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import trio

import hornet
from hornet.circuit.circuit import Circuit
from hornet.client import Entry
from hornet.directory.fetch import DirectoryClient, publish_entry
from hornet.directory.model import NodeKeys, write_key_file


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hornet.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(proc.communicate(timeout=10))
    return line


async def _echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(b"echo:" + message)


def test_relays_get_their_directory_from_2_of_3_authorities(tmp_path: Path) -> None:
    procs: list[subprocess.Popen[str]] = []
    try:
        urls, keys = [], []
        for i in range(3):
            folder = tmp_path / f"authority{i}"
            folder.mkdir()
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "hornet.cli",
                    "authority",
                    "init",
                    "--out",
                    str(folder / "authority.key"),
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            )
            keys.append(out.stdout.strip())
            port = _free_port(socket.SOCK_STREAM)
            (folder / "authority.json").write_text(
                json.dumps(
                    {
                        "key_file": "authority.key",
                        "listen": f"127.0.0.1:{port}",
                        "state_dir": "state",
                        "validity_s": 120,
                        "publish_interval_s": 1,
                    }
                )
            )
            procs.append(_start(["authority", "serve", "--config", str(folder / "authority.json")]))
            assert "listening on http://127.0.0.1" in _first_line(procs[-1])
            urls.append(f"http://127.0.0.1:{port}")
        authorities = {"urls": urls, "keys": keys, "threshold": 2}
        for i in range(4):
            folder = tmp_path / f"relay{i}"
            folder.mkdir()
            (folder / "relay.json").write_text(
                json.dumps(
                    {
                        "key_file": "node.key",
                        "listen": f"127.0.0.1:{_free_port(socket.SOCK_DGRAM)}",
                        "authorities": authorities,
                    }
                )
            )
            procs.append(
                _start(["relay", "--config", str(folder / "relay.json"), "--reload-interval", "1"])
            )
            assert "listening" in _first_line(procs[-1])

        destination = NodeKeys.generate(random.Random(70))
        write_key_file(tmp_path / "destination.key", destination)

        async def main() -> None:
            client = DirectoryClient(urls, {bytes.fromhex(k) for k in keys}, 2)
            async with trio.open_nursery() as nursery:
                sock_port = _free_port(socket.SOCK_DGRAM)
                address = ("127.0.0.1", sock_port)
                directory = await client.fetch()
                assert await publish_entry(urls, destination, address, directory.params) == 3
                # Every relay and the destination are listed once the authorities publish
                # again and the relays refresh (1 s each here).
                with trio.fail_after(20):
                    while len(directory) < 5:
                        await trio.sleep(0.5)
                        directory = await client.fetch()
                await nursery.start(
                    lambda task_status: hornet.serve(
                        destination, directory, address, _echo,
                        state=tmp_path / "destination.state.sqlite", task_status=task_status
                    )
                )
                await trio.sleep(2.5)  # the relays' next refresh lists the destination
                # open_circuit takes the directory client: the consensus it holds
                async with hornet.open_circuit(client, destination.node_id, hops=3) as circuit:
                    await circuit.send(b"hello")
                    with trio.fail_after(10):
                        assert await circuit.receive() == b"echo:hello"
                # A relay added now carries traffic once the authorities list it and the
                # running relays refresh: no restart anywhere.
                folder = tmp_path / "relay-late"
                folder.mkdir()
                (folder / "relay.json").write_text(
                    json.dumps(
                        {
                            "key_file": "node.key",
                            "listen": f"127.0.0.1:{_free_port(socket.SOCK_DGRAM)}",
                            "authorities": authorities,
                        }
                    )
                )
                config = str(folder / "relay.json")
                procs.append(_start(["relay", "--config", config, "--reload-interval", "1"]))
                started = trio.current_time()
                new_id = bytes.fromhex(_first_line(procs[-1]).split()[1])
                with trio.fail_after(20):
                    while (info := (await client.fetch()).get(new_id)) is None:
                        await trio.sleep(0.5)
                await trio.sleep(1.5)  # one refresh interval of the running relays
                async with hornet.open_circuit(
                    client, destination.node_id, hops=3, entry=Entry(info), attempts=1
                ) as circuit:
                    await circuit.send(b"through the new relay")
                    with trio.fail_after(10):
                        assert await circuit.receive() == b"echo:through the new relay"
                assert trio.current_time() - started < 15
                nursery.cancel_scope.cancel()

        trio.run(main)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in procs:
            proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert all(proc.returncode == 0 for proc in procs), [p.returncode for p in procs]

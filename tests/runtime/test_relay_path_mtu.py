"""A relay's ``path_mtu`` config key: no datagram above it leaves the relay process.

Real loopback UDP (MTU 65536, so nothing stops a large datagram but the relay itself):
a client and a destination use a payload class whose data packets need a 1,700-byte
datagram; the relay between them runs as ``hornet relay`` with ``path_mtu`` 1500 (the
default), then 9000.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio

import hornet
from hornet.circuit.circuit import Circuit, SetupTimeoutError
from hornet.core.params import LINK_OVERHEAD, UDP_IPV4_OVERHEAD, Params
from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file
from hornet.node.destination import serve
from hornet.transport.udp import Address, DatagramSocket, UdpNetwork

BIG_PAYLOAD = Params().default_payload_size + 200


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _RecordingSocket:
    """A socket that records the size of every datagram it receives. A wrapper, not a
    ``UdpSocket``: a relay hands no native data loop a socket it cannot see through, so
    every datagram passes ``receive``."""

    def __init__(self, inner: DatagramSocket, sizes: list[int]) -> None:
        self.inner, self.sizes = inner, sizes

    @property
    def address(self) -> Address:
        return self.inner.address

    async def send(self, data: bytes, address: Address) -> None:
        await self.inner.send(data, address)

    async def receive(self) -> tuple[bytes, Address]:
        data, source = await self.inner.receive()
        self.sizes.append(len(data))
        return data, source

    def return_address(self, peer: Address) -> Address:
        return self.inner.return_address(peer)

    def close(self) -> None:
        self.inner.close()


class _Recording:
    """A ``Network`` whose sockets record the size of every datagram they receive."""

    def __init__(self, inner: UdpNetwork) -> None:
        self.inner = inner
        self.sizes: list[int] = []

    async def bind(self, address: Address) -> DatagramSocket:
        return _RecordingSocket(await self.inner.bind(address), self.sizes)


@contextmanager
def _relay(tmp: Path, keys: NodeKeys, port: int, path_mtu: int) -> Iterator[None]:
    write_key_file(tmp / "relay.key", keys)
    config = tmp / "relay.json"
    config.write_text(json.dumps({
        "key_file": "relay.key", "directory": "directory.json",
        "listen": f"127.0.0.1:{port}", "path_mtu": path_mtu,
    }))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hornet.cli", "relay", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _open_through(tmp: Path, path_mtu: int) -> tuple[bool, list[int]]:
    """Open a one-hop circuit of the big class through a relay process with
    ``path_mtu``: whether an echo came back, and the sizes the destination received."""
    rng = random.Random(5)
    relay_keys, dest_keys = NodeKeys.generate(rng), NodeKeys.generate(rng)
    relay_port, dest_port = _free_port(), _free_port()
    Directory((
        relay_info(relay_keys, ("127.0.0.1", relay_port)),
        relay_info(dest_keys, ("127.0.0.1", dest_port)),
    )).write(tmp / "directory.json")
    directory = Directory.load(tmp / "directory.json")
    recording = _Recording(UdpNetwork(path_mtu=9000))

    async def echo(circuit: Circuit) -> None:
        async for message in circuit:
            await circuit.send(message)

    with _relay(tmp, relay_keys, relay_port, path_mtu):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve(
                dest_keys, directory, ("127.0.0.1", dest_port), echo,
                state=tmp / "dest.state.sqlite", network=recording,
                payload_size=BIG_PAYLOAD, task_status=task_status,
            ))
            answered = False
            try:
                with trio.fail_after(30):
                    async with hornet.open_circuit(
                        directory, dest_keys.node_id, hops=1, payload_size=BIG_PAYLOAD,
                        network=UdpNetwork(path_mtu=9000), attempts=1, linger=0,
                    ) as circuit:
                        await circuit.send(b"big")
                        answered = await circuit.receive() == b"big"
            except SetupTimeoutError:
                pass
            nursery.cancel_scope.cancel()
    return answered, recording.sizes


@pytest.mark.parametrize("path_mtu", [1500, 9000])
async def test_a_relay_never_sends_a_datagram_above_its_path_mtu(
    tmp_path: Path, path_mtu: int
) -> None:
    answered, sizes = await _open_through(tmp_path, path_mtu)
    big = LINK_OVERHEAD + Params().data_packet_len(BIG_PAYLOAD)
    assert big + UDP_IPV4_OVERHEAD > 1500  # the class does not fit a 1500-byte path
    assert sizes  # the setup (which fits) reached the destination either way
    if path_mtu == 1500:
        assert max(sizes) <= 1500 - UDP_IPV4_OVERHEAD, sizes
        assert not answered  # its data packets could not cross the relay
    else:
        assert answered and big in sizes  # the same circuit works under a larger MTU

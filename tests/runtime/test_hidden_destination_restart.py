"""Replays into a hidden destination after SIGKILL and restart (SPEC.md §7.5).

The hidden destination is a real process (``hidden_destination_app.py``:
``hornet.serve_rendezvous`` with an application that logs every command it executes),
bound to a fixed port. The relays run here (``local_network``, link encryption off) on a
network that records every datagram they send to that port: the wire into the hidden
destination. After the destination is killed and restarted on the same port, every
recorded datagram is sent to it again from the relay that sent it.

A hidden destination keeps no secret across restarts (its descriptor key and its
rendezvous circuit are new at each start), so nothing recorded before the crash belongs
to any circuit of the new process.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import trio
from restart_kit import QUIET, Process, free_port

import hornet
from hornet.core.rendezvous import Descriptor
from hornet.transport.udp import Address, DatagramSocket, UdpNetwork

APP = Path(__file__).with_name("hidden_destination_app.py")
COMMANDS = (b"PUT balance=100", b"TRANSFER 50 to mallory")


class RecordingNetwork:
    """UDP; records what its sockets send to ``watched`` (socket, datagram)."""

    def __init__(self, watched: Address) -> None:
        self.watched = watched
        self.recorded: list[tuple[DatagramSocket, bytes]] = []

    async def bind(self, address: Address) -> RecordingSocket:
        return RecordingSocket(await UdpNetwork().bind(address), self)


class RecordingSocket:
    def __init__(self, sock: DatagramSocket, network: RecordingNetwork) -> None:
        self.inner = sock
        self._network = network

    @property
    def address(self) -> Address:
        return self.inner.address

    async def send(self, data: bytes, address: Address) -> None:
        if address == self._network.watched:
            self._network.recorded.append((self.inner, bytes(data)))
        await self.inner.send(data, address)

    async def receive(self) -> tuple[bytes, Address]:
        return await self.inner.receive()

    def close(self) -> None:
        self.inner.close()


async def test_a_hidden_destination_runs_no_replayed_command_after_sigkill_and_restart(
    tmp_path: Path,
) -> None:
    d_address = ("127.0.0.1", free_port())
    network = RecordingNetwork(d_address)
    log = tmp_path / "executed.log"
    log.touch()
    async with hornet.local_network(
        3, link=False, network=network, directory_path=tmp_path / "directory.json"
    ) as net:
        rp = net.relays[0].node_id
        process = Process(
            [
                sys.executable,
                str(APP),
                str(tmp_path / "directory.json"),
                str(d_address[1]),
                rp.hex(),
                str(log),
            ],
            ready="descriptor",
        )

        async def received() -> int:
            """Datagrams the destination process has received so far."""
            process.signal(signal.SIGUSR1)
            line = await trio.to_thread.run_sync(process.readline)
            return int(json.loads(line)["received"])

        async def start() -> Descriptor:
            (line,) = await trio.to_thread.run_sync(process.start)
            return Descriptor.decode(net.directory.params, bytes.fromhex(line.split()[1]))

        try:
            descriptor = await start()
            with trio.fail_after(30):
                async with hornet.open_circuit(
                    net.directory, descriptor, hops=1, link=False, reliable=False
                ) as circuit:
                    for command in COMMANDS:
                        await circuit.send(command)
                        assert await circuit.receive() == b"done: " + command
            assert log.read_text().splitlines() == [c.decode() for c in COMMANDS]
            recorded = list(network.recorded)  # the setup reply, HELLO, the commands
            assert len(recorded) >= 1 + 1 + len(COMMANDS)

            await trio.to_thread.run_sync(process.kill)
            await start()
            before = await received()
            for sock, packet in recorded:
                await sock.send(packet, d_address)
                await trio.sleep(0.05)
            await trio.sleep(QUIET)
            arrived = await received() - before
            re_executed = len(log.read_text().splitlines()) - len(COMMANDS)
            print(f"replayed={len(recorded)} arrived={arrived} re_executed={re_executed}")
            assert arrived == len(recorded)  # every replay reached the new process ...
            assert re_executed == 0  # ... and none ran a command again
        finally:
            process.stop()

"""A hidden destination process for the restart tests: ``hornet.serve_rendezvous``
running an application that executes the commands it receives and logs each one.

    python hidden_destination_app.py DIRECTORY PORT RP LOG

Binds 127.0.0.1:PORT, builds its rendezvous circuit to RP (a node id, hex) over one
relay, without link encryption, and prints ``descriptor <hex>``. Every command (one
datagram) is appended to LOG before the answer ``done: <command>``. On SIGUSR1 prints
``{"received": n}``: the datagrams its socket received.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys

import trio

import hornet
from hornet.circuit.circuit import Circuit
from hornet.core.rendezvous import Descriptor
from hornet.directory.model import Directory
from hornet.transport.udp import Address, UdpNetwork, UdpSocket


class CountingNetwork:
    """UDP, counting the datagrams its sockets receive."""

    def __init__(self) -> None:
        self.received = 0

    async def bind(self, address: Address) -> CountingSocket:
        return CountingSocket(await UdpNetwork().bind(address), self)


class CountingSocket:
    def __init__(self, sock: UdpSocket, network: CountingNetwork) -> None:
        self._sock = sock
        self._network = network

    @property
    def address(self) -> Address:
        return self._sock.address

    def return_address(self, peer: Address) -> Address:
        return self._sock.return_address(peer)

    async def send(self, data: bytes, address: Address) -> None:
        await self._sock.send(data, address)

    async def receive(self) -> tuple[bytes, Address]:
        datagram = await self._sock.receive()
        self._network.received += 1
        return datagram

    def close(self) -> None:
        self._sock.close()


async def main(directory_path: str, port: int, rp: str, log_path: str) -> None:
    directory = Directory.load(directory_path)
    network = CountingNetwork()
    with open(log_path, "a", encoding="utf-8") as log:

        async def application(circuit: Circuit) -> None:
            async for command in circuit:
                log.write(command.decode(errors="replace") + "\n")
                log.flush()  # in the OS's cache: survives SIGKILL
                await circuit.send(b"done: " + command)

        with trio.open_signal_receiver(signal.SIGUSR1) as signals:
            async with trio.open_nursery() as nursery:
                descriptor: Descriptor = await nursery.start(
                    lambda task_status: hornet.serve_rendezvous(
                        directory,
                        application,
                        rp=bytes.fromhex(rp),
                        hops=1,
                        bind=("127.0.0.1", port),
                        network=network,
                        link=False,
                        task_status=task_status,
                    )
                )
                print("descriptor", descriptor.encode().hex(), flush=True)
                async for _ in signals:
                    print(json.dumps({"received": network.received}), flush=True)


if __name__ == "__main__":
    directory_path, port, rp, log_path = sys.argv[1:]
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main, directory_path, int(port), rp, log_path)

"""Moving datagrams between peers (trio): no protocol decisions here.

``Network`` binds ``DatagramSocket``s. ``UdpNetwork`` is the real one (trio UDP sockets);
``hornet.testing.memnet.MemoryNetwork`` is an in-memory one with the same interface,
for tests under trio's ``autojump_clock``. Each datagram is one HORNET packet: loss is
allowed, nothing here retries.

``unix_now()`` is the runtime's wall clock for EXP: Unix seconds that advance with
trio's clock, so a test's virtual clock moves circuit lifetimes too.
"""

from __future__ import annotations

import contextlib
import socket as _socket
import time
from typing import Protocol

import trio

Address = tuple[str, int]
MAX_DATAGRAM = 65535

_OFFSET: trio.lowlevel.RunVar[float] = trio.lowlevel.RunVar("hornet_unix_offset")


def unix_now() -> float:
    """Unix time in seconds, following ``trio.current_time()`` within one run."""
    try:
        offset = _OFFSET.get()
    except LookupError:
        offset = time.time() - trio.current_time()
        _OFFSET.set(offset)
    return offset + trio.current_time()


class DatagramSocket(Protocol):
    @property
    def address(self) -> Address: ...

    async def send(self, data: bytes, address: Address) -> None: ...

    async def receive(self) -> tuple[bytes, Address]: ...

    def close(self) -> None: ...


class Network(Protocol):
    async def bind(self, address: Address) -> DatagramSocket: ...


class UdpSocket:
    """A bound UDP socket. ``send`` never raises for an unreachable peer: loss."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self._address: Address = (str(host), int(port))

    @property
    def address(self) -> Address:
        return self._address

    async def send(self, data: bytes, address: Address) -> None:
        # ICMP errors, full buffers: a datagram network may lose packets.
        with contextlib.suppress(OSError):
            await self._sock.sendto(data, address)

    async def receive(self) -> tuple[bytes, Address]:
        while True:
            try:
                data, address = await self._sock.recvfrom(MAX_DATAGRAM)
            except (ConnectionRefusedError, ConnectionResetError):
                continue  # an ICMP error for an earlier send: nothing to deliver
            return data, (str(address[0]), int(address[1]))

    def close(self) -> None:
        self._sock.close()


class UdpNetwork:
    """The real network: UDP over IPv4."""

    def __init__(self, *, receive_buffer: int = 4 << 20) -> None:
        self.receive_buffer = receive_buffer

    async def bind(self, address: Address) -> UdpSocket:
        sock = trio.socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, self.receive_buffer)
            await sock.bind(address)
        except BaseException:
            sock.close()
            raise
        return UdpSocket(sock)

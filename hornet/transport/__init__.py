"""Moving datagrams between peers (trio): no protocol decisions here.

``Network`` binds ``DatagramSocket``s. ``UdpNetwork`` is the real one (trio UDP sockets);
``hornet.testing.memnet.MemoryNetwork`` is an in-memory one with the same interface,
for tests under trio's ``autojump_clock``. Each datagram is one HORNET packet: loss is
allowed, nothing here retries.

``runtime_rng()`` is the runtime's randomness (``rng`` for the core) and ``unix_now()``
its wall clock for EXP: Unix seconds that advance with
trio's clock, so a test's virtual clock moves circuit lifetimes too.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket as _socket
import time
from collections.abc import Callable
from typing import Protocol

import trio

from hornet.core.crypto import chacha20_stream

Address = tuple[str, int]
MAX_DATAGRAM = 65535
YIELD_EVERY = 16  # see UdpSocket.receive

_OFFSET: trio.lowlevel.RunVar[float] = trio.lowlevel.RunVar("hornet_unix_offset")


def unix_now() -> float:
    """Unix time in seconds, following ``trio.current_time()`` within one run."""
    try:
        offset = _OFFSET.get()
    except LookupError:
        offset = time.time() - trio.current_time()
        _OFFSET.set(offset)
    return offset + trio.current_time()


class KeystreamRandom(random.SystemRandom):
    """``random.SystemRandom`` whose ``randbytes`` slices a ChaCha20 keystream.

    Every data packet needs fresh IV and padding bytes, and one ``os.urandom`` call
    costs more than a relay's whole symmetric work on a packet. This draws a 32-byte key
    from ``entropy`` (the runtime passes ``os.urandom``) for every ``chunk`` bytes of
    keystream, a standard stream-cipher DRBG; every other method is SystemRandom's.
    Not thread-safe (one per trio run).
    """

    def __init__(self, entropy: Callable[[int], bytes], chunk: int = 1 << 16) -> None:
        super().__init__()
        self._entropy = entropy
        self._chunk = chunk
        self._buffer = b""
        self._offset = 0

    def randbytes(self, n: int) -> bytes:
        end = self._offset + n
        if end > len(self._buffer):
            self._buffer = chacha20_stream(self._entropy(32), max(self._chunk, n))
            self._offset, end = 0, n
        out = self._buffer[self._offset : end]
        self._offset = end
        return out

    def __repr__(self) -> str:
        return "KeystreamRandom(<state hidden>)"


def runtime_rng() -> KeystreamRandom:
    """The runtime's randomness for the sans-IO core: OS entropy through a ChaCha20
    keystream (``KeystreamRandom``), so per-packet IVs cost no system call."""
    return KeystreamRandom(os.urandom)


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

    def __init__(self, sock: trio.socket.SocketType, raw: _socket.socket | None = None) -> None:
        self._sock = sock
        self._raw = raw
        self._calls = 0
        host, port = sock.getsockname()[:2]
        self._address: Address = (str(host), int(port))

    @property
    def address(self) -> Address:
        return self._address

    @property
    def raw_socket(self) -> _socket.socket | None:
        """The stdlib socket underneath, for socket options (e.g. a kernel filter)."""
        return self._raw

    async def send(self, data: bytes, address: Address) -> None:
        """Send one datagram to a numeric ``(IPv4, port)`` address.

        A cancellation point; it yields to other tasks only when the socket's buffer is
        full. (trio's ``sendto`` re-resolves the address and yields on every call, which
        costs more than the relay's whole data-packet processing.) ICMP errors and full
        buffers are loss, as on any datagram network.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._raw is not None:
            try:
                self._raw.sendto(data, address)
                return
            except BlockingIOError:
                pass  # the buffer is full: wait for room below
            except OSError:
                return
        with contextlib.suppress(OSError):
            await self._sock.sendto(data, address)

    def send_nowait(self, data: bytes, address: Address) -> bool:
        """``send`` without its checkpoint, for a wrapper that already is one (the link
        layer): False when the datagram could not leave at once (then ``await send``)."""
        raw = self._raw
        if raw is None:
            return False
        try:
            raw.sendto(data, address)
        except BlockingIOError:
            return False  # the buffer is full
        except OSError:
            pass  # an ICMP error for an earlier send: loss
        return True

    async def receive(self) -> tuple[bytes, Address]:
        """The next datagram. A cancellation point; while datagrams are waiting it yields
        to other tasks only on every ``YIELD_EVERY``-th call, so that a busy relay
        hands its worker batches instead of switching tasks per packet."""
        raw = self._raw
        if raw is not None:
            self._calls += 1
            if self._calls % YIELD_EVERY:
                await trio.lowlevel.checkpoint_if_cancelled()
            else:
                await trio.lowlevel.checkpoint()
            while True:
                try:
                    data, address = raw.recvfrom(MAX_DATAGRAM)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(raw)
                    continue
                except (ConnectionRefusedError, ConnectionResetError):
                    continue  # an ICMP error for an earlier send: nothing to deliver
                return data, (address[0], address[1])
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
        raw = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        sock = trio.socket.from_stdlib_socket(raw)  # shares raw's descriptor, non-blocking
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, self.receive_buffer)
            await sock.bind(address)
        except BaseException:
            sock.close()
            raise
        return UdpSocket(sock, raw)

"""Moving datagrams between peers (trio): no protocol decisions here.

``Network`` binds ``DatagramSocket``s. ``UdpNetwork`` is the real one (trio UDP sockets);
``hornet.testing.memnet.MemoryNetwork`` is an in-memory one with the same interface,
for tests under trio's ``autojump_clock``. Each datagram is one HORNET packet: loss is
allowed, nothing here retries.

Addresses are numeric ``(host, port)`` pairs, IPv4 or IPv6; a socket's family follows
the address it is bound to. A socket bound to the wildcard (``0.0.0.0`` or ``::``)
reaches every host its family can route to; ``return_address(peer)`` is then the
address that ``peer`` sees as the datagram's source (the kernel's route lookup), which
is what an endpoint id must encode. A send the local kernel refuses (no route, a socket
bound to loopback sending to another host) raises ``SendRefusedError`` naming the
address; everything that can happen after a datagram left (ICMP errors, a full buffer)
is loss.

Sockets never send a datagram that IP would fragment: ``UdpNetwork(path_mtu=…)`` (1500
by default) caps every datagram at the path MTU less the IP and UDP headers, and the
kernel is told not to fragment (``IP_PMTUDISC_DO``), so a smaller MTU it learns on the
way is enforced too. An oversize send raises ``SendRefusedError``; a relay counts it.

``runtime_rng()`` is the runtime's randomness (``rng`` for the core) and ``unix_now()``
its wall clock for EXP: Unix seconds that advance with
trio's clock, so a test's virtual clock moves circuit lifetimes too.
"""

from __future__ import annotations

import errno
import os
import random
import socket as _socket
import sys
import time
from collections.abc import Callable
from typing import Protocol

import trio

from hornet.core.crypto import chacha20_stream
from hornet.core.params import ETHERNET_MTU, UDP_IPV4_OVERHEAD, UDP_IPV6_OVERHEAD
from hornet.errors import SendRefusedError

Address = tuple[str, int]
MAX_DATAGRAM = 65535
YIELD_EVERY = 16  # see UdpSocket.receive
#: Linux <linux/in.h>, <linux/in6.h> (Python's socket module does not name them).
_IP_MTU_DISCOVER, _IPV6_MTU_DISCOVER, _PMTUDISC_DO = 10, 23, 2
WILDCARDS = frozenset({"0.0.0.0", "::"})  # noqa: S104  (bind-to-all addresses)
#: ``sendto`` errors that mean the local kernel would not send at all. The others
#: (ECONNREFUSED from an earlier ICMP error, ENOBUFS, …) are loss.
_REFUSED = frozenset(
    {
        errno.EINVAL,
        errno.EADDRNOTAVAIL,
        errno.EAFNOSUPPORT,
        errno.ENETUNREACH,
        errno.EACCES,
        errno.EPERM,
        errno.EMSGSIZE,
    }
)


def family_of(host: str) -> _socket.AddressFamily:
    return _socket.AF_INET6 if ":" in host else _socket.AF_INET


def route_source(peer: Address) -> str:
    """The local address the kernel sends from to reach ``peer``. Nothing is sent: a
    UDP ``connect`` only looks the route up. Raises ``SendRefusedError`` if there is no
    route."""
    try:
        with _socket.socket(family_of(peer[0]), _socket.SOCK_DGRAM) as probe:
            probe.connect(peer)
            return str(probe.getsockname()[0])
    except OSError as exc:
        raise SendRefusedError(
            f"no route to {_show(peer)}: {exc.strerror or exc}"
        ) from None


def _show(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _refused(exc: OSError, source: Address, address: Address) -> SendRefusedError:
    hint = " (bound to loopback: bind to the wildcard)" if source[0].startswith("127.") else ""
    return SendRefusedError(
        f"the kernel refused to send to {_show(address)} from "
        f"{_show(source)}: {exc.strerror or exc}{hint}"
    )

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

    def return_address(self, peer: Address) -> Address:
        """The address ``peer`` sees as the source of our datagrams."""
        ...

    def close(self) -> None: ...


class Network(Protocol):
    async def bind(self, address: Address) -> DatagramSocket: ...


class UdpSocket:
    """A bound UDP socket. ``send`` raises ``SendRefusedError`` when the local kernel
    will not send to the address; a peer that does not answer is loss."""

    def __init__(
        self,
        sock: trio.socket.SocketType,
        raw: _socket.socket | None = None,
        *,
        path_mtu: int = ETHERNET_MTU,
    ) -> None:
        self._sock = sock
        self._raw = raw
        self._calls = 0
        host, port = sock.getsockname()[:2]
        self._address: Address = (str(host), int(port))
        ip_udp = UDP_IPV6_OVERHEAD if sock.family == _socket.AF_INET6 else UDP_IPV4_OVERHEAD
        #: The largest datagram this socket sends: the path MTU less IP and UDP headers.
        self.max_datagram = path_mtu - ip_udp

    @property
    def address(self) -> Address:
        return self._address

    def return_address(self, peer: Address) -> Address:
        """Our address as ``peer`` sees it: the bound one, or for a wildcard bind the
        source address of the kernel's route to ``peer``."""
        host, port = self._address
        if host in WILDCARDS:
            return route_source(peer), port
        return self._address

    @property
    def raw_socket(self) -> _socket.socket | None:
        """The stdlib socket underneath, for socket options (e.g. a kernel filter)."""
        return self._raw

    async def send(self, data: bytes, address: Address) -> None:
        """Send one datagram to a numeric ``(host, port)`` address.

        A cancellation point; it yields to other tasks only when the socket's buffer is
        full. (trio's ``sendto`` re-resolves the address and yields on every call, which
        costs more than the relay's whole data-packet processing.) ICMP errors and full
        buffers are loss, as on any datagram network; a send the kernel refuses raises
        ``SendRefusedError``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if len(data) > self.max_datagram:
            raise self._oversize(len(data), address)
        if self._raw is not None:
            try:
                self._raw.sendto(data, address)
                return
            except BlockingIOError:
                pass  # the buffer is full: wait for room below
            except OSError as exc:
                if exc.errno in _REFUSED:
                    raise _refused(exc, self._address, address) from None
                return
        try:
            await self._sock.sendto(data, address)
        except OSError as exc:
            if exc.errno in _REFUSED:
                raise _refused(exc, self._address, address) from None

    def send_nowait(self, data: bytes, address: Address) -> None:
        """``send`` without its checkpoint, for a wrapper that already is one (the link
        layer).

        Raises:
            trio.WouldBlock: the datagram cannot leave at once (the socket's buffer is
                full); ``await send`` it instead.
            SendRefusedError: as ``send``.
        """
        raw = self._raw
        if raw is None:
            raise trio.WouldBlock
        if len(data) > self.max_datagram:
            raise self._oversize(len(data), address)
        try:
            raw.sendto(data, address)
        except BlockingIOError:
            raise trio.WouldBlock from None  # the buffer is full
        except OSError as exc:
            if exc.errno in _REFUSED:
                raise _refused(exc, self._address, address) from None
            # otherwise an ICMP error for an earlier send: loss

    def _oversize(self, size: int, address: Address) -> SendRefusedError:
        return SendRefusedError(
            f"a datagram of {size} bytes to {_show(address)} exceeds the path MTU "
            f"({self.max_datagram} bytes of UDP payload): IP would fragment it"
        )

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
    """The real network: UDP over IPv4 or IPv6 (the family of the bound address).

    ``path_mtu``: no datagram larger than this (IP and UDP headers included) leaves,
    and the kernel never fragments one."""

    def __init__(self, *, receive_buffer: int = 4 << 20, path_mtu: int = ETHERNET_MTU) -> None:
        self.receive_buffer = receive_buffer
        self.path_mtu = path_mtu

    async def bind(self, address: Address) -> UdpSocket:
        raw = _socket.socket(family_of(address[0]), _socket.SOCK_DGRAM)
        sock = trio.socket.from_stdlib_socket(raw)  # shares raw's descriptor, non-blocking
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, self.receive_buffer)
            _forbid_fragments(raw)
            await sock.bind(address)
        except BaseException:
            sock.close()
            raise
        return UdpSocket(sock, raw, path_mtu=self.path_mtu)


def _forbid_fragments(raw: _socket.socket) -> None:
    """Set DF and never fragment locally (Linux ``IP_PMTUDISC_DO``; elsewhere the
    ``max_datagram`` cap alone holds)."""
    if sys.platform != "linux":
        return
    if raw.family == _socket.AF_INET6:
        raw.setsockopt(_socket.IPPROTO_IPV6, _IPV6_MTU_DISCOVER, _PMTUDISC_DO)
    else:
        raw.setsockopt(_socket.IPPROTO_IP, _IP_MTU_DISCOVER, _PMTUDISC_DO)

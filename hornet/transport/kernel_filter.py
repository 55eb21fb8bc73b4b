"""A relay's first line of defence, in the kernel: a socket filter for link datagrams.

``install_kernel_filter`` gives a relay's link socket a classic BPF socket filter that
keeps only datagrams shaped like link datagrams (type byte and length,
docs/spec-link.md §2). A Python relay reads far fewer datagrams per second than a
flooder can send; a flood of random bytes would otherwise fill the socket buffer and
push out the circuits' packets (``benchmarks/bench_flood.py --no-kernel-filter`` shows
the difference; figures in benchmarks/RESULTS.md). Datagrams with a valid shape still
reach the link layer, which authenticates them.

Linux only (classic BPF through ``SO_ATTACH_FILTER``); elsewhere, and for sockets that
are not a ``LinkSocket`` on a real UDP socket, nothing is attached and the relay's
admission (``hornet.node.admission``) sees every datagram.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import sys
from typing import Final

from hornet.core.params import Params
from hornet.link.channel import (
    ACT_ONE_DATAGRAM_LEN,
    ACT_THREE_DATAGRAM_LEN,
    ACT_TWO_DATAGRAM_LEN,
    DATA_OVERHEAD,
    TYPE_ACT_ONE,
    TYPE_ACT_THREE,
    TYPE_ACT_TWO,
    TYPE_DATA_FROM_INITIATOR,
    TYPE_DATA_FROM_RESPONDER,
)
from hornet.transport.link import LinkSocket
from hornet.transport.udp import UdpSocket

_UDP_HEADER: Final = 8  # a UDP socket's filter program sees the UDP header, then the payload
_MAX_UDP_PAYLOAD: Final = 65_507
_SO_ATTACH_FILTER: Final = 26  # Linux, <asm-generic/socket.h>
#: Classic BPF opcodes (<linux/filter.h>): BPF_LD|BPF_B|BPF_ABS, BPF_LD|BPF_W|BPF_LEN,
#: BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JGE|BPF_K, BPF_JMP|BPF_JGT|BPF_K, BPF_RET|BPF_K.
_OPS: Final = {"ldb": 0x30, "ldlen": 0x80, "jeq": 0x15, "jge": 0x35, "jgt": 0x25, "ret": 0x06}


def link_filter_program(
    min_packet: int, max_packet: int = _MAX_UDP_PAYLOAD - DATA_OVERHEAD
) -> bytes:
    """A classic BPF program keeping only datagrams shaped like link datagrams: acts
    (0x11, 0x12: 51 bytes; 0x13: 67 bytes), and DATA (0x21, 0x22) of 25 bytes (a
    keepalive) or 25 + [``min_packet``, ``max_packet``] bytes (a HORNET packet)."""
    h = _UDP_HEADER
    # (label, op, k, jump if true, jump if false); None: the next instruction
    code: list[tuple[str | None, str, int, str | None, str | None]] = [
        (None, "ldb", h, None, None),
        (None, "jeq", TYPE_ACT_ONE, "act12", None),
        (None, "jeq", TYPE_ACT_TWO, "act12", None),
        (None, "jeq", TYPE_ACT_THREE, "act3", None),
        (None, "jeq", TYPE_DATA_FROM_INITIATOR, "data", None),
        (None, "jeq", TYPE_DATA_FROM_RESPONDER, "data", None),
        (None, "ret", 0, None, None),
        ("act12", "ldlen", 0, None, None),
        (None, "jeq", h + ACT_ONE_DATAGRAM_LEN, "accept", "drop"),
        ("act3", "ldlen", 0, None, None),
        (None, "jeq", h + ACT_THREE_DATAGRAM_LEN, "accept", "drop"),
        ("data", "ldlen", 0, None, None),
        (None, "jeq", h + DATA_OVERHEAD, "accept", None),
        (None, "jge", h + DATA_OVERHEAD + min_packet, None, "drop"),
        (None, "jgt", h + DATA_OVERHEAD + max_packet, "drop", "accept"),
        ("accept", "ret", 0xFFFF_FFFF, None, None),
        ("drop", "ret", 0, None, None),
    ]
    assert ACT_ONE_DATAGRAM_LEN == ACT_TWO_DATAGRAM_LEN
    where = {label: i for i, (label, *_) in enumerate(code) if label}

    def jump(i: int, label: str | None) -> int:
        return 0 if label is None else where[label] - i - 1

    return b"".join(
        struct.pack("HBBI", _OPS[op], jump(i, jt), jump(i, jf), k)
        for i, (_, op, k, jt, jf) in enumerate(code)
    )


def attach_socket_filter(sock: socket.socket, program: bytes) -> bool:
    """Attach a classic BPF ``program`` to ``sock`` (Linux; False elsewhere or on error)."""
    if not sys.platform.startswith("linux"):
        return False
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)  # the kernel copies it
    except OSError:
        return False
    return True


def install_kernel_filter(sock: object, params: Params) -> bool:
    """Give a relay's link socket (a ``LinkSocket`` on a ``UdpSocket``) the link filter.

    Other sockets (no link layer, in-memory networks, wrappers) are left alone: False.
    """
    if not isinstance(sock, LinkSocket):
        return False
    inner = sock.inner
    raw = inner.raw_socket if isinstance(inner, UdpSocket) else None
    if raw is None:
        return False
    smallest = min(params.setup_packet_len, params.data_packet_len(0))
    return attach_socket_filter(raw, link_filter_program(smallest))


__all__ = ["attach_socket_filter", "install_kernel_filter", "link_filter_program"]

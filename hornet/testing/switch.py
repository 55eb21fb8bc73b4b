"""A user-space Ethernet switch with loss and delay, for kernels without ``netem``.

    ip netns exec SWITCH python -m hornet.testing.switch --ports p0,p1,p2 \
        [--loss 0.02] [--delay 20-50] [--seed N]

It runs in a testnet's switch namespace in place of the kernel bridge
(``hornet.testing.netns``): one ``AF_PACKET`` socket per veth port receives every frame a
host sends, and each frame is dropped with probability ``loss`` or sent out, after a
delay drawn uniformly from ``[low, high]`` milliseconds, on the port that learnt the
destination MAC address (all other ports for broadcast, multicast and unknown
addresses). Every host-to-host datagram therefore crosses one impaired link, as with
``netem`` on each host's interface. Frames are independent, so a later frame with a
shorter delay overtakes an earlier one, as with netem's jitter.

Veth ports hand frames over with their UDP checksum not yet computed (checksum offload);
the switch clears the UDP checksum of IPv4 datagrams (0 means "none" in IPv4), so the
receiving host accepts them. Single-threaded: a selector for the sockets and a heap of
frames waiting for their time. Prints ``ready`` once every socket is bound.
"""

from __future__ import annotations

import argparse
import heapq
import random
import selectors
import socket
import sys
import time
from collections.abc import Sequence
from typing import Final

ETH_P_ALL: Final = 0x0003
PACKET_OUTGOING: Final = 4  # the frame was sent by this host (our own sends)
ETHERTYPE_IPV4: Final = 0x0800
IPPROTO_UDP: Final = 17
MAX_FRAME: Final = 65536
#: Frames waiting for their delay; beyond this the switch drops (a bounded queue).
MAX_WAITING: Final = 100_000


def clear_udp_checksum(frame: bytearray) -> None:
    """Zero the UDP checksum of an IPv4 datagram's first fragment (no-op otherwise)."""
    if len(frame) < 34 or int.from_bytes(frame[12:14], "big") != ETHERTYPE_IPV4:
        return
    if frame[23] != IPPROTO_UDP or int.from_bytes(frame[20:22], "big") & 0x1FFF:
        return  # not UDP, or a fragment after the first (no UDP header in it)
    offset = 14 + (frame[14] & 0x0F) * 4 + 6
    if len(frame) >= offset + 2:
        frame[offset : offset + 2] = b"\x00\x00"


class Switch:
    """The learning switch (see the module doc)."""

    def __init__(
        self, ports: Sequence[str], *, loss: float, delay_ms: tuple[float, float],
        rng: random.Random,
    ) -> None:
        self.loss = loss
        self.low, self.high = delay_ms[0] / 1000, delay_ms[1] / 1000
        self.rng = rng
        self.sockets: list[socket.socket] = []
        for name in ports:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((name, 0))
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.sockets.append(sock)
        self.where: dict[bytes, int] = {}  # MAC address -> port index
        self.waiting: list[tuple[float, int, int, bytes]] = []
        self._count = 0
        self.dropped = 0

    def _take(self, port: int, frame: bytes) -> None:
        if len(frame) < 14:
            return
        self.where[frame[6:12]] = port
        if self.rng.random() < self.loss or len(self.waiting) >= MAX_WAITING:
            self.dropped += 1
            return
        buffer = bytearray(frame)
        clear_udp_checksum(buffer)
        due = time.monotonic() + self.rng.uniform(self.low, self.high)
        target = self.where.get(frame[0:6]) if not frame[0] & 1 else None
        outs = [target] if target is not None else [
            i for i in range(len(self.sockets)) if i != port
        ]
        for out in outs:
            if out != port:
                self._count += 1
                heapq.heappush(self.waiting, (due, self._count, out, bytes(buffer)))

    def _flush(self) -> None:
        now = time.monotonic()
        while self.waiting and self.waiting[0][0] <= now:
            _, _, out, frame = heapq.heappop(self.waiting)
            try:
                self.sockets[out].send(frame)
            except OSError:
                self.dropped += 1  # a host's end went away; frames are best effort

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        for index, sock in enumerate(self.sockets):
            selector.register(sock, selectors.EVENT_READ, index)
        while True:
            timeout = max(0.0, self.waiting[0][0] - time.monotonic()) if self.waiting else None
            for key, _ in selector.select(timeout):
                sock = self.sockets[key.data]
                for _ in range(64):  # a burst per socket, then the others get a turn
                    try:
                        frame, address = sock.recvfrom(MAX_FRAME)
                    except BlockingIOError:
                        break
                    if address[2] != PACKET_OUTGOING:
                        self._take(key.data, frame)
            self._flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hornet.testing.switch")
    parser.add_argument("--ports", required=True, help="veth ports, comma-separated")
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--delay", default="0-0", help="low-high milliseconds")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    low, high = (float(x) for x in args.delay.split("-"))
    switch = Switch(args.ports.split(","), loss=args.loss, delay_ms=(low, high),
                    rng=random.Random(args.seed))  # noqa: S311  (impairment, not secrets)
    print("ready", flush=True)
    try:
        switch.run()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

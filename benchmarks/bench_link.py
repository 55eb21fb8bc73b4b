"""Benchmark of link encryption: per-datagram cost and handshake time.

Figures (medians of ``--rounds`` rounds; each round times ``--n`` operations):

- ``session_seal_us`` / ``session_open_us``: ``ChannelSession.seal`` /
  ``ChannelSession.open`` on one HORNET data packet of the default class (hardened
  profile: 1447 bytes), i.e. the AEAD call plus header, nonce and replay window.
- ``endpoint_seal_us`` / ``endpoint_open_us``: the same through ``LinkEndpoint.seal`` /
  ``open`` (peer lookup, session choice): what the trio socket calls per datagram.
- ``raw_encrypt_us`` / ``raw_decrypt_us``: the bare ``AESGCM`` object (256-bit key) from
  ``cryptography`` on the same bytes, for comparison; ``raw_chacha_encrypt_us`` /
  ``raw_chacha_decrypt_us``: ``ChaCha20Poly1305`` likewise (the other AEAD BOLT 8
  links use; docs/spec-link.md §2 says why hornet's link datagrams use AES-GCM).
- ``handshake_ms``: both sides of a full BOLT 8 handshake in one process (acts one to
  three, six ECDH and two key generations), through ``LinkEndpoint``.
- ``udp_plain_pps`` / ``udp_link_pps``: packets per second that one trio task sends to
  another over 127.0.0.1 UDP, bare ``UdpNetwork`` sockets versus ``LinkNetwork`` sockets
  (same packets, receiver counts what arrives, a 64-packet window so nothing is lost).
  The bare loop does no work per packet besides the two syscalls, so this cost is an
  upper bound for a relay, whose per-packet work (HORNET processing, queues) is larger
  while the link adds the same one open and one seal. Inside this loop the AEAD calls
  run slower than in the tight ``session_*`` loops (cold caches between syscalls).

Prints a table, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import trio
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from hornet.core.crypto import SecretKey
from hornet.core.params import Params
from hornet.link.channel import DATA_OVERHEAD, ChannelSession
from hornet.link.endpoint import LinkEndpoint
from hornet.link.noise import TransportKeys
from hornet.transport.link import LinkNetwork
from hornet.transport.udp import UdpNetwork

PAYLOAD = Params().default_payload_size
WINDOW = 64
A = ("10.0.0.1", 1)
B = ("10.0.0.2", 2)


def _median_us(fn: Callable[[], Any], n: int, rounds: int) -> float:
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        results.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(results)


def bench_sessions(packet: bytes, n: int, rounds: int) -> dict[str, float]:
    k1, k2 = bytes([1]) * 32, bytes([2]) * 32
    sender = ChannelSession(TransportKeys(k1, k2, b"", b"", b""), initiator=True, created=0.0)
    receiver = ChannelSession(TransportKeys(k2, k1, b"", b"", b""), initiator=False, created=0.0)
    sealed = [sender.seal(packet) for _ in range(n * rounds)]
    it = iter(sealed)
    out = {
        "session_seal_us": _median_us(lambda: sender.seal(packet), n, rounds),
        "session_open_us": _median_us(lambda: receiver.open(next(it)), n, rounds),
    }
    nonce, ad = bytes(12), bytes(9)
    for prefix, aead in (("raw_", AESGCM(k1)), ("raw_chacha_", ChaCha20Poly1305(k1))):
        ciphertext = aead.encrypt(nonce, packet, ad)
        seal = functools.partial(aead.encrypt, nonce, packet, ad)
        open_ = functools.partial(aead.decrypt, nonce, ciphertext, ad)
        out[prefix + "encrypt_us"] = _median_us(seal, n, rounds)
        out[prefix + "decrypt_us"] = _median_us(open_, n, rounds)
    return out


def _endpoints(seed: int) -> tuple[LinkEndpoint, LinkEndpoint]:
    rng = random.Random(seed)
    ka, kb = SecretKey.from_rng(rng), SecretKey.from_rng(rng)
    keys = {A: ka.public_key, B: kb.public_key}
    return (LinkEndpoint(ka, keys.get, rng), LinkEndpoint(kb, keys.get, rng))


def _handshake(a: LinkEndpoint, b: LinkEndpoint) -> None:
    a.connect(B, 0.0)
    ends = {A: a, B: b}
    pending = [(d, A, dst) for d, dst in a.datagrams_to_send()]
    while pending:
        datagram, source, destination = pending.pop(0)
        ends[destination].open(datagram, source, 0.0)
        pending += [(d, destination, dst) for d, dst in ends[destination].datagrams_to_send()]


def bench_endpoints(packet: bytes, n: int, rounds: int) -> dict[str, float]:
    times = []
    for i in range(max(rounds, 5)):
        a, b = _endpoints(i)
        start = time.perf_counter()
        _handshake(a, b)
        times.append((time.perf_counter() - start) * 1e3)
    a, b = _endpoints(99)
    _handshake(a, b)
    sealed = [a.seal(packet, B, 1.0) for _ in range(n * rounds)]
    it = iter(sealed)
    return {
        "handshake_ms": statistics.median(times),
        "endpoint_seal_us": _median_us(lambda: a.seal(packet, B, 1.0), n, rounds),
        "endpoint_open_us": _median_us(lambda: b.open(next(it), A, 1.0), n, rounds),  # type: ignore[arg-type]
    }


async def _udp_pps(packet: bytes, n: int, link: bool) -> float:
    async with trio.open_nursery() as nursery:
        if link:
            rng = random.Random(5)
            ka, kb = SecretKey.from_rng(rng), SecretKey.from_rng(rng)
            keys: dict[tuple[str, int], bytes] = {}
            net_a: Any = LinkNetwork(UdpNetwork(), ka, keys.get, nursery)
            net_b: Any = LinkNetwork(UdpNetwork(), kb, keys.get, nursery)
        else:
            net_a = net_b = UdpNetwork()
        a = await net_a.bind(("127.0.0.1", 0))
        b = await net_b.bind(("127.0.0.1", 0))
        if link:
            keys[a.address] = ka.public_key
            keys[b.address] = kb.public_key
        received = 0
        last = 0.0
        done = trio.Event()

        async def sink() -> None:
            nonlocal received, last
            while True:
                await b.receive()
                received += 1
                last = trio.current_time()
                if received >= n:
                    done.set()

        async def drain_a() -> None:  # A must receive for its handshake to progress
            while True:
                await a.receive()

        nursery.start_soon(sink)
        nursery.start_soon(drain_a)
        if link:
            await a.connect(b.address)
        start = trio.current_time()
        for i in range(n):
            await a.send(packet, b.address)
            while i - received >= WINDOW:  # a sliding window keeps the socket buffer from
                await trio.sleep(0)  # overflowing: the figure is CPU, not loss
        with trio.move_on_after(1.0):
            await done.wait()
        nursery.cancel_scope.cancel()
    a.close()
    b.close()
    if received < n * 0.95:
        raise RuntimeError(f"UDP bench lost {n - received} of {n} packets")
    return received / (last - start)


def bench_udp(packet: bytes, n: int, rounds: int) -> dict[str, float]:
    plain = [trio.run(_udp_pps, packet, n, False) for _ in range(rounds)]
    link = [trio.run(_udp_pps, packet, n, True) for _ in range(rounds)]
    p, lk = max(plain), max(link)
    return {"udp_plain_pps": p, "udp_link_pps": lk, "udp_link_cost_pct": (1 - lk / p) * 100}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--udp-packets", type=int, default=20000)
    args = parser.parse_args()
    packet_len = Params().data_packet_len(PAYLOAD)
    packet = bytes(random.Random(1).randbytes(packet_len))
    result: dict[str, Any] = {"packet_bytes": packet_len, "overhead_bytes": DATA_OVERHEAD}
    result.update(bench_sessions(packet, args.n, args.rounds))
    result.update(bench_endpoints(packet, args.n, args.rounds))
    result.update(bench_udp(packet, args.udp_packets, 3))
    if args.json:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                          for k, v in result.items()}))
        return
    for key, value in result.items():
        print(f"{key:>22}  {value:.3f}" if isinstance(value, float) else f"{key:>22}  {value}")


if __name__ == "__main__":
    main()

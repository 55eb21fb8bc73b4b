"""End-to-end benchmark: relays as separate OS processes on loopback (``hornet bench e2e``).

Topology: this process (the source) → 3 relays → a sink, every node its own process.
1. HORNET: ``hornet relay`` processes and a sink running ``serve``; the source opens a
   datagram-mode circuit (raw HORNET, no acknowledgements) and sends ``--packets``
   1024-byte-class packets as fast as it can; the sink counts the user bytes it got.
2. Plain: the same processes and loops (``RelayNode``) with a no-crypto core that
   forwards each datagram unchanged to a fixed next hop, carrying packets of the same
   size and counting the same user bytes per packet.
goodput = user bytes delivered / (last arrival − first arrival) at the sink.
Also: setup round-trip times, and relay RSS before and after ``--circuits`` setups.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from hornet.circuit import Circuit
from hornet.client import open_circuit
from hornet.client.endpoint import Endpoint
from hornet.client.endpoint import Path as CircuitPath
from hornet.core.relay import Forward
from hornet.directory import Directory, NodeKeys, load_key_file, relay_info, write_key_file
from hornet.node.relay import RelayNode
from hornet.node.service import serve
from hornet.transport import UdpNetwork

PAYLOAD = 1024
IDLE = 1.0


def _free_ports(count: int) -> list[int]:
    import socket

    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
    ports = [int(s.getsockname()[1]) for s in socks]
    for sock in socks:
        sock.close()
    return ports


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- child processes ----------------------------------------------------------------------


class _PlainCore:
    """The no-crypto relay: forward every datagram unchanged to one next hop."""

    def __init__(self, next_hop: bytes) -> None:
        self.next_hop = next_hop
        self.cached_circuits = 0

    def process(self, packet: bytes, now: float) -> Forward:
        return Forward(self.next_hop, packet)


async def _plain_relay(keys_path: str, directory_path: str, port: int, next_id: str) -> None:
    directory = Directory.load(directory_path)
    sock = await UdpNetwork().bind(("127.0.0.1", port))
    node = RelayNode(load_key_file(keys_path), directory, sock)
    node.core = _PlainCore(bytes.fromhex(next_id))  # type: ignore[assignment]
    print("ready", flush=True)
    await node.run()


async def _sink(keys_path: str, directory_path: str, port: int, plain: bool) -> None:
    """Count user bytes; print a JSON line after ``IDLE`` s without traffic."""
    first = last = 0.0
    total = 0
    user_bytes = PAYLOAD - 27 - 30
    done = trio.Event()

    def mark(count: int) -> None:
        nonlocal first, last, total
        now = time.perf_counter()
        first = first or now
        last = now
        total += count

    async def handler(circuit: Circuit) -> None:
        async for message in circuit:
            mark(len(message))

    async def watchdog() -> None:
        while True:
            await trio.sleep(IDLE / 4)
            if total and time.perf_counter() - last > IDLE:
                done.set()
                return

    directory = Directory.load(directory_path)
    async with trio.open_nursery() as nursery:
        if plain:
            sock = await UdpNetwork().bind(("127.0.0.1", port))

            async def count() -> None:
                while True:
                    await sock.receive()
                    mark(user_bytes)

            nursery.start_soon(count)
        else:
            keys = load_key_file(keys_path)
            await nursery.start(
                lambda task_status: serve(
                    keys, directory, ("127.0.0.1", port), handler, task_status=task_status
                )
            )
        print("ready", flush=True)
        nursery.start_soon(watchdog)
        await done.wait()
        print(json.dumps({"bytes": total, "seconds": last - first}), flush=True)
        await trio.sleep_forever()  # stay up as the setups' destination until killed


# -- the driver -------------------------------------------------------------------------


class _Net:
    def __init__(self, tmp: Path, plain: bool) -> None:
        rng = random.Random(7)
        self.keys = [NodeKeys.generate(rng) for _ in range(4)]
        ports = _free_ports(4)
        self.infos = [
            relay_info(k, ("127.0.0.1", p)) for k, p in zip(self.keys, ports, strict=True)
        ]
        self.directory = Directory(tuple(self.infos))
        self.path = tmp / ("plain.json" if plain else "directory.json")
        self.directory.write(self.path)
        self.procs: list[subprocess.Popen[str]] = []
        for i, k in enumerate(self.keys):
            write_key_file(tmp / f"n{i}.key", k)
        py = sys.executable
        for i in range(3):
            if plain:
                args = [
                    py,
                    "-m",
                    "hornet.bench_e2e",
                    "_plain_relay",
                    str(tmp / f"n{i}.key"),
                    str(self.path),
                    str(ports[i]),
                    self.infos[i + 1].node_id.hex(),
                ]
            else:
                config = tmp / f"relay{i}.json"
                config.write_text(
                    json.dumps(
                        {
                            "key_file": f"n{i}.key",
                            "directory": self.path.name,
                            "listen": f"127.0.0.1:{ports[i]}",
                        }
                    )
                )
                args = [py, "-m", "hornet.cli", "relay", "--config", str(config)]
            self.procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, text=True))
        self.sink = subprocess.Popen(
            [
                py,
                "-m",
                "hornet.bench_e2e",
                "_sink",
                str(tmp / "n3.key"),
                str(self.path),
                str(ports[3]),
                "1" if plain else "0",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for proc in [*self.procs, self.sink]:
            assert proc.stdout is not None
            proc.stdout.readline()

    def result(self) -> dict[str, float]:
        assert self.sink.stdout is not None
        return dict(json.loads(self.sink.stdout.readline()))

    def close(self) -> None:
        for proc in [*self.procs, self.sink]:
            proc.kill()
            proc.wait()


async def _blast_hornet(net: _Net, packets: int) -> None:
    async with open_circuit(net.directory, net.infos[3].node_id, hops=3, reliable=False) as c:
        message = bytes(c.max_datagram)
        for i in range(packets):
            await c.send(message)
            if i % 64 == 0:
                await trio.sleep(0)


async def _blast_plain(net: _Net, packets: int) -> None:
    sock = await UdpNetwork().bind(("127.0.0.1", 0))
    packet = bytes(Directory(()).params.data_packet_len(PAYLOAD))
    for i in range(packets):
        await sock.send(packet, net.infos[0].address)
        if i % 64 == 0:
            await trio.sleep(0)
    sock.close()


async def _setups(net: _Net, count: int) -> list[float]:
    sock = await UdpNetwork().bind(("127.0.0.1", 0))
    rng = random.SystemRandom()
    times = []
    async with trio.open_nursery() as nursery:
        endpoint = Endpoint(sock, net.directory)
        nursery.start_soon(endpoint.run)
        path = CircuitPath(forward=(*net.infos[:3], net.infos[3]), backward=tuple(net.infos[:3]))
        for _ in range(count):
            start = time.perf_counter()
            await endpoint.setup(path, lifetime=600, timeout=2.0, rng=rng)
            times.append((time.perf_counter() - start) * 1000)
        nursery.cancel_scope.cancel()
    sock.close()
    return times


def run(packets: int, circuits: int) -> dict[str, Any]:
    out: dict[str, Any] = {"payload_size": PAYLOAD, "relays": 3, "packets": packets}
    with tempfile.TemporaryDirectory(prefix="hornet-bench-") as tmp:
        for plain in (True, False):
            net = _Net(Path(tmp), plain)
            try:
                trio.run(_blast_plain if plain else _blast_hornet, net, packets)
                result = net.result()
                mbps = result["bytes"] * 8 / result["seconds"] / 1e6 if result["seconds"] else 0.0
                out["plain_goodput_mbps" if plain else "goodput_mbps"] = round(mbps, 1)
                out["plain_delivered" if plain else "delivered"] = round(
                    result["bytes"] / (packets * (PAYLOAD - 57)), 3
                )
                if not plain:
                    out["relay_rss_mb_start"] = round(_rss_mb(net.procs[1].pid), 1)
                    times = trio.run(_setups, net, circuits)
                    out["setup_ms_median"] = round(statistics.median(times), 2)
                    out["setup_ms_p90"] = round(sorted(times)[int(len(times) * 0.9)], 2)
                    out["circuits"] = circuits
                    out["relay_rss_mb_after_circuits"] = round(_rss_mb(net.procs[1].pid), 1)
            finally:
                net.close()
    out["goodput_ratio"] = round(out["goodput_mbps"] / out["plain_goodput_mbps"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_plain_relay":
        trio.run(_plain_relay, argv[1], argv[2], int(argv[3]), argv[4])
        return 0
    if argv and argv[0] == "_sink":
        trio.run(_sink, argv[1], argv[2], int(argv[3]), argv[4] == "1")
        return 0
    parser = argparse.ArgumentParser(prog="hornet bench e2e", description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--circuits", type=int, default=10000)
    args = parser.parse_args(argv)
    figures = run(args.packets, args.circuits)
    figures["python"] = sys.version.split()[0]
    figures["cpus"] = os.cpu_count()
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>28}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

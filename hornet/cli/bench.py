"""End-to-end benchmark: relays as separate OS processes on loopback (``hornet bench e2e``).

Topology: this process (the source) → 3 relays → a sink, every node its own process.
1. HORNET: ``hornet relay`` processes and a sink running ``serve``; the source opens a
   datagram-mode circuit (raw HORNET, no end-to-end acknowledgements) and sends
   ``--packets`` packets of ``--payload`` bytes; the sink counts the user bytes it got.
   Two such chains run: one with link encryption between neighbours (docs/spec-link.md,
   the default; figures without suffix) and one without (``relay.json`` ``"link":
   false``; figures ending in ``_nolink``). ``link_cost`` = 1 − goodput with / goodput without.
   ``--no-link`` runs only the chain without link layer (its figures then carry no
   suffix and ``"link": false``).
2. Plain: the same processes and loops (``RelayNode``) with a no-crypto core that
   forwards each datagram unchanged to a fixed next hop, carrying packets of the same
   size and counting the same user bytes per packet. This baseline, "a plain Python
   relay chain", has no link layer either: it does no cryptography at all.

All chains are started once and take turns, in ``--rounds`` rounds of ``--packets`` /
``--rounds`` packets each (a new circuit per round), so that load from other work on the
machine falls on every chain alike; goodputs are medians over the rounds (each round's
figure is in ``*_rounds``) and ``link_cost`` is the median of the rounds' costs.

Each round sends as fast as the chain carries it: the sink reports its count on a side
channel (a bare UDP socket, every ``ACK_EVERY`` packets) and the source keeps at most
``WINDOW`` packets in flight, writing them off as lost after ``STALL`` s without
progress. Without this window a sender that outruns the chain burns the CPU the relays
need (there are five busy processes on a small machine) and the figure measures overload.

goodput = user bytes delivered / (last arrival − first arrival) at the sink.
cpu_us_per_packet: CPU time of all five processes (/proc) per delivered packet, a figure
that contention from other jobs on the machine moves much less than the wall clock.

compute_us_per_packet: the chain's HORNET computation for one packet in this process,
with no I/O, no scheduler and no queues, stage by stage over batches of ``BATCH``
packets (each node has its own caches in the real chain): the source's seal, a link
seal and open on each of the 4 links (``_nolink``: none), ``Relay.process`` at the 3
relays and at the sink, and the sink's end-to-end open and frame decode. The chains
share everything else (the same processes, sockets, loops and queues), so a HORNET
chain costs at least the plain chain's CPU plus this, and ``goodput_ratio_ceiling`` =
plain CPU / (plain CPU + compute) bounds ``cpu_ratio`` from above, for a runtime whose
only extra cost is its cryptography and header processing.
Also: setup round-trip times, and relay RSS before and after ``--circuits`` setups.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from rich.console import Console
from rich.progress import Progress

from hornet.circuit.circuit import Circuit
from hornet.circuit.endpoint import CircuitEndpoint
from hornet.circuit.endpoint import Path as CircuitPath
from hornet.client import open_circuit
from hornet.core import engine
from hornet.core.chdr import TYPE_DATA
from hornet.core.e2e import E2E_OVERHEAD
from hornet.core.relay import Deliver, Forward
from hornet.core.stream import HEADER_LEN
from hornet.directory.model import Directory, NodeKeys, load_key_file, relay_info, write_key_file
from hornet.node.destination import serve
from hornet.node.relay import RelayNode
from hornet.testing.measure import free_udp_ports, process_cpu_seconds
from hornet.transport.link import with_link
from hornet.transport.udp import UdpNetwork

PAYLOAD = 1024
IDLE = 1.0
WINDOW = 128  # packets in flight
ACK_EVERY = 16
STALL = 0.05  # seconds without progress before the packets in flight count as lost
BATCH = 32  # packets per stage in compute_us_per_packet





def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- child processes ----------------------------------------------------------------------


class _PlainCore:
    """The no-crypto relay: forward every datagram unchanged to one next hop, or (at
    the sink, ``next_hop`` None) deliver it."""

    def __init__(self, next_hop: bytes | None) -> None:
        self.next_hop = next_hop
        self.cached_circuits = 0

    def process(self, packet: bytes, now: float) -> Forward | Deliver:
        if self.next_hop is None:
            return Deliver(b"", b"", packet, b"")
        return Forward(self.next_hop, packet)


async def _plain_relay(keys_path: str, directory_path: str, port: int, next_id: str) -> None:
    directory = Directory.load(directory_path)
    sock = await UdpNetwork().bind(("127.0.0.1", port))
    # The trio loop (not the native data loop, which would decide with the HORNET core).
    node = RelayNode(load_key_file(keys_path), directory, sock, native_loop=False)
    node.core = _PlainCore(bytes.fromhex(next_id))  # type: ignore[assignment]
    print("ready", flush=True)
    await node.run()


async def _sink(
    keys_path: str,
    directory_path: str,
    port: int,
    plain: bool,
    payload: int,
    feedback: int,
    link: bool,
) -> None:
    """Count user bytes; after ``IDLE`` s without traffic print a JSON line for the round
    and start counting the next one."""
    import socket

    first = last = 0.0
    total = packets = 0
    user_bytes = _user_bytes(payload)
    side = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    side.setblocking(False)

    def mark(count: int) -> None:
        nonlocal first, last, total, packets
        now = time.perf_counter()
        first = first or now
        last = now
        total += count
        packets += 1
        if packets % ACK_EVERY == 0:
            with contextlib.suppress(OSError):
                side.sendto(packets.to_bytes(8, "big"), ("127.0.0.1", feedback))

    async def handler(circuit: Circuit) -> None:
        async for message in circuit:
            mark(len(message))

    async def rounds() -> None:
        nonlocal first, last, total, packets
        while True:
            await trio.sleep(IDLE / 4)
            if total and time.perf_counter() - last > IDLE:
                report = {"bytes": total, "packets": packets, "seconds": last - first}
                print(json.dumps(report), flush=True)
                first = last = 0.0
                total = packets = 0

    directory = Directory.load(directory_path)
    async with trio.open_nursery() as nursery:
        if plain:
            # The same receive path as every relay (``RelayNode``: receive task, bounded
            # queue, worker), delivering instead of forwarding.
            sock = await UdpNetwork().bind(("127.0.0.1", port))
            node = RelayNode(
                load_key_file(keys_path),
                directory,
                sock,
                on_deliver=lambda _: mark(user_bytes),
                native_loop=False,
            )
            node.core = _PlainCore(None)  # type: ignore[assignment]
            nursery.start_soon(node.run)
        else:
            keys = load_key_file(keys_path)
            await nursery.start(
                lambda task_status: serve(
                    keys,
                    directory,
                    ("127.0.0.1", port),
                    handler,
                    payload_size=payload,
                    link=link,
                    state=keys_path + ".state.sqlite",
                    task_status=task_status,
                )
            )
        print("ready", flush=True)
        await rounds()  # and stay up as the setups' destination until killed


# -- the driver -------------------------------------------------------------------------


def _user_bytes(payload: int) -> int:
    """User bytes per datagram-mode packet: the payload less the end-to-end frame
    (E2E_OVERHEAD) and the stream header."""
    return payload - E2E_OVERHEAD - HEADER_LEN


class _Net:
    def __init__(self, tmp: Path, plain: bool, payload: int, link: bool = False) -> None:
        rng = random.Random(7)
        self.payload = payload
        self.link = link
        self.keys = [NodeKeys.generate(rng) for _ in range(4)]
        ports = free_udp_ports(5)
        self.feedback = ports[4]
        self.infos = [
            relay_info(k, ("127.0.0.1", p)) for k, p in zip(self.keys, ports[:4], strict=True)
        ]
        self.directory = Directory(tuple(self.infos))
        self.path = tmp / ("plain.json" if plain else "directory.json")
        self.directory.write(self.path)
        self.procs: list[subprocess.Popen[str]] = []
        try:
            for i, k in enumerate(self.keys):
                write_key_file(tmp / f"n{i}.key", k)
            py = sys.executable
            for i in range(3):
                if plain:
                    args = [
                        py,
                        "-m",
                        "hornet.cli.bench",
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
                                "link": link,
                                # The setup round trips below come from one trusted client:
                                # measure setups, not the per-client admission limits.
                                "setup_rate": 1e6,
                                "setup_burst": 1e6,
                                "setup_capacity": 1e6,
                            }
                        )
                    )
                    args = [py, "-m", "hornet.cli", "relay", "--config", str(config)]
                self.procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, text=True))
            self.sink = subprocess.Popen(
                [
                    py,
                    "-m",
                    "hornet.cli.bench",
                    "_sink",
                    str(tmp / "n3.key"),
                    str(self.path),
                    str(ports[3]),
                    "1" if plain else "0",
                    str(payload),
                    str(self.feedback),
                    "1" if link else "0",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for proc in [*self.procs, self.sink]:
                assert proc.stdout is not None
                proc.stdout.readline()
        except BaseException:  # interrupted while starting: stop what already runs
            for proc in [*self.procs, *([self.sink] if hasattr(self, "sink") else [])]:
                proc.kill()
                proc.wait()
            raise

    def result(self) -> dict[str, float]:
        assert self.sink.stdout is not None
        return dict(json.loads(self.sink.stdout.readline()))

    def cpu_seconds(self) -> list[float]:
        """CPU time so far of each relay, then the sink."""
        return [process_cpu_seconds(proc.pid) for proc in [*self.procs, self.sink]]

    def close(self) -> None:
        for proc in [*self.procs, self.sink]:
            proc.kill()
            proc.wait()


class _Window:
    """The source's side of the flow window: the sink's count arrives on ``feedback``."""

    def __init__(self) -> None:
        self.received = 0
        self.lost = 0
        self.stalls = 0
        self._progress = trio.Event()

    async def listen(self, port: int, task_status: trio.TaskStatus[None]) -> None:
        sock = await UdpNetwork().bind(("127.0.0.1", port))
        task_status.started()
        try:
            while True:
                data, _ = await sock.receive()
                self.received = max(self.received, int.from_bytes(data[:8], "big"))
                self._progress.set()
        finally:
            sock.close()

    async def admit(self, sent: int) -> None:
        """Wait until fewer than ``WINDOW`` packets are in flight."""
        while sent - self.received - self.lost >= WINDOW:
            self._progress = trio.Event()
            with trio.move_on_after(STALL) as scope:
                await self._progress.wait()
            if scope.cancelled_caught:
                self.stalls += 1
                self.lost = sent - self.received


async def _blast(net: _Net, packets: int, plain: bool) -> dict[str, float]:
    window = _Window()
    async with trio.open_nursery() as nursery:
        await nursery.start(window.listen, net.feedback)
        start = time.process_time()
        if plain:
            sock = await UdpNetwork().bind(("127.0.0.1", 0))
            # A data packet's type and size (relay admission checks both), no crypto.
            size = Directory(()).params.data_packet_len(net.payload)
            packet = bytes((TYPE_DATA,)) + bytes(size - 1)
            first_hop = net.infos[0].address
            for i in range(packets):
                await window.admit(i)
                await sock.send(packet, first_hop)
            sock.close()
        else:
            async with open_circuit(
                net.directory,
                net.infos[3].node_id,
                hops=3,
                reliable=False,
                payload_size=net.payload,
                link=net.link,
            ) as circuit:
                start = time.process_time()  # the sending, not the setup
                message = bytes(circuit.max_datagram)
                for i in range(packets):
                    await window.admit(i)
                    await circuit.send(message)
        cpu = time.process_time() - start
        nursery.cancel_scope.cancel()
    return {"source_cpu": cpu, "stalls": window.stalls}


async def _setups(net: _Net, count: int) -> list[float]:
    sock = with_link(await UdpNetwork().bind(("127.0.0.1", 0)), None, net.directory, link=net.link)
    rng = random.SystemRandom()
    times = []
    async with trio.open_nursery() as nursery:
        endpoint = CircuitEndpoint(sock, net.directory)
        nursery.start_soon(endpoint.run)
        path = CircuitPath(forward=(*net.infos[:3], net.infos[3]), backward=tuple(net.infos[:3]))
        for _ in range(count):
            start = time.perf_counter()
            await endpoint.setup(path, lifetime=600, timeout=2.0, rng=rng)
            times.append((time.perf_counter() - start) * 1000)
        nursery.cancel_scope.cancel()
    sock.close()
    return times


class _Chain:
    """One chain's processes (plain, or HORNET with or without link layer), kept up for
    every round, and the figures of its rounds."""

    def __init__(self, tmp: Path, payload: int, *, plain: bool, link: bool) -> None:
        self.plain = plain
        self.name = "plain" if plain else "link" if link else "nolink"
        folder = tmp / self.name  # own keys, configs and relay state
        folder.mkdir()
        self.net = _Net(folder, plain, payload, link)
        self.goodputs: list[float] = []
        self.cpu = [0.0] * 5  # source, relays, sink: CPU seconds over all rounds
        self.sent = self.delivered = self.stalls = 0

    def round(self, packets: int) -> float:
        """Blast ``packets`` through the chain; returns this round's goodput (Mb/s)."""
        net = self.net
        before = net.cpu_seconds()
        source = trio.run(_blast, net, packets, self.plain)
        result = net.result()
        after = net.cpu_seconds()
        split = [source["source_cpu"], *(b - a for a, b in zip(before, after, strict=True))]
        self.cpu = [total + seconds for total, seconds in zip(self.cpu, split, strict=True)]
        self.sent += packets
        self.delivered += int(result["packets"])
        self.stalls += int(source["stalls"])
        seconds = result["seconds"]
        mbps = result["bytes"] * 8 / seconds / 1e6 if seconds else 0.0
        self.goodputs.append(round(mbps, 1))
        return mbps

    def figures(self, out: dict[str, Any], prefix: str, suffix: str) -> None:
        delivered = max(1, self.delivered)
        out[prefix + "cpu_us_split" + suffix] = {
            name: round(seconds / delivered * 1e6, 1)
            for name, seconds in zip(
                ("source", "relay1", "relay2", "relay3", "sink"), self.cpu, strict=True
            )
        }
        out[prefix + "goodput_mbps" + suffix] = round(statistics.median(self.goodputs), 1)
        out[prefix + "goodput_mbps_rounds" + suffix] = self.goodputs
        out[prefix + "delivered" + suffix] = round(self.delivered / max(1, self.sent), 3)
        out[prefix + "window_stalls" + suffix] = self.stalls
        out[prefix + "cpu_us_per_packet" + suffix] = round(sum(self.cpu) / delivered * 1e6, 1)

    def setups(self, out: dict[str, Any], circuits: int) -> None:
        net = self.net
        out["relay_rss_mb_start"] = round(_rss_mb(net.procs[1].pid), 1)
        times = trio.run(_setups, net, circuits)
        out["setup_ms_median"] = round(statistics.median(times), 2)
        out["setup_ms_p90"] = round(sorted(times)[int(len(times) * 0.9)], 2)
        out["circuits"] = circuits
        out["relay_rss_mb_after_circuits"] = round(_rss_mb(net.procs[1].pid), 1)


def run(
    packets: int,
    circuits: int,
    payload: int = PAYLOAD,
    *,
    link: bool = True,
    rounds: int = 3,
    step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The plain chain, HORNET without link layer and (if ``link``) HORNET with it, all
    up at once; ``rounds`` rounds of ``packets`` / ``rounds`` packets each, the chains
    taking turns within a round so that load from elsewhere on the machine falls on
    all of them alike. Goodputs are medians over the rounds; ``link_cost`` is the median
    of the rounds' 1 − goodput with / goodput without link layer. ``step(what)`` is
    called after each of the ``rounds + 2`` stages (progress)."""
    done = step or (lambda what: None)
    out: dict[str, Any] = {"payload_size": payload, "relays": 3, "packets": packets}
    out["link"] = link
    out["rounds"] = rounds
    per_round = max(1, packets // rounds)
    with tempfile.TemporaryDirectory(prefix="hornet-bench-") as tmp:
        chains = [_Chain(Path(tmp), payload, plain=True, link=False)]
        try:
            chains.append(_Chain(Path(tmp), payload, plain=False, link=False))
            if link:
                chains.append(_Chain(Path(tmp), payload, plain=False, link=True))
            costs = []
            for index in range(rounds):
                mbps = [chain.round(per_round) for chain in chains]
                if link:
                    costs.append(1 - mbps[2] / mbps[1] if mbps[1] else 1.0)
                done(f"round {index + 1} of {rounds}")
            plain, hornet = chains[0], chains[-1]
            plain.figures(out, "plain_", "")
            hornet.figures(out, "", "")
            if link:
                chains[1].figures(out, "", "_nolink")
                out["link_cost"] = round(statistics.median(costs), 3)
                out["link_cost_rounds"] = [round(c, 3) for c in costs]
                cpu_on, cpu_off = out["cpu_us_per_packet"], out["cpu_us_per_packet_nolink"]
                out["link_cpu_cost"] = round(1 - cpu_off / cpu_on, 3)
            hornet.setups(out, circuits)
            done(f"{circuits} circuit setups")
        finally:
            for chain in chains:
                chain.net.close()
    out["goodput_ratio"] = round(out["goodput_mbps"] / out["plain_goodput_mbps"], 3)
    out["cpu_ratio"] = round(out["plain_cpu_us_per_packet"] / out["cpu_us_per_packet"], 3)
    plain_cpu = out["plain_cpu_us_per_packet"]
    for suffix, linked in (("", link), ("_nolink", False)) if link else (("", False),):
        compute = compute_us_per_packet(payload, link=linked)
        out["compute_us_per_packet" + suffix] = round(compute, 1)
        out["goodput_ratio_ceiling" + suffix] = round(plain_cpu / (plain_cpu + compute), 3)
    done("in-process compute")
    return out


def compute_us_per_packet(
    payload: int, *, link: bool, packets: int = 5000, rounds: int = 5
) -> float:
    """The chain's per-packet HORNET computation in one process (module doc): median
    over ``rounds`` of ``packets`` fresh packets each, source to sink."""
    from hornet.core.e2e import DestinationSession, SourceSession
    from hornet.core.stream import StreamFrame
    from hornet.link.channel import new_session
    from hornet.link.noise import TransportKeys
    from hornet.testing.sim import SimNetwork

    net = SimNetwork(4)
    keys = net.setup([0, 1, 2, 3], [2, 1, 0])  # at simulated time 0, EXP 600
    source = SourceSession(keys, payload)
    source.peer_has_reply_header = True  # steady state: plain DATA frames
    hops = [net.relays[i] for i in range(4)]
    k1, k2 = bytes([1]) * 32, bytes([2]) * 32
    links = [
        (
            new_session(TransportKeys(k1, k2, b"", b"", b""), initiator=True, created=0.0),
            new_session(TransportKeys(k2, k1, b"", b"", b""), initiator=False, created=0.0),
        )
        for _ in range(4 if link else 0)
    ]
    body = bytes(source.max_message)
    rng = random.Random(1)
    now = 1.0
    sink: DestinationSession | None = None
    figures = []
    for _ in range(rounds):
        start = time.perf_counter()
        # Stage by stage over a batch, as each node is its own process with its own
        # caches: every stage's keys and code stay warm while it works through the batch.
        batches = max(1, packets // BATCH)
        for _ in range(batches):
            batch = [source.seal(body, now, rng).packet for _ in range(BATCH)]
            results: list[Any] = []
            for index, relay in enumerate(hops):
                if links:
                    sender, receiver = links[index]
                    batch = [receiver.open(sender.seal(packet)) for packet in batch]
                results = [relay.process(packet, now) for packet in batch]
                batch = [r.packet for r in results if isinstance(r, Forward)]
            for result in results:
                if not isinstance(result, Deliver):
                    raise RuntimeError(f"the in-process chain did not deliver: {result!r}")
                if sink is None:
                    sink = DestinationSession(net.params, result, payload)
                StreamFrame.decode(sink.receive(result))
        figures.append((time.perf_counter() - start) / (batches * BATCH) * 1e6)
    return statistics.median(figures)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_plain_relay":
        trio.run(_plain_relay, argv[1], argv[2], int(argv[3]), argv[4])
        return 0
    if argv and argv[0] == "_sink":
        trio.run(
            _sink,
            argv[1],
            argv[2],
            int(argv[3]),
            argv[4] == "1",
            int(argv[5]),
            int(argv[6]),
            argv[7] == "1",
        )
        return 0
    parser = argparse.ArgumentParser(prog="hornet bench e2e", description=__doc__)
    parser.add_argument("--json", action="store_true")
    from hornet.cli.commands import MAX_BENCH_PAYLOAD, MIN_BENCH_PAYLOAD
    from hornet.cli.lifecycle import int_in

    parser.add_argument("--packets", type=int_in(1, 10**8), default=20000)
    parser.add_argument("--circuits", type=int_in(1, 10**7), default=10000)
    parser.add_argument(
        "--payload",
        type=int_in(MIN_BENCH_PAYLOAD, MAX_BENCH_PAYLOAD),
        default=PAYLOAD,
        help="payload size in bytes",
    )
    parser.add_argument(
        "--no-link",
        dest="link",
        action="store_false",
        help="run the HORNET chain only without link encryption (no link_cost)",
    )
    parser.add_argument(
        "--rounds",
        type=int_in(1, 1000),
        default=3,
        help="rounds the chains take turns in (default 3)",
    )
    parser.add_argument(
        "--engine",
        choices=("native", "python"),
        default=None,
        help="data-plane engine of every process (default: the active one, see hornet info)",
    )
    args = parser.parse_args(argv)
    if args.engine is not None:
        # Children inherit the variable (hornet/__init__.py applies it); this process too.
        os.environ["HORNET_ENGINE"] = args.engine
        engine.use(args.engine)
    # Progress on stderr (rich), so that --json keeps stdout to one JSON object.
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("bench e2e", total=args.rounds + 2)
        figures = run(
            args.packets,
            args.circuits,
            args.payload,
            link=args.link,
            rounds=args.rounds,
            step=lambda what: bar.update(task, advance=1, description=f"bench e2e: {what}"),
        )
    figures["engine"] = engine.active()
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

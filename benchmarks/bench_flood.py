"""Flood benchmark: a relay under a setup and garbage flood, and setup replays
after a crash. Every node is its own OS process on 127.0.0.1; nothing leaves loopback.

Topology: relays R0 (the flooded entry relay), R1, R2 and a sink destination S.
- R0 runs this file's ``_relay`` (the relay of ``hornet relay --config``, same config
  keys and state file, printing its counters every 0.5 s); R1 and R2 are ``hornet
  relay`` processes; S runs ``serve`` with a counting handler (``_sink``).
- The driver (this process) holds an established reliable-mode circuit through R0
  (R0 → R1|R2 → S, back over R1|R2 → R0) and offers ``--rate`` messages/s on it.
- ``_flood`` (another process) sends to R0, as fast as it can, for ``--seconds``:
  garbage datagrams (random bytes) from a plain socket, and valid-looking setups over
  ``--flood-sockets`` link sessions: setups built with the relays' real keys, with
  fresh (random, valid) ephemeral keys so that R0's replay filter cannot shortcut them,
  half without a puzzle and half with an 8-bit one.
- ``_legit`` (another process) keeps opening circuits through R0 (setup round trips,
  one at a time, at most ``--legit-rate`` per second), solving puzzles and escalating
  their difficulty on timeouts as every hornet client does.
Then the replay test: once R0 asks for no puzzle any more, a client records the HORNET
packets (setups and data) it sends to R0, and R0's count of forwarded packets; the
packets are replayed once in the same run, then R0 is killed (SIGKILL) and restarted from
the same key and state files, and a new client (a fresh link session) replays every
recorded packet to it.

On a machine with two CPUs or more, R0 gets CPU 0 to itself, as a relay has its own host,
and every other process (the flooder included) shares the rest (``--no-pin``: no
pinning). R0's kernel socket filter (``hornet.transport.kernel_filter.install_kernel_filter``) is
on as in every relay; ``--no-kernel-filter`` measures without it, ``--shaped-garbage``
sends garbage shaped like link DATA datagrams, which passes the filter, ``--flood-pps``
caps the flood rate.

Figures (JSON with ``--json``):
- ``delivered_share``: messages the sink received in order by the end of the flood over
  the messages offered during the flood (rate × seconds; a message flow control held
  back counts as not delivered). The sink reports every 0.2 s, so "by the end" is read
  0.3 s after it. ``delivered_share_after_grace``: the same ``--grace`` s (default 2)
  later, once the backlog drained;
- ``relay_peak_rss_mb``: VmHWM of R0 (peak resident memory) at the end of the flood;
- ``setups_accepted_per_s``: legit setup round trips completed per second of flood;
- ``flood_pps``: datagrams the flooder sent per second (garbage + setups);
- ``puzzle_difficulty_max``: the highest difficulty R0 required (its policy's peak);
- ``replays_accepted``: recorded packets R0 forwarded when replayed after its restart
  (target 0), with ``replay_control_forwarded``: packets R0 forwarded for fresh setups
  sent the same way afterwards (shows that the count sees forwarding).
Targets: delivered_share ≥ 0.9, RSS < 200 MB, setups_accepted_per_s > 0, no replays.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import trio

from hornet.circuit.circuit import Circuit, SetupTimeoutError
from hornet.circuit.endpoint import CircuitEndpoint
from hornet.circuit.endpoint import Path as CircuitPath
from hornet.client import Entry, open_circuit
from hornet.core import puzzle
from hornet.core.crypto import SecretKey
from hornet.core.e2e import Outgoing, SourceSession
from hornet.core.params import CHDR_LEN
from hornet.core.setup import HopSpec, build_setup, coarse_exp
from hornet.directory.model import (
    Directory,
    NodeKeys,
    RelayInfo,
    endpoint_id,
    load_or_create_key,
    parse_address,
    relay_info,
    write_key_file,
)
from hornet.errors import HornetError
from hornet.node.admission import Limits
from hornet.node.destination import serve
from hornet.node.relay import serve_relay
from hornet.node.state import RelayState
from hornet.testing.measure import free_udp_ports, process_cpu_seconds
from hornet.transport.link import LinkSocket, connect_link, with_link
from hornet.transport.udp import Address, DatagramSocket, UdpNetwork

PY = sys.executable
HERE = Path(__file__).resolve()
X_START, X_END = CHDR_LEN + 1, CHDR_LEN + 34  # the Sphinx ephemeral key in a setup
STREAM_TAG = b"S"
PAD = 500  # bytes of padding per stream message
REPORT_LAG = 0.3  # the sink prints its count every 0.2 s



def _proc_status(pid: int, field: str) -> float:
    """A ``/proc/<pid>/status`` memory field (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")




def _print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


# -- child processes ----------------------------------------------------------------------


async def _relay(config_path: str) -> None:
    """The relay of ``hornet relay --config`` (same keys: key_file, directory, listen,
    state, the admission limits), printing its counters as a JSON line every 0.5 s."""
    path = Path(config_path)
    config = json.loads(path.read_text())
    base = path.resolve().parent
    keys = load_or_create_key(base / config["key_file"])
    directory = Directory.load(base / config["directory"])
    listen = parse_address(config["listen"])
    limits = Limits.from_mapping(config, where=str(path))
    state = RelayState(base / config.get("state", config["key_file"] + ".state.sqlite"))
    kernel_filter = bool(config.get("bench_kernel_filter", True))
    try:
        async with trio.open_nursery() as nursery:
            node = await nursery.start(
                lambda task_status: serve_relay(
                    keys,
                    directory,
                    listen,
                    limits=limits,
                    state=state,
                    kernel_filter=kernel_filter,
                    task_status=task_status,
                )
            )
            print(
                "ready" if node.kernel_filter == kernel_filter else "no kernel filter", flush=True
            )
            while True:
                await trio.sleep(0.5)
                stats = node.statistics()
                link: dict[str, Any] = {}
                if isinstance(node.socket, LinkSocket):
                    link = dict(node.socket.statistics().dropped)
                _print_json(
                    {
                        "forwarded": stats.forwarded,
                        "dropped": stats.dropped,
                        "difficulty": node.puzzle_difficulty,
                        "peak": node.admission.policy.peak,
                        "rate": round(node.admission.policy.rate(trio.current_time()), 1),
                        "neighbours": node.admission.neighbours,
                        "link_dropped": link,
                    }
                )
    finally:
        state.close()


async def _sink(keys_path: str, directory_path: str, port: int) -> None:
    """Count the stream's messages (in order) and print the count every 0.2 s."""
    directory = Directory.load(directory_path)
    keys = load_or_create_key(keys_path)
    counts = {"in_order": 0, "out_of_order": 0, "circuits": 0}

    async def handler(circuit: Circuit) -> None:
        counts["circuits"] += 1
        async for message in circuit:
            if message[:1] != STREAM_TAG:
                continue
            if int(message[1:9]) == counts["in_order"]:
                counts["in_order"] += 1
            else:
                counts["out_of_order"] += 1

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve(
                keys,
                directory,
                ("127.0.0.1", port),
                handler,
                state=keys_path + ".state.sqlite",
                task_status=task_status,
            )
        )
        print("ready", flush=True)
        while True:
            await trio.sleep(0.2)
            _print_json(counts)


def _flood_pool(directory: Directory, target: RelayInfo, size: int, seed: int) -> list[bytes]:
    """Valid-looking setups for ``target``: real keys and paths, fresh ephemeral keys."""
    rng = random.Random(seed)
    params = directory.params
    now = time.time()
    epoch = params.epoch_of(now)
    others = [r for r in directory if r.node_id != target.node_id]

    def spec(relay: RelayInfo) -> HopSpec:
        return HopSpec(relay.node_id, relay.setup_key(epoch) or relay.public_key)

    templates = [
        build_setup(
            params,
            [spec(target), spec(others[i % len(others)]), spec(others[-1])],
            [spec(others[i % len(others)]), spec(target)],
            endpoint_id(("127.0.0.1", 9)),
            coarse_exp(now, 600),
            rng,
            key_epoch=epoch,
        ).packet
        for i in range(32)
    ]
    pool = []
    for i in range(size):
        template = templates[i % len(templates)]
        fresh_x = SecretKey.from_rng(rng).public_key
        packet = template[:X_START] + fresh_x + template[X_END:]
        pool.append(puzzle.solve(packet, 8, start=i) if i % 2 else packet)
    return pool


async def _flood(
    directory_path: str,
    target_hex: str,
    seconds: float,
    sockets: int,
    seed: int,
    cap: float,
    shaped: bool,
) -> None:
    """Flood the target as fast as possible (or at ``cap`` datagrams/s if > 0): garbage
    and valid-looking setups."""
    directory = Directory.load(directory_path)
    target = directory.get(bytes.fromhex(target_hex))
    assert target is not None
    pool = _flood_pool(directory, target, 4096, seed)
    rng = random.Random(seed)
    if shaped:  # link DATA datagrams of a data packet's size, from an address without a link
        size = 25 + directory.params.data_packet_len(1024)
        garbage = [b"\x21" + rng.randbytes(size - 1) for _ in range(256)]
    else:
        garbage = [rng.randbytes(rng.randrange(1, 1500)) for _ in range(256)]
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.setblocking(False)
    sent = {"setups": 0, "garbage": 0}
    async with trio.open_nursery() as nursery:
        links: list[DatagramSocket] = []
        for _ in range(sockets):
            sock = with_link(await UdpNetwork().bind(("127.0.0.1", 0)), None, directory)
            links.append(sock)
            nursery.start_soon(_drain, sock)
        with trio.move_on_after(10):  # open every link session before the clock starts
            for sock in links:
                if isinstance(sock, LinkSocket):
                    await sock.connect(target.address)
        print("ready", flush=True)
        start = time.perf_counter()
        deadline = start + seconds
        i = j = 0
        while time.perf_counter() < deadline:
            for sock in links:
                await sock.send(pool[i % len(pool)], target.address)
                i += 1
                for _ in range(4):
                    try:
                        raw.sendto(garbage[j % len(garbage)], target.address)
                        sent["garbage"] += 1
                    except BlockingIOError:
                        await trio.lowlevel.wait_writable(raw)
                    except OSError:
                        pass
                    j += 1
            sent["setups"] = i
            if cap > 0:  # paced: sleep off any time ahead of the cap
                ahead = start + (i + sent["garbage"]) / cap - time.perf_counter()
                await trio.sleep(max(0.0, ahead))
            else:
                await trio.lowlevel.checkpoint()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    _print_json({**sent, "seconds": elapsed, "pps": (sent["setups"] + sent["garbage"]) / elapsed})


async def _drain(sock: DatagramSocket) -> None:
    """Keep receiving (link handshakes progress inside ``receive``)."""
    while True:
        await sock.receive()


def _path_through(directory: Directory, target: RelayInfo, sink: RelayInfo, i: int) -> CircuitPath:
    middles = [r for r in directory if r.node_id not in (target.node_id, sink.node_id)]
    middle = middles[i % len(middles)]
    return CircuitPath(forward=(target, middle, sink), backward=(middle, target))


async def _legit(
    directory_path: str, target_hex: str, sink_hex: str, seconds: float, rate: float
) -> None:
    """Open circuits through the target one after another, at most ``rate`` per second."""
    directory = Directory.load(directory_path)
    target = directory.get(bytes.fromhex(target_hex))
    sink = directory.get(bytes.fromhex(sink_hex))
    assert target is not None and sink is not None
    rng = random.SystemRandom()
    completed = failed = 0
    times: list[float] = []
    bits: list[int] = []
    sock = with_link(await UdpNetwork().bind(("127.0.0.1", 0)), None, directory)
    async with trio.open_nursery() as nursery:
        endpoint = CircuitEndpoint(sock, directory)
        escalation = endpoint.puzzles
        nursery.start_soon(endpoint.run)
        print("ready", flush=True)
        start = time.perf_counter()
        deadline = start + seconds
        i = 0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            with trio.move_on_at(trio.current_time() + (deadline - began)):
                try:
                    await endpoint.setup(
                        _path_through(directory, target, sink, i),
                        lifetime=60,
                        timeout=2.0,
                        rng=rng,
                    )
                    completed += 1
                    times.append(time.perf_counter() - began)
                    level = escalation.start_level(target.node_id, trio.current_time())
                    bits.append(escalation.levels[level])
                except SetupTimeoutError:
                    failed += 1
            i += 1
            await trio.sleep(max(0.0, began + 1 / rate - time.perf_counter()))
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    _print_json(
        {
            "completed": completed,
            "failed": failed,
            "seconds": elapsed,
            "setup_s_median": round(statistics.median(times), 3) if times else None,
            "max_bits": max(bits, default=0),
        }
    )


# -- the driver -------------------------------------------------------------------------


def _pin(pid: int, cpus: set[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(pid, cpus)


class _Child:
    """A child process whose JSON stdout lines a thread collects (``latest``, ``lines``)."""

    def __init__(self, args: list[str], cpus: set[int] | None = None) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        _pin(self.proc.pid, cpus)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if first.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"child {args[2:4]} did not start: {first!r}")
        self.lines: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue

    @property
    def latest(self) -> dict[str, Any]:
        return self.lines[-1] if self.lines else {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_result(self, timeout: float) -> dict[str, Any]:
        self.proc.wait(timeout=timeout)
        self._thread.join(timeout=5)
        return self.latest

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


class _Net:
    """R0 (``_relay``), R1 and R2 (``hornet relay``) and the sink, each a process."""

    def __init__(
        self, tmp: Path, limits: dict[str, Any], cpus: tuple[set[int], set[int]] | None
    ) -> None:
        rng = random.Random(17)
        self.tmp = tmp
        # With ``cpus`` = (for R0, for everything else): R0 has a core of its own, as a
        # relay would have its own host; the flooder shares the other with the rest.
        self.r0_cpus: set[int] | None = cpus[0] if cpus is not None else None
        self.cpus: set[int] | None = cpus[1] if cpus is not None else None
        self.keys = [NodeKeys.generate(rng) for _ in range(4)]
        ports = free_udp_ports(4)
        infos = [relay_info(k, ("127.0.0.1", p)) for k, p in zip(self.keys, ports, strict=True)]
        self.directory = Directory(tuple(infos))
        self.directory_path = tmp / "directory.json"
        self.directory.write(self.directory_path)
        self.target, self.sink = infos[0], infos[3]
        self.children: list[_Child] = []
        self.others: list[subprocess.Popen[str]] = []
        for i, k in enumerate(self.keys):
            write_key_file(tmp / f"n{i}.key", k)
            config = {
                "key_file": f"n{i}.key",
                "directory": "directory.json",
                "listen": f"127.0.0.1:{ports[i]}",
                **(limits if i == 0 else {}),
            }
            (tmp / f"relay{i}.json").write_text(json.dumps(config))
        self.r0 = self.start_r0()
        for i in (1, 2):
            proc = subprocess.Popen(
                [PY, "-m", "hornet.cli", "relay", "--config", str(tmp / f"relay{i}.json")],
                stdout=subprocess.PIPE,
                text=True,
            )
            _pin(proc.pid, self.cpus)
            assert proc.stdout is not None and "listening" in proc.stdout.readline()
            self.others.append(proc)
        self.sink_proc = self.child(
            "_sink", str(tmp / "n3.key"), str(self.directory_path), str(ports[3])
        )

    def child(self, *args: str, cpus: set[int] | None = None) -> _Child:
        child = _Child([PY, str(HERE), *args], cpus or self.cpus)
        self.children.append(child)
        return child

    def start_r0(self) -> _Child:
        return self.child("_relay", str(self.tmp / "relay0.json"), cpus=self.r0_cpus)

    def close(self) -> None:
        for child in self.children:
            child.kill()
        for proc in self.others:
            proc.kill()
            proc.wait()
        self.others.clear()


class _CaptureSocket:
    """Records the packets sent to one address, then sends them on (replay test)."""

    def __init__(self, inner: DatagramSocket, target: Address) -> None:
        self._inner = inner
        self._target = target
        self.captured: list[bytes] = []

    @property
    def address(self) -> Address:
        return self._inner.address

    async def send(self, data: bytes, address: Address) -> None:
        if address == self._target:
            self.captured.append(bytes(data))
        await self._inner.send(data, address)

    async def receive(self) -> tuple[bytes, Address]:
        return await self._inner.receive()

    def close(self) -> None:
        self._inner.close()


async def _stream(net: _Net, seconds: float, rate: float, flood: _Flood) -> dict[str, Any]:
    """The established circuit: offer ``rate`` messages/s while ``flood`` runs."""
    async with open_circuit(
        net.directory, net.sink.node_id, hops=2, entry=Entry(net.target), attempts=10
    ) as circuit:
        for i in range(10):  # the circuit works before the flood starts
            await circuit.send(STREAM_TAG + b"%08d" % i + bytes(PAD))
        with trio.fail_after(30):
            await circuit.drain()
        first = 10
        await trio.to_thread.run_sync(flood.start)
        offered = int(rate * seconds)
        start = time.perf_counter()
        sent = 0
        for i in range(offered):
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                await trio.sleep(wait)
            if time.perf_counter() > start + seconds:
                break  # flow control held us back: the rest counts as not delivered
            await circuit.send(STREAM_TAG + b"%08d" % (first + i) + bytes(PAD))
            sent += 1
        flood_end = start + seconds
        await trio.sleep(max(0.0, flood_end + REPORT_LAG - time.perf_counter()))
        at_flood_end = net.sink_proc.latest.get("in_order", 0) - first
        await trio.sleep(flood.grace)
        after_grace = net.sink_proc.latest.get("in_order", 0) - first
        rebuilds = circuit.rebuilds
    return {
        "offered": offered,
        "sent": sent,
        "delivered_by_flood_end": at_flood_end,
        "delivered": after_grace,
        "out_of_order": net.sink_proc.latest.get("out_of_order", 0),
        "circuit_rebuilds": rebuilds,
    }


class _Flood:
    """Starts the flooder and the legit client processes together."""

    def __init__(
        self,
        net: _Net,
        seconds: float,
        sockets: int,
        legit_rate: float,
        grace: float,
        cap: float,
        shaped: bool,
    ) -> None:
        self.net, self.seconds, self.sockets, self.cap = net, seconds, sockets, cap
        self.shaped = shaped
        self.legit_rate, self.grace = legit_rate, grace
        self.flooder: _Child | None = None
        self.legit: _Child | None = None
        self.cpu_before = 0.0

    def start(self) -> None:
        net = self.net
        self.flooder = net.child(
            "_flood",
            str(net.directory_path),
            net.target.node_id.hex(),
            str(self.seconds),
            str(self.sockets),
            "1",
            str(self.cap),
            "1" if self.shaped else "0",
        )
        self.cpu_before = process_cpu_seconds(net.r0.pid)
        self.legit = net.child(
            "_legit",
            str(net.directory_path),
            net.target.node_id.hex(),
            net.sink.node_id.hex(),
            str(self.seconds),
            str(self.legit_rate),
        )


async def _replay(net: _Net, setups: int, packets: int) -> dict[str, Any]:
    """Record packets sent to R0, kill and restart R0, replay them; count forwards."""
    rng = random.SystemRandom()
    target, sink = net.target, net.sink

    async def forwarded_now() -> int:
        count = len(net.r0.lines)
        while len(net.r0.lines) < count + 2:  # a line printed after the packets arrived
            await trio.sleep(0.1)
        return int(net.r0.latest["forwarded"])

    results: dict[str, Any] = {}
    with trio.move_on_after(30):  # record only setups R0 accepts: wait out the flood's puzzle
        while net.r0.latest.get("difficulty", 0) > 0:
            await trio.sleep(0.25)
    async with trio.open_nursery() as nursery:
        inner = with_link(await UdpNetwork().bind(("127.0.0.1", 0)), None, net.directory)
        cap = _CaptureSocket(inner, target.address)
        endpoint = CircuitEndpoint(cap, net.directory)
        nursery.start_soon(endpoint.run)
        before = await forwarded_now()
        for i in range(setups):
            keys = await endpoint.setup(
                _path_through(net.directory, target, sink, i), lifetime=60, timeout=2.0, rng=rng
            )
            session = SourceSession(keys, 1024)
            for _ in range(packets):
                out: Outgoing = session.seal(bytes(100), time.time(), rng)
                await cap.send(out.packet, target.address)
        recorded = list(cap.captured)
        results["replay_recorded"] = len(recorded)
        results["replay_recorded_forwarded"] = await forwarded_now() - before
        # Replays within the same run (the in-memory replay filters).
        before = await forwarded_now()
        for packet in recorded:
            await inner.send(packet, target.address)
            await trio.sleep(0.001)
        results["replays_accepted_same_run"] = await forwarded_now() - before
        nursery.cancel_scope.cancel()
    inner.close()
    # The crash: SIGKILL, then a restart from the same key file and state file.
    await trio.to_thread.run_sync(net.r0.kill)
    net.r0 = await trio.to_thread.run_sync(net.start_r0)
    async with trio.open_nursery() as nursery:
        fresh = with_link(await UdpNetwork().bind(("127.0.0.1", 0)), None, net.directory)
        nursery.start_soon(_drain, fresh)
        with trio.fail_after(10):  # a new link session: nothing waits behind a handshake
            await connect_link(fresh, target.address)
        for packet in recorded:
            await fresh.send(packet, target.address)
            await trio.sleep(0.001)
        results["replays_accepted"] = await forwarded_now()
        nursery.cancel_scope.cancel()
    fresh.close()
    # Control: fresh setups from a new client are forwarded by the restarted relay.
    async with trio.open_nursery() as nursery:
        sock = with_link(await UdpNetwork().bind(("127.0.0.1", 0)), None, net.directory)
        endpoint = CircuitEndpoint(sock, net.directory)
        nursery.start_soon(endpoint.run)
        before = await forwarded_now()
        done = 0
        for i in range(3):
            try:
                await endpoint.setup(
                    _path_through(net.directory, target, sink, i),
                    lifetime=60,
                    timeout=2.0,
                    rng=rng,
                )
                done += 1
            except HornetError:
                pass
        results["replay_control_setups"] = done
        results["replay_control_forwarded"] = await forwarded_now() - before
        nursery.cancel_scope.cancel()
    sock.close()
    return results


def run(
    seconds: float,
    rate: float,
    sockets: int,
    legit_rate: float,
    grace: float,
    limits: dict[str, Any],
    replay: bool = True,
    pin: bool = True,
    flood_cap: float = 0.0,
    shaped: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seconds": seconds,
        "stream_rate": rate,
        "flood_sockets": sockets,
        "flood_cap_pps": flood_cap or None,
        "kernel_filter": bool(limits.get("bench_kernel_filter")),
        "garbage": "shaped like link DATA" if shaped else "random bytes",
    }
    cpus = sorted(os.sched_getaffinity(0))
    split = ({cpus[0]}, set(cpus[1:])) if pin and len(cpus) >= 2 else None
    out["pinned"] = split is not None
    if split is not None:
        os.sched_setaffinity(0, split[1])  # the driver (stream client) is "everything else"
    with tempfile.TemporaryDirectory(prefix="hornet-flood-") as tmp:
        net = _Net(Path(tmp), limits, split)
        try:
            flood = _Flood(net, seconds, sockets, legit_rate, grace, flood_cap, shaped)
            stream = trio.run(_stream, net, seconds, rate, flood)
            assert flood.flooder is not None and flood.legit is not None
            flooded = flood.flooder.wait_result(timeout=60)
            legit = flood.legit.wait_result(timeout=60)
            r0 = net.r0.latest
            out["delivered_share"] = round(stream["delivered_by_flood_end"] / stream["offered"], 4)
            out["delivered_share_after_grace"] = round(stream["delivered"] / stream["offered"], 4)
            out["stream"] = stream
            out["relay_peak_rss_mb"] = round(_proc_status(net.r0.pid, "VmHWM"), 1)
            out["relay_cpu_s"] = round(process_cpu_seconds(net.r0.pid) - flood.cpu_before, 1)
            out["setups_accepted_per_s"] = round(legit["completed"] / legit["seconds"], 2)
            out["legit"] = legit
            out["flood_pps"] = round(flooded["pps"])
            out["flood"] = {k: round(v, 1) for k, v in flooded.items()}
            out["puzzle_difficulty_max"] = max(line.get("peak", 0) for line in net.r0.lines)
            out["relay_dropped"] = r0.get("dropped", {})
            out["relay_link_dropped"] = r0.get("link_dropped", {})
            if replay:
                out.update(trio.run(_replay, net, 10, 10))
        finally:
            net.close()
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("_"):
        command, a = argv[0], argv[1:]
        if command == "_relay":
            trio.run(_relay, a[0])
        elif command == "_sink":
            trio.run(_sink, a[0], a[1], int(a[2]))
        elif command == "_flood":
            trio.run(
                _flood, a[0], a[1], float(a[2]), int(a[3]), int(a[4]), float(a[5]), a[6] == "1"
            )
        elif command == "_legit":
            trio.run(_legit, a[0], a[1], a[2], float(a[3]), float(a[4]))
        return 0
    parser = argparse.ArgumentParser(
        prog="bench_flood.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seconds", type=float, default=30.0, help="flood duration (30)")
    parser.add_argument(
        "--rate",
        type=float,
        default=200.0,
        help="messages/s offered on the established circuit (200)",
    )
    parser.add_argument(
        "--flood-sockets",
        type=int,
        default=128,
        help="link sessions the flooder sends setups over (128)",
    )
    parser.add_argument(
        "--legit-rate",
        type=float,
        default=10.0,
        help="at most this many legit setups per second (10)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=2.0,
        help="delivered_share_after_grace is read this long after the flood (2)",
    )
    parser.add_argument(
        "--setup-capacity",
        type=float,
        default=200.0,
        help="R0's setup_capacity (client setups/s before puzzles; 200)",
    )
    parser.add_argument("--no-replay", action="store_true", help="skip the replay test")
    parser.add_argument(
        "--flood-pps",
        type=float,
        default=0.0,
        help="cap the flood at this many datagrams/s (default: no cap)",
    )
    parser.add_argument(
        "--no-kernel-filter",
        action="store_true",
        help="R0 without its kernel socket filter (garbage reaches Python)",
    )
    parser.add_argument(
        "--shaped-garbage",
        action="store_true",
        help="garbage shaped like link DATA datagrams (passes the kernel filter)",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not give R0 a CPU of its own (all processes share all CPUs)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 600 or not 1 <= args.flood_sockets <= 1024:
        parser.error("--seconds in [1, 600] and --flood-sockets in [1, 1024]")
    figures = run(
        args.seconds,
        args.rate,
        args.flood_sockets,
        args.legit_rate,
        args.grace,
        {"setup_capacity": args.setup_capacity, "bench_kernel_filter": not args.no_kernel_filter},
        replay=not args.no_replay,
        pin=not args.no_pin,
        flood_cap=args.flood_pps,
        shaped=args.shaped_garbage,
    )
    figures["python"] = sys.version.split()[0]
    figures["cpus"] = os.cpu_count()
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>30}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Faults with relays as separate processes on loopback (``hornet relay --config``).

- A relay killed with SIGKILL mid-circuit and restarted (same key and state files): its
  old forwarding segments no longer open (restart generation), the circuit stalls and
  rebuilds, and reliable data sent across the outage arrives complete and in order
  (``slow``: the stall takes ~10 s of retransmissions).
- A pinned entry relay that stays dead: ``receive`` raises a ``CircuitError`` that says
  how many attempts failed (``slow``).
- A link that loses 10%, reorders and duplicates datagrams in both directions (an
  in-path UDP proxy process, run from this file, between two relays): reliable mode
  still delivers everything once, in order.

Run as a script (``python test_faults.py proxy ...``) this file is that proxy.
"""

from __future__ import annotations

import json
import random
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

import hornet
from hornet.circuit.circuit import Circuit, CircuitError
from hornet.client import Entry
from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file
from hornet.node.destination import serve

THIS = Path(__file__).resolve()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RelayProcesses:
    """``n`` relays as ``hornet relay`` processes, and the keys of an in-process service.

    ``proxied`` relays are listed in the directory at a proxy's address (``proxy_ports``)
    and listen on a port of their own (``ports``): everything sent to them goes through
    the proxy, which the test starts.
    """

    def __init__(self, tmp: Path, *, n: int, seed: int, proxied: tuple[int, ...] = ()) -> None:
        rng = random.Random(seed)
        self.tmp = tmp
        self.keys = [NodeKeys.generate(rng) for _ in range(n + 1)]
        self.ports = [_free_port() for _ in range(n + 1)]
        self.proxy_ports = {i: _free_port() for i in proxied}
        listed = [self.proxy_ports.get(i, port) for i, port in enumerate(self.ports)]
        self.directory = Directory(
            tuple(relay_info(k, ("127.0.0.1", p)) for k, p in zip(self.keys, listed, strict=True))
        )
        self.directory.write(tmp / "directory.json")
        self.procs: dict[int, subprocess.Popen[str]] = {}
        for i in range(n):
            write_key_file(tmp / f"relay{i}.key", self.keys[i])
            (tmp / f"relay{i}.json").write_text(
                json.dumps(
                    {
                        "key_file": f"relay{i}.key",
                        "directory": "directory.json",
                        "listen": f"127.0.0.1:{self.ports[i]}",
                    }
                )
            )
            self.start(i)

    @property
    def service_keys(self) -> NodeKeys:
        return self.keys[-1]

    @property
    def service_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.ports[-1])

    def start(self, i: int) -> None:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hornet.cli",
                "relay",
                "--config",
                str(self.tmp / f"relay{i}.json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening" in line, proc.stderr.read() if proc.stderr else line
        self.procs[i] = proc

    def kill(self, i: int) -> None:
        proc = self.procs.pop(i)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def relays(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RelayProcesses]:
    options: dict[str, Any] = {"n": 4, **getattr(request, "param", {})}
    procs = RelayProcesses(tmp_path, seed=31, **options)
    try:
        yield procs
    finally:
        procs.close()


async def _echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(b"echo:" + message)


@pytest.mark.slow
async def test_a_relay_killed_and_restarted_mid_circuit_is_rebuilt_around(
    relays: RelayProcesses,
) -> None:
    directory = relays.directory
    entry_info = directory.get(relays.keys[0].node_id)
    assert entry_info is not None
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve(
                relays.service_keys,
                directory,
                relays.service_address,
                _echo,
                state=relays.tmp / "service.state.sqlite",
                task_status=task_status,
            )
        )
        with trio.fail_after(90):
            async with hornet.open_circuit(
                directory,
                relays.service_keys.node_id,
                hops=2,
                entry=Entry(entry_info),
                setup_timeout=1.0,
                attempts=5,
            ) as circuit:
                for i in range(5):
                    await circuit.send(b"before %d" % i)
                    assert await circuit.receive() == b"echo:before %d" % i
                # The pinned entry relay dies mid-circuit, with data in flight...
                relays.kill(0)
                for i in range(20):
                    await circuit.send(b"across %02d" % i + bytes(600))
                await trio.sleep(1.0)
                # ... and comes back from its key and state files, as a new generation.
                await trio.to_thread.run_sync(relays.start, 0)
                for i in range(20):
                    assert await circuit.receive() == b"echo:across %02d" % i + bytes(600)
                assert circuit.rebuilds >= 1
                await circuit.send(b"after")
                assert await circuit.receive() == b"echo:after"
        nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_a_pinned_entry_relay_that_stays_dead_gives_a_clear_error(
    relays: RelayProcesses,
) -> None:
    directory = relays.directory
    entry_info = directory.get(relays.keys[0].node_id)
    assert entry_info is not None
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve(
                relays.service_keys,
                directory,
                relays.service_address,
                _echo,
                state=relays.tmp / "service.state.sqlite",
                task_status=task_status,
            )
        )
        with trio.fail_after(90):
            async with hornet.open_circuit(
                directory,
                relays.service_keys.node_id,
                hops=2,
                entry=Entry(entry_info),
                setup_timeout=0.5,
                attempts=2,
                linger=0.1,
            ) as circuit:
                await circuit.send(b"before")
                assert await circuit.receive() == b"echo:before"
                relays.kill(0)
                await circuit.send(b"into the void")
                with pytest.raises(CircuitError, match="could not open a circuit in 2 attempts"):
                    await circuit.receive()
        nursery.cancel_scope.cancel()


# -- a lossy, reordering, duplicating link ------------------------------------------------


def _proxy(listen: int, target: int, seed: int, loss: float, dup: float, reorder: float) -> None:
    """A UDP proxy from ``listen`` to ``target`` that, in both directions, loses ``loss``
    of the datagrams, sends ``dup`` of them twice and holds ``reorder`` of them back
    behind the next one (at most 50 ms). Each client gets its own upstream socket, so
    the target's answers (link handshakes included) find their way back."""
    rng = random.Random(seed)
    counts = {"received": 0, "lost": 0, "duplicated": 0, "reordered": 0}
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", listen))
    destination = ("127.0.0.1", target)
    upstream: dict[tuple[str, int], socket.socket] = {}
    client_of: dict[socket.socket, tuple[str, int]] = {}
    selector = selectors.DefaultSelector()
    selector.register(front, selectors.EVENT_READ)
    held: tuple[socket.socket, bytes, tuple[str, int]] | None = None

    def report(*_: object) -> None:
        print(json.dumps(counts), flush=True)
        sys.exit(0)

    def deliver(out: socket.socket, data: bytes, to: tuple[str, int]) -> None:
        nonlocal held
        counts["received"] += 1
        if rng.random() < loss:
            counts["lost"] += 1
            return
        if held is None and rng.random() < reorder:
            held = (out, data, to)
            counts["reordered"] += 1
            return
        out.sendto(data, to)
        if rng.random() < dup:
            out.sendto(data, to)
            counts["duplicated"] += 1
        if held is not None:
            held[0].sendto(held[1], held[2])
            held = None

    signal.signal(signal.SIGTERM, report)
    print("ready", flush=True)
    while True:
        events = selector.select(timeout=0.05)
        if not events and held is not None:
            held[0].sendto(held[1], held[2])
            held = None
        for key, _ in events:
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            data, source = sock.recvfrom(65535)
            if sock is front:
                up = upstream.get(source)
                if up is None and len(upstream) < 256:
                    up = upstream[source] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    up.bind(("127.0.0.1", 0))
                    client_of[up] = source
                    selector.register(up, selectors.EVENT_READ)
                if up is not None:
                    deliver(up, data, destination)
            else:
                deliver(front, data, client_of[sock])


@pytest.mark.parametrize("relays", [{"n": 2, "proxied": (1,)}], indirect=True)
async def test_reliable_mode_delivers_everything_in_order_over_a_lossy_reordering_link(
    relays: RelayProcesses,
) -> None:
    # Two relays: every circuit runs client → relay 0 → relay 1 → service and back over
    # relay 1 → relay 0; the proxy sits on the relay 0 → relay 1 link (and carries its
    # link handshakes).
    proxy = subprocess.Popen(
        [
            sys.executable,
            str(THIS),
            "proxy",
            str(relays.proxy_ports[1]),
            str(relays.ports[1]),
            "5",
            "0.10",
            "0.05",
            "0.10",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proxy.stdout is not None and proxy.stdout.readline().strip() == "ready"
        directory = relays.directory
        entry_info = directory.get(relays.keys[0].node_id)
        assert entry_info is not None
        received: list[bytes] = []
        done = trio.Event()
        count = 100

        async def sink(circuit: Circuit) -> None:
            async for message in circuit:
                received.append(message)
                if len(received) == count:
                    done.set()

        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve(
                    relays.service_keys,
                    directory,
                    relays.service_address,
                    sink,
                    state=relays.tmp / "service.state.sqlite",
                    task_status=task_status,
                )
            )
            with trio.fail_after(60):
                async with hornet.open_circuit(
                    directory,
                    relays.service_keys.node_id,
                    hops=2,
                    entry=Entry(entry_info),
                    setup_timeout=1.0,
                    attempts=5,
                ) as circuit:
                    for i in range(count):
                        await circuit.send(b"%04d" % i + bytes(700))
                    await done.wait()
            nursery.cancel_scope.cancel()
    finally:
        proxy.send_signal(signal.SIGTERM)
        out, _ = proxy.communicate(timeout=10)
    assert received == [b"%04d" % i + bytes(700) for i in range(count)]
    counts = json.loads(out.strip().splitlines()[-1])
    # The link really was bad: every kind of fault happened, on the data path.
    assert counts["received"] >= count
    assert counts["lost"] > 0 and counts["duplicated"] > 0 and counts["reordered"] > 0


if __name__ == "__main__" and sys.argv[1:2] == ["proxy"]:
    a = sys.argv[2:]
    _proxy(int(a[0]), int(a[1]), int(a[2]), float(a[3]), float(a[4]), float(a[5]))

"""The relay's native data loop (``hornet/transport/native_loop.py``, ``native/src/dataloop.rs``).

- Circuits through relays on the native loop deliver the same bytes as through relays on
  the trio loop (and the native relays really forwarded the data themselves), with
  setups and link handshakes on the Python side as before.
- The event queue to the trio side is bounded: when full, datagrams are dropped and
  counted, and the ones queued are intact.
- Stopping a relay stops the loop thread and closes its descriptor; a restart starts a
  fresh one; ``native_loop=False`` and the Python engine keep the trio receive task.
- Replayed link datagrams and replayed HORNET data packets that reach the native loop are
  not forwarded.
- The same loop as a plain forwarder and as a counting sink (the benchmarks' baseline).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
from externals import require

import hornet
from hornet.circuit.circuit import Circuit
from hornet.core import engine
from hornet.core.params import Params
from hornet.core.relay import Relay
from hornet.directory.model import NodeKeys
from hornet.transport.link import LinkNetwork, LinkSocket, directory_resolver
from hornet.transport.udp import UdpNetwork

NATIVE = engine.native is not None
THREAD = "hornet-data-loo"  # the loop thread's name as /proc shows it (15 characters)


@pytest.fixture(autouse=True)
def native_engine() -> Iterator[None]:
    """Skip without a Rust toolchain; with one, the extension must have been built."""
    require("cargo")
    assert NATIVE, "cargo is installed but hornet._native was not built: reinstall"
    before = engine.active()
    engine.use("native")
    yield
    engine.use(before)


def loop_threads() -> int:
    tasks = Path(f"/proc/{os.getpid()}/task")
    return sum((task / "comm").read_text().strip() == THREAD for task in tasks.iterdir())


def open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


MESSAGES = [bytes([i % 251]) * (1 + (i * 37) % 900) + b"#%d" % i for i in range(120)]


async def _run_circuit(native_loop: bool | None) -> tuple[list[bytes], list[dict[str, int]]]:
    """Send MESSAGES through a 4-relay local network; the destination's received list and,
    per relay, (native forwards, setups, link handshakes)."""
    received: list[bytes] = []
    done = trio.Event()

    async def sink(circuit: Circuit) -> None:
        async for message in circuit:
            received.append(message)
            if len(received) == len(MESSAGES):
                done.set()

    async with hornet.local_network(4, service=sink, seed=5, native_loop=native_loop) as net:
        async with hornet.open_circuit(net.directory, net.service_id) as circuit:
            for message in MESSAGES:
                await circuit.send(message)
            with trio.fail_after(20):
                await done.wait()
        figures = []
        for relay in net.relays:
            assert (relay.native is not None) == (native_loop is not False)
            native = relay.native.statistics().forwarded if relay.native else 0
            handshakes = relay.socket.statistics().handshakes_completed  # type: ignore[attr-defined]
            stats = relay.statistics()
            figures.append(
                {"native": native, "forwarded": stats.forwarded, "setups": stats.setups,
                 "handshakes": handshakes}
            )
    return received, figures


def test_circuits_through_native_loops_deliver_the_bytes_the_trio_loops_deliver() -> None:
    native_received, native_figures = trio.run(_run_circuit, None)
    trio_received, trio_figures = trio.run(_run_circuit, False)
    assert native_received == MESSAGES
    assert trio_received == native_received
    # The data went through the native loops: most forwards were theirs, while setups
    # and link handshakes still ran on the trio side.
    forwarded = sum(f["forwarded"] for f in native_figures)
    assert sum(f["native"] for f in native_figures) > 0.8 * forwarded
    assert sum(f["setups"] for f in native_figures) >= 3
    assert sum(f["handshakes"] for f in native_figures) >= 3
    assert sum(f["native"] for f in trio_figures) == 0


def test_python_engine_keeps_the_trio_receive_task() -> None:
    engine.use("python")

    async def main() -> None:
        async with hornet.local_network(3, seed=2) as net:
            assert all(relay.native is None for relay in net.relays)

    trio.run(main)


def _plane_loop(capacity: int) -> tuple[socket.socket, object]:
    keys = NodeKeys.generate(__import__("random").Random(1))
    core = Relay(keys.node_key, keys.local_secret, Params())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    assert engine.native is not None
    loop = engine.relay_loop(sock.fileno(), plane=core._fast, link=True, capacity=capacity)
    return sock, loop


def test_a_full_event_queue_drops_and_counts() -> None:
    sock, loop = _plane_loop(capacity=4)
    assert isinstance(loop, engine.native.RelayLoop)  # type: ignore[union-attr]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    loop.start()
    try:
        # Link handshake datagrams from an unknown peer: the loop cannot open them, so
        # each one is an event for the trio side, which does not read any here.
        datagrams = [bytes([0x11]) + os.urandom(50) for _ in range(20)]
        for datagram in datagrams:
            sender.sendto(datagram, sock.getsockname())
        wait_until(lambda: loop.statistics()["received"] == 20)
        stats = loop.statistics()
        assert stats["queued"] == 4
        assert stats["dropped"] == {"native_queue_full": 16}
        events = loop.take(100)
        assert [event[1] for event in events] == datagrams[:4]
        assert all(event[0] == 0 for event in events)
        assert events[0][2] == sender.getsockname()
    finally:
        loop.stop()
        sender.close()
        sock.close()


def test_stop_and_restart_leave_no_thread_or_descriptor_behind() -> None:
    sock, loop = _plane_loop(capacity=8)
    threads, fds = loop_threads(), open_fds()
    for _ in range(3):
        loop.start()
        assert loop.running
        wait_until(lambda: loop_threads() == threads + 1)  # it names itself once running
        assert loop.stop()
        assert not loop.running
        assert loop_threads() == threads
        assert open_fds() == fds
    assert not loop.stop()
    sock.close()

    async def main() -> None:
        async with hornet.local_network(3, seed=3) as net:
            await trio.sleep(0.1)
            assert loop_threads() == threads + 3
            assert all(relay.native is not None and relay.native.running for relay in net.relays)

    trio.run(main)
    assert loop_threads() == threads


def test_replayed_datagrams_are_not_forwarded_by_the_native_loop() -> None:
    """Attack: someone on the path records the link datagram carrying a data packet to
    the first relay and sends it again, byte for byte; and a neighbour holding the link
    keys re-seals the same HORNET packet under a fresh link counter. The relays must
    forward the packet once: the link replay window and the data replay filter hold on
    the native path (it shares both with the Python side)."""

    async def main() -> None:
        received: list[bytes] = []

        async def sink(circuit: Circuit) -> None:
            async for message in circuit:
                received.append(message)

        async with hornet.local_network(3, service=sink, seed=4) as net:
            links: list[LinkSocket] = []

            class Recording(LinkNetwork):
                async def bind(self, address: tuple[str, int]) -> LinkSocket:
                    link = await super().bind(address)
                    links.append(link)
                    return link

            network = Recording(UdpNetwork(), None, directory_resolver(net.directory))
            async with hornet.open_circuit(
                net.directory, net.service_id, reliable=False, network=network
            ) as circuit:
                await circuit.send(b"warm up")
                with trio.fail_after(10):
                    while not received:
                        await trio.sleep(0.01)
                (link,) = links
                packets: list[tuple[bytes, tuple[str, int]]] = []
                datagrams: list[tuple[bytes, tuple[str, int]]] = []
                send, send_nowait = link.send, link._send_nowait

                async def record_packet(data: bytes, address: tuple[str, int]) -> None:
                    packets.append((data, address))
                    await send(data, address)

                def record_datagram(data: bytes, address: tuple[str, int]) -> bool:
                    datagrams.append((data, address))
                    return send_nowait(data, address)

                link.send, link._send_nowait = record_packet, record_datagram  # type: ignore[method-assign]
                await circuit.send(b"once")
                link.send, link._send_nowait = send, send_nowait  # type: ignore[method-assign]
                with trio.fail_after(10):
                    while len(received) < 2:
                        await trio.sleep(0.01)
                await trio.sleep(0.2)
                before = sum(r.statistics().forwarded for r in net.relays)
                first = next(r for r in net.relays if r.address == packets[0][1])
                assert first.native is not None
                replays = first.statistics().dropped.get("replay", 0)
                for _ in range(3):
                    send_nowait(*datagrams[0])  # the same link datagram
                    await send(*packets[0])  # the same HORNET packet, freshly sealed
                await trio.sleep(0.5)
                assert sum(r.statistics().forwarded for r in net.relays) == before
                assert first.statistics().dropped.get("replay", 0) == replays + 3
                assert first.native.statistics().dropped.get("replay", 0) >= 3
                assert received == [b"warm up", b"once"]

    trio.run(main)


def test_forwarder_and_sink_modes_move_datagrams_unchanged() -> None:
    assert engine.native is not None
    sink_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink_sock.bind(("127.0.0.1", 0))
    feedback = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    feedback.bind(("127.0.0.1", 0))
    feedback.settimeout(5)
    fwd_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fwd_sock.bind(("127.0.0.1", 0))
    sink = engine.native.RelayLoop(
        sink_sock.fileno(), sink=True, feedback=feedback.getsockname(), feedback_every=10
    )
    forwarder = engine.native.RelayLoop(fwd_sock.fileno(), forward_to=sink_sock.getsockname())
    sink.start()
    forwarder.start()
    source = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        datagrams = [os.urandom(100 + i) for i in range(30)]
        sent = engine.native.send_datagrams(source.fileno(), *fwd_sock.getsockname(), datagrams)
        assert sent == 30
        counts = [int.from_bytes(feedback.recv(8), "big") for _ in range(3)]
        assert counts == [10, 20, 30]
        count, size, seconds = sink.take_sink_figures()
        assert (count, size) == (30, sum(len(d) for d in datagrams))
        assert seconds >= 0
        assert forwarder.statistics()["forwarded"] == 30
    finally:
        for loop in (sink, forwarder):
            loop.stop()
        for s in (sink_sock, feedback, fwd_sock, source):
            s.close()


def _link_pair() -> tuple[object, object]:
    """Two ends of one link session (native objects): the relay's and its neighbour's."""
    assert engine.native is not None
    a, b = os.urandom(32), os.urandom(32)
    relay = engine.native.LinkSession(b, a, 0x22, 1 << 32)  # we were the responder
    neighbour = engine.native.LinkSession(a, b, 0x21, 1 << 32)
    return relay, neighbour


def _data_packet() -> bytes:
    """A packet shaped like a DATA packet (type, hops byte, size), with garbage inside."""
    params = Params()
    return bytes((0x02, params.max_hops)) + os.urandom(params.data_packet_len(1024) - 2)


def test_the_native_loop_enforces_each_neighbours_data_rate() -> None:
    """Attack: a neighbour with a valid link session floods DATA packets past its data
    token bucket (``Limits.data_rate`` / ``data_burst``). The native loop must charge the
    bucket before any cryptography, as admission does on the trio path."""
    assert engine.native is not None
    keys = NodeKeys.generate(__import__("random").Random(2))
    core = Relay(keys.node_key, keys.local_secret, Params())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    loop = engine.relay_loop(
        sock.fileno(), plane=core._fast, link=True, data_rate=1.0, data_burst=5.0
    )
    neighbour_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    neighbour_sock.bind(("127.0.0.1", 0))
    relay_end, neighbour_end = _link_pair()
    assert loop.set_peer(*neighbour_sock.getsockname(), None, [(0, relay_end, 60.0)])
    loop.start()
    try:
        for _ in range(50):
            neighbour_sock.sendto(neighbour_end.seal(_data_packet()), sock.getsockname())  # type: ignore[attr-defined]
        wait_until(lambda: loop.statistics()["received"] == 50)
        dropped = loop.statistics()["dropped"]
        # The burst reached the data plane, which has no key epoch yet: those packets go
        # to the trio side (the core loads the epoch); the rest never got that far.
        passed = loop.take(100)
        assert 5 <= len(passed) <= 6
        assert all(event[0] == 1 for event in passed)
        assert dropped == {"rate_limited": 50 - len(passed)}
    finally:
        loop.stop()
        neighbour_sock.close()
        sock.close()


def test_the_native_loop_uses_no_session_past_the_time_python_gave_it() -> None:
    """A session the link endpoint retires (``reject_after_time``, superseded) must not
    open datagrams on the native path after its deadline: they go to the trio side,
    whose endpoint has dropped it."""
    assert engine.native is not None
    sock, loop = _plane_loop(capacity=16)
    neighbour_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    neighbour_sock.bind(("127.0.0.1", 0))
    relay_end, neighbour_end = _link_pair()
    peer = neighbour_sock.getsockname()
    loop.start()  # type: ignore[attr-defined]
    try:
        assert loop.set_peer(*peer, None, [(0, relay_end, 0.2)])  # type: ignore[attr-defined]
        first = neighbour_end.seal(_data_packet())  # type: ignore[attr-defined]
        neighbour_sock.sendto(first, sock.getsockname())
        wait_until(lambda: loop.statistics()["received"] == 1)  # type: ignore[attr-defined]
        # Opened here (an event of kind 1: the data plane wants a key epoch first).
        assert [event[0] for event in loop.take(10)] == [1]  # type: ignore[attr-defined]
        time.sleep(0.3)
        late = neighbour_end.seal(_data_packet())  # type: ignore[attr-defined]
        neighbour_sock.sendto(late, sock.getsockname())
        wait_until(lambda: loop.statistics()["received"] == 2)  # type: ignore[attr-defined]
        assert loop.take(10) == [(0, late, peer)]  # type: ignore[attr-defined]
        assert relay_end.top == 0  # type: ignore[attr-defined]  (the late one was not opened)
    finally:
        loop.stop()  # type: ignore[attr-defined]
        neighbour_sock.close()
        sock.close()

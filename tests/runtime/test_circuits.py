"""The trio runtime on an in-memory network, under trio's autojump clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import hornet
from hornet.circuit.circuit import Circuit, CircuitError, NoPathError, SetupTimeoutError
from hornet.core.chdr import TYPE_DATA
from hornet.core.e2e import Outgoing
from hornet.core.stream import CONN_ID_LEN, FrameKind, Stream, StreamFrame
from hornet.errors import LocalProtocolError
from hornet.node.destination import serve_rendezvous
from hornet.testing.memnet import MemoryNetwork
from hornet.transport.link import LinkSocket


async def echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(b"echo:" + message)


async def test_duplex_circuit_round_trip(autojump_clock: trio.testing.MockClock) -> None:
    mem = MemoryNetwork()
    async with hornet.local_network(5, service=echo, network=mem, seed=1) as net:
        async with hornet.open_circuit(net.directory, net.service_id, network=mem) as circuit:
            for i in range(5):
                await circuit.send(b"ping %d" % i)
                assert await circuit.receive() == b"echo:ping %d" % i
            big = bytes(range(256)) * 40  # 10 KB: many fragments
            await circuit.send(big)
            assert await circuit.receive() == b"echo:" + big
        assert sum(r.statistics().forwarded for r in net.relays) > 0
        assert net.service is not None and net.service.acceptor.accepted == 1


async def test_reliable_mode_delivers_everything_in_order_at_10_percent_loss(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork(seed=3)
    received: list[bytes] = []
    done = trio.Event()

    async def sink(circuit: Circuit) -> None:
        async for message in circuit:
            received.append(message)
            if len(received) == 200:
                done.set()

    async with hornet.local_network(6, service=sink, network=mem, seed=2, loss=0.10) as net:
        async with hornet.open_circuit(
            net.directory, net.service_id, network=mem, attempts=10
        ) as circuit:
            for i in range(200):
                await circuit.send(b"%04d" % i + bytes(700))
            with trio.fail_after(120):
                await done.wait()
        dropped = sum(r.statistics().dropped.get("injected_loss", 0) for r in net.relays)
    assert received == [b"%04d" % i + bytes(700) for i in range(200)]
    assert dropped > 50  # the loss was real


async def test_circuit_renews_itself_across_exp(autojump_clock: trio.testing.MockClock) -> None:
    mem = MemoryNetwork()
    async with hornet.local_network(5, service=echo, network=mem, seed=4) as net:
        async with hornet.open_circuit(
            net.directory, net.service_id, network=mem, lifetime=20
        ) as circuit:
            first_exp = circuit.exp
            for i in range(30):  # 90 s of traffic: several EXP periods
                await circuit.send(b"tick %d" % i)
                assert await circuit.receive() == b"echo:tick %d" % i
                await trio.sleep(3)
            assert circuit.exp > first_exp + 40
        assert net.service is not None and net.service.acceptor.accepted == 1  # one connection


async def test_a_dead_relay_makes_the_circuit_rebuild_over_other_relays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    dead: set[tuple[str, int]] = set()
    mem = MemoryNetwork(filter=lambda data, src, dst: src not in dead and dst not in dead)
    async with hornet.local_network(8, service=echo, network=mem, seed=5) as net:
        async with hornet.open_circuit(
            net.directory, net.service_id, network=mem, hops=2
        ) as circuit:
            await circuit.send(b"before")
            assert await circuit.receive() == b"echo:before"
            victim = next(r for r in net.relays if r.statistics().forwarded > 0)
            dead.add(victim.address)  # the relay is gone: nothing in, nothing out
            for i in range(5):
                await circuit.send(b"after %d" % i)
            for i in range(5):
                with trio.fail_after(60):
                    assert await circuit.receive() == b"echo:after %d" % i
            assert circuit.rebuilds >= 1


async def test_garbage_datagrams_are_counted_and_the_relay_keeps_serving(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork()
    async with hornet.local_network(4, service=echo, network=mem, seed=6) as net:
        attacker = await mem.bind(("127.0.0.1", 0))
        target = net.relays[0]
        for size in (0, 1, 17, 500, 1500, 3000):
            await attacker.send(bytes([TYPE_DATA, 7]) + bytes(size), target.address)
            await attacker.send(bytes(size), target.address)
        await trio.sleep(1)
        # None of it is a link datagram: the relay's link layer drops and counts it all.
        assert isinstance(target.socket, LinkSocket)
        assert target.socket.statistics().dropped["malformed"] == 12
        async with hornet.open_circuit(net.directory, net.service_id, network=mem) as circuit:
            await circuit.send(b"still here")
            assert await circuit.receive() == b"echo:still here"


async def test_datagram_mode_sends_raw_packets(autojump_clock: trio.testing.MockClock) -> None:
    mem = MemoryNetwork()
    async with hornet.local_network(4, service=echo, network=mem, seed=7) as net:
        async with hornet.open_circuit(
            net.directory, net.service_id, network=mem, reliable=False
        ) as circuit:
            await circuit.send(b"dgram")
            assert await circuit.receive() == b"echo:dgram"
            with pytest.raises(LocalProtocolError):
                await circuit.send(bytes(circuit.max_datagram + 1))


async def test_clear_errors_for_no_path_and_unreachable_relays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork()
    async with hornet.local_network(3, service=echo, network=mem, seed=8) as net:
        with pytest.raises(NoPathError, match="no path"):
            async with hornet.open_circuit(net.directory, net.service_id, network=mem, hops=5):
                pass
        mem.filter = lambda data, src, dst: False  # every relay unreachable
        with pytest.raises(SetupTimeoutError, match="3 attempts"):
            async with hornet.open_circuit(net.directory, net.service_id, network=mem):
                pass


async def test_rendezvous_circuit_hides_both_ends(autojump_clock: trio.testing.MockClock) -> None:
    mem = MemoryNetwork()
    async with hornet.local_network(8, network=mem, seed=9) as net:
        async with trio.open_nursery() as nursery:
            descriptor = await nursery.start(
                lambda task_status: serve_rendezvous(
                    net.directory, echo, network=mem, task_status=task_status
                )
            )
            async with hornet.open_circuit(net.directory, descriptor, network=mem, hops=2) as c:
                for i in range(3):
                    await c.send(b"hidden %d" % i)
                    assert await c.receive() == b"echo:hidden %d" % i
                await c.send(bytes(5000))
                assert await c.receive() == b"echo:" + bytes(5000)
            nursery.cancel_scope.cancel()


async def test_receive_after_the_peer_closed_raises(autojump_clock: trio.testing.MockClock) -> None:
    async def one_shot(circuit: Circuit) -> None:
        await circuit.send(b"bye")

    mem = MemoryNetwork()
    async with hornet.local_network(4, service=one_shot, network=mem, seed=10) as net:
        async with hornet.open_circuit(net.directory, net.service_id, network=mem) as circuit:
            await circuit.send(b"hi")
            assert [m async for m in circuit] == [b"bye"]
            with pytest.raises(CircuitError):
                await circuit.receive()


async def test_a_frame_breaking_the_stream_protocol_is_dropped_and_counted() -> None:
    class NullLink:
        exp = 0

        def seal(self, body: bytes, now: float) -> Outgoing:
            return Outgoing(b"\x00" * 8, body)

    async def send_packet(out: Outgoing) -> None:
        pass

    conn = b"c" * CONN_ID_LEN
    circuit = Circuit(Stream(conn, 500, reliable=False), NullLink(), send_packet)
    # DATA is a reliable-mode frame: on a datagram connection the stream refuses it.
    circuit.frame_received(StreamFrame(conn, FrameKind.DATA, 0, 0, 0, 0, b"x"))
    assert circuit.bad_frames == 1
    circuit.frame_received(StreamFrame(conn, FrameKind.DATAGRAM, 0, 0, 0, 0, b"still here"))
    with trio.fail_after(1):
        assert await circuit.receive() == b"still here"


async def test_a_relay_never_answers_a_packet_it_drops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The error-oracle attack: send a relay tampered copies of real setup and data packets
    and garbage, and listen for any answer that would say why they were dropped."""
    mem = MemoryNetwork()
    recorded: list[tuple[bytes, tuple[str, int]]] = []

    def record(data: bytes, source: object, destination: tuple[str, int]) -> bool:
        recorded.append((data, destination))
        return True

    async with hornet.local_network(4, service=echo, network=mem, seed=9, link=False) as net:
        mem.filter = record  # type: ignore[assignment]
        async with hornet.open_circuit(
            net.directory, net.service_id, network=mem, link=False, hops=2
        ) as circuit:
            await circuit.send(b"a real message")
            assert await circuit.receive() == b"echo:a real message"
        mem.filter = None
        # The target: a relay of the path, as the client picked it.
        used = {dst for _, dst in recorded}
        target = next(relay for relay in net.relays if relay.address in used)
        to_target = [data for data, dst in recorded if dst == target.address]
        assert to_target, "the circuit's packets were not recorded"
        attacker = await mem.bind(("127.0.0.1", 0))
        before = sum(target.statistics().dropped.values())
        sent = 0
        for packet in to_target:
            for bit in range(0, len(packet) * 8, 97):  # tampered copies, every part
                tampered = bytearray(packet)
                tampered[bit // 8] ^= 1 << (bit % 8)
                await attacker.send(bytes(tampered), target.address)
                sent += 1
            await attacker.send(packet, target.address)  # a replay of the original
            sent += 1
        for size in (0, 1, 17, 500, 1500):
            await attacker.send(bytes(size), target.address)
            sent += 1
        with trio.move_on_after(5) as silence:
            answer = await attacker.receive()
            pytest.fail(f"the relay answered a dropped packet: {answer[0][:16].hex()}…")
        assert silence.cancelled_caught
        dropped = sum(target.statistics().dropped.values()) - before
        # Every tampered and garbage packet was dropped, silently. (Replays of the originals
        # may be forwarded onwards, never answered: the listener above heard nothing.)
        assert dropped >= sent - len(to_target), (dropped, sent)

"""The link layer's peer table against one host's handshake flood, on real UDP sockets.

A local network (relays and an echo service on 127.0.0.1) carries a datagram circuit
whose entry relay is pinned; an attacker on 127.0.0.2 completes thousands of BOLT 8
handshakes with that relay from as many source ports, at the relay's handshake rate.
"""

from __future__ import annotations

import random

import trio

import hornet
from hornet.circuit.circuit import Circuit
from hornet.client import Entry
from hornet.core.crypto import SecretKey
from hornet.link.channel import TYPE_ACT_ONE, TYPE_ACT_THREE, ChannelSession
from hornet.link.noise import Initiator
from hornet.transport.udp import Address

ATTACKER_HOST = "127.0.0.2"
HANDSHAKES = 4200
RATE = 400.0  # handshakes per second: below the relay's 500/s
ECHO_INTERVAL = 0.02


async def echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(b"echo:" + message)


async def _handshake(
    relay: Address, relay_key: bytes, rng: random.Random, ports: list[int]
) -> bool:
    """One complete handshake from a port of ATTACKER_HOST not used before, then one
    authenticated keepalive, so the entry is as recently active as any victim's."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    try:
        while True:  # the next free port (the kernel would reuse ephemeral ones)
            ports[0] += 1
            try:
                await sock.bind((ATTACKER_HOST, ports[0]))
                break
            except OSError:
                continue
        noise = Initiator(SecretKey.from_rng(rng), relay_key, SecretKey.from_rng(rng))
        with trio.move_on_after(2):
            await sock.sendto(bytes((TYPE_ACT_ONE,)) + noise.act_one(), relay)
            act_two, _ = await sock.recvfrom(2048)
            noise.read_act_two(act_two[1:])
            act_three, keys = noise.act_three()
            await sock.sendto(bytes((TYPE_ACT_THREE,)) + act_three, relay)
            session = ChannelSession(keys, initiator=True, created=0.0)
            session.open((await sock.recvfrom(2048))[0])  # the relay's confirmation
            await sock.sendto(session.seal(b""), relay)
            return True
        return False
    finally:
        sock.close()


async def test_a_handshake_flood_from_one_host_does_not_evict_a_live_circuits_links() -> None:
    async with hornet.local_network(3, service=echo, seed=41) as net:
        target = net.relays[0]
        info = next(r for r in net.directory if r.address == target.address)
        async with hornet.open_circuit(
            net.directory, net.service_id, reliable=False, entry=Entry(info), hops=3
        ) as circuit:
            await circuit.send(b"warm-up")
            with trio.fail_after(10):
                assert await circuit.receive() == b"echo:warm-up"
            counts = {"sent": 0, "echoed": 0, "done": 0, "failed": 0}
            attack_over = trio.Event()

            ports = [20_000]

            async def attacker(worker: int, next_slot: list[int], start: float) -> None:
                rng = random.Random(worker)
                while counts["done"] < HANDSHAKES:
                    slot = next_slot[0]
                    next_slot[0] += 1
                    await trio.sleep_until(start + slot / RATE)
                    if await _handshake(target.address, info.public_key, rng, ports):
                        counts["done"] += 1
                    else:
                        counts["failed"] += 1

            async def flood() -> None:
                with trio.fail_after(60):
                    async with trio.open_nursery() as attackers:
                        slot = [0]
                        for worker in range(8):
                            attackers.start_soon(attacker, worker, slot, trio.current_time())
                attack_over.set()

            async def receiver() -> None:
                while True:
                    await circuit.receive()
                    counts["echoed"] += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood)
                nursery.start_soon(receiver)
                while not attack_over.is_set():
                    await circuit.send(b"ping %d" % counts["sent"])
                    counts["sent"] += 1
                    await trio.sleep(ECHO_INTERVAL)
                for _ in range(50):  # one more second after the attack
                    await circuit.send(b"ping %d" % counts["sent"])
                    counts["sent"] += 1
                    await trio.sleep(ECHO_INTERVAL)
                await trio.sleep(1.0)
                nursery.cancel_scope.cancel()
        stats = target.socket.statistics()
    assert counts["done"] >= HANDSHAKES, counts
    assert counts["echoed"] / counts["sent"] == 1.0, (counts, stats.dropped)
    # The attacker only ever pushed out its own entries (the kernel reuses some ports).
    assert stats.dropped.get("peer_evicted_source", 0) > 4000, (counts, stats)
    assert stats.dropped.get("peer_evicted", 0) == 0
    assert stats.peers <= 64 + 3  # its quota, the client and the two other relays

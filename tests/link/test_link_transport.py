"""LinkNetwork over the in-memory network under trio's autojump clock (no real sleeps)."""

from __future__ import annotations

import trio
import trio.testing

from hornet.core.crypto import SecretKey
from hornet.link.channel import TYPE_ACT_ONE, TYPE_DATA_FROM_INITIATOR
from hornet.testing.memnet import MemoryNetwork
from hornet.transport.link import LinkNetwork, LinkSocket
from hornet.transport.udp import Address

KEY_A = SecretKey(b"\x01" * 32)
KEY_B = SecretKey(b"\x02" * 32)
ADDR_A: Address = ("127.0.0.1", 7001)
ADDR_B: Address = ("127.0.0.1", 7002)
DIRECTORY = {ADDR_A: KEY_A.public_key, ADDR_B: KEY_B.public_key}
PACKET = bytes(range(256)) * 4


async def _collect(sock: LinkSocket, into: list[tuple[bytes, Address]]) -> None:
    while True:
        into.append(await sock.receive())


async def _pair(
    nursery: trio.Nursery, memnet: MemoryNetwork, resolve_for_a: dict[Address, bytes] | None = None
) -> tuple[LinkSocket, LinkSocket, list[tuple[bytes, Address]], list[tuple[bytes, Address]]]:
    net_a = LinkNetwork(memnet, KEY_A, (resolve_for_a or DIRECTORY).get, nursery)
    net_b = LinkNetwork(memnet, KEY_B, DIRECTORY.get, nursery)
    a, b = await net_a.bind(ADDR_A), await net_b.bind(ADDR_B)
    got_a: list[tuple[bytes, Address]] = []
    got_b: list[tuple[bytes, Address]] = []
    nursery.start_soon(_collect, a, got_a)
    nursery.start_soon(_collect, b, got_b)
    return a, b, got_a, got_b


async def test_packets_flow_both_ways_and_the_wire_carries_no_plaintext(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[bytes] = []
    memnet = MemoryNetwork(filter=lambda data, _s, _d: seen.append(data) is None)
    async with trio.open_nursery() as nursery:
        a, b, got_a, got_b = await _pair(nursery, memnet)
        await a.send(PACKET, ADDR_B)
        await trio.sleep(1)
        await b.send(b"reply" * 10, ADDR_A)
        await trio.sleep(1)
        assert got_b == [(PACKET, ADDR_A)]
        assert got_a == [(b"reply" * 10, ADDR_B)]
        assert not any(PACKET[:32] in d or b"replyreply" in d for d in seen)
        assert seen[0][0] == TYPE_ACT_ONE
        nursery.cancel_scope.cancel()


async def test_handshake_completes_under_30_percent_loss(
    autojump_clock: trio.testing.MockClock,
) -> None:
    memnet = MemoryNetwork(loss=0.3, seed=5)
    async with trio.open_nursery() as nursery:
        a, b, _, got_b = await _pair(nursery, memnet)
        with trio.fail_after(10):
            await a.connect(ADDR_B)
        for i in range(20):
            await a.send(i.to_bytes(2, "big") * 100, ADDR_B)
        await trio.sleep(1)
        assert a.endpoint.is_established(ADDR_B) and b.endpoint.is_established(ADDR_A)
        assert memnet.lost > 0
        assert 5 <= len(got_b) <= 20
        assert len({p for p, _ in got_b}) == len(got_b)
        nursery.cancel_scope.cancel()


async def test_replayed_duplicated_and_tampered_datagrams_are_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    captured: list[bytes] = []

    def capture(data: bytes, _s: Address, _d: Address) -> bool:
        if data[0] == TYPE_DATA_FROM_INITIATOR and len(data) > 100:
            captured.append(data)
        return True

    memnet = MemoryNetwork(filter=capture)
    async with trio.open_nursery() as nursery:
        a, b, _, got_b = await _pair(nursery, memnet)
        await a.send(PACKET, ADDR_B)
        await trio.sleep(1)
        (sealed,) = captured
        raw = a._inner  # the attacker replays from A's own address
        await raw.send(sealed, ADDR_B)  # replay
        await raw.send(sealed, ADDR_B)  # duplicate
        forged = bytearray(sealed)
        forged[200] ^= 0x80
        await raw.send(bytes(forged), ADDR_B)  # tampered body, seen counter: replay
        forged_counter = bytearray(sealed)
        forged_counter[1] ^= 0x40
        await raw.send(bytes(forged_counter), ADDR_B)  # tampered counter
        await trio.sleep(1)
        assert got_b == [(PACKET, ADDR_A)]
        rejected = b.statistics().dropped
        assert rejected["replay"] == 3
        assert rejected["integrity"] == 1
        nursery.cancel_scope.cancel()


async def test_wrong_responder_key_fails_the_handshake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wrong = {ADDR_A: KEY_A.public_key, ADDR_B: SecretKey(b"\x03" * 32).public_key}
    memnet = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b, _, got_b = await _pair(nursery, memnet, wrong)
        await a.send(PACKET, ADDR_B)
        with trio.move_on_after(30) as scope:
            await a.connect(ADDR_B)
        assert scope.cancelled_caught
        assert got_b == []
        assert not a.endpoint.is_established(ADDR_B)
        assert a.statistics().dropped["handshake_timeout"] >= 1
        assert a.statistics().dropped["queue_handshake_failed"] == 1
        assert b.statistics().dropped["integrity"] >= 1
        nursery.cancel_scope.cancel()


async def test_client_connects_to_the_backward_relay_which_then_reaches_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    memnet = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        relay = await LinkNetwork(memnet, KEY_A, DIRECTORY.get, nursery).bind(ADDR_A)
        client = await LinkNetwork(memnet, None, DIRECTORY.get, nursery).bind(("127.0.0.1", 0))
        got: list[tuple[bytes, Address]] = []
        nursery.start_soon(_collect, client, got)
        nursery.start_soon(_collect, relay, [])
        with trio.fail_after(5):
            await client.connect(ADDR_A)
        await relay.send(b"backward packet", client.address)
        await trio.sleep(1)
        assert got == [(b"backward packet", ADDR_A)]
        nursery.cancel_scope.cancel()


async def test_links_survive_rekeying_over_time(autojump_clock: trio.testing.MockClock) -> None:
    memnet = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, _, _, got_b = await _pair(nursery, memnet)
        for i in range(40):
            await a.send(i.to_bytes(4, "big"), ADDR_B)
            await trio.sleep(10)
        assert [p for p, _ in got_b] == [i.to_bytes(4, "big") for i in range(40)]
        assert a.statistics().handshakes_completed >= 3
        nursery.cancel_scope.cancel()
    a.close()


async def test_without_a_nursery_timers_run_as_system_tasks_until_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    memnet = MemoryNetwork(loss=0.3, seed=9)  # the handshake needs retransmission timers
    living = trio.lowlevel.current_statistics().tasks_living
    a = await LinkNetwork(memnet, KEY_A, DIRECTORY.get).bind(ADDR_A)
    b = await LinkNetwork(memnet, KEY_B, DIRECTORY.get).bind(ADDR_B)
    got_b: list[tuple[bytes, Address]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_collect, a, [])
        nursery.start_soon(_collect, b, got_b)
        with trio.fail_after(30):
            await a.connect(ADDR_B)
        for _ in range(10):
            await a.send(PACKET, ADDR_B)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert got_b and all(got == (PACKET, ADDR_A) for got in got_b)
    assert memnet.lost > 0
    assert a.endpoint.is_established(ADDR_B)
    assert trio.lowlevel.current_statistics().tasks_living == living + 2  # two timer tasks
    a.close()
    b.close()
    await trio.sleep(1)
    assert trio.lowlevel.current_statistics().tasks_living == living

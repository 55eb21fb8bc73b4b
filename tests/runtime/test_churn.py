"""Relays that die and come back: failure memory, fast rebuilds, errors that say what
happened. In memory under trio's autojump clock; ``tests/netns`` kills real processes."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import attrs
import pytest
import trio
import trio.testing

import hornet
from hornet.circuit.circuit import (
    Circuit,
    DescriptorExpiredError,
    NoPathError,
    SetupTimeoutError,
    StaleDirectoryError,
)
from hornet.circuit.endpoint import pick_relays
from hornet.circuit.health import RelayHealth
from hornet.core.params import Params
from hornet.core.rendezvous import Descriptor
from hornet.directory.model import Directory, EpochKey, RelayInfo
from hornet.link.channel import DATA_OVERHEAD, TYPE_DATA_FROM_INITIATOR
from hornet.node.destination import serve_rendezvous
from hornet.testing.memnet import MemoryNetwork
from hornet.transport.udp import unix_now


async def echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(b"echo:" + message)


def test_a_failed_relay_backs_off_exponentially_and_is_retried_after() -> None:
    health = RelayHealth(base=5, cap=60)
    health.failed([b"a"], now=100)
    assert health.backing_off(104) == {b"a": 105}
    assert health.backing_off(105) == {}  # retried once the back-off ends
    health.failed([b"a"], now=105)  # still dead: twice as long
    assert health.backing_off(105) == {b"a": 115}
    for _ in range(10):
        health.failed([b"a"], now=200)
    assert health.backing_off(200) == {b"a": 260}  # capped
    health.worked([b"a"])
    assert health.backing_off(200) == {} and health.failures(b"a") == 0


def test_pick_relays_prefers_fresh_then_excluded_then_soonest_back() -> None:
    relays = [RelayInfo(bytes([i]) * 8, b"", ("10.0.0.1", i)) for i in range(1, 7)]
    ids = [r.node_id for r in relays]
    backoff = {ids[0]: 50.0, ids[1]: 10.0}
    rng = random.Random(1)
    for _ in range(20):
        chosen = {r.node_id for r in pick_relays(relays, 3, rng, {ids[2]}, backoff)}
        assert chosen == set(ids[3:])
        chosen = {r.node_id for r in pick_relays(relays, 5, rng, {ids[2]}, backoff)}
        assert chosen == {*ids[3:], ids[2], ids[1]}


@pytest.mark.parametrize("seed", range(6))
async def test_a_relay_dying_under_a_reliable_stream_on_a_small_network(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    # Five relays and three hops each way: the old path holds most of them, so a
    # rebuild that avoided all of its relays had to fall back to the dead one.
    dead: set[tuple[str, int]] = set()
    mem = MemoryNetwork(
        seed=seed, filter=lambda data, src, dst: src not in dead and dst not in dead
    )
    health = RelayHealth()
    async with hornet.local_network(5, service=echo, network=mem, seed=100 + seed) as net:
        async with hornet.open_circuit(
            net.directory, net.service_id, network=mem, health=health
        ) as circuit:
            received: list[bytes] = []
            arrivals: list[float] = []

            async def reader() -> None:
                for _ in range(60):
                    received.append(await circuit.receive())
                    arrivals.append(trio.current_time())

            with trio.fail_after(120):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(reader)
                    for i in range(60):
                        if i == 20:
                            victim = next(r for r in net.relays if r.statistics().forwarded)
                            dead.add(victim.address)
                        await circuit.send(b"%03d" % i)
                        await trio.sleep(0.05)
            assert received == [b"echo:%03d" % i for i in range(60)]  # none lost, in order
            stall = max(b - a for a, b in itertools.pairwise(arrivals))
            assert stall <= 5.0
            assert circuit.rebuilds >= 1
            # Of the stall, the rebuild itself (stall detected -> new circuit) is recorded.
            assert len(circuit.rebuild_seconds) == circuit.rebuilds
            assert max(circuit.rebuild_seconds) < stall
        # Later circuits avoid the dead relay: every open succeeds at the first try.
        for _ in range(5):
            start = trio.current_time()
            async with hornet.open_circuit(
                net.directory, net.service_id, network=mem, health=health
            ) as circuit:
                await circuit.send(b"x")
                assert await circuit.receive() == b"echo:x"
            assert trio.current_time() - start < 1.0


async def test_a_relay_that_comes_back_is_chosen_again_after_its_back_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork()
    health = RelayHealth(base=5)
    # Three relays: two-hop circuits can avoid the one backing off, three-hop ones cannot.
    async with hornet.local_network(3, service=echo, network=mem, seed=11) as net:
        returned = net.relays[0].node_id
        health.failed([returned], unix_now())  # it failed once, and is up again
        for _ in range(3):
            async with hornet.open_circuit(
                net.directory, net.service_id, network=mem, health=health, hops=2
            ):
                pass
        used = {r.node_id for r in net.relays if r.statistics().forwarded}
        assert returned not in used
        await trio.sleep(6)
        async with hornet.open_circuit(
            net.directory, net.service_id, network=mem, health=health, hops=3
        ):
            pass
        assert net.relays[0].statistics().forwarded > 0  # three hops of three: needed
        assert health.failures(returned) == 0  # it worked: forgotten


async def test_an_unknown_destination_is_a_no_path_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork()
    async with hornet.local_network(3, network=mem, seed=12) as net:
        with pytest.raises(NoPathError, match="not in the directory"):
            async with hornet.open_circuit(net.directory, bytes(8), network=mem):
                pass


async def test_an_expired_descriptor_fails_at_once_without_a_setup(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork()
    async with hornet.local_network(4, network=mem, seed=13) as net:
        async with trio.open_nursery() as nursery:
            descriptor = await nursery.start(lambda task_status: serve_rendezvous(
                net.directory, echo, network=mem, lifetime=10, task_status=task_status
            ))
            await trio.sleep(60)  # the descriptor's lifetime passes
            sent = mem.sent
            start = trio.current_time()
            with pytest.raises(DescriptorExpiredError, match="expired"):
                async with hornet.open_circuit(net.directory, descriptor, network=mem):
                    pass
            assert trio.current_time() - start < 0.1 and mem.sent == sent
            nursery.cancel_scope.cancel()


async def test_a_stale_directory_fails_at_once_and_says_so(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork()
    async with hornet.local_network(4, service=echo, network=mem, seed=14) as net:
        old = net.directory.params.epoch_of(unix_now()) - 5
        stale = Directory(
            tuple(attrs.evolve(r, setup_keys=(EpochKey(old, r.public_key),))
                  for r in net.directory),
            net.directory.params,
        )
        start = trio.current_time()
        with pytest.raises(StaleDirectoryError, match="refresh the directory") as error:
            async with hornet.open_circuit(stale, net.service_id, network=mem):
                pass
        assert not isinstance(error.value, SetupTimeoutError)
        assert trio.current_time() - start < 0.1  # not retried for 3 × 2 s


async def test_a_hidden_destination_renews_and_republishes_through_three_lifetimes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork()
    published: list[Descriptor] = []
    async with hornet.local_network(5, network=mem, seed=15) as net:
        async with trio.open_nursery() as nursery:
            first = await nursery.start(lambda task_status: serve_rendezvous(
                net.directory, echo, network=mem, lifetime=60,
                on_descriptor=published.append, task_status=task_status,
            ))
            start = unix_now()
            answered = 0
            while unix_now() - start < 4 * 60:  # four descriptor lifetimes
                async with hornet.open_circuit(
                    net.directory, published[-1], network=mem, hops=2
                ) as circuit:
                    await circuit.send(b"still there?")
                    with trio.fail_after(10):
                        assert await circuit.receive() == b"echo:still there?"
                answered += 1
                await trio.sleep(15)
            assert answered >= 16
            assert len({d.encode() for d in published}) >= 4  # a new one each lifetime
            assert published[0] == first
            with pytest.raises(DescriptorExpiredError):
                async with hornet.open_circuit(net.directory, first, network=mem, hops=2):
                    pass
            nursery.cancel_scope.cancel()


async def test_a_hidden_destination_recovers_when_its_rendezvous_point_dies(
    autojump_clock: trio.testing.MockClock,
) -> None:
    dead: set[tuple[str, int]] = set()
    mem = MemoryNetwork(filter=lambda data, src, dst: src not in dead and dst not in dead)
    published: list[Descriptor] = []
    async with hornet.local_network(6, network=mem, seed=16) as net:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve_rendezvous(
                net.directory, echo, network=mem, lifetime=600, renew_every=20,
                on_descriptor=published.append, task_status=task_status,
            ))
            rp = net.directory.get(published[-1].rp_id)
            assert rp is not None
            dead.add(rp.address)  # the RP is gone
            await trio.sleep(30)  # one renewal later
            assert published[-1].rp_id != rp.node_id
            async with hornet.open_circuit(
                net.directory, published[-1], network=mem, hops=2
            ) as circuit:
                await circuit.send(b"new rp")
                with trio.fail_after(10):
                    assert await circuit.receive() == b"echo:new rp"
            nursery.cancel_scope.cancel()


async def test_lost_setup_packets_cost_a_hedge_interval_not_the_setup_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The client's first two setup packets vanish. A race that waits for the setup
    # timeout (2 s) before trying again opens in more than 2 s; one that sends a new
    # setup over another path every hedge interval (at most 0.5 s) opens in about 1 s.
    relays: set[tuple[str, int]] = set()
    lost: list[int] = []
    setup_wire = Params().setup_packet_len + DATA_OVERHEAD  # P➊ inside a link record

    def drop_two_setups(data: bytes, src: tuple[str, int], dst: tuple[str, int]) -> bool:
        if src not in relays and dst in relays and data[0] == TYPE_DATA_FROM_INITIATOR \
                and len(data) == setup_wire and len(lost) < 2:
            lost.append(len(data))
            return False
        return True

    mem = MemoryNetwork(filter=drop_two_setups)
    async with hornet.local_network(6, service=echo, network=mem, seed=21) as net:
        relays.update(r.address for r in net.directory)
        start = trio.current_time()
        async with hornet.open_circuit(
            net.directory, net.service_id, network=mem, health=RelayHealth()
        ) as circuit:
            opened = trio.current_time() - start
            await circuit.send(b"x")
            assert await circuit.receive() == b"echo:x"
    assert len(lost) == 2
    assert opened < 1.5, opened


async def _hidden_stream(
    circuit: Circuit, count: int, *, at: int = -1, event: Callable[[], None] = lambda: None
) -> list[bytes]:
    """Send ``count`` numbered messages 0.05 s apart (calling ``event`` before number
    ``at``) and return the echoes."""
    received: list[bytes] = []

    async def reader() -> None:
        for _ in range(count):
            received.append(await circuit.receive())

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            for i in range(count):
                if i == at:
                    event()
                await circuit.send(b"%03d" % i)
                await trio.sleep(0.05)
    return received


async def test_a_hidden_stream_follows_new_descriptors_and_loses_nothing_when_its_rp_dies(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The RP dies while an echo of the hidden destination is on its way to it: the
    # destination renews as soon as that connection stalls (not at its 600 s EXP), and
    # the client, rebuilding, takes the new descriptor and resends what the dead
    # circuit had not delivered, over the same connection.
    hidden = ("127.0.0.1", 40000)
    dead: set[tuple[str, int]] = set()
    armed: list[tuple[str, int]] = []

    def rp_dies(data: bytes, src: tuple[str, int], dst: tuple[str, int]) -> bool:
        if armed and src == hidden:
            dead.add(armed.pop())  # this echo is now in flight to a dead RP
        return src not in dead and dst not in dead

    mem = MemoryNetwork(filter=rp_dies)
    published: list[Descriptor] = []

    async def newest() -> Descriptor:
        return published[-1]

    async with hornet.local_network(6, network=mem, seed=17) as net:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve_rendezvous(
                net.directory, echo, network=mem, lifetime=600, bind=hidden,
                on_descriptor=published.append, task_status=task_status,
            ))
            first = published[-1]
            rp = net.directory.get(first.rp_id)
            assert rp is not None
            async with hornet.open_circuit(
                net.directory, first, network=mem, hops=2, fetch_descriptor=newest
            ) as circuit:
                received = await _hidden_stream(
                    circuit, 80, at=20, event=lambda: armed.append(rp.address)
                )
                assert circuit.rebuilds >= 1
            assert rp.address in dead
            assert received == [b"echo:%03d" % i for i in range(80)]  # none lost, in order
            assert published[-1].rp_id != first.rp_id
            nursery.cancel_scope.cancel()


async def test_a_hidden_stream_outlives_its_descriptors_without_losing_data(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Descriptors live 10 s and the stream 30 s: the client renews onto the newest one
    # before each expires, on the same connection.
    mem = MemoryNetwork()
    published: list[Descriptor] = []

    async def newest() -> Descriptor:
        return published[-1]

    async with hornet.local_network(6, network=mem, seed=18) as net:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve_rendezvous(
                net.directory, echo, network=mem, lifetime=10, renew_every=4,
                on_descriptor=published.append, task_status=task_status,
            ))
            first = published[-1]
            async with hornet.open_circuit(
                net.directory, first, network=mem, hops=2, lifetime=10,
                fetch_descriptor=newest,
            ) as circuit:
                received = await _hidden_stream(circuit, 600)
            assert received == [b"echo:%03d" % i for i in range(600)]
            assert len(published) >= 5
            nursery.cancel_scope.cancel()


async def test_a_hidden_circuit_waits_for_a_newer_descriptor_instead_of_renewing_in_a_loop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The destination publishes one descriptor only. Before it expires, renewing onto it
    # again would gain nothing: the circuit must wait (one setup a second at most would
    # already be a loop; a busy loop makes thousands), then fail saying why.
    mem = MemoryNetwork()
    published: list[Descriptor] = []

    async def only_the_first() -> Descriptor:
        return published[0]

    async with hornet.local_network(6, network=mem, seed=19) as net:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve_rendezvous(
                net.directory, echo, network=mem, lifetime=600,
                on_descriptor=published.append, task_status=task_status,
            ))
            first = published[0]
            await trio.sleep(max(0.0, first.exp - unix_now() - 25))  # 25 s of EXP left
            with pytest.raises(DescriptorExpiredError):
                async with hornet.open_circuit(
                    net.directory, first, network=mem, hops=2, fetch_descriptor=only_the_first,
                ) as circuit:
                    before = sum(r.statistics().setups for r in net.relays)
                    with trio.fail_after(60):
                        async for _ in circuit:
                            pass
            setups = sum(r.statistics().setups for r in net.relays) - before
            assert setups <= 12, setups  # the rebuild rounds after EXP, no renewal loop
            nursery.cancel_scope.cancel()

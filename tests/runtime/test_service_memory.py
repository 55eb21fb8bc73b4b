"""A destination keeps nothing per circuit once the circuit is over: no task (the
connection's pump ends when the connection closes) and no session (a session is
forgotten once its circuit's EXP has passed). These are what made a long-running
destination's memory grow with every circuit it ever served."""

from __future__ import annotations

import gc

import trio
import trio.testing

import hornet
from hornet.circuit.circuit import Circuit
from hornet.core.e2e import DestinationSession
from hornet.testing.memnet import MemoryNetwork


async def echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(message)


def _live_tasks() -> int:
    count, nurseries = 0, list(trio.lowlevel.current_root_task().child_nurseries)
    while nurseries:
        for task in nurseries.pop().child_tasks:
            count += 1
            nurseries.extend(task.child_nurseries)
    return count


async def _one_circuit(net: hornet.LocalNetwork, mem: MemoryNetwork) -> None:
    async with hornet.open_circuit(net.directory, net.service_id, network=mem) as circuit:
        await circuit.send(b"ping")
        assert await circuit.receive() == b"ping"
    await trio.sleep(5)  # the CLOSE frame arrives and the handler ends


async def test_closed_connections_leave_no_task_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork(seed=1)
    async with hornet.local_network(4, service=echo, network=mem, seed=1) as net:
        await _one_circuit(net, mem)
        baseline = _live_tasks()
        for _ in range(10):
            await _one_circuit(net, mem)
        assert net.service is not None and net.service.acceptor.accepted == 11
        assert not net.service.acceptor.connections
        assert _live_tasks() == baseline


async def test_a_destination_forgets_the_sessions_of_expired_circuits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mem = MemoryNetwork(seed=2)
    async with hornet.local_network(4, service=echo, network=mem, seed=2) as net:
        for _ in range(6):
            await _one_circuit(net, mem)
        gc.collect()
        assert _sessions() == 6  # live circuits' sessions are kept
        horizon = net.directory.params.max_exp(0) + net.directory.params.max_skew_s
        await trio.sleep(horizon)
        await _one_circuit(net, mem)
        gc.collect()
        assert _sessions() == 1  # only the newest circuit's


def _sessions() -> int:
    return sum(isinstance(o, DestinationSession) for o in gc.get_objects())

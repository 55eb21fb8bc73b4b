"""IPv6 endpoints: a source on an IPv6-only network (loopback ``::1``, real UDP) is
reached by the last relay of its backward path through a ``0xFE 0x06`` endpoint id."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest
import trio

import hornet
from hornet.circuit.circuit import Circuit
from hornet.directory.model import (
    ENDPOINT_PREFIX,
    ENDPOINT_PREFIX_V6,
    Directory,
    NodeKeys,
    endpoint_id,
    endpoint_tag,
    endpoint_v6,
    relay_info,
)
from hornet.node.destination import serve
from hornet.node.relay import serve_relay
from hornet.transport.udp import UdpNetwork


def test_endpoint_ids_carry_ipv4_and_tag_ipv6_addresses() -> None:
    assert endpoint_id(("10.0.0.7", 9000)) == ENDPOINT_PREFIX + bytes([10, 0, 0, 7, 0x23, 0x28])
    assert endpoint_id(("::ffff:10.0.0.7", 9000)) == endpoint_id(("10.0.0.7", 9000))
    v6 = endpoint_id(("2001:db8::1", 9000))
    assert len(v6) == 8 and v6[:2] == ENDPOINT_PREFIX_V6
    assert endpoint_v6(v6) == (endpoint_tag("2001:db8::1"), 9000)
    assert endpoint_v6(endpoint_id(("2001:db8::2", 9000))) != endpoint_v6(v6)
    assert endpoint_v6(endpoint_id(("10.0.0.7", 9000))) is None


async def test_a_circuit_from_an_ipv6_source_over_ipv6_relays(tmp_path: Path) -> None:
    rng = random.Random(6)
    keys = [NodeKeys.generate(rng) for _ in range(4)]
    network = UdpNetwork()
    sockets = [await network.bind(("::1", 0)) for _ in keys]
    directory = Directory(tuple(
        relay_info(k, s.address) for k, s in zip(keys, sockets, strict=True)
    ))
    assert all(ipaddress.ip_address(r.address[0]).version == 6 for r in directory)
    ipv6_class = directory.params.max_payload(1280, ipv6=True)  # fits every IPv6 path

    async def echo(circuit: Circuit) -> None:
        async for message in circuit:
            await circuit.send(b"echo:" + message)

    async with trio.open_nursery() as nursery:
        nodes = []
        for i in range(3):
            nodes.append(await nursery.start(lambda task_status, i=i: serve_relay(
                keys[i], directory, sockets[i].address, sock=sockets[i],
                state=tmp_path / f"r{i}.sqlite", task_status=task_status,
            )))
        await nursery.start(lambda task_status: serve(
            keys[3], directory, sockets[3].address, echo, sock=sockets[3],
            state=tmp_path / "d.sqlite", payload_size=ipv6_class, task_status=task_status,
        ))
        with trio.fail_after(20):
            async with hornet.open_circuit(
                directory, keys[3].node_id, hops=2, payload_size=ipv6_class
            ) as circuit:
                for i in range(5):
                    await circuit.send(b"m%d" % i)
                    assert await circuit.receive() == b"echo:m%d" % i
        # The last backward relay forwarded to the source by its IPv6 endpoint id.
        assert all(node.dropped["unknown_next_hop"] == 0 for node in nodes)
        nursery.cancel_scope.cancel()


@pytest.fixture(autouse=True)
def _ipv6_loopback() -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        pytest.skip("this host has no IPv6 loopback (::1)")

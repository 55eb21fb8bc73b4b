"""The UDP transport on the host's real stack: default binds, return addresses, refusals.

The multi-host behaviour itself (relays on other hosts) is tested across network
namespaces in ``tests/netns``; these tests pin the pieces that make it work.
"""

from __future__ import annotations

import random

import pytest
import trio

import hornet
from hornet.circuit.circuit import Circuit, SetupTimeoutError
from hornet.circuit.endpoint import CircuitEndpoint, default_bind
from hornet.directory.model import Directory, NodeKeys, endpoint_address, parse_address, relay_info
from hornet.errors import ConfigError, SendRefusedError
from hornet.testing.tap import TapNetwork
from hornet.transport.udp import UdpNetwork, route_source

#: TEST-NET-2 (RFC 5737): never assigned to a host, so nothing here reaches anyone.
ELSEWHERE = ("198.51.100.7", 4000)


async def echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(b"echo:" + message)


async def test_a_wildcard_bound_socket_returns_the_routed_source_address() -> None:
    sock = await UdpNetwork().bind(("0.0.0.0", 0))
    try:
        host, port = sock.return_address(("127.0.0.1", 9))
        assert (host, port) == ("127.0.0.1", sock.address[1])
        assert sock.address[0] == "0.0.0.0"
    finally:
        sock.close()


async def test_the_endpoint_id_of_a_default_bound_client_is_a_reachable_address() -> None:
    async with hornet.local_network(3, seed=4) as net:
        assert default_bind(net.directory) == ("0.0.0.0", 0)
        sock = await UdpNetwork().bind(default_bind(net.directory))
        try:
            endpoint = CircuitEndpoint(sock, net.directory)
            relay = net.directory.relays[0]
            assert endpoint_address(endpoint.id_for(relay)) == ("127.0.0.1", sock.address[1])
        finally:
            sock.close()


async def test_open_circuit_with_the_default_bind_carries_messages() -> None:
    async with hornet.local_network(4, service=echo, seed=5) as net:
        async with hornet.open_circuit(net.directory, net.service_id) as circuit:
            await circuit.send(b"hi")
            with trio.fail_after(10):
                assert await circuit.receive() == b"echo:hi"


class _FullBuffer:
    """A raw socket whose send buffer is always full."""

    def sendto(self, data: bytes, address: object) -> int:
        raise BlockingIOError


async def test_send_nowait_raises_would_block_when_the_datagram_cannot_leave_at_once() -> None:
    # trio's convention: an X_nowait that cannot act raises trio.WouldBlock.
    sender = await UdpNetwork().bind(("127.0.0.1", 0))
    receiver = await UdpNetwork().bind(("127.0.0.1", 0))
    try:
        sender.send_nowait(b"now", receiver.address)
        with trio.fail_after(5):
            assert (await receiver.receive())[0] == b"now"
        sender._raw = _FullBuffer()  # type: ignore[assignment]
        with pytest.raises(trio.WouldBlock):
            sender.send_nowait(b"later", receiver.address)
    finally:
        sender.close()
        receiver.close()


async def test_a_send_the_kernel_refuses_raises_naming_the_address() -> None:
    sock = await UdpNetwork().bind(("127.0.0.1", 0))
    try:
        with pytest.raises(SendRefusedError, match=r"198\.51\.100\.7:4000"):
            await sock.send(b"x", ELSEWHERE)
        with pytest.raises(SendRefusedError, match=r"198\.51\.100\.7:4000"):
            sock.send_nowait(b"x", ELSEWHERE)
    finally:
        sock.close()


@pytest.mark.parametrize("link", [True, False])
async def test_open_circuit_from_loopback_to_another_host_is_refused_not_timed_out(
    link: bool,
) -> None:
    rng = random.Random(7)
    keys = [NodeKeys.generate(rng) for _ in range(4)]
    directory = Directory(
        tuple(relay_info(k, (ELSEWHERE[0], 4000 + i)) for i, k in enumerate(keys))
    )
    with trio.fail_after(1.5):  # well before the 2 s setup timeout
        with pytest.raises(SendRefusedError, match=r"198\.51\.100\.7:400\d"):
            async with hornet.open_circuit(
                directory, keys[3].node_id, bind=("127.0.0.1", 0), link=link, hops=2
            ):
                pass


def test_ipv6_relay_addresses_round_trip_through_the_directory() -> None:
    keys = NodeKeys.generate(random.Random(8))
    directory = Directory((relay_info(keys, ("2001:db8::7", 4000)),))
    entry = directory.to_json()["relays"][0]
    assert entry["address"] == "[2001:db8::7]:4000"
    assert Directory.from_json(directory.to_json()).relays[0].address == ("2001:db8::7", 4000)
    assert default_bind(directory) == ("::", 0)
    with pytest.raises(ConfigError, match="host:port"):
        parse_address("2001:db8::7:4000")


async def test_a_wildcard_ipv6_socket_returns_its_routed_source_address() -> None:
    try:
        sock = await UdpNetwork().bind(("::", 0))
    except OSError:
        pytest.skip("this host has no IPv6 stack")
    try:
        assert sock.return_address(("::1", 9)) == ("::1", sock.address[1])
        assert route_source(("::1", 9)) == "::1"
    finally:
        sock.close()


async def test_a_socket_never_sends_a_datagram_over_the_path_mtu() -> None:
    network = UdpNetwork()  # path_mtu 1500: at most 1472 bytes of UDP payload over IPv4
    sender, receiver = await network.bind(("127.0.0.1", 0)), await network.bind(("127.0.0.1", 0))
    try:
        await sender.send(bytes(1472), receiver.address)
        with trio.fail_after(5):
            data, _ = await receiver.receive()
        assert len(data) == 1472
        with pytest.raises(SendRefusedError, match=r"1473 bytes .* path MTU"):
            await sender.send(bytes(1473), receiver.address)
        with pytest.raises(SendRefusedError, match="path MTU"):
            sender.send_nowait(bytes(1473), receiver.address)
    finally:
        sender.close()
        receiver.close()


async def test_default_circuits_send_no_datagram_a_1500_byte_path_would_fragment() -> None:
    # A loopback-sized MTU, so that the cap does not hide what the protocol produces.
    tap = TapNetwork(UdpNetwork(path_mtu=65535))
    async with hornet.local_network(4, service=echo, network=tap, seed=9) as net:
        async with hornet.open_circuit(net.directory, net.service_id, network=tap) as circuit:
            big = bytes(range(256)) * 20
            await circuit.send(big)
            with trio.fail_after(10):
                assert await circuit.receive() == b"echo:" + big
    sizes = [sent.size for sent in tap.log]
    assert max(sizes) == 1472  # full data packets were sent, and none larger


async def test_a_relay_drops_a_packet_over_its_path_mtu_instead_of_sending_it() -> None:
    async with hornet.local_network(3, service=echo, seed=10) as net:  # relays: MTU 1500
        with pytest.raises(SetupTimeoutError, match="destination did not answer"):
            async with hornet.open_circuit(
                net.directory,
                net.service_id,
                payload_size=1400,  # 1763-byte datagrams
                network=UdpNetwork(path_mtu=65535),
                attempts=1,
                setup_timeout=1.0,
            ):
                pass
        refused = sum(r.statistics().dropped.get("send_refused", 0) for r in net.relays)
        assert refused >= 1

"""Lightning peers over BOLT 8 / TCP (``PeerNetwork``) around a real mixer service:
a pyln-proto client, reconnection with back-off, silent peers, corrupt onions."""

from __future__ import annotations

import random
import socket
import struct
import time
from pathlib import Path
from typing import Any

import trio
from mixer_kit import make_config, make_kit
from pyln.proto import wire

from hornet.core import crypto
from hornet.core.onion_message import create_onion_message
from hornet.link.bolt8 import Bolt8Connection
from hornet.mixer.client import MixerClient
from hornet.mixer.config import PeerConfig
from hornet.mixer.network import PeerNetwork
from hornet.mixer.node import OnionNode
from hornet.mixer.peer import PeerTimers, decode_init, encode_init
from hornet.mixer.service import MixerService
from hornet.mixer.session import MixerReply, MixerSession, Wallet

FAST = PeerTimers(ping_interval_s=1.0, silent_after_s=2.5, handshake_timeout_s=2.0)


def _u16(n: int) -> bytes:
    return struct.pack(">H", n)


async def _mixer(tmp_path: Path, nursery: trio.Nursery, *, timers: PeerTimers | None = None,
                 **config: Any) -> tuple[Any, PeerNetwork, MixerService]:
    kit = make_kit(tmp_path, config=make_config(**config))
    network = PeerNetwork(kit.node_key, listen=("127.0.0.1", 0), timers=timers, rng=kit.rng)
    await nursery.start(network.serve)
    service = MixerService(kit.core, network, rng=kit.rng)
    await nursery.start(service.serve)
    return kit, network, service


def _pyln_session(address: tuple[str, int], mixer_id: bytes, session: MixerSession,
                  identity: crypto.SecretKey, request: bytes) -> dict[str, Any]:
    """pyln-proto's BOLT 8 (pyln.proto.wire) as a Lightning peer of the mixer."""
    sock = socket.create_connection(address, timeout=10)
    conn = wire.LightningConnection(sock, wire.PublicKey(mixer_id),
                                    wire.PrivateKey(identity.secret_bytes()), True)
    conn.shake()
    result: dict[str, Any] = {"init": conn.read_message()}
    conn.send_message(encode_init({39}))
    conn.send_message(_u16(18) + _u16(7) + _u16(2) + b"\x00\x00")
    result["pong"] = conn.read_message()
    conn.send_message(request)
    while True:
        message = conn.read_message()
        if message[:2] == _u16(513):
            result["reply"] = session.receive(message)
            break
    sock.close()
    return result


async def test_a_pyln_client_exchanges_init_ping_and_an_onion_message(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        kit, network, service = await _mixer(tmp_path, nursery)
        identity = crypto.SecretKey.from_rng(kit.rng)
        session = MixerSession.create(identity, Wallet(kit.core.listing(time.time())), kit.rng)
        _, outgoing = session.info_request(kit.rng)
        with trio.fail_after(30):
            result = await trio.to_thread.run_sync(
                _pyln_session, network.address, kit.mixer_id, session, identity,
                outgoing.message)
        features, _ = decode_init(result["init"])
        assert 39 in features and not any(bit % 2 == 0 for bit in features)
        assert result["pong"] == _u16(19) + _u16(7) + bytes(7)
        reply = result["reply"]
        assert isinstance(reply, MixerReply) and reply.error is None
        assert service.statistics()["responses_sent"] == 1
        nursery.cancel_scope.cancel()


async def test_a_persistent_peer_is_dialled_again_with_back_off(tmp_path: Path) -> None:
    rng = random.Random(5)
    a_key, b_key = crypto.SecretKey.from_rng(rng), crypto.SecretKey.from_rng(rng)
    with trio.socket.socket() as probe:  # a free port for B, which starts late
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = {b_key.public_key: ("127.0.0.1", port)}
    a = PeerNetwork(a_key, directory=directory, persistent=[b_key.public_key],
                    backoff_initial_s=0.05, backoff_max_s=0.4, rng=rng)
    message = _u16(513) + b"after restart"
    async with trio.open_nursery() as nursery:
        await nursery.start(a.serve)
        await trio.sleep(0.5)  # B is down: A keeps trying
        assert a.statistics()["dial_failures"] >= 2 and not a.connected(b_key.public_key)
        for round_ in range(2):
            b = PeerNetwork(b_key, listen=("127.0.0.1", port), rng=rng)
            with trio.fail_after(10):
                async with trio.open_nursery() as b_nursery:
                    await b_nursery.start(b.serve)
                    await a.wait_connected(b_key.public_key)
                    await a.send(b_key.public_key, message + bytes([round_]))
                    assert await b.receive() == (a_key.public_key, message + bytes([round_]))
                    b_nursery.cancel_scope.cancel()  # B goes away; A must dial again
            with trio.fail_after(10):
                while a.connected(b_key.public_key):
                    await trio.sleep(0.05)
        assert a.statistics()["peers_ready"] == 2
        nursery.cancel_scope.cancel()


async def _raw_client(address: tuple[str, int], mixer_id: bytes, key: crypto.SecretKey
                      ) -> tuple[trio.SocketStream, Bolt8Connection]:
    stream = await trio.open_tcp_stream(*address)
    conn = Bolt8Connection.initiator(key, mixer_id, crypto.SecretKey.from_rng(random.Random(9)))
    await stream.send_all(conn.data_to_send())
    while not conn.established:
        conn.receive_data(await stream.receive_some(4096))
    conn.send_message(encode_init({39}))
    await stream.send_all(conn.data_to_send())
    return stream, conn


async def test_a_silent_peer_is_pinged_then_dropped(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        kit, network, _ = await _mixer(tmp_path, nursery, timers=FAST)
        stream, conn = await _raw_client(network.address, kit.mixer_id,
                                         crypto.SecretKey.from_rng(kit.rng))
        received: list[bytes] = []
        with trio.fail_after(10):
            while True:  # read and never answer
                data = await stream.receive_some(4096)
                if not data:
                    break
                received += conn.receive_data(data)
        assert [m[:2] for m in received][:1] == [_u16(16)]  # init
        assert _u16(18) in [m[:2] for m in received]  # the mixer pinged us
        assert network.statistics()["closed_silent"] == 1
        nursery.cancel_scope.cancel()


async def test_a_corrupt_onion_is_ignored_and_the_connection_survives(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        kit, network, service = await _mixer(tmp_path, nursery)
        identity = crypto.SecretKey.from_rng(kit.rng)
        session = MixerSession.create(identity, Wallet(kit.core.listing(time.time())), kit.rng)
        stream, conn = await _raw_client(network.address, kit.mixer_id, identity)
        _, outgoing = session.info_request(kit.rng)
        flipped = bytearray(outgoing.message)
        flipped[200] ^= 0x01
        conn.send_message(bytes(flipped))
        _, good = session.info_request(kit.rng)
        conn.send_message(good.message)
        await stream.send_all(conn.data_to_send())
        replies: list[object] = []
        with trio.fail_after(10):
            while not replies:
                for message in conn.receive_data(await stream.receive_some(65_536)):
                    if message[:2] == _u16(513):
                        replies.append(session.receive(message))
        stats = service.statistics()
        assert stats["dropped_bad_credential_or_mac"] == 1 and stats["responses_sent"] == 1
        assert isinstance(replies[0], MixerReply) and network.connected(identity.public_key)
        assert not any(k.startswith("closed_") for k in network.statistics())
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_configured_peers_without_an_address_may_dial_in(tmp_path: Path) -> None:
    rng = random.Random(11)
    peer_key = crypto.SecretKey.from_rng(rng)
    async with trio.open_nursery() as nursery:
        kit, network, service = await _mixer(
            tmp_path, nursery, peers=(PeerConfig(peer_key.public_key, "ldk"),))
        peer = PeerNetwork(peer_key, directory={kit.mixer_id: network.address}, rng=rng)
        await nursery.start(peer.serve)
        with trio.fail_after(10):
            await peer.send(kit.mixer_id, _u16(513) + b"junk onion")
            while service.statistics().get("received", 0) < 1:
                await trio.sleep(0.02)
        assert network.connected(peer_key.public_key)
        assert kit.core.peers[peer_key.public_key].network
        nursery.cancel_scope.cancel()


async def test_connections_beyond_the_limit_are_closed_at_once(tmp_path: Path) -> None:
    rng = random.Random(13)
    key = crypto.SecretKey.from_rng(rng)
    network = PeerNetwork(key, listen=("127.0.0.1", 0), max_connections=1, rng=rng)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.serve)
        first = await trio.open_tcp_stream(*network.address)  # holds a handshake open
        second = await trio.open_tcp_stream(*network.address)
        with trio.fail_after(10):
            assert await second.receive_some(100) == b""  # closed without a byte
        assert network.statistics()["refused_connection_limit"] == 1
        await first.aclose()
        await second.aclose()
        nursery.cancel_scope.cancel()


async def test_a_reply_to_an_offline_client_waits_for_it_to_reconnect(tmp_path: Path) -> None:
    rng = random.Random(17)
    dest_key = crypto.SecretKey.from_rng(rng)
    async with trio.open_nursery() as nursery:
        kit, network, service = await _mixer(
            tmp_path, nursery, peers=(PeerConfig(dest_key.public_key, "eclair"),))
        dest_net = PeerNetwork(dest_key, directory={kit.mixer_id: network.address}, rng=rng)
        await nursery.start(dest_net.serve)
        dest = OnionNode(dest_key, dest_net)
        await nursery.start(dest.run)
        key = crypto.SecretKey.from_rng(rng)
        with trio.fail_after(30):
            async with trio.open_nursery() as first_life:
                net = PeerNetwork(key, directory={kit.mixer_id: network.address}, rng=rng)
                await first_life.start(net.serve)
                wallet = Wallet(kit.core.listing(time.time()))
                client = MixerClient.create(net, key, wallet, rng=rng)
                await first_life.start(client.run)
                await client.get_info()
                await client.buy(kit.payments.mint(8, rng))
                registration = await client.register_scid()
                reply_path = client.reply_path(registration)
                first_life.cancel_scope.cancel()  # the client goes offline
            while network.connected(key.public_key):
                await trio.sleep(0.01)
            answer = create_onion_message(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                          reply_path, payload=[(77_771, b"while you were out")])
            await dest.send(answer)
            while kit.core.mailbox(registration.scid) < 1:
                await trio.sleep(0.01)
            net = PeerNetwork(key, directory={kit.mixer_id: network.address}, rng=rng)
            await nursery.start(net.serve)
            again = MixerClient(net, client.session, rng=rng)
            await nursery.start(again.run)
            await again.get_info()  # any message dials the mixer again
            delivered = await again.receive()
        assert dict(delivered.payload)[77_771] == b"while you were out"
        stats = service.statistics()
        assert stats["mailbox_stored"] == 1 and stats["mailbox_delivered"] == 1
        nursery.cancel_scope.cancel()

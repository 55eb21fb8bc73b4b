"""The trio service end to end over an in-memory network (autojump clock, no sleeps)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from mixer_kit import T0, make_config, make_kit

from hornet.core import crypto
from hornet.core.onion_message import create_message_path, create_onion_message
from hornet.mixer.client import MixerClient
from hornet.mixer.config import PeerConfig
from hornet.mixer.node import OnionNode
from hornet.mixer.riders import ReceiptStatus
from hornet.mixer.service import MixerService
from hornet.mixer.transport import MemoryHub

APP_TLV = 77_771


async def _world(tmp_path: Path, nursery: trio.Nursery, **config: object):  # type: ignore[no-untyped-def]
    rng = random.Random(3)
    hub = MemoryHub()
    dest_key = crypto.SecretKey.from_rng(rng)
    kit = make_kit(tmp_path, config=make_config(
        peers=(PeerConfig(dest_key.public_key, "eclair"),), **config))
    clock = lambda: T0 + trio.current_time()  # noqa: E731
    service = MixerService(kit.core, hub.attach(kit.mixer_id), clock=clock, rng=kit.rng,
                           storage_threads=False)  # autojump clock
    await nursery.start(service.serve)
    dest = OnionNode(dest_key, hub.attach(dest_key.public_key), name="dest")
    await nursery.start(dest.run)
    client_key = crypto.SecretKey.from_rng(rng)
    client = MixerClient.create(hub.attach(client_key.public_key), client_key,
                                kit.wallet(), rng=rng)
    await nursery.start(client.run)
    return kit, hub, service, dest, client, rng


async def test_client_buys_sends_registers_and_gets_a_reply(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        kit, _hub, service, dest, client, rng = await _world(tmp_path, nursery)
        info = await client.get_info()
        assert info.node_id == kit.mixer_id
        voucher = kit.payments.mint(8, rng)
        assert await client.buy(voucher) == 8
        registration = await client.register_scid()
        assert client.wallet.balance == 8 - 2
        dest_path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                        [dest.node_id])
        await client.send(dest_path, [(APP_TLV, b"appointment")],
                          reply_path=client.reply_path(registration))
        received = await dest.receive()
        assert received.sender == kit.mixer_id
        assert dict(received.deliver.payload)[APP_TLV] == b"appointment"
        reply_path = received.deliver.reply_path
        assert reply_path is not None and reply_path.first_node_id == kit.mixer_id
        reply = create_onion_message(crypto.SecretKey.from_rng(rng).secret_bytes(), reply_path,
                                     payload=[(APP_TLV, b"ack")])
        await dest.send(reply)
        delivered = await client.receive()
        assert dict(delivered.payload)[APP_TLV] == b"ack"
        assert service.statistics()["scid_deliveries"] == 1
        nursery.cancel_scope.cancel()


async def test_every_scid_expires_within_a_second_of_its_deadline(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        kit, _hub, service, _dest, client, rng = await _world(tmp_path, nursery,
                                                            scid_lifetime_s=30.0)
        await client.get_info()
        await client.buy(kit.payments.mint(8, rng))
        registrations = []
        for _ in range(3):
            registrations.append(await client.register_scid())
            await trio.sleep(7.3)
        for registration in registrations:
            await trio.sleep_until(registration.expires_at - T0 - 0.01)
            assert kit.core.book.get(registration.scid) is not None
            await trio.sleep_until(registration.expires_at - T0 + 1.0)
            assert kit.core.book.get(registration.scid) is None
        live, tombstones = kit.scids.load()
        assert live == []
        assert {r.scid for r in registrations} <= set(tombstones)
        assert service.statistics()["scids_expired"] == 3
        nursery.cancel_scope.cancel()


class _LoseFirstSends:
    """A client transport whose first ``n`` sends are lost on the way to the mixer."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner, self.node_id, self.lost, self.n = inner, inner.node_id, 0, n

    async def send(self, peer: bytes, message: bytes) -> None:
        if self.lost < self.n:
            self.lost += 1
            await trio.lowlevel.checkpoint()
            return
        await self.inner.send(peer, message)

    async def receive(self) -> tuple[bytes, bytes]:
        return await self.inner.receive()  # type: ignore[no-any-return]

    def statistics(self) -> dict[str, int]:
        return self.inner.statistics()  # type: ignore[no-any-return]


async def test_send_confirmed_resends_until_the_mixer_acknowledges(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        kit, hub, service, dest, _client, rng = await _world(tmp_path, nursery)
        key = crypto.SecretKey.from_rng(rng)
        lossy = _LoseFirstSends(hub.attach(key.public_key), 0)
        client = MixerClient.create(lossy, key, kit.wallet(), rng=rng)
        await nursery.start(client.run)
        await client.get_info()
        assert await client.buy(kit.payments.mint(8, rng)) == 8
        dest_path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                        [dest.node_id])
        lossy.n = lossy.lost + 2  # the next two messages never reach the mixer
        receipt = await client.send_confirmed(dest_path, [(APP_TLV, b"must arrive")],
                                              timeout=1.0, attempts=3)
        assert receipt.status == ReceiptStatus.SENT
        got = await dest.receive()
        assert dict(got.deliver.payload)[APP_TLV] == b"must arrive"
        assert client.stats["receipt_misses"] == 2 and client.stats["receipts"] == 1
        assert len(client.wallet) == 8 - 3  # each attempt paid (a lost one cannot be refunded)
        lossy.n = lossy.lost + 5
        with pytest.raises(trio.TooSlowError):
            await client.send_confirmed(dest_path, [(APP_TLV, b"lost")], timeout=1.0,
                                        attempts=2)
        assert service.statistics()["receipts_sent"] == 1
        nursery.cancel_scope.cancel()


async def test_a_bundle_carries_several_messages_for_one_spend(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        kit, _hub, service, dest, client, rng = await _world(tmp_path, nursery, bundle_k=3)
        client.clock = lambda: T0 + trio.current_time()  # the mixer's clock in this world
        await client.get_info()
        assert await client.buy(kit.payments.mint(8, rng)) == 8
        bundle = await client.buy_bundle()
        assert bundle.k == 3 and len(client.wallet) == 7
        dest_path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                        [dest.node_id])
        for i in range(3):
            await client.send(dest_path, [(APP_TLV, b"bundled %d" % i)], bundled=True)
        got = [dict((await dest.receive()).deliver.payload)[APP_TLV] for _ in range(3)]
        assert sorted(got) == [b"bundled 0", b"bundled 1", b"bundled 2"]
        assert len(client.wallet) == 7 and service.statistics()["bundle_messages"] == 3
        nursery.cancel_scope.cancel()

"""The mixer's Prometheus metrics (metrics.py), scraped over HTTP from a running mixer
with real BOLT 8 peers."""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import pytest
import trio
from mixer_kit import make_config, make_kit
from prometheus_client.parser import text_string_to_metric_families

from hornet.core import crypto
from hornet.core.onion_message import create_message_path
from hornet.errors import BindError
from hornet.mixer.client import MixerClient
from hornet.mixer.config import PeerConfig, parse_config
from hornet.mixer.metrics import MixerMetrics
from hornet.mixer.network import PeerNetwork
from hornet.mixer.node import OnionNode
from hornet.mixer.service import MixerService
from hornet.mixer.session import Wallet
from hornet.testing.ldk import APP_TLV


def _scrape(address: tuple[str, int]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``: (name, sorted labels) -> value."""
    text = httpx.get(f"http://{address[0]}:{address[1]}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_a_running_mixer_serves_its_metrics(tmp_path: Path) -> None:
    rng = random.Random(23)
    dest_key = crypto.SecretKey.from_rng(rng)
    kit = make_kit(tmp_path, config=make_config(
        peers=(PeerConfig(dest_key.public_key, "unlimited"),)))
    async with trio.open_nursery() as nursery:
        metrics = MixerMetrics(kit.mixer_id)
        address = await nursery.start(metrics.serve, ("127.0.0.1", 0))
        network = PeerNetwork(kit.node_key, listen=("127.0.0.1", 0), rng=kit.rng)
        await nursery.start(network.serve)
        service = MixerService(kit.core, network, rng=kit.rng, metrics=metrics)
        await nursery.start(service.serve)
        dest_net = PeerNetwork(dest_key, directory={kit.mixer_id: network.address},
                               persistent=[kit.mixer_id], rng=rng)
        await nursery.start(dest_net.serve)
        dest = OnionNode(dest_key, dest_net)
        await nursery.start(dest.run)
        key = crypto.SecretKey.from_rng(rng)
        net = PeerNetwork(key, directory={kit.mixer_id: network.address}, rng=rng)
        await nursery.start(net.serve)
        client = MixerClient.create(net, key, Wallet(kit.core.listing(time.time())), rng=rng)
        await nursery.start(client.run)
        path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                   [dest_key.public_key])
        with trio.fail_after(30):
            await network.wait_connected(dest_key.public_key)
            await client.get_info()
            await client.buy(kit.payments.mint(8, rng))
            await client.send(path, [(APP_TLV, b"paid")])
            await dest.receive()
            # The same paid message again (a replay): refused as a double spend.
            outgoing = client.session.send_message(path, [(APP_TLV, b"twice")], rng)
            await net.send(kit.mixer_id, outgoing.message)
            await net.send(kit.mixer_id, outgoing.message)
            await dest.receive()
            await net.send(kit.mixer_id, b"\x02\x01" + bytes(100))  # a garbled onion message
            while sum(v for k, v in service.statistics().items()
                      if k.startswith("dropped_")) < 2:
                await trio.sleep(0.01)
            samples = await trio.to_thread.run_sync(_scrape, address)
            stats = service.statistics()
        nursery.cancel_scope.cancel()

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("hornet_mixer_node_info", node_id=kit.mixer_id.hex()) == 1
    # Two paid messages and two responses went on to a peer.
    assert value("hornet_mixer_forwarded_total") == stats["forwarded"] == 4
    assert value("hornet_mixer_delivered_total") == 2  # INFO and BUY
    assert value("hornet_mixer_credentials_issued_total") == 1
    assert value("hornet_mixer_spends_redeemed_total") == 2
    assert value("hornet_mixer_double_spends_refused_total") == 1
    assert value("hornet_mixer_dropped_total", reason="double_spend") == 1
    dropped = {k.removeprefix("dropped_"): v for k, v in stats.items() if k.startswith("dropped_")}
    assert len(dropped) == 2  # the replay and the garbled message, each by its reason
    for reason, count in dropped.items():
        assert value("hornet_mixer_dropped_total", reason=reason) == count
    assert value("hornet_mixer_peer_connections") == 2  # the client and the destination
    assert value("hornet_mixer_peer_connection_events_total", event="up") == 2
    assert value("hornet_mixer_queue_depth", queue="outgoing") == 0
    assert value("hornet_mixer_queue_depth", queue="commits_in_flight") == 0
    # Every storage action was timed: the redemption and two group commits at least.
    assert value("hornet_mixer_storage_commit_seconds_count", action="RedeemCredentials") == 1
    assert value("hornet_mixer_storage_commit_seconds_count", action="CommitSpends") >= 2
    assert value("hornet_mixer_storage_commit_seconds_sum", action="CommitSpends") > 0


def test_the_histogram_buckets_are_cumulative() -> None:
    metrics = MixerMetrics(b"\x02" * 33)
    for seconds in (0.0001, 0.003, 0.003, 7.0):
        metrics.commit_latency("CommitSpends", seconds)
    metrics.observe({})
    snap = metrics.collector.latest
    assert snap is not None
    hist = snap.commit_latency["CommitSpends"]
    assert hist.buckets[0] == 1  # <= 0.5 ms
    assert hist.buckets[3] == 3  # <= 5 ms
    assert hist.buckets[-1] == 4  # +Inf counts everything
    assert list(hist.buckets) == sorted(hist.buckets)
    assert hist.total == pytest.approx(7.0061)


async def test_a_metrics_address_in_use_is_a_bind_error() -> None:
    metrics = MixerMetrics(b"\x02" * 33)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(metrics.serve, ("127.0.0.1", 0))
        with pytest.raises(BindError):
            await MixerMetrics(b"\x03" * 33).serve(address)
        nursery.cancel_scope.cancel()


def test_the_metrics_address_is_an_opt_in_config_key() -> None:
    assert parse_config({}).metrics is None
    assert parse_config({"metrics": "127.0.0.1:9464"}).metrics == ("127.0.0.1", 9464)

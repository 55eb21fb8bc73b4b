"""hornet across hosts: every relay, destination and client in its own network namespace
(``hornet.testing.netns``), on a bridge with a 1500-byte MTU, as separate processes.

Needs root with ``ip netns`` (and ``nft`` for the fragment rule); skips naming what is
missing. Each test builds and deletes its own namespaces.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from externals import require

from hornet.testing.cluster import PORT, HornetCluster
from hornet.testing.netns import Testnet

RELAYS = 5


@pytest.fixture
def cluster() -> Iterator[HornetCluster]:
    require("netns")
    with Testnet(RELAYS + 3) as net:
        cluster = HornetCluster(net, RELAYS)
        cluster.start()
        yield cluster


def _assert_no_fragments(cluster: HornetCluster) -> None:
    created = cluster.net.fragments_created()
    assert created and all(count == 0 for count in created.values()), created


def test_circuits_cross_hosts_with_the_default_bind(cluster: HornetCluster) -> None:
    client_host = cluster.free_hosts[0]
    process, out = cluster.client(client_host, "client", messages=60, interval=0.02, size=3000)
    report = cluster.report(process, out, timeout=90)
    assert report["error"] is None, report
    assert report["received"] == report["sent"] == 60
    assert report["in_order"] == 60 and report["lost"] == 0 and report["reordered"] == 0
    _assert_no_fragments(cluster)


def test_circuits_work_when_the_middle_drops_ip_fragments(cluster: HornetCluster) -> None:
    require("nftables")
    cluster.net.drop_fragments()
    # Messages of 3000 bytes span several full-size packets of the default class.
    process, out = cluster.client(
        cluster.free_hosts[0], "client", messages=40, interval=0.02, size=3000
    )
    report = cluster.report(process, out, timeout=90)
    assert report["error"] is None, report
    assert report["received"] == 40 and report["lost"] == 0
    assert "ip frag-off" in cluster.net.rule_counters()
    _assert_no_fragments(cluster)


def test_a_hidden_destination_is_reachable_across_hosts(cluster: HornetCluster) -> None:
    hidden_host, client_host = cluster.free_hosts[1], cluster.free_hosts[0]
    descriptor = cluster.dir / "descriptor.hex"
    cluster.net.python(hidden_host, [
        "-m", "hornet.testing.roles", "hidden", "--directory", str(cluster.directory_path),
        "--descriptor-out", str(descriptor),
    ], name="hidden")
    cluster.wait_for("hidden", "ready")
    process, out = cluster.client(
        client_host, "client", to=f"@{descriptor}", messages=30, interval=0.02, size=1500
    )
    report = cluster.report(process, out, timeout=90)
    assert report["error"] is None, report
    assert report["received"] == 30 and report["in_order"] == 30
    _assert_no_fragments(cluster)


def test_the_fragment_counter_sees_fragments_when_a_process_makes_them(
    cluster: HornetCluster,
) -> None:
    # The oracle of the tests above: a plain UDP socket sending 3000 bytes across the
    # bridge does fragment, and FragCreates counts it.
    host, peer = cluster.free_hosts[0], cluster.free_hosts[1]
    code = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.sendto(bytes(3000), ('{peer.address}', 9))"
    )
    cluster.net.run(host, ["python3", "-c", code], name="fragmenter").wait(timeout=30)
    time.sleep(0.1)
    assert cluster.net.fragments_created()[host.namespace] >= 3


def test_a_relay_killed_and_restarted_mid_stream(cluster: HornetCluster) -> None:
    peers_file = cluster.dir / "peers.json"
    process, out = cluster.client(
        cluster.free_hosts[0], "client", messages=300, interval=0.03, size=500,
        peers_out=peers_file,
    )
    cluster.wait_for("client", "ready")
    peers = json.loads(peers_file.read_text())
    victim = next(i for i, h in enumerate(cluster.relay_hosts) if f"{h.address}:{PORT}" in peers)
    time.sleep(1.5)
    cluster.kill_relay(victim)  # SIGKILL: no goodbye, its link sessions are gone
    time.sleep(3.0)
    cluster.restart_relay(victim)
    report = cluster.report(process, out, timeout=120)
    assert report["error"] is None, report
    assert report["received"] == 300 and report["lost"] == 0 and report["reordered"] == 0
    assert report["rebuilds"] >= 1
    assert max(report["stalls_s"], default=0.0) <= 5.0, report["stalls_s"]
    # After the restart, new circuits open without failures.
    process, out = cluster.client(cluster.free_hosts[1], "opens", role="opens", count=5)
    opens = cluster.report(process, out, timeout=120)
    assert opens["failed_opens"] == 0, opens


def test_a_hidden_destination_through_three_lifetimes_and_its_rps_restart(
    cluster: HornetCluster,
) -> None:
    hidden_host, client_host = cluster.free_hosts[1], cluster.free_hosts[0]
    descriptor = cluster.dir / "descriptor.hex"
    rp = 1
    cluster.net.python(hidden_host, [
        "-m", "hornet.testing.roles", "hidden", "--directory", str(cluster.directory_path),
        "--descriptor-out", str(descriptor), "--lifetime", "10",
        "--rp", cluster.relay_id(rp).hex(),
    ], name="hidden")
    cluster.wait_for("hidden", "ready")
    first = descriptor.read_text()
    process, out = cluster.client(
        client_host, "client", to=f"@{descriptor}", messages=800, interval=0.05,
        size=300, reopen=True, drain=30,  # ends once all 800 echoed; slack for a loaded host
    )
    time.sleep(15)
    cluster.kill_relay(rp)  # the rendezvous point restarts: its old circuits are gone
    time.sleep(2)
    cluster.restart_relay(rp)
    report = cluster.report(process, out, timeout=120)
    assert report["error"] is None, report
    assert report["sent"] >= 700  # about 40 s: four descriptor lifetimes
    # The client follows each new descriptor on one connection: nothing lost, in order.
    assert report["received"] == report["sent"] and report["lost"] == 0, report
    assert report["reordered"] == 0 and report["reopens"] == 0, report
    assert descriptor.read_text() != first
    _assert_no_fragments(cluster)


def test_circuits_cross_hosts_over_ipv6_with_the_default_bind() -> None:
    require("netns")
    with Testnet(RELAYS + 2, ipv6=True) as net:
        cluster = HornetCluster(net, RELAYS, ipv6=True)
        cluster.start()
        process, out = cluster.client(
            cluster.free_hosts[0], "client", messages=40, interval=0.02, size=3000
        )
        report = cluster.report(process, out, timeout=90)
        assert report["error"] is None, report
        assert report["received"] == report["sent"] == 40 and report["lost"] == 0
        assert all(":" in relay.address[0] for relay in cluster.directory)  # IPv6 only
        _assert_no_fragments(cluster)

"""A mixer's counters for operators, as Prometheus metrics (same mechanism as a relay's,
``hornet.node.metrics``).

Strategy: the service's processor (the only code that reads the mixer's state) hands
``observe`` a statistics snapshot after each round; ``observe`` turns it into an
immutable ``MixerSnapshot`` and swaps it in with one assignment. The Prometheus
endpoint (prometheus_client's HTTP server, opt-in, on its own thread) only reads the
latest snapshot, so a scrape never touches the mixer's mutable state. Storage commit
latencies and peer connection events are recorded on the trio thread too, into
counters copied into the next snapshot.

Metric names (all prefixed ``hornet_mixer_``): ``forwarded_total``,
``delivered_total`` (requests answered at the mixer), ``scid_deliveries_total``,
``dropped_total{reason}``, ``credentials_issued_total``, ``spends_redeemed_total``,
``double_spends_refused_total``, ``peer_connections``,
``peer_connection_events_total{event}``, ``queue_depth{queue}``,
``storage_commit_seconds{action}`` (a histogram) and ``node_info{node_id}``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from typing import Any, Final

import attrs
import trio
from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from hornet.errors import BindError

#: Upper bounds (seconds) of the commit latency histogram's buckets.
COMMIT_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@attrs.frozen
class LatencyHistogram:
    """Cumulative bucket counts (``COMMIT_BUCKETS`` then +Inf), count and sum."""

    buckets: tuple[int, ...]
    total: float


@attrs.frozen
class MixerSnapshot:
    """A mixer's metrics at one moment."""

    node_id: str
    counters: Mapping[str, int]
    queues: Mapping[str, int]
    peers_connected: int
    peer_events: Mapping[str, int]
    commit_latency: Mapping[str, LatencyHistogram]

    @property
    def dropped(self) -> dict[str, int]:
        return {name.removeprefix("dropped_"): value for name, value in self.counters.items()
                if name.startswith("dropped_")}

    def counter(self, name: str) -> int:
        return self.counters.get(name, 0)


class _SnapshotCollector(Collector):
    def __init__(self) -> None:
        self.latest: MixerSnapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snap = self.latest
        if snap is None:
            return
        info = InfoMetricFamily("hornet_mixer_node", "this mixer")
        info.add_metric([], {"node_id": snap.node_id})
        yield info
        requests = sum(v for k, v in snap.counters.items() if k.startswith("request_"))
        double_spends = snap.counter("dropped_double_spend") + snap.counter(
            "refused_double_spend")
        for name, value, text in (
            ("forwarded", snap.counter("forwarded"), "onion messages sent on to a peer"),
            ("delivered", requests, "requests addressed to the mixer and answered"),
            ("scid_deliveries", snap.counter("scid_deliveries"),
             "messages delivered through a registered synthetic SCID"),
            ("credentials_issued", snap.counter("credentials_issued"),
             "BUY and REISSUE requests answered with credentials"),
            ("spends_redeemed", snap.counter("spends_redeemed"),
             "credential spends durably recorded"),
            ("double_spends_refused", double_spends, "spends refused as already spent"),
        ):
            yield CounterMetricFamily(f"hornet_mixer_{name}", text, value=value)
        dropped = CounterMetricFamily("hornet_mixer_dropped", "messages dropped",
                                      labels=["reason"])
        for reason, count in sorted(snap.dropped.items()):
            dropped.add_metric([reason], count)
        yield dropped
        yield GaugeMetricFamily("hornet_mixer_peer_connections", "peers connected now",
                                value=snap.peers_connected)
        events = CounterMetricFamily("hornet_mixer_peer_connection_events",
                                     "peer connections made and lost", labels=["event"])
        for event, count in sorted(snap.peer_events.items()):
            events.add_metric([event], count)
        yield events
        depth = GaugeMetricFamily("hornet_mixer_queue_depth", "items waiting",
                                  labels=["queue"])
        for queue, value in sorted(snap.queues.items()):
            depth.add_metric([queue], value)
        yield depth
        latency = HistogramMetricFamily("hornet_mixer_storage_commit_seconds",
                                        "time to execute one storage action",
                                        labels=["action"])
        for action, hist in sorted(snap.commit_latency.items()):
            bounds = [str(b) for b in COMMIT_BUCKETS] + ["+Inf"]
            latency.add_metric([action], list(zip(bounds, hist.buckets, strict=True)),
                               sum_value=hist.total)
        yield latency


class MixerMetrics:
    """Collects a running mixer's metrics and serves them to Prometheus (``serve``)."""

    def __init__(self, node_id: bytes) -> None:
        self.node_id = node_id.hex()
        self.collector = _SnapshotCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self.address: tuple[str, int] | None = None
        self._connected = 0
        self._events: dict[str, int] = {"up": 0, "down": 0}
        self._latency: dict[str, tuple[list[int], float]] = {}
        self.observe(None)

    def peer_connection(self, online: bool) -> None:
        """A peer connection came up (``online``) or went down."""
        self._events["up" if online else "down"] += 1
        self._connected = max(0, self._connected + (1 if online else -1))

    def commit_latency(self, action: str, seconds: float) -> None:
        """One storage action of type ``action`` took ``seconds``."""
        buckets, total = self._latency.get(action, ([0] * (len(COMMIT_BUCKETS) + 1), 0.0))
        for i in range(bisect.bisect_left(COMMIT_BUCKETS, seconds), len(buckets)):
            buckets[i] += 1
        self._latency[action] = (buckets, total + seconds)

    def observe(self, stats: Mapping[str, int] | None, *,
                queues: Mapping[str, int] | None = None) -> None:
        """Swap in a snapshot of ``stats`` (a service's statistics) and ``queues``."""
        self.collector.latest = MixerSnapshot(
            node_id=self.node_id, counters=dict(stats or {}), queues=dict(queues or {}),
            peers_connected=self._connected, peer_events=dict(self._events),
            commit_latency={a: LatencyHistogram(tuple(b), t)
                            for a, (b, t) in self._latency.items()},
        )

    async def serve(self, address: tuple[str, int], *,
                    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
                    ) -> None:
        """Serve ``/metrics`` on ``address`` until cancelled; ``started`` the bound address.

        Raises:
            BindError: the address cannot be bound.
        """
        server: Any = None
        host, port = address
        try:
            server, _ = start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            raise BindError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
        try:
            self.address = (host, int(server.server_address[1]))
            task_status.started(self.address)
            await trio.sleep_forever()
        finally:
            server.shutdown()
            server.server_close()


__all__ = ["COMMIT_BUCKETS", "LatencyHistogram", "MixerMetrics", "MixerSnapshot"]

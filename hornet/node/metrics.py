"""A relay's counters for operators: a periodic log line and Prometheus metrics.

Strategy: a trio task (``report``) takes a ``Snapshot`` of the relay's statistics once
per ``interval``; it is the only code that reads the relay. The Prometheus endpoint
(prometheus_client's HTTP server, opt-in, on its own thread) only ever reads the latest
snapshot, an immutable record swapped in by one assignment, so a scrape never touches
the relay's mutable state from another thread. The counters line goes to the
``hornet.counters`` logger at INFO every ``log_every`` snapshots.

Metric names (all prefixed ``hornet_``): ``forwarded_total``, ``delivered_total``,
``setups_total``, ``handshakes_total``, ``dropped_total{reason}`` (the relay's drops:
admission, queues and the core), ``link_dropped_total{reason}`` (datagrams the link
layer consumed without a packet), ``queue_depth{queue}``, ``cached_circuits``,
``directory_age_seconds`` and ``node_info{node_id}``. Drops are labelled in hornet's one
vocabulary of reasons (``hornet.errors``, rule 5): an error's ``reason`` or a
``LocalDropReason``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs
import trio
from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from hornet.errors import BindError
from hornet.transport.udp import Address

if TYPE_CHECKING:
    from hornet.node.relay import RelayNode

log = logging.getLogger("hornet.counters")


@attrs.frozen
class Snapshot:
    """A relay's counters at one moment (unix time ``taken``)."""

    node_id: str
    taken: float
    forwarded: int
    delivered: int
    setups: int
    handshakes: int
    dropped: dict[str, int]
    link_dropped: dict[str, int]
    data_queue: int
    setup_queue: int
    cached_circuits: int
    directory_age_s: float

    @classmethod
    def of(cls, node: RelayNode, now: float) -> Snapshot:
        stats = node.statistics()
        link_statistics = getattr(node.socket, "statistics", None)
        link = link_statistics() if callable(link_statistics) else None
        return cls(
            node_id=node.node_id.hex(),
            taken=now,
            forwarded=stats.forwarded,
            delivered=stats.delivered,
            setups=stats.setups,
            handshakes=0 if link is None else link.handshakes_completed,
            dropped={str(reason): count for reason, count in stats.dropped.items()},
            link_dropped={} if link is None else {str(r): n for r, n in link.dropped.items()},
            data_queue=stats.data_queued,
            setup_queue=stats.setup_queued,
            cached_circuits=stats.cached_circuits,
            directory_age_s=max(0.0, now - node.directory_since),
        )

    def line(self) -> str:
        """The counters line: one ``name=value`` per counter, drops by reason."""
        dropped = sum(self.dropped.values())
        reasons = ",".join(f"{k}:{v}" for k, v in sorted(self.dropped.items()))
        return (
            f"counters forwarded={self.forwarded} delivered={self.delivered} "
            f"setups={self.setups} handshakes={self.handshakes} dropped={dropped}"
            + (f" ({reasons})" if reasons else "")
            + f" queued={self.data_queue}+{self.setup_queue}"
            f" circuits={self.cached_circuits} directory_age_s={self.directory_age_s:.0f}"
        )


class _SnapshotCollector(Collector):
    def __init__(self) -> None:
        self.latest: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snap = self.latest
        if snap is None:
            return
        info = InfoMetricFamily("hornet_node", "this node")
        info.add_metric([], {"node_id": snap.node_id})
        yield info
        for name, value, text in (
            ("forwarded", snap.forwarded, "packets sent on to the next hop"),
            ("delivered", snap.delivered, "packets delivered to this node's service"),
            ("setups", snap.setups, "circuit setups accepted"),
            ("handshakes", snap.handshakes, "link handshakes completed"),
        ):
            yield CounterMetricFamily(f"hornet_{name}", text, value=value)
        dropped = CounterMetricFamily("hornet_dropped", "packets dropped", labels=["reason"])
        for reason, count in sorted(snap.dropped.items()):
            dropped.add_metric([reason], count)
        yield dropped
        link_dropped = CounterMetricFamily(
            "hornet_link_dropped", "link datagrams dropped", labels=["reason"]
        )
        for reason, count in sorted(snap.link_dropped.items()):
            link_dropped.add_metric([reason], count)
        yield link_dropped
        depth = GaugeMetricFamily("hornet_queue_depth", "packets waiting", labels=["queue"])
        depth.add_metric(["data"], snap.data_queue)
        depth.add_metric(["setup"], snap.setup_queue)
        yield depth
        yield GaugeMetricFamily(
            "hornet_cached_circuits", "circuits in the relay's cache", value=snap.cached_circuits
        )
        yield GaugeMetricFamily(
            "hornet_directory_age_seconds",
            "seconds since the directory in use was published",
            value=snap.directory_age_s,
        )


class Reporter:
    """Snapshots a relay's counters, logs them, and serves them to Prometheus."""

    def __init__(self, node: RelayNode, *, interval: float = 1.0, log_every: int = 60) -> None:
        if interval <= 0 or log_every < 0:
            raise ValueError("interval must be positive and log_every non-negative")
        self.node = node
        self.interval = interval
        self.log_every = log_every
        self.collector = _SnapshotCollector()
        self.collector.latest = Snapshot.of(node, time.time())
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self.address: Address | None = None

    async def run(
        self,
        metrics: Address | None = None,
        *,
        task_status: trio.TaskStatus[Reporter] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Report until cancelled; with ``metrics``, serve Prometheus there meanwhile."""
        server: Any = None
        if metrics is not None:
            try:
                server, _ = start_http_server(metrics[1], metrics[0], registry=self.registry)
            except OSError as exc:
                host, port = metrics
                raise BindError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
            self.address = (metrics[0], int(server.server_address[1]))
        try:
            task_status.started(self)
            ticks = 0
            while True:
                await trio.sleep(self.interval)
                snap = Snapshot.of(self.node, time.time())
                self.collector.latest = snap
                ticks += 1
                if self.log_every and ticks % self.log_every == 0:
                    log.info("%s", snap.line())
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()


__all__ = ["Reporter", "Snapshot"]

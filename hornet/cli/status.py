"""``hornet status``: read a running node's Prometheus metrics and print them for a person.

The metrics are fetched with httpx and parsed with prometheus_client's own parser of the
text format, so ``status`` reads exactly what a Prometheus server would scrape.
"""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from hornet.errors import HornetError
from hornet.transport.udp import Address


class StatusError(HornetError):
    """The node's metrics could not be read (not running, not a metrics address)."""


def fetch_status(address: Address, *, timeout: float = 5.0) -> dict[str, Any]:
    """The node's counters: ``node_id``, totals, ``dropped`` by reason, ``queue_depth`` by
    queue, ``cached_circuits`` and ``directory_age_seconds``."""
    host, port = address
    url = f"http://{host}:{port}/metrics"
    try:
        response = httpx.get(url, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise StatusError(f"cannot read {url}: {exc}") from None
    try:
        families = list(text_string_to_metric_families(response.text))
    except ValueError:
        raise StatusError(f"{url} does not serve Prometheus metrics") from None
    status: dict[str, Any] = {"dropped": {}, "link_dropped": {}, "queue_depth": {}}
    for family in families:
        if not family.name.startswith("hornet_"):
            continue
        name = family.name.removeprefix("hornet_")
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            if name in ("node", "node_info"):
                status["node_id"] = sample.labels.get("node_id", "")
            elif name in ("dropped", "link_dropped"):
                status[name][sample.labels["reason"]] = int(sample.value)
            elif name == "queue_depth":
                status["queue_depth"][sample.labels["queue"]] = int(sample.value)
            elif name == "directory_age_seconds":
                status[name] = round(sample.value, 1)
            else:
                status[name] = int(sample.value)
    if "node_id" not in status:
        raise StatusError(f"{url} serves no hornet node's metrics")
    return status


def render_status(status: dict[str, Any]) -> str:
    """A few aligned lines: what the node did, what it refused and why, how loaded it is."""
    dropped = status.get("dropped", {})
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(dropped.items(), key=lambda kv: -kv[1]))
    queues = status.get("queue_depth", {})
    age = status.get("directory_age_seconds")
    rows = [
        ("node", status["node_id"]),
        ("forwarded", f"{status.get('forwarded', 0):,} packets"),
        ("delivered", f"{status.get('delivered', 0):,} packets"),
        ("setups", f"{status.get('setups', 0):,} circuits accepted"),
        ("handshakes", f"{status.get('handshakes', 0):,} link handshakes"),
        ("dropped", f"{sum(dropped.values()):,}" + (f" ({reasons})" if reasons else "")),
        ("queued", ", ".join(f"{k} {v}" for k, v in sorted(queues.items())) or "0"),
        ("circuits", f"{status.get('cached_circuits', 0):,} cached"),
        ("directory", "unknown age" if age is None else f"{_duration(age)} old"),
    ]
    return "\n".join(f"{label:<11} {value}" for label, value in rows)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


__all__ = ["StatusError", "fetch_status", "render_status"]

"""Chaos soak on the namespace test network: relays die and come back under load.

    sudo .venv/bin/python benchmarks/soak_churn.py --json [--minutes 10] [--relays 8]

Builds a ``hornet.testing.netns`` network (one host per process, bridge, MTU 1500) with
``--loss`` frame loss and ``--delay`` (netem where the kernel has it; otherwise both come
from a user-space switch that replaces the bridge: ``impairment`` and ``delay`` say which),
starts the relays, a destination, a hidden destination and these clients, each its own
process:
- ``--streams`` reliable streams to the destination (numbered messages, echoed);
- one reliable stream to the hidden destination through its descriptor (60 s lifetime,
  renewed every 20 s); the client follows the newest published descriptor through its
  rebuilds and renewals on one connection; if the circuit fails all the same it opens a
  new one (``hidden_reopens``; what the failed circuit had not delivered is lost);
- one client opening a short circuit every ``--open-every`` seconds.
Every ``--kill-every`` seconds a random live relay is SIGKILLed and restarted
``--down`` seconds later (with its key and replay state).

Prints (``--json``: one object) the targets' figures: ``lost`` (the streams' and the
hidden stream's: ``streams_lost`` + ``hidden_lost``), ``reordered``,
``delivered_share``, ``in_order_share``, ``failed_opens``, ``setup_p50_s`` /
``setup_p99_s``, ``rebuild_stall_p50_s`` / ``rebuild_stall_p99_s`` (gaps of more than
1 s between a stream's echoes), ``hidden_*``, ``fragments_sent`` (``FragCreates`` over
all hosts) and each process's RSS at start and end.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

from hornet.testing.cluster import HornetCluster
from hornet.testing.netns import Testnet, TestnetError, missing_tools, remove_stale


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _report(cluster: HornetCluster, process: Any, out: Path, duration: float) -> dict[str, Any]:
    """A client's JSON report, or one saying how it died (its log's tail)."""
    try:
        return cluster.report(process, out, timeout=duration + 300)
    except TestnetError as exc:
        tail = cluster.net.log(out.stem)[-1500:]
        return {"sent": 0, "received": 0, "in_order": 0, "reordered": 0, "stalls_s": [],
                "reopens": 0, "opens": 0, "failed_opens": 0, "errors": [], "setup_s": [],
                "error": f"{exc}: {tail}"}


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    duration = args.minutes * 60
    streams = args.streams
    hosts = args.relays + 1 + streams + 3  # relays, destination, streams, hidden, its client, opens
    rng = random.Random(args.seed)
    with Testnet(hosts, loss=args.loss, delay_ms=args.delay) as net:
        cluster = HornetCluster(net, args.relays)
        cluster.start()
        free = list(cluster.free_hosts)
        descriptor = net.workdir / "descriptor.hex"
        hidden = net.python(free.pop(), [
            "-m", "hornet.testing.roles", "hidden", "--directory", str(cluster.directory_path),
            "--descriptor-out", str(descriptor), "--lifetime", str(args.hidden_lifetime),
            "--renew-every", str(args.hidden_renew_every),
        ], name="hidden")
        cluster.wait_for("hidden", "ready")
        count = int(duration / args.interval)
        clients = [
            cluster.client(free.pop(), f"stream{i}", messages=count, interval=args.interval,
                           size=args.size, drain=60)
            for i in range(streams)
        ]
        hidden_client = cluster.client(
            free.pop(), "hidden-stream", to=f"@{descriptor}", messages=count,
            interval=args.interval, size=args.size, drain=60, reopen=True,
        )
        opens = cluster.client(free.pop(), "opens", role="opens",
                               count=int(duration / args.open_every),
                               interval=args.open_every)
        time.sleep(5)
        processes = {f"relay{i}": p for i, p in cluster.relays.items()}
        processes.update({"dest": cluster.dest, "hidden": hidden})  # type: ignore[dict-item]
        processes.update({f"stream{i}": p for i, (p, _) in enumerate(clients)})
        processes["hidden-stream"] = hidden_client[0]
        rss_start = {name: _rss_kib(p.pid) for name, p in processes.items()}
        kills: list[dict[str, Any]] = []
        start = time.monotonic()
        while time.monotonic() - start < duration - args.kill_every:
            time.sleep(args.kill_every - args.down)
            victim = rng.choice(sorted(cluster.relays))
            kills.append({"relay": victim, "at_s": round(time.monotonic() - start, 1)})
            cluster.kill_relay(victim, signal.SIGKILL)
            time.sleep(args.down)
            cluster.restart_relay(victim)
        processes.update({f"relay{i}": p for i, p in cluster.relays.items()})
        rss_end = {name: _rss_kib(p.pid) for name, p in processes.items()}
        reports = [_report(cluster, p, out, duration) for p, out in clients]
        hidden_report = _report(cluster, *hidden_client, duration)
        opens_report = _report(cluster, *opens, duration)
        fragments = net.fragments_created()
        impairment, delay = net.impairment, net.delay
    sent = sum(r["sent"] for r in reports)
    received = sum(r["received"] for r in reports)
    stalls = [s for r in reports for s in r["stalls_s"]]
    races = [s for r in reports for s in r.get("rebuild_s", [])]
    setups = opens_report["setup_s"]
    hidden_lost = hidden_report["sent"] - hidden_report["received"]
    return {
        "minutes": args.minutes,
        "relays": args.relays,
        "loss": args.loss,
        "delay_ms": list(args.delay),
        "impairment": impairment,
        "delay": delay,
        "kills": len(kills),
        "sent": sent,
        "lost": sent - received + hidden_lost,
        "streams_lost": sent - received,
        "hidden_lost": hidden_lost,
        "reordered": sum(r["reordered"] for r in reports) + hidden_report["reordered"],
        "delivered_share": round(received / sent, 5) if sent else None,
        "in_order_share": round(sum(r["in_order"] for r in reports) / sent, 5) if sent else None,
        "stream_errors": [r["error"] for r in reports if r["error"]],
        "rebuilds": sum(r.get("rebuilds", 0) for r in reports),
        "rebuild_stall_p50_s": _quantile(stalls, 0.50),
        "rebuild_stall_p99_s": _quantile(stalls, 0.99),
        "rebuild_stall_max_s": max(stalls, default=None),
        "stalls": len(stalls),
        # Of a stall, the part from its detection (2 s of silence) to the new circuit.
        "rebuild_race_p50_s": _quantile(races, 0.50),
        "rebuild_race_max_s": max(races, default=None),
        "opens": opens_report["opens"],
        "failed_opens": opens_report["failed_opens"],
        "open_errors": opens_report["errors"][:5],
        "setup_p50_s": _quantile(setups, 0.50),
        "setup_p99_s": _quantile(setups, 0.99),
        "hidden_sent": hidden_report["sent"],
        "hidden_received": hidden_report["received"],
        "hidden_delivered_share": round(hidden_report["received"] / hidden_report["sent"], 5)
        if hidden_report["sent"] else None,
        "hidden_reopens": hidden_report["reopens"],
        "hidden_error": hidden_report["error"],
        "hidden_lifetime_s": args.hidden_lifetime,
        "hidden_renew_every_s": args.hidden_renew_every,
        # Lifetimes the service stayed reachable through descriptors it republished:
        # the whole run, unless its client finally gave up.
        "hidden_lifetimes_survived": None if hidden_report["error"] else round(
            duration / args.hidden_lifetime, 2),
        "fragments_sent": sum(fragments.values()),
        "rss_kib_start": rss_start,
        "rss_kib_end": rss_end,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--relays", type=int, default=8)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--loss", type=float, default=0.02)
    parser.add_argument("--delay", type=lambda t: tuple(map(float, t.split("-"))),
                        default=(20.0, 50.0))
    parser.add_argument("--kill-every", type=float, default=30.0)
    parser.add_argument("--down", type=float, default=10.0)
    parser.add_argument("--open-every", type=float, default=5.0)
    parser.add_argument("--hidden-lifetime", type=float, default=60.0)
    parser.add_argument("--hidden-renew-every", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    missing = missing_tools()
    if missing:
        print("soak_churn: needs " + ", ".join(missing), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(130))
    remove_stale()
    result = run(args)
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Key-rotation soak: a network whose keys rotate for ``--epochs`` key epochs while
circuits open continuously, with no operator action.

What runs: 5 relays and a destination (``hornet.local_network`` on a memory network, link
layer on) and 3 directory authorities (``hornet.authority.Authority``, the state machine
the HTTP service runs), threshold 2. Every quarter epoch each node signs its entry (setup
keys for the current and two coming epochs), every authority publishes a document, and
every node takes the 2-of-3 consensus with ``replace_directory``: the relays' own
publication loop, without HTTP. A client opens ``--circuits-per-epoch`` circuits per
epoch over the latest consensus and exchanges a message on each.

Time: the protocol's key epoch must exceed the longest circuit lifetime (600 s) plus
twice the clock skew and the EXP granularity, so an epoch is at least 670 s and 60 epochs
are 11 hours of protocol time. No wall-clock epoch can be shorter without changing the
protocol's lifetimes, so the soak runs on trio's autojump clock (``unix_now`` follows
it): every epoch boundary, expiry, rotation and publication happens at its protocol time,
and the run takes a few minutes of real time. ``epoch_s`` and ``simulated_hours`` are
protocol (clock) time; ``wall_s`` is the real time the run took.

Reported (``--json``): ``epochs`` run; ``circuits_opened``; ``key_failures``: opens that
failed for keys or the directory (a missing or stale setup key, a relay unknown to the
directory); ``other_failures``; ``operator_actions`` (always 0: nothing outside the loop
above touches the network); ``rss_mb_by_epoch``: the process's resident memory at the
start of every epoch; ``rss_growth_mb``: after the last epoch minus after the first (the
relays all run in this process, so the per-relay figure is this divided by ``relays``,
reported as ``rss_growth_mb_per_relay``); ``rss_growth_mb_first_half`` and
``rss_growth_mb_second_half``: the same over each half of the run. Memory may grow while
the bounded caches fill (each relay's verified-AHDR cache, ``cached_circuits_max`` at the
end against ``cache_capacity``; a destination's sessions of live circuits) and must be
flat once they are full: the second half's growth is the figure to watch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import trio
import trio.testing
from rich.console import Console
from rich.progress import Progress

import hornet
from hornet.authority import Authority, AuthorityKey, consensus, sign_entry
from hornet.circuit.circuit import Circuit
from hornet.core import engine
from hornet.core.params import Params
from hornet.core.relay import DEFAULT_CACHE_SIZE
from hornet.directory.model import Directory, relay_info
from hornet.errors import HornetError
from hornet.testing.memnet import MemoryNetwork
from hornet.transport.udp import unix_now

KEY_MARKERS = ("setup key", "directory", "epoch")


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(message)


async def soak(
    epochs: int,
    relays: int,
    circuits_per_epoch: int,
    seed: int,
    epoch_s: int,
    progress: Callable[[int], None] = lambda epoch: None,
) -> dict[str, Any]:
    rng = random.Random(seed)
    params = Params(epoch_s=epoch_s)
    authority_keys = [AuthorityKey.generate(rng) for _ in range(3)]
    authorities = [Authority(k, params, validity_s=params.epoch_s) for k in authority_keys]
    trusted = {k.public for k in authority_keys}
    out: dict[str, Any] = {
        "relays": relays,
        "authorities": 3,
        "threshold": 2,
        "epoch_s": params.epoch_s,
        "circuits_opened": 0,
        "key_failures": 0,
        "other_failures": 0,
        "operator_actions": 0,
        "publications": 0,
        "failure_examples": [],
    }
    mem = MemoryNetwork(seed=seed)
    async with hornet.local_network(
        relays, service=_echo, network=mem, seed=seed, params=params
    ) as net:
        assert net.service is not None
        nodes = [*net.relays, net.service.node]

        def publish() -> Directory:
            now = unix_now()
            for node, keys in zip(nodes, net.keys, strict=True):
                entry = relay_info(keys, node.address, params, now=now, epochs=3).to_json()
                signed = sign_entry(keys.node_key, entry, int(now), rng.randbytes(32))
                for authority in authorities:
                    authority.submit(signed, now)
            documents = [a.publish(now, rng.randbytes(32)) for a in authorities]
            directory, _ = consensus(documents, trusted, 2, now)
            for node in nodes:
                node.replace_directory(directory)
            out["publications"] += 1
            return directory

        directory = publish()
        first_epoch = params.epoch_of(unix_now())
        next_publication = unix_now() + params.epoch_s / 4
        gap = params.epoch_s / circuits_per_epoch
        rss_by_epoch: list[float] = []  # at the start of each epoch
        message = bytes(range(256)) * 8
        while (epoch := params.epoch_of(unix_now()) - first_epoch) < epochs:
            progress(epoch)
            if len(rss_by_epoch) <= epoch:
                rss_by_epoch.append(round(_rss_mb(), 1))
            if unix_now() >= next_publication:
                directory = publish()
                next_publication += params.epoch_s / 4
            try:
                async with hornet.open_circuit(
                    directory, net.service_id, hops=3, network=mem, attempts=1
                ) as circuit:
                    await circuit.send(message)
                    with trio.fail_after(30):
                        if await circuit.receive() != message:
                            raise HornetError("wrong reply")
                out["circuits_opened"] += 1
            except HornetError as exc:
                text = str(exc)
                kind = "key_failures" if any(m in text for m in KEY_MARKERS) else "other_failures"
                out[kind] += 1
                if len(out["failure_examples"]) < 5:
                    out["failure_examples"].append(text[:200])
            await trio.sleep(gap)
        out["epochs"] = params.epoch_of(unix_now()) - first_epoch
        out["simulated_hours"] = round(out["epochs"] * params.epoch_s / 3600, 1)
        rss_by_epoch.append(round(_rss_mb(), 1))
        # From the start of epoch 1: epoch 0 is start-up (imports, first keys, buffers).
        first, last = rss_by_epoch[1], rss_by_epoch[-1]
        middle = rss_by_epoch[len(rss_by_epoch) // 2]
        out["rss_growth_mb"] = round(last - first, 1)
        out["rss_growth_mb_per_relay"] = round(out["rss_growth_mb"] / relays, 2)
        out["rss_growth_mb_first_half"] = round(middle - first, 1)
        out["rss_growth_mb_second_half"] = round(last - middle, 1)
        out["rss_growth_mb_per_relay_second_half"] = round((last - middle) / relays, 2)
        out["rss_mb_by_epoch"] = rss_by_epoch
        out["cache_capacity"] = DEFAULT_CACHE_SIZE
        out["cached_circuits_max"] = max(n.statistics().cached_circuits for n in nodes)
        out["dropped"] = sum(sum(n.statistics().dropped.values()) for n in nodes)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--relays", type=int, default=5)
    parser.add_argument("--circuits-per-epoch", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    shortest = Params().max_lifetime_s + 2 * Params().max_skew_s + 10
    parser.add_argument(
        "--epoch-s",
        type=int,
        default=shortest,
        help=f"key epoch in seconds (default {shortest}, the shortest the protocol allows)",
    )
    args = parser.parse_args(argv)
    if not 2 <= args.epochs <= 10_000 or not 3 <= args.relays <= 50 or args.epoch_s < shortest:
        parser.error(f"--epochs in [2, 10000], --relays in [3, 50], --epoch-s >= {shortest}")
    started = time.perf_counter()
    # Progress on stderr (rich), so that --json keeps stdout to one JSON object.
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("key epochs", total=args.epochs)
        figures = trio.run(
            soak,
            args.epochs,
            args.relays,
            max(1, args.circuits_per_epoch),
            args.seed,
            args.epoch_s,
            lambda epoch: bar.update(task, completed=epoch),
            clock=trio.testing.MockClock(autojump_threshold=0),
        )
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    figures["python"] = sys.version.split()[0]
    figures["engine"] = engine.active()
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>24}: {value}")
    return 0 if figures["key_failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

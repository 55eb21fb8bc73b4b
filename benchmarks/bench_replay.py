"""Benchmark of the data replay filter (SPEC.md §7.4) under one neighbour's full allowance.

One neighbour sends ``--pps`` authentic data packets per second (default 50 000, the
per-neighbour ``data_rate``) for ``--seconds`` (default 120, one EXP window) on circuits
whose EXP shares the window of other circuits. Each packet's filter value is the PRP'd
IV, a pseudo-random 16-byte value, so random values stand for them. Then ``--fresh``
fresh values of another circuit in the same window are checked: each one the filter
calls a replay is a false drop.

Two filters are measured on the same values:

- ``fixed``: one 2^23-bit array per window that never grows (the baseline, obtained
  with a memory bound of one array: one window, no room to grow);
- ``growing``: the default ``DataReplayFilter`` (slices that double as they fill).

Figures per filter: ``false_drop`` (share of fresh values dropped), ``memory_mb`` after
the flood, ``replays_refused`` (share of 10 000 flood values refused when sent again:
must be 1.0), and ``seen_ns`` (ns per ``seen`` call on a window that has not grown: the
per-packet cost an honest relay pays). Prints a table, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

from hornet.core.replay import DataReplayFilter

EXP = 630
SKEW = 30


def _values(rng: random.Random, n: int) -> list[bytes]:
    blob = rng.randbytes(16 * n)
    return [blob[i : i + 16] for i in range(0, len(blob), 16)]


def _seen_ns(make: type[DataReplayFilter] | Any, n: int = 50_000, rounds: int = 7) -> float:
    values = _values(random.Random(3), n)
    best = float("inf")
    for _ in range(rounds):
        f = make()
        seen = f.seen
        start = time.perf_counter()
        for value in values:
            seen(value, EXP, 0.0, SKEW)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e9


def measure(make: Any, flood: int, fresh: int) -> dict[str, float]:
    f = make()
    rng = random.Random(22)
    for start in range(0, flood, 500_000):
        for value in _values(rng, min(500_000, flood - start)):
            f.seen(value, EXP, 1.0, SKEW)
    memory = f.memory_bytes
    others = _values(random.Random(23), fresh)
    dropped = sum(f.seen(value, EXP, 2.0, SKEW) for value in others)
    again = _values(random.Random(22), 10_000)
    refused = sum(f.seen(value, EXP, 3.0, SKEW) for value in again)
    return {
        "false_drop": dropped / fresh,
        "memory_mb": memory / 2**20,
        "replays_refused": refused / len(again),
        "seen_ns": _seen_ns(make),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--pps", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--fresh", type=int, default=100_000)
    args = parser.parse_args()
    flood = args.pps * args.seconds
    result: dict[str, Any] = {"flood_packets": flood, "fresh_packets": args.fresh}
    one_array = 1 << (DataReplayFilter().bits_log2 - 3)
    makers = {
        "fixed": lambda: DataReplayFilter(max_windows=1, max_bytes=one_array),
        "growing": DataReplayFilter,
    }
    for name, make in makers.items():
        for key, value in measure(make, flood, args.fresh).items():
            result[f"{name}_{key}"] = value
    if args.json:
        print(json.dumps({k: round(v, 6) if isinstance(v, float) else v
                          for k, v in result.items()}))
        return
    for key, value in result.items():
        print(f"{key:>24}  {value:.6f}" if isinstance(value, float) else f"{key:>24}  {value}")


if __name__ == "__main__":
    main()

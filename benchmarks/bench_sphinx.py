"""Sphinx peel/create cost against pyln-proto and against the raw EC floor, in one run.

    python benchmarks/bench_sphinx.py [--json] [--rounds N]

Figures (µs, median over rounds of the per-call mean):
- peel_us: one hop of a 1366-byte packet (5-hop onion, equal 32-byte payloads);
- create_5hop_us: building that onion;
- pyln_peel_us / pyln_create_5hop_us: pyln-proto's RoutingOnion.unwrap / SphinxPath.compile
  on the same path and payloads;
- ec_floor_us: the unavoidable asymmetric work of one peel, through coincurve's public API:
  ECDH (parse E, multiply, SHA256) plus the blinding (SHA256(E ‖ ss), parse E, multiply,
  serialize). peel_over_ec_floor = peel_us / ec_floor_us.
- peel_peak_alloc_bytes: tracemalloc peak of one peel, and peel_retained_bytes: memory still
  held after 5,000 peels (shows no per-packet state).

Rounds interleave the contenders so machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable

from coincurve import PrivateKey as CCPrivateKey
from coincurve import PublicKey as CCPublicKey
from pyln.proto.onion import RoutingOnion, SphinxHop, SphinxPath
from pyln.proto.primitives import PrivateKey as PylnPrivateKey
from pyln.proto.primitives import PublicKey as PylnPublicKey
from pyln.proto.primitives import Secret as PylnSecret

from hornet.core.wire import encode_bigsize
from hornet.sphinx import SecretKey, create_onion, peel_onion

N_HOPS = 5
ASSOC = b"\x42" * 32


def _key(i: int) -> bytes:
    return hashlib.sha256(b"bench-node-%d" % i).digest()


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls / 1000


def measure(rounds: int) -> dict[str, float | int | bool]:
    secrets = [_key(i) for i in range(N_HOPS)]
    keys = [SecretKey(s) for s in secrets]
    payloads = [bytes([0x08, 0x1E]) + bytes([i]) * 30 for i in range(N_HOPS)]  # 32-byte TLVs
    hops = [(k.public_key, p) for k, p in zip(keys, payloads, strict=True)]
    session = _key(100)
    onion = create_onion(session, hops, associated_data=ASSOC)

    pyln_path = SphinxPath(
        [SphinxHop(PylnPublicKey(pub), encode_bigsize(len(p)) + p) for pub, p in hops],
        assocdata=ASSOC,
        session_key=PylnSecret(session),
    )
    pyln_onion = pyln_path.compile()
    assert pyln_onion.to_bin() == onion, "pyln-proto and hornet disagree on the packet"
    pyln_key = PylnPrivateKey(secrets[0])
    pyln_routing = RoutingOnion.from_bin(onion)

    cc_key = CCPrivateKey(secrets[0])
    ephemeral = onion[1:34]

    def ec_floor() -> bytes:
        shared = cc_key.ecdh(ephemeral)
        blind = hashlib.sha256(ephemeral + shared).digest()
        return CCPublicKey(ephemeral).multiply(blind).format()

    contenders: dict[str, tuple[Callable[[], object], int]] = {
        "peel_us": (lambda: peel_onion(keys[0], onion, associated_data=ASSOC), 2000),
        "pyln_peel_us": (lambda: pyln_routing.unwrap(pyln_key, ASSOC), 1000),
        "ec_floor_us": (ec_floor, 2000),
        "create_5hop_us": (lambda: create_onion(session, hops, associated_data=ASSOC), 300),
        "pyln_create_5hop_us": (pyln_path.compile, 60),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (fn, calls) in contenders.items():
            samples[name].append(_per_call_us(fn, calls))
    result: dict[str, float | int | bool] = {
        name: round(statistics.median(values), 2) for name, values in samples.items()
    }

    big_keys = [SecretKey(_key(50 + i)) for i in range(3)]
    big_onion = create_onion(
        session, [(k.public_key, b"\x02\x00") for k in big_keys], payload_size=32768
    )
    result["peel_32834B_us"] = round(
        statistics.median(
            _per_call_us(lambda: peel_onion(big_keys[0], big_onion), 200) for _ in range(5)
        ),
        2,
    )

    # Memory: the peak of one peel, and what stays allocated after many.
    gc.collect()
    tracemalloc.start()
    peel_onion(keys[0], onion, associated_data=ASSOC)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(5000):
        peel_onion(keys[0], onion, associated_data=ASSOC)
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result["peel_peak_alloc_bytes"] = peak
    result["peel_peak_alloc_in_packets"] = round(peak / len(onion), 2)
    result["peel_retained_bytes_after_5000"] = max(0, after - before)

    result["peel_speedup_vs_pyln"] = round(
        float(result["pyln_peel_us"]) / float(result["peel_us"]), 2
    )
    result["create_speedup_vs_pyln"] = round(
        float(result["pyln_create_5hop_us"]) / float(result["create_5hop_us"]), 2
    )
    result["peel_over_ec_floor"] = round(float(result["peel_us"]) / float(result["ec_floor_us"]), 3)
    result["target_peel_over_ec_floor_le_1_3"] = float(result["peel_over_ec_floor"]) <= 1.3
    result["target_peel_speedup_ge_1_8"] = float(result["peel_speedup_vs_pyln"]) >= 1.8
    result["target_create_speedup_ge_5"] = float(result["create_speedup_vs_pyln"]) >= 5.0
    result["rounds"] = rounds
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    args = parser.parse_args(argv)
    result = measure(args.rounds)
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    print(f"Sphinx (BOLT 4, {N_HOPS} hops, 1366-byte packets), median of {args.rounds} rounds")
    width = max(len(k) for k in result)
    for name, value in result.items():
        print(f"  {name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

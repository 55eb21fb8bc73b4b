"""The native engine against the Python reference, per hop, in one run.

    python benchmarks/bench_native.py [--json] [--rounds N] [--packets N] [--no-e2e]

All times are µs of this thread's CPU time (so load from other processes does not count),
the median over interleaved rounds; each packet is fresh and processed once (the
hardened profile's replay filter drops repeats, and its cost is in every figure).

- native_hop_us / python_hop_us: ``Relay.process`` at the first relay of a 3-hop
  circuit (r = the default max_hops), hardened profile, 1024-byte payload, cache warm.
  native_engine_hop_us: the same decision timed inside the engine (no Python call, no
  result objects): what the engine itself costs per hop.
- native_engine_gcm_seal_us: one AES-256-GCM seal of the same 1024 bytes (each packet's
  payload, fresh, copied into a new buffer as the hop copies its packet) with the crate
  the engine uses (ring), timed inside the engine; native_gcm_seal_us: the same seal
  through the Python API (``hornet._native.Aes256Gcm.seal``); openssl_gcm_seal_us:
  through ``cryptography`` (OpenSSL), for scale.
- native_hop_over_gcm = native_engine_hop_us / native_engine_gcm_seal_us (target ≤ 3);
  native_api_hop_over_gcm = native_hop_us / native_gcm_seal_us, both through Python.
- native_over_python_hop = python_hop_us / native_hop_us (per-hop cost).
- end to end (``bench_native_e2e.py``, skipped with ``--no-e2e``): 3 relays as separate
  processes, link layer on, three chains in one run: ``native_goodput_ratio`` (native
  data loop / plain native forwarder, target ≥ 0.5) and ``native_over_python`` (native
  chain / pure-Python chain, target ≥ 10); the chains' other figures under ``e2e``.
- paper: the same hop in the paper profile; cold: the hardened hop with the cache off
  (every packet opens its FS, checks the MAC, derives keys).
- source_seal_us / sink_open_us: a datagram circuit's ``SourceSession.seal`` (frame AEAD
  and 3-layer onion) and ``SourceSession.open`` (backward onion and frame), per engine.
- link_seal_open_us: a link DATA datagram sealed at one end and opened at the other
  (1,100-byte packet), per engine.
- sizes: the hardened and paper hop per payload size, both engines (RESULTS.md's curve).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import bench_native_e2e
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hornet.core import engine
from hornet.core.chdr import data_chdr
from hornet.core.e2e import DestinationSession, SourceSession
from hornet.core.params import Params, Profile
from hornet.core.relay import Forward, Relay
from hornet.link.channel import ChannelSession, NativeChannelSession
from hornet.link.noise import TransportKeys
from hornet.testing.sim import SimNetwork

NOW = 1.0
SIZES = (64, 256, 512, 1024, 1400, 4096, 8192)
ENGINES = ("native", "python")


def _median(samples: list[float]) -> float:
    return round(statistics.median(samples), 3)


def _timed(run: Callable[[], object], count: int) -> float:
    """µs per item of ``run()``, in CPU time of this thread (load from other processes on
    a shared machine does not count), with the garbage collector paused."""
    gc.disable()
    start = time.thread_time_ns()
    run()
    elapsed = time.thread_time_ns() - start
    gc.enable()
    return elapsed / count / 1000


def _time_packets(relay: Relay, packets: list[bytes]) -> float:
    process = relay.process

    def run() -> None:
        for packet in packets:
            process(packet, NOW)

    return _timed(run, len(packets))


def _time_calls(fn: Callable[[], object], calls: int) -> float:
    def run() -> None:
        for _ in range(calls):
            fn()

    return _timed(run, calls)


class Chain:
    """A 3-hop circuit and, per engine, a relay twin of its first hop."""

    def __init__(self, profile: Profile, *, cache_size: int = 1024) -> None:
        self.params = Params(profile=profile)
        net = SimNetwork(8, self.params, seed=21, engine="python")
        self.keys = net.setup([0, 1, 2], [3, 4], now=NOW)
        self.rng = random.Random(22)
        self.twins = {
            name: SimNetwork(8, self.params, seed=21, cache_size=cache_size, engine=name).relays[0]
            for name in ENGINES
        }
        self.onion = engine.forward_onion(
            profile, self.keys.forward_keys, self.params.max_hops, engine="native"
        )
        self.padding = self.params.tag_array_len - 3 * 16 if self.params.tag_array_len else 0

    def packets(self, count: int, size: int) -> list[bytes]:
        out = []
        r, rng = self.params.max_hops, self.rng
        for _ in range(count):
            iv, tags, payload = self.onion.wrap(
                rng.randbytes(16), rng.randbytes(size), rng.randbytes(self.padding)
            )
            out.append(data_chdr(r, iv) + self.keys.ahdr_forward + tags + payload)
        return out

    def check(self, packet: bytes) -> None:
        for relay in self.twins.values():
            assert isinstance(relay.process(packet, NOW), Forward)


def hop_figures(chain: Chain, size: int, packets: int, rounds: int) -> dict[str, float]:
    """Per-hop µs through ``Relay.process`` per engine, and inside the native engine."""
    chain.check(chain.packets(1, size)[0])  # warm the caches: steady state
    samples: dict[str, list[float]] = {name: [] for name in (*ENGINES, "engine")}
    plane = chain.twins["native"]._fast
    for _ in range(rounds):
        batch = chain.packets(packets, size)
        for name in ENGINES:
            samples[name].append(_time_packets(chain.twins[name], batch))
        # The same decisions again inside the engine, on fresh packets of the same circuit.
        fresh = chain.packets(packets, size)
        blob, length = b"".join(fresh), len(fresh[0])
        samples["engine"].append(
            _timed(lambda: plane.run_packets(blob, length, NOW), packets)  # noqa: B023
        )
    out = {f"{name}_hop_us": _median(samples[name]) for name in ENGINES}
    out["native_engine_hop_us"] = _median(samples["engine"])
    return out


def _endpoint(name: str, rounds: int, calls: int) -> dict[str, float]:
    params = Params()
    net = SimNetwork(8, params, seed=31, engine=name)
    keys = net.setup([0, 1, 2], [3, 4], now=NOW)
    source = SourceSession(keys, 1024)
    first = net.deliver(source.seal(b"hello", NOW, net.rng), NOW)
    dest = DestinationSession(params, first.delivered, 1024)
    dest.receive(first.delivered)
    back = [net.deliver(dest.seal(b"x" * 900, net.rng), NOW).exit_packet for _ in range(calls)]
    source.peer_has_reply_header = True  # steady state: DATA frames, not INIT
    rng, data = net.rng, b"y" * 900
    seals, opens = [], []
    for _ in range(rounds):
        packets = iter(back)
        seals.append(_time_calls(lambda: source.seal(data, NOW, rng), calls))
        fresh = SourceSession(keys, 1024)  # a new replay window for the same packets
        opens.append(_time_calls(lambda: fresh.open(next(packets)), calls))  # noqa: B023
    return {f"{name}_source_seal_us": _median(seals), f"{name}_sink_open_us": _median(opens)}


def endpoint_figures(rounds: int, calls: int) -> dict[str, float]:
    """A datagram circuit's source seal and sink open (backward packet), per engine."""
    out: dict[str, float] = {}
    before = engine.active()
    for name in ENGINES:
        engine.use(name)  # the sessions' onions come from the active engine
        try:
            out.update(_endpoint(name, rounds, calls))
        finally:
            engine.use(before)
    return out


def link_figures(rounds: int, calls: int) -> dict[str, float]:
    """A link DATA datagram (1,100-byte HORNET packet): seal at one end, open at the
    other, per engine (``ChannelSession`` against ``NativeChannelSession``)."""
    out: dict[str, float] = {}
    packet = bytes(1100)
    for name, cls in (("native", NativeChannelSession), ("python", ChannelSession)):
        samples = []
        for _ in range(rounds):
            a = cls(
                TransportKeys(b"\x01" * 32, b"\x02" * 32, b"", b"", b""),
                initiator=True,
                created=0.0,
            )
            b = cls(
                TransportKeys(b"\x02" * 32, b"\x01" * 32, b"", b"", b""),
                initiator=False,
                created=0.0,
            )
            samples.append(_time_calls(lambda a=a, b=b: b.open(a.seal(packet)), calls))
        out[f"{name}_link_seal_open_us"] = _median(samples)
    return out


def gcm_figures(chain: Chain, rounds: int, count: int) -> dict[str, float]:
    """One AES-256-GCM seal of each packet's 1024 payload bytes (the same bytes a hop
    handles, fresh each time): inside the engine, through its Python API, and through
    ``cryptography`` (OpenSSL)."""
    assert engine.native is not None
    key, nonce = bytes(range(32)), bytes(12)
    native = engine.native.Aes256Gcm(key)
    openssl = AESGCM(key)
    inside, api, ossl = [], [], []
    for _ in range(rounds):
        payloads = [packet[-1024:] for packet in chain.packets(count, 1024)]
        blob = b"".join(payloads)
        inside.append(_timed(lambda: native.run_seals(nonce, blob, 1024), count))  # noqa: B023
        for samples, seal in ((api, native.seal), (ossl, openssl.encrypt)):

            def run(seal: Callable[[bytes, bytes, None], bytes] = seal) -> None:
                for payload in payloads:  # noqa: B023
                    seal(nonce, payload, None)

            samples.append(_timed(run, count))
    return {
        "native_engine_gcm_seal_us": _median(inside),
        "native_gcm_seal_us": _median(api),
        "openssl_gcm_seal_us": _median(ossl),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--packets", type=int, default=4000)
    parser.add_argument("--no-e2e", dest="e2e", action="store_false")
    parser.add_argument("--e2e-packets", type=int, default=30_000)
    parser.add_argument("--e2e-rounds", type=int, default=7)
    args = parser.parse_args()
    if engine.native is None:
        raise SystemExit("bench_native: hornet._native is not built (install cargo, reinstall)")
    rounds, packets = args.rounds, args.packets
    hardened, paper = Chain(Profile.HARDENED), Chain(Profile.PAPER)
    cold = Chain(Profile.HARDENED, cache_size=0)
    main_hop = hop_figures(hardened, 1024, packets, rounds)
    gcm = gcm_figures(hardened, rounds, packets)
    result: dict[str, Any] = {
        "payload": 1024,
        "profile": "hardened",
        **main_hop,
        **gcm,
        "native_hop_over_gcm": round(
            main_hop["native_engine_hop_us"] / gcm["native_engine_gcm_seal_us"], 3
        ),
        "native_api_hop_over_gcm": round(main_hop["native_hop_us"] / gcm["native_gcm_seal_us"], 3),
        "native_over_python_hop": round(
            main_hop["python_hop_us"] / main_hop["native_hop_us"], 2
        ),
        "paper": hop_figures(paper, 1024, packets, rounds),
        "cold": hop_figures(cold, 1024, packets // 4, rounds),
        **endpoint_figures(rounds, packets // 4),
        **link_figures(rounds, packets),
    }
    result["sizes"] = {
        str(size): {
            "hardened": hop_figures(hardened, size, packets // 2, max(3, rounds // 2)),
            "paper": hop_figures(paper, size, packets // 2, max(3, rounds // 2)),
        }
        for size in SIZES
    }
    result["targets"] = {
        "native_hop_over_gcm <= 3": result["native_hop_over_gcm"] <= 3,
    }
    if args.e2e:
        e2e = bench_native_e2e.run(args.e2e_packets, args.e2e_rounds)
        result["native_goodput_ratio"] = e2e.pop("native_goodput_ratio")
        result["native_over_python"] = e2e.pop("native_over_python")
        e2e.pop("targets")
        result["e2e"] = e2e
        result["targets"]["native_goodput_ratio >= 0.5"] = result["native_goodput_ratio"] >= 0.5
        result["targets"]["native_over_python >= 10"] = result["native_over_python"] >= 10
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

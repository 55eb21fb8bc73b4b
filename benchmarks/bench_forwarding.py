"""HORNET per-hop costs on one core: data forwarding, setup, Sphinx, and the AES floor.

    python benchmarks/bench_forwarding.py [--json] [--rounds N]

Top-level keys describe the paper profile; ``hardened`` holds the same keys for the
hardened profile. All times are µs, the median over rounds, in CPU time of the measuring
thread (``time.thread_time_ns``): the loops are single-threaded and CPU-bound, so on an
idle core this equals wall time, and on a shared machine other processes do not inflate
it. ``hardened_over_paper`` is the median ratio of rounds in which the two profiles are
timed back to back (``interleaved_hop_us`` gives their hops there), so that the load of
the moment, which also costs cache misses that CPU time does count, falls on both alike.

- data_hop_us: ``Relay.process`` on a forward data packet (r = 7, 1024-byte payload) at
  the first relay of a 3-hop circuit, in steady state: the relay's bounded AHDR cache
  holds the circuit, as it does for every packet after a circuit's first. Every packet
  is fresh and processed once: the hardened profile's data replay filter (SPEC.md §7.4)
  drops repeats, and its cost is part of the figure.
- data_hop_cold_us: the same with the cache disabled (every packet opens its FS,
  derives keys and builds cipher contexts): the cost of a circuit's first packet.
- aes_ctr_1k_call_us: one Python call that AES-CTR-encrypts 1 KB through
  ``cryptography`` with a fresh context (``Cipher(...).encryptor().update``): the floor
  for a per-packet key. aes_ctr_1k_update_us: ``update`` on a cached context.
- data_cost_in_aes_calls = data_hop_us / aes_ctr_1k_call_us.
- sphinx_peel_us: our BOLT 4 Sphinx peel (1366-byte packet); sphinx_over_data =
  sphinx_peel_us / data_hop_us.
- setup_hop_us: a relay processing a fresh setup packet P➊ (Sphinx peel with the SP
  bound as associated data, replay tag, FS creation, ADD_FS, SP layer);
  setup_over_sphinx = setup_hop_us / sphinx_peel_us.
- rendezvous_splice_us: ``Relay.process`` at a rendezvous point on a nested data packet
  (1024-byte payload) from S's 3-hop circuit to D's: remove RP's layer, open and check
  the inner block, splice to an r·c header, in steady state (cache warm).
  rendezvous_splice_cold_us: the same with the cache disabled (both FSes opened, both
  MACs checked, contexts built per packet). nested_hop_us: an outer forward relay on
  S's circuit (before RP) processing the nested packet, cache warm.
- sizes: per-hop µs, packets/s and Gb/s of payload for 64 to 8192-byte payloads, with
  the same payload through OpenSSL alone (AES-CTR update, AES-GCM decrypt) beside them.
- relay_state: traced memory of one relay after 1,000 and 10,000 circuits.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hornet.core import engine
from hornet.core.ahdr import create_ahdr
from hornet.core.chdr import TYPE_DATA, TYPE_DATA_NESTED, data_chdr
from hornet.core.e2e import SourceSession
from hornet.core.fs import Flag, HopKeys, Route, fs_create
from hornet.core.onion import build_forward
from hornet.core.params import C, Params, Profile
from hornet.core.relay import Forward, Relay
from hornet.core.rendezvous import RendezvousDestination, RendezvousSource
from hornet.core.setup import build_setup
from hornet.sphinx import SecretKey, create_onion, peel_onion
from hornet.testing.sim import SOURCE_ID, SimNetwork

SIZES = (64, 512, 1024, 1400, 4096, 8192)
NOW = 1.0
RENDEZVOUS_PAYLOAD = 1024
DEST_ID = b"dest\x00\x00\x00\x01"
# Relays of the rendezvous network: RP, S's forward and backward relays, D's.
RP, S_FWD, S_BWD, D_FWD, D_BWD = 0, [1, 2], [3], [4], [5, 6]


_clock = time.thread_time_ns


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    start = _clock()
    for _ in range(calls):
        fn()
    return (_clock() - start) / calls / 1000


def _per_packet_us(relay: Relay, packets: list[bytes]) -> float:
    """Each packet once: a relay's data replay filter (hardened profile) drops repeats."""
    process = relay.process
    start = _clock()
    for packet in packets:
        process(packet, NOW)
    return (_clock() - start) / len(packets) / 1000


def _data_packets(net: SimNetwork, payload_size: int, count: int) -> tuple[Relay, list[bytes]]:
    """``count`` fresh data packets of one circuit, as its first relay receives them."""
    keys = net.setup([0, 1, 2], [3, 4])
    session = SourceSession(keys, max(payload_size, 400))
    p = net.params

    def small() -> bytes:
        # Small payload classes only carry data after INIT: build the packet by hand.
        padding = net.rng.randbytes((p.max_hops - 3) * 16) if p.profile is Profile.HARDENED else b""
        iv, tags, payload = build_forward(
            p.profile,
            keys.forward_keys,
            net.rng.randbytes(16),
            bytes(payload_size),
            padding,
            p.max_hops,
        )
        return data_chdr(p.max_hops, iv) + keys.ahdr_forward + tags + payload

    def large() -> bytes:
        return session.seal(b"x" * 8, NOW, net.rng).packet

    make = small if payload_size < 400 else large
    packets = [make() for _ in range(count)]
    relay = net.by_id[keys.first_hop]
    assert isinstance(relay.process(packets[0], NOW), Forward)
    assert all(isinstance(relay.process(pk, NOW), Forward) for pk in packets[1:3])
    return relay, packets[3:]


def _rendezvous_packets(
    net: SimNetwork, count: int
) -> tuple[tuple[Relay, list[bytes]], tuple[Relay, list[bytes]]]:
    """(RP, fresh nested packets as RP receives them), (S's first relay, the packets S sends).

    S → 1 → 2 → RP (splice) → 5 → 6 → D: a 3-hop nested leg, then D's backward relays.
    """
    d_keys = net.setup([*D_FWD, RP], D_BWD, now=NOW, endpoint=DEST_ID, rendezvous=True, exp=600)
    dest = RendezvousDestination(d_keys, SecretKey.from_rng(net.rng), RENDEZVOUS_PAYLOAD)
    s_keys = net.setup([*S_FWD, RP], S_BWD, now=NOW, rendezvous=True, exp=600)
    source = RendezvousSource(s_keys, dest.descriptor(), net.rng)
    rp_id = net.relays[RP].node_id
    at_rp: list[bytes] = []
    sent: list[bytes] = []
    for i in range(count + 1):
        out = source.seal(b"x" * 8, NOW, net.rng)
        if i == 0:  # INIT: follow it all the way, and check the splice
            trip = net.deliver(out, NOW)
            assert dest.receive(trip.exit_packet).data == b"x" * 8
            (hop,) = [h for h in trip.hops if h.node_id == rp_id]
            assert hop.packet[0] == TYPE_DATA_NESTED and isinstance(hop.result, Forward)
            assert hop.result.packet[0] == TYPE_DATA
            continue
        sent.append(out.packet)
        packet, hop_id = out.packet, out.next_hop
        while hop_id != rp_id:  # the two relays before RP (these are their only calls)
            result = net.by_id[hop_id].process(packet, NOW)
            assert isinstance(result, Forward)
            packet, hop_id = result.packet, result.next_hop
        at_rp.append(packet)
    return (net.relays[RP], at_rp), (net.by_id[s_keys.first_hop], sent)


def _profile_figures(profile: Profile, rounds: int, aes_call: float) -> dict[str, Any]:
    params = Params(profile=profile)
    net = SimNetwork(6, params, seed=7)
    cold_net = SimNetwork(6, params, seed=7, cache_size=0)
    hot_n, cold_n = 5000, 1000
    relay, packets = _data_packets(net, 1024, hot_n * rounds + 3)
    cold_relay, cold_packets = _data_packets(cold_net, 1024, cold_n * rounds + 3)
    # The nested packets S sends are measured at S's first relay (a fresh network, so that
    # relay has not seen them); the ones RP receives at RP.
    (rp, rp_packets), (_, nested_packets) = _rendezvous_packets(
        SimNetwork(7, params, seed=9), hot_n * rounds + 1
    )
    # S's first relay in a twin network (same seed: same keys and circuits) that has not
    # seen the nested packets yet (the hardened data replay filter would drop them).
    _, (outer, _) = _rendezvous_packets(SimNetwork(7, params, seed=9), 0)
    assert isinstance(outer.process(nested_packets.pop(), NOW), Forward)
    (cold_rp, cold_rp_packets), _ = _rendezvous_packets(
        SimNetwork(7, params, seed=9, cache_size=0), cold_n * rounds
    )

    # Fresh setup packets (a relay drops replays), each used once.
    requests = [
        build_setup(
            params, [net.spec(0), net.spec(1), net.spec(2)], [net.spec(3)], SOURCE_ID, 600, net.rng
        )
        for _ in range(rounds * 60)
    ]
    setup_relay = net.by_id[requests[0].first_hop]
    setup_iter = iter(requests)

    samples: dict[str, list[float]] = {
        "data_hop_us": [],
        "data_hop_cold_us": [],
        "setup_hop_us": [],
        "rendezvous_splice_us": [],
        "rendezvous_splice_cold_us": [],
        "nested_hop_us": [],
    }
    for r in range(rounds):
        hot, cold = slice(r * hot_n, (r + 1) * hot_n), slice(r * cold_n, (r + 1) * cold_n)
        samples["data_hop_us"].append(_per_packet_us(relay, packets[hot]))
        samples["data_hop_cold_us"].append(_per_packet_us(cold_relay, cold_packets[cold]))
        samples["setup_hop_us"].append(
            _per_call_us(lambda: setup_relay.process(next(setup_iter).packet, NOW), 60)
        )
        samples["rendezvous_splice_us"].append(_per_packet_us(rp, rp_packets[hot]))
        samples["rendezvous_splice_cold_us"].append(_per_packet_us(cold_rp, cold_rp_packets[cold]))
        samples["nested_hop_us"].append(_per_packet_us(outer, nested_packets[hot]))
    figures: dict[str, Any] = {k: round(statistics.median(v), 2) for k, v in samples.items()}
    figures["data_cost_in_aes_calls"] = round(figures["data_hop_us"] / aes_call, 2)
    figures["data_cold_cost_in_aes_calls"] = round(figures["data_hop_cold_us"] / aes_call, 2)
    sizes: dict[str, dict[str, float]] = {}
    for size in SIZES:
        size_relay, size_packets = _data_packets(net, size, 3000 * rounds + 3)
        us = statistics.median(
            _per_packet_us(size_relay, size_packets[r * 3000 : (r + 1) * 3000])
            for r in range(rounds)
        )
        sizes[str(size)] = {
            "hop_us": round(us, 2),
            "packets_per_s": round(1e6 / us),
            "payload_gbps": round(size * 8 * 1e6 / us / 1e9, 3),
            **_raw_openssl(size, rounds),
        }
    figures["sizes"] = sizes
    return figures


def _raw_openssl(size: int, rounds: int) -> dict[str, float]:
    """The same payload through OpenSSL alone, on cached contexts: the floor for a hop.

    openssl_ctr_us: one AES-128-CTR ``update`` (the paper profile's layer);
    openssl_gcm_us: one AES-128-GCM decrypt of the tag array and the payload together,
    r·16 + ``size`` bytes, with its tag (the hardened profile's layer, SPEC.md §5.4).
    """
    key, nonce, data = os.urandom(16), os.urandom(12), os.urandom(size)
    ctx = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    gcm = AESGCM(key)
    sealed = gcm.encrypt(nonce, os.urandom(Params().tag_array_len) + data, None)
    ctr = statistics.median(_per_call_us(lambda: ctx.update(data), 20000) for _ in range(rounds))
    gcm_us = statistics.median(
        _per_call_us(lambda: gcm.decrypt(nonce, sealed, None), 20000) for _ in range(rounds)
    )
    return {"openssl_ctr_us": round(ctr, 3), "openssl_gcm_us": round(gcm_us, 3)}


def _interleaved_ratio(rounds: int) -> tuple[float, float, float]:
    """Hardened / paper data hop, the two measured in alternate rounds of the same run.

    Each round times one batch of fresh packets in each profile back to back, so that the
    load other processes put on the machine (and on its caches) falls on both alike; the
    result is the median of the per-round ratios, with each profile's median hop.
    """
    batch, pairs = 5000, 3 * rounds
    setups = {
        profile: _data_packets(SimNetwork(6, Params(profile=profile), seed=7), 1024,
                               batch * pairs + 3)
        for profile in (Profile.PAPER, Profile.HARDENED)
    }
    paper, hardened, ratios = [], [], []
    for r in range(pairs):
        part = slice(r * batch, (r + 1) * batch)
        relay, packets = setups[Profile.PAPER]
        paper.append(_per_packet_us(relay, packets[part]))
        relay, packets = setups[Profile.HARDENED]
        hardened.append(_per_packet_us(relay, packets[part]))
        ratios.append(hardened[-1] / paper[-1])
    return statistics.median(ratios), statistics.median(paper), statistics.median(hardened)


def _relay_state(circuits: int) -> int:
    """Traced bytes held by one relay after one data packet on each of ``circuits``."""
    params = Params(profile=Profile.PAPER)
    net = SimNetwork(1, params, seed=3)
    relay = net.relays[0]
    prp = relay.epoch_keys(0).prp  # (white-box: mint real FSes without 10,000 setups)
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for i in range(circuits):
        s = i.to_bytes(16, "big")
        fs = fs_create(prp, s, Route(b"\x00" * 7 + b"\x01", Flag.NONE), 600)
        ahdr = create_ahdr(
            [HopKeys(s)], [fs], bytes((params.max_hops - 1) * C), slots=params.max_hops
        )
        packet = bytes((2, params.max_hops)) + bytes(16) + ahdr + bytes(512)
        relay.process(packet, NOW)
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held - base


def measure(rounds: int) -> dict[str, Any]:
    key = os.urandom(16)
    iv = os.urandom(16)
    data = os.urandom(1024)
    ctx = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    aes_call = statistics.median(
        _per_call_us(
            lambda: Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update(data), 20000
        )
        for _ in range(rounds)
    )
    aes_update = statistics.median(
        _per_call_us(lambda: ctx.update(data), 50000) for _ in range(rounds)
    )

    nodes = [SecretKey(os.urandom(32)) for _ in range(5)]
    onion = create_onion(os.urandom(32), [(n.public_key, b"\x02\x1e" + bytes(30)) for n in nodes])
    sphinx_peel = statistics.median(
        _per_call_us(lambda: peel_onion(nodes[0], onion), 1000) for _ in range(rounds)
    )

    result: dict[str, Any] = {
        "aes_ctr_1k_call_us": round(aes_call, 3),
        "aes_ctr_1k_update_us": round(aes_update, 3),
        "sphinx_peel_us": round(sphinx_peel, 2),
    }
    for profile in (Profile.PAPER, Profile.HARDENED):
        figures = _profile_figures(profile, rounds, aes_call)
        figures["sphinx_over_data"] = round(sphinx_peel / figures["data_hop_us"], 1)
        figures["setup_over_sphinx"] = round(figures["setup_hop_us"] / sphinx_peel, 2)
        if profile is Profile.PAPER:
            result.update(figures)
        else:
            result["hardened"] = figures
    ratio, paper_us, hardened_us = _interleaved_ratio(rounds)
    result["hardened_over_paper"] = round(ratio, 2)
    result["interleaved_hop_us"] = {"paper": round(paper_us, 2), "hardened": round(hardened_us, 2)}
    state_1k, state_10k = _relay_state(1000), _relay_state(10000)
    result["relay_state"] = {
        "bytes_after_1000_circuits": state_1k,
        "bytes_after_10000_circuits": state_10k,
    }
    result["targets"] = {
        "data_cost_in_aes_calls_le_3": result["data_cost_in_aes_calls"] <= 3,
        "sphinx_over_data_ge_10": result["sphinx_over_data"] >= 10,
        "hardened_le_2x_paper": result["hardened_over_paper"] <= 2,
        "setup_le_2x_sphinx": result["setup_over_sphinx"] <= 2,
        "state_flat_1k_to_10k": state_10k <= state_1k * 1.1,
    }
    result["rounds"] = rounds
    result["clock"] = "thread_cpu"
    result["engine"] = engine.active()
    return result


_TABLE = (
    ("data_hop_us", "data hop, cache warm (µs)"),
    ("data_hop_cold_us", "data hop, no cache (µs)"),
    ("nested_hop_us", "nested data hop before RP (µs)"),
    ("rendezvous_splice_us", "rendezvous splice at RP (µs)"),
    ("rendezvous_splice_cold_us", "rendezvous splice, no cache (µs)"),
    ("setup_hop_us", "setup hop P➊ (µs)"),
    ("setup_over_sphinx", "setup hop / Sphinx peel"),
    ("data_cost_in_aes_calls", "data hop / AES-CTR 1 KB call"),
)


def _table(result: dict[str, Any]) -> str:
    """The headline figures, one row each, paper and hardened side by side."""
    lines = [f"{'':36} {'paper':>10} {'hardened':>10}"]
    for key, label in _TABLE:
        lines.append(f"{label:36} {result[key]:>10} {result['hardened'][key]:>10}")
    lines.append(f"{'Sphinx peel, BOLT 4 1366 B (µs)':36} {result['sphinx_peel_us']:>10}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    result = measure(args.rounds)
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    print(_table(result))
    print()
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the mixer core (sans-IO, one process, one core).

``paid_om_per_s``: onion messages forwarded per second, each carrying a unit-credential
spend that is verified and durably recorded (SQLite, WAL, synchronous=FULL, group
commit of ``--batch`` messages per transaction) before the forwarding decision. The
timed loop is ``MixerEngine.handle`` + ``flush`` + ``poll`` (the sans-IO ``MixerCore``
with its storage actions executed inline) over pre-built messages:
incoming limiter, Sphinx peel, route-blinding decrypt, payment decode, spend
verification, group commit, outgoing limiter. Building the messages (the client's
work) is not timed.

``paid_om_per_s_bundled``: the same pipeline with bundles of ``BUNDLE_K`` messages bought
by one spend each (spec-mixer §3.7); the core's time for the BUNDLE requests counts.

Also reported: ``om_peel_us`` (peel + blinded-hop decrypt of one 1366-byte onion
message), ``spend_verify_us``, ``record_us_per_serial`` (group commit), and
``scid_register_us`` (one REGISTER request paid with two spends: verify, mint, durable
insert, record with cached response, build the response onion).

Over BOLT 8 / TCP (``tcp``, the service as deployed; client, mixer and receivers run in
this one process and share its core, except the LDK nodes, which are Node.js processes):

- ``paid_om_per_s``: a hornet client → mixer → a hornet node, each message paid with one
  spend, a window of 200 messages in flight; ``paid_om_per_s_bundled`` the same with
  bundles of ``BUNDLE_K`` messages (one spend each, spec-mixer §3.7), the purchase of
  the bundles included;
- ``ln_forward_om_per_s``: free BOLT 4 forwarding between two LDK 0.1 nodes (LDK A floods
  a blinded path through the mixer to LDK B; the time until B counted them all);
- ``round_trip_ms_p50`` / ``p99``: a paying hornet client → mixer → LDK, whose reply comes
  back through the client's synthetic SCID, one at a time.

The LDK figures need Node.js and ``npm ci`` in tests/ldk; without them they are null
and ``ldk`` says why.

Usage: python benchmarks/bench_mixer.py [--messages N] [--batch B] [--tcp-messages N]
       [--round-trips N] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from hornet.core import crypto
from hornet.core.blinding import BlindedPath
from hornet.core.onion_message import create_message_path
from hornet.credentials.params import CredentialParams
from hornet.credentials.payments import VoucherPayments
from hornet.credentials.store import SqliteSpentStore
from hornet.directory.model import MixerListing
from hornet.mixer.actions import Transmit
from hornet.mixer.client import MixerClient
from hornet.mixer.config import MixerConfig, PeerConfig
from hornet.mixer.core import peel_message
from hornet.mixer.engine import MixerEngine
from hornet.mixer.network import PeerNetwork
from hornet.mixer.protocol import Prices, send_message_hash
from hornet.mixer.ratelimit import Limit
from hornet.mixer.service import MixerService, open_mixer
from hornet.mixer.session import MixerReply, MixerSession, Wallet
from hornet.mixer.state import ScidStore, SpendLedger
from hornet.testing.ldk import APP_TLV, open_ldk_node

LDK_FOLDER = Path(__file__).resolve().parent.parent / "tests" / "ldk"
WINDOW = 200

NOW = 1_750_000_000.0
TARGET = 800
BUNDLE_K = 64


def _build(directory: Path, batch: int, rng: random.Random,
           dest: bytes) -> tuple[MixerEngine, VoucherPayments]:
    unlimited = Limit(1e9, 1e9)
    config = MixerConfig(
        credential_params=CredentialParams(issuance_k=64),
        prices=Prices(message=1, scid_register=2),
        incoming_client=unlimited, incoming_peer=unlimited, client_profile="unlimited",
        peers=(PeerConfig(dest, "unlimited"),), max_batch=batch, bundle_k=BUNDLE_K,
    )
    spent = SqliteSpentStore(directory / "credentials.sqlite", synchronous="FULL")
    payments = VoucherPayments(directory / "credentials.sqlite")
    scids = ScidStore(directory / "mixer.sqlite", synchronous="FULL")
    core = MixerEngine.create(config, crypto.SecretKey.from_rng(rng), rng.randbytes(32),
                              ledger=SpendLedger(spent), payments=payments, scid_store=scids,
                              now=NOW)
    return core, payments


def _call(core: MixerEngine, session: MixerSession, outgoing_message: bytes,
          rng: random.Random) -> MixerReply:
    actions = core.handle(session.node_id, outgoing_message, NOW, rng) + core.flush(NOW)
    for action in actions:
        if isinstance(action, Transmit) and action.peer == session.node_id:
            reply = session.receive(action.message)
            if isinstance(reply, MixerReply):
                return reply
    raise RuntimeError("no reply from the mixer")


def _funded(core: MixerEngine, payments: VoucherPayments, units: int,
            rng: random.Random) -> MixerSession:
    session = MixerSession.create(crypto.SecretKey.from_rng(rng),
                                  Wallet(core.listing(NOW)), rng)
    _call(core, session, session.info_request(rng)[1].message, rng)
    while len(session.wallet) < units:
        voucher = payments.mint(64, rng)
        reply = _call(core, session, session.buy_request(voucher, rng, now=NOW)[1].message, rng)
        if reply.error is not None:
            raise reply.error
    return session


def _profiler() -> cProfile.Profile | None:
    """A running profiler if BENCH_PROFILE is set (prints the hot spots of the timed loop)."""
    if not os.environ.get("BENCH_PROFILE"):
        return None
    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def run(messages: int, batch: int) -> dict[str, object]:
    rng = random.Random(2024)
    dest_key = crypto.SecretKey.from_rng(rng)
    with tempfile.TemporaryDirectory() as tmp:
        core, payments = _build(Path(tmp), batch, rng, dest_key.public_key)
        registrations = 50
        session = _funded(core, payments, messages + 2 * registrations + messages // BUNDLE_K + 1,
                          rng)
        dest_path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                        [dest_key.public_key])
        wire = [session.send_message(dest_path, [(77_771, rng.randbytes(200))], rng).message
                for _ in range(messages)]

        # om_peel_us: peel + decrypt only (no spend).
        peel_times = []
        for message in wire[: min(300, messages)]:
            start = time.perf_counter()
            peel_message(core.node_key, message)
            peel_times.append(time.perf_counter() - start)

        # spend_verify_us: the issuer's check of one spend.
        client = session.wallet.require_client()
        probe = session.wallet.credentials[0]
        verify_times = []
        for _ in range(100):
            spend = client.spend_request(probe, message_hash=send_message_hash(b"\x02" * 33),
                                         rng=rng)
            start = time.perf_counter()
            core.issuer.verify_spend(spend, message_hash=send_message_hash(b"\x02" * 33),
                                     now=NOW)
            verify_times.append(time.perf_counter() - start)

        # paid_om_per_s: the whole pipeline.
        sender = session.node_id
        forwarded = 0
        transactions_before = core.ledger.transactions
        profiler = _profiler()
        start = time.perf_counter()
        for message in wire:
            for action in core.handle(sender, message, NOW, rng):
                forwarded += isinstance(action, Transmit)
        for action in core.flush(NOW) + core.poll(NOW):
            forwarded += isinstance(action, Transmit)
        elapsed = time.perf_counter() - start
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        transactions = core.ledger.transactions - transactions_before
        if forwarded != messages or core.statistics()["paid_messages"] != messages:
            raise RuntimeError(f"only {forwarded} of {messages} messages were forwarded")

        # paid_om_per_s_bundled: bundles of BUNDLE_K messages, one spend each; the
        # core's time for the BUNDLE requests and for the messages is counted.
        core_time = 0.0
        bundled = 0
        while bundled < messages:
            _, request = session.bundle_request(rng)
            start = time.perf_counter()
            answer = core.handle(sender, request.message, NOW, rng) + core.flush(NOW)
            core_time += time.perf_counter() - start
            for action in answer:
                if isinstance(action, Transmit) and action.peer == sender:
                    session.receive(action.message)
            batch_wire = [session.bundled_message(dest_path, [(77_771, rng.randbytes(200))],
                                                  rng, now=NOW).message
                          for _ in range(min(BUNDLE_K, messages - bundled))]
            start = time.perf_counter()
            for message in batch_wire:
                core.handle(sender, message, NOW, rng)
            core_time += time.perf_counter() - start
            bundled += len(batch_wire)
        if core.statistics()["bundle_messages"] != messages:
            raise RuntimeError("bundled messages were not all forwarded")
        bundled_rate = messages / core_time

        # record_us_per_serial: group commit alone.
        serials = [rng.randbytes(33) for _ in range(batch * 10)]
        start = time.perf_counter()
        for i in range(0, len(serials), batch):
            core.ledger.record_batch(core.config.credential_params.epoch_at(NOW),
                                     serials[i : i + batch])
        record_us = (time.perf_counter() - start) / len(serials) * 1e6

        # scid_register_us: REGISTER paid with two spends, end to end in the core.
        requests = [session.register_request(rng)[1].message for _ in range(registrations)]
        register_times = []
        for message in requests:
            start = time.perf_counter()
            core.handle(sender, message, NOW, rng)
            register_times.append(time.perf_counter() - start)
        if core.statistics()["scids_registered"] != registrations:
            raise RuntimeError("registrations failed")

    rate = messages / elapsed
    return {
        "paid_om_per_s": round(rate, 1),
        "paid_om_per_s_bundled": round(bundled_rate, 1),
        "bundle_k": BUNDLE_K,
        "target_paid_om_per_s": TARGET,
        "meets_target": rate >= TARGET,
        "om_peel_us": round(statistics.median(peel_times) * 1e6, 1),
        "spend_verify_us": round(statistics.median(verify_times) * 1e6, 1),
        "record_us_per_serial": round(record_us, 1),
        "scid_register_us": round(statistics.median(register_times) * 1e6, 1),
        "per_message_us": round(elapsed / messages * 1e6, 1),
        "messages": messages,
        "batch": batch,
        "transactions": transactions,
        "synchronous": "FULL",
        "python": sys.version.split()[0],
    }


def _tcp_config(peers: tuple[PeerConfig, ...]) -> MixerConfig:
    unlimited = Limit(1e9, 1e9)
    return MixerConfig(
        credential_params=CredentialParams(issuance_k=64),
        prices=Prices(message=1, scid_register=2), incoming_client=unlimited,
        incoming_peer=unlimited, free_forward=unlimited, client_profile="unlimited",
        peers=peers, queue_messages=100_000, queue_bytes=1 << 30, bundle_k=BUNDLE_K)


async def _client(nursery: trio.Nursery, listing: MixerListing, address: tuple[str, int],
                  units: int, payments: VoucherPayments) -> MixerClient:
    key = crypto.SecretKey.from_rng(random.Random(7))
    network = PeerNetwork(key, directory={listing.node_id: address})
    await nursery.start(network.serve)
    client = MixerClient.create(network, key, Wallet(listing))
    await nursery.start(client.run)
    await client.get_info()
    while len(client.wallet) < units:
        await client.buy(payments.mint(64, random.Random(len(client.wallet))))
    return client


async def _paid_over_tcp(tmp: Path, messages: int, bundled: bool = False) -> dict[str, Any]:
    rng = random.Random(99)
    dest_key = crypto.SecretKey.from_rng(rng)
    config = _tcp_config((PeerConfig(dest_key.public_key, "unlimited"),))
    state = open_mixer(config, tmp, now=time.time())
    try:
        async with trio.open_nursery() as nursery:
            mixer_net = PeerNetwork(state.core.node_key, listen=("127.0.0.1", 0),
                                    inbound_queue=4096)
            await nursery.start(mixer_net.serve)
            await nursery.start(MixerService(state.core, mixer_net, inbound_queue=4096).serve)
            dest = PeerNetwork(dest_key, listen=("127.0.0.1", 0), inbound_queue=4096)
            await nursery.start(dest.serve)
            mixer_net.directory = {dest_key.public_key: dest.address}
            mixer_id = state.core.node_key.public_key
            client = await _client(nursery, state.core.listing(time.time()),
                                   mixer_net.address, messages, state.payments)
            path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                       [dest_key.public_key])
            purchase = 0.0
            if bundled:  # buy the bundles (timed), then build their messages (not timed)
                start = time.perf_counter()
                for _ in range(-(-messages // BUNDLE_K)):
                    await client.buy_bundle()
                purchase = time.perf_counter() - start
                wire = [client.session.bundled_message(path, [(APP_TLV, rng.randbytes(200))],
                                                       rng, now=time.time())
                        for _ in range(messages)]
            else:
                wire = [client.session.send_message(path, [(APP_TLV, rng.randbytes(200))], rng)
                        for _ in range(messages)]
            received = 0

            async def count() -> None:
                nonlocal received
                while received < messages:
                    await dest.receive()
                    received += 1

            start = time.perf_counter()
            nursery.start_soon(count)
            for i, outgoing in enumerate(wire):
                while i - received >= WINDOW:
                    await trio.sleep(0.0005)
                await client.transport.send(mixer_id, outgoing.message)
            with trio.fail_after(120):
                while received < messages:
                    await trio.sleep(0.001)
            elapsed = time.perf_counter() - start + purchase
            nursery.cancel_scope.cancel()
    finally:
        state.close()
    if bundled:
        return {"paid_om_per_s_bundled": round(messages / elapsed, 1), "bundle_k": BUNDLE_K}
    return {"paid_om_per_s": round(messages / elapsed, 1),
            "paid_per_message_us": round(elapsed / messages * 1e6, 1)}


async def _with_ldk(tmp: Path, messages: int, round_trips: int) -> dict[str, Any]:
    async with trio.open_nursery() as nursery, open_ldk_node(nursery, LDK_FOLDER) as alice, \
                open_ldk_node(nursery, LDK_FOLDER) as bob:
        peers = (PeerConfig(alice.node_id, "unlimited"), PeerConfig(bob.node_id, "unlimited"))
        state = open_mixer(_tcp_config(peers), tmp, now=time.time())
        try:
            mixer_id = state.core.node_key.public_key
            network = PeerNetwork(state.core.node_key, listen=("127.0.0.1", 0),
                                  inbound_queue=4096)
            await nursery.start(network.serve)
            service = MixerService(state.core, network, inbound_queue=4096)
            await nursery.start(service.serve)
            with trio.fail_after(60):
                await alice.connect(mixer_id, network.address)
                await bob.connect(mixer_id, network.address)

            # ln_forward_om_per_s: LDK -> mixer -> LDK, free forwarding.
            await bob.command("quiet")
            path = await bob.path([mixer_id], b"bench")
            start = time.perf_counter()
            await alice.command("flood", path=path, tlv=APP_TLV, data=(b"x" * 200).hex(),
                                count=messages)
            with trio.fail_after(300):
                await alice.event("flooded")
                while True:
                    await bob.command("count")
                    if (await bob.event("count"))["received"] >= messages:
                        break
                    await trio.sleep(0.01)
            forward_elapsed = time.perf_counter() - start
            forwarded = service.statistics().get("free_forwards", 0)

            # round trips: paying client -> mixer -> LDK -> back through the SCID
            client = await _client(nursery, state.core.listing(time.time()),
                                   network.address, round_trips + 2, state.payments)
            registration = await client.register_scid()
            bob_path = BlindedPath.decode(bytes.fromhex(await bob.path([], b"rt")))
            reply_path = client.reply_path(registration)
            times = []
            for i in range(round_trips):
                start = time.perf_counter()
                await client.send(bob_path, [(APP_TLV, b"ping %d" % i)],
                                  reply_path=reply_path)
                with trio.fail_after(30):
                    await client.receive()
                times.append(time.perf_counter() - start)
            nursery.cancel_scope.cancel()
        finally:
            state.close()
    times.sort()
    return {
        "ln_forward_om_per_s": round(messages / forward_elapsed, 1),
        "ln_forward_messages": messages,
        "ln_forward_counted_by_mixer": forwarded,
        "round_trip_ms_p50": round(statistics.median(times) * 1e3, 2),
        "round_trip_ms_p99": round(times[min(len(times) - 1, int(0.99 * len(times)))] * 1e3,
                                   2),
        "round_trips": round_trips,
    }


def run_tcp(messages: int, round_trips: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result: dict[str, Any] = trio.run(_paid_over_tcp, Path(tmp) / "paid", messages)
        result.update(trio.run(_paid_over_tcp, Path(tmp) / "bundled", messages, True))
        result["paid_messages"] = messages
    have_ldk = (LDK_FOLDER / "node_modules" / "lightningdevkit").is_dir()
    if not have_ldk:
        result.update(ln_forward_om_per_s=None, round_trip_ms_p50=None,
                      round_trip_ms_p99=None,
                      ldk="not measured: run `npm ci` in tests/ldk (needs Node.js and npm)")
        return result
    with tempfile.TemporaryDirectory() as tmp:
        result.update(trio.run(_with_ldk, Path(tmp), messages, round_trips))
    node = os.popen("node --version").read().strip()
    result["ldk"] = f"lightningdevkit 0.1.0 (Node.js {node})"
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tcp-messages", type=int, default=1000)
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.messages, args.batch)
    result["tcp"] = run_tcp(args.tcp_messages, args.round_trips)
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the mixer core (sans-IO, one process, one core).

``paid_om_per_s``: onion messages forwarded per second, each carrying a unit-credential
spend that is verified and durably recorded (SQLite, WAL, synchronous=FULL, group
commit of ``--batch`` messages per transaction) before the forwarding decision. The
timed loop is ``MixerCore.handle`` + ``flush`` + ``poll`` over pre-built messages:
incoming limiter, Sphinx peel, route-blinding decrypt, payment decode, spend
verification, group commit, outgoing limiter. Building the messages (the client's
work) is not timed.

Also reported: ``om_peel_us`` (peel + blinded-hop decrypt of one 1366-byte onion
message), ``spend_verify_us``, ``record_us_per_serial`` (group commit), and
``scid_register_us`` (one REGISTER request paid with two spends: verify, mint, durable
insert, record with cached response, build the response onion).

Usage: python benchmarks/bench_mixer.py [--messages N] [--batch B] [--json]
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

from hornet.core import crypto
from hornet.core.onion_message import create_message_path
from hornet.credentials.params import CredentialParams
from hornet.credentials.payments import VoucherPayments
from hornet.credentials.store import SqliteSpentStore
from hornet.mixer.config import MixerConfig, PeerConfig
from hornet.mixer.core import MixerCore, Transmit, peel_message
from hornet.mixer.protocol import Prices, send_message_hash
from hornet.mixer.ratelimit import Limit
from hornet.mixer.session import MixerReply, MixerSession, Wallet
from hornet.mixer.state import ScidStore, SpendLedger

NOW = 1_750_000_000.0
TARGET = 800


def _build(directory: Path, batch: int, rng: random.Random,
           dest: bytes) -> tuple[MixerCore, VoucherPayments]:
    unlimited = Limit(1e9, 1e9)
    config = MixerConfig(
        credential_params=CredentialParams(issuance_k=64),
        prices=Prices(message=1, scid_register=2),
        incoming_client=unlimited, incoming_peer=unlimited, client_profile="unlimited",
        peers=(PeerConfig(dest, "unlimited"),), max_batch=batch,
    )
    spent = SqliteSpentStore(directory / "credentials.sqlite", synchronous="FULL")
    payments = VoucherPayments(directory / "credentials.sqlite")
    scids = ScidStore(directory / "mixer.sqlite", synchronous="FULL")
    core = MixerCore.create(config, crypto.SecretKey.from_rng(rng), rng.randbytes(32),
                            ledger=SpendLedger(spent), payments=payments, scid_store=scids,
                            now=NOW)
    return core, payments


def _call(core: MixerCore, session: MixerSession, outgoing_message: bytes,
          rng: random.Random) -> MixerReply:
    actions = core.handle(session.node_id, outgoing_message, NOW, rng) + core.flush(NOW)
    for action in actions:
        if isinstance(action, Transmit) and action.peer == session.node_id:
            reply = session.receive(action.message)
            if isinstance(reply, MixerReply):
                return reply
    raise RuntimeError("no reply from the mixer")


def _funded(core: MixerCore, payments: VoucherPayments, units: int,
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
        session = _funded(core, payments, messages + 2 * registrations, rng)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.messages, args.batch)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

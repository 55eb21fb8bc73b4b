"""Benchmark of the anonymous-credential scheme (issue 6).

Prints a table, or one JSON object with ``--json``. Timings are best/median of
repeated runs (the machine is noisy). ``issuer_spend_us`` is the presentation-only
spend verification plus the durable SQLite write (WAL, synchronous=FULL), measured
through ``CredentialService.spend``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from hornet.credentials.params import CredentialParams, IssuerSecretKey
from hornet.credentials.scheme import Client, Issuer
from hornet.credentials.service import CredentialService
from hornet.credentials.store import SqliteSpentStore

MSG = bytes(range(32))
NOW = 100.0


def _setup(n: int):  # type: ignore[no-untyped-def]
    rng = random.Random(1)
    params = CredentialParams(range_bits=n)
    issuer = Issuer.create(params, {0: IssuerSecretKey.generate(rng)})
    client = Client(params)
    client.add_issuer_params(issuer.public_params(0))
    return rng, params, issuer, client


def _issue(rng, params, issuer, client, count, value=1):  # type: ignore[no-untyped-def]
    out = []
    while len(out) < count:
        p = client.issuance_request([value] * params.issuance_k, rng.randbytes(32), epoch=0,
                                    rng=rng)
        out.extend(client.finish(p, issuer.issue(issuer.verify_issuance(p.request, now=NOW),
                                                 rng)))
    return out[:count]


def run(spends: int, reissues: int, synchronous: str) -> dict[str, object]:
    rng, params, issuer, client = _setup(32)
    creds = _issue(rng, params, issuer, client, spends)
    t0 = time.perf_counter()
    requests = [client.spend_request(c, message_hash=MSG, rng=rng) for c in creds]
    client_spend_us = (time.perf_counter() - t0) / len(creds) * 1e6
    issuer.verify_spend(requests[0], message_hash=MSG, now=NOW)  # build tables
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in dict.fromkeys((synchronous, "NORMAL")):
            store = SqliteSpentStore(Path(tmp) / f"spent-{mode}.db", synchronous=mode)
            service = CredentialService(issuer, store)
            times = []
            start = time.perf_counter()
            for data in requests:
                t = time.perf_counter()
                service.spend(data, message_hash=MSG, now=NOW)
                times.append(time.perf_counter() - t)
            elapsed = time.perf_counter() - start
            results[mode] = (statistics.median(times) * 1e6, min(times) * 1e6,
                             len(requests) / elapsed)
            store.close()
    verify_times = []
    for data in requests[:200]:
        t = time.perf_counter()
        issuer.verify_spend(data, message_hash=MSG, now=NOW)
        verify_times.append(time.perf_counter() - t)

    pairs = _issue(rng, params, issuer, client, 2 * reissues, value=7)
    client_ms, issuer_ms = [], []
    pending = None
    response = b""
    for i in range(reissues):
        a, b = pairs[2 * i], pairs[2 * i + 1]
        t = time.perf_counter()
        pending = client.reissue_request([a, b], [1, 12], message_hash=MSG, rng=rng)
        client_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        ticket = issuer.verify_reissue(pending.request, message_hash=MSG, now=NOW, price=1)
        response = issuer.issue(ticket, rng)
        issuer_ms.append((time.perf_counter() - t) * 1e3)
    assert pending is not None
    t = time.perf_counter()
    client.finish(pending, response)
    client_finish_ms = (time.perf_counter() - t) * 1e3
    iss = client.issuance_request([1] * params.issuance_k, bytes(32), epoch=0, rng=rng)
    iss_resp = issuer.issue(issuer.verify_issuance(iss.request, now=NOW), rng)

    full_median, full_best, full_rate = results[synchronous]  # type: ignore[misc]
    normal_median, _, normal_rate = results["NORMAL"]  # type: ignore[misc]
    issuer_reissue = statistics.median(issuer_ms)
    out: dict[str, object] = {
        "issuer_spend_us": round(full_median, 1),
        "issuer_spend_best_us": round(full_best, 1),
        "issuer_spend_verify_only_us": round(statistics.median(verify_times) * 1e6, 1),
        "issuer_spend_us_sync_normal": round(normal_median, 1),
        "client_spend_us": round(client_spend_us, 1),
        "issuer_reissue_2x2_ms": round(issuer_reissue, 2),
        "issuer_reissue_2x2_best_ms": round(min(issuer_ms), 2),
        "client_reissue_2x2_ms": round(statistics.median(client_ms), 2),
        "client_finish_reissue_ms": round(client_finish_ms, 2),
        "range_bits": params.range_bits,
        "spend_request_bytes": len(requests[0]),
        "reissue_request_bytes": len(pending.request),
        "reissue_response_bytes": len(response),
        "issuance_request_bytes": len(iss.request),
        "issuance_response_bytes": len(iss_resp),
        "issuance_k": params.issuance_k,
        "spends_per_s": round(full_rate, 1),
        "spends_per_s_sync_normal": round(normal_rate, 1),
        "sqlite_synchronous": synchronous,
        "target_issuer_spend_us_le_1000": full_median <= 1000,
        "target_issuer_reissue_2x2_ms_le_12": issuer_reissue <= 12,
        "target_spend_fits_1300_with_message": len(requests[0]) < 1300,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--spends", type=int, default=400)
    parser.add_argument("--reissues", type=int, default=15)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    args = parser.parse_args()
    result = run(args.spends, args.reissues, args.synchronous)
    if args.json:
        print(json.dumps(result))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()

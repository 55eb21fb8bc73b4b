"""Spent-serial store and service: atomicity, idempotency, concurrency, SIGKILL crashes."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from cred_kit import MSG, NOW, World, make_world
from externals import require

from hornet.credentials.payments import VoucherPayments
from hornet.credentials.service import CredentialService
from hornet.credentials.store import PostgresSpentStore, SqliteSpentStore
from hornet.errors import (
    DoubleSpendError,
    InsufficientValueError,
    LocalProtocolError,
    PaymentRequiredError,
)

SERIAL = b"\x02" + bytes(range(32))


@pytest.fixture(scope="module")
def world() -> World:
    return make_world(seed=11)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_store_records_once_and_caches_responses(tmp_path: Path, backend: str) -> None:
    if backend == "sqlite":
        store = SqliteSpentStore(tmp_path / "spent.db")
    else:
        require("postgresql")
        store = PostgresSpentStore(os.environ["HORNET_TEST_POSTGRES_DSN"])  # type: ignore[assignment]
        for epoch in store.epochs():
            store.drop_epoch(epoch)
    rid1, rid2 = b"1" * 32, b"2" * 32
    assert store.record(3, [SERIAL], rid1) is None
    assert store.is_spent(3, SERIAL)
    assert not store.is_spent(4, SERIAL)
    with pytest.raises(DoubleSpendError):
        store.record(3, [SERIAL], rid1)  # a response-less spend replayed is a double spend
    with pytest.raises(DoubleSpendError):
        store.record(3, [SERIAL], rid2)
    other = b"\x03" + bytes(32)
    third = b"\x02" + bytes(31) + b"\x07"
    assert store.record(3, [other, third], rid2, b"response-2") is None
    assert store.record(3, [other, third], rid2, b"response-2") == b"response-2"
    assert store.cached_response(3, rid2) == b"response-2"
    with pytest.raises(DoubleSpendError):  # one fresh serial, one spent: nothing recorded
        store.record(3, [b"\x02" + bytes(31) + b"\x09", other], b"3" * 32, b"r3")
    assert not store.is_spent(3, b"\x02" + bytes(31) + b"\x09")
    payment = os.urandom(32)  # claims outlive epochs (a shared server keeps them)
    assert store.record(3, [], b"4" * 32, b"r4", payment_id=payment) is None
    with pytest.raises(DoubleSpendError):
        store.record(3, [], b"5" * 32, b"r5", payment_id=payment)
    assert store.epochs() == [3, 4]
    store.drop_epoch(3)
    assert store.epochs() == [4]
    assert not store.is_spent(3, SERIAL)
    with pytest.raises(LocalProtocolError):
        store.record(-1, [SERIAL], rid1)
    store.close()


def test_service_spend_twice_is_a_double_spend(tmp_path: Path, world: World) -> None:
    service = CredentialService(world.issuer, SqliteSpentStore(tmp_path / "s.db"))
    (cred,) = world.credentials([1])
    data = world.client.spend_request(cred, message_hash=MSG, rng=world.rng)
    service.spend(data, message_hash=MSG, now=NOW)
    with pytest.raises(DoubleSpendError):
        service.spend(data, message_hash=MSG, now=NOW)
    # Re-presenting the same credential with fresh randomness: same serial, rejected.
    again = world.client.spend_request(cred, message_hash=MSG, rng=world.rng)
    assert again != data
    with pytest.raises(DoubleSpendError):
        service.spend(again, message_hash=MSG, now=NOW)


def test_reissue_retry_returns_the_cached_response(tmp_path: Path, world: World) -> None:
    service = CredentialService(world.issuer, SqliteSpentStore(tmp_path / "s.db"))
    a, b = world.credentials([5, 5])
    pending = world.client.reissue_request([a, b], [4, 5], message_hash=MSG, rng=world.rng)
    first = service.reissue(pending.request, message_hash=MSG, now=NOW, rng=world.rng, price=1)
    again = service.reissue(pending.request, message_hash=MSG, now=NOW, rng=world.rng, price=1)
    assert again == first
    assert [c.value for c in world.client.finish(pending, again)] == [4, 5]
    other = world.client.reissue_request([a, b], [1, 8], message_hash=MSG, rng=world.rng)
    with pytest.raises(DoubleSpendError):
        service.reissue(other.request, message_hash=MSG, now=NOW, rng=world.rng, price=1)


def test_voucher_issuance_is_one_time_and_bounded_by_the_amount(tmp_path: Path,
                                                                world: World) -> None:
    db = tmp_path / "s.db"
    vouchers = VoucherPayments(db)
    service = CredentialService(world.issuer, SqliteSpentStore(db), vouchers)
    code = vouchers.mint(8, world.rng)
    k = world.params.issuance_k
    too_much = world.client.issuance_request([2] * k, code, epoch=0, rng=world.rng)
    with pytest.raises(InsufficientValueError):
        service.issue(too_much.request, now=NOW, rng=world.rng)
    pending = world.client.issuance_request([1] * k, code, epoch=0, rng=world.rng)
    response = service.issue(pending.request, now=NOW, rng=world.rng)
    assert service.issue(pending.request, now=NOW, rng=world.rng) == response  # idempotent
    assert len(world.client.finish(pending, response)) == k
    reuse = world.client.issuance_request([1] * k, code, epoch=0, rng=world.rng)
    with pytest.raises(DoubleSpendError):
        service.issue(reuse.request, now=NOW, rng=world.rng)
    unknown = world.client.issuance_request([1] * k, bytes(32), epoch=0, rng=world.rng)
    with pytest.raises(PaymentRequiredError):
        service.issue(unknown.request, now=NOW, rng=world.rng)


# --------------------------------------------------------------------------------------
# Concurrency: exactly one of N concurrent presentations of one credential succeeds.

N_CONCURRENT = 8


def test_concurrent_threads_spend_a_credential_exactly_once(tmp_path: Path,
                                                           world: World) -> None:
    (cred,) = world.credentials([1])
    requests = [world.client.spend_request(cred, message_hash=MSG, rng=world.rng)
                for _ in range(N_CONCURRENT)]
    db = tmp_path / "threads.db"
    services = [CredentialService(world.issuer, SqliteSpentStore(db))
                for _ in range(N_CONCURRENT // 2)]
    shared = CredentialService(world.issuer, SqliteSpentStore(db))
    services += [shared] * (N_CONCURRENT - len(services))  # own and shared connections
    barrier = threading.Barrier(N_CONCURRENT)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        barrier.wait()
        try:
            services[index].spend(requests[index], message_hash=MSG, now=NOW)
            result = "ok"
        except DoubleSpendError:
            result = "double"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N_CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["double"] * (N_CONCURRENT - 1) + ["ok"]


def _process_spend(db: str, data: bytes, start: object, results: object) -> None:
    from cred_kit import make_world as _mw  # re-import in spawned children

    world = _mw(seed=11)
    service = CredentialService(world.issuer, SqliteSpentStore(db))
    start.wait()  # type: ignore[attr-defined]
    try:
        service.spend(data, message_hash=MSG, now=NOW)
        results.put("ok")  # type: ignore[attr-defined]
    except DoubleSpendError:
        results.put("double")  # type: ignore[attr-defined]


def test_concurrent_processes_spend_a_credential_exactly_once(tmp_path: Path,
                                                             world: World) -> None:
    # The children rebuild the same issuer from the same seed; issue from it here too.
    twin = make_world(seed=11)
    (cred,) = twin.credentials([1])
    requests = [twin.client.spend_request(cred, message_hash=MSG, rng=twin.rng)
                for _ in range(N_CONCURRENT)]
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    results = ctx.Queue()
    db = str(tmp_path / "procs.db")
    SqliteSpentStore(db).close()
    procs = [ctx.Process(target=_process_spend, args=(db, data, start, results))
             for data in requests]
    for p in procs:
        p.start()
    time.sleep(0.3)
    start.set()
    outcomes = sorted(results.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert outcomes == ["double"] * (N_CONCURRENT - 1) + ["ok"]


# --------------------------------------------------------------------------------------
# Crash safety: SIGKILL a spending child at random points.


def _crash_child(db: str, batch: list[tuple[int, bytes]], conn: object) -> None:
    from cred_kit import make_world as _mw

    world = _mw(seed=11)
    service = CredentialService(world.issuer, SqliteSpentStore(db))
    service.issuer.verify_spend(batch[0][1], message_hash=MSG, now=NOW)  # warm the tables
    conn.send(("ready", -1))  # type: ignore[attr-defined]
    for index, data in batch:
        try:
            service.spend(data, message_hash=MSG, now=NOW)
            conn.send(("ok", index))  # type: ignore[attr-defined]  (only after commit)
        except DoubleSpendError:
            conn.send(("double", index))  # type: ignore[attr-defined]
    conn.send(("done", -1))  # type: ignore[attr-defined]


def test_sigkill_never_loses_a_spend_nor_allows_a_second(tmp_path: Path) -> None:
    twin = make_world(seed=11)
    creds = twin.credentials([1] * 40)
    requests = [twin.client.spend_request(c, message_hash=MSG, rng=twin.rng) for c in creds]
    db = str(tmp_path / "crash.db")
    ctx = multiprocessing.get_context("fork")
    rnd = random.Random(2024)
    accepted: list[int] = []
    seen_double: set[int] = set()
    pending = list(enumerate(requests))
    kills = 0
    while pending and kills < 200:
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_crash_child, args=(db, pending, child_end))
        proc.start()
        child_end.close()
        assert parent_end.recv() == ("ready", -1)
        time.sleep(rnd.uniform(0.0, 0.015))
        os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
        proc.join()
        kills += 1
        done = False
        while parent_end.poll():
            try:
                kind, index = parent_end.recv()
            except (EOFError, OSError):
                break
            if kind == "ok":
                accepted.append(index)
            elif kind == "double":
                seen_double.add(index)
            else:
                done = True
        parent_end.close()
        finished = set(accepted) | seen_double
        pending = [] if done else [(i, d) for i, d in pending if i not in finished]
    assert kills >= 2 and not pending
    assert len(accepted) == len(set(accepted)), "a serial was accepted twice"
    store = SqliteSpentStore(db)
    service = CredentialService(twin.issuer, store)
    for index in accepted:  # every reported spend survived the crash
        assert store.is_spent(0, requests[index][5 + 4 * 33 : 5 + 5 * 33])
    for data in requests:  # and none can be spent again
        before = sum(store.is_spent(0, d[5 + 4 * 33 : 5 + 5 * 33]) for d in requests)
        try:
            service.spend(data, message_hash=MSG, now=NOW)
            # only a spend that was in flight when killed (never reported) may land now
            assert requests.index(data) not in accepted
        except DoubleSpendError:
            pass
        after = sum(store.is_spent(0, d[5 + 4 * 33 : 5 + 5 * 33]) for d in requests)
        assert after >= before
    for data in requests:
        with pytest.raises(DoubleSpendError):
            service.spend(data, message_hash=MSG, now=NOW)


def test_postgres_concurrent_records_of_one_serial_exactly_once() -> None:
    require("postgresql")
    dsn = os.environ["HORNET_TEST_POSTGRES_DSN"]
    stores = [PostgresSpentStore(dsn) for _ in range(N_CONCURRENT)]
    for epoch in stores[0].epochs():
        stores[0].drop_epoch(epoch)
    barrier = threading.Barrier(N_CONCURRENT)
    outcomes: list[str] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            stores[index].record(9, [SERIAL], bytes([index]) * 32)
            outcomes.append("ok")
        except DoubleSpendError:
            outcomes.append("double")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N_CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["double"] * (N_CONCURRENT - 1) + ["ok"]
    for store in stores:
        store.close()


def test_sqlite_store_grows_a_fresh_wal_once_and_leaves_no_scratch_table(tmp_path: Path) -> None:
    path = tmp_path / "spent.db"
    store = SqliteSpentStore(path, wal_autocheckpoint=64)
    wal = Path(str(path) + "-wal")
    page_size = store._conn.execute("PRAGMA page_size").fetchone()[0]
    assert wal.stat().st_size >= 64 * (page_size + 24)
    tables = {name for (name,) in store._conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"claims"}
    assert store.record(0, [SERIAL], b"r" * 32) is None
    assert store.epochs() == [0]
    version = store._conn.execute("PRAGMA data_version").fetchone()[0]
    second = SqliteSpentStore(path, wal_autocheckpoint=64)  # WAL already full size: no-op
    assert second.is_spent(0, SERIAL)
    # data_version changes when ANOTHER connection commits: the second open wrote nothing
    assert store._conn.execute("PRAGMA data_version").fetchone()[0] == version
    second.close()
    store.close()
    plain = SqliteSpentStore(tmp_path / "plain.db", preallocate_wal=False)
    assert Path(str(tmp_path / "plain.db") + "-wal").stat().st_size < page_size * 8
    plain.close()
    with pytest.raises(LocalProtocolError):
        SqliteSpentStore(tmp_path / "bad.db", wal_autocheckpoint=0)

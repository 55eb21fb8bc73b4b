"""Durable spent-serial store: SQLite (default) and PostgreSQL (several front ends).

Strategy:
- One partition per epoch: ``spent_<e>`` (serial key → request id) and
  ``responses_<e>`` (request id → cached response). Dropping an epoch after its grace
  period is a ``DROP TABLE``. Payment claims (one per payment id) live in ``claims``.
- A serial's key is SHA-256(tag ‖ S)[:16]: 128 bits, enough that no two honest
  serials collide, and half the size of S.
- ``record`` is the one write: in ONE transaction it inserts every serial, the cached
  response and the payment claim. The primary keys decide races: of N concurrent
  presentations of one credential, exactly one INSERT commits, in any number of
  threads or processes; the others see the constraint and get ``DoubleSpendError``.
  An identical retry (same request id) gets the cached response instead.

Durability (SQLite), SPEC.md §9.7:
- WAL journal with ``synchronous=FULL`` (default): the WAL is fdatasync'ed before a
  commit returns, so a recorded spend survives SIGKILL, a kernel crash and power loss
  (on storage that honours flushes). A SIGKILL at any point either loses an
  uncommitted transaction entirely or keeps it entirely (WAL atomic commit), so a
  spend reported as recorded is never lost and never recorded twice.
- ``synchronous="NORMAL"`` (opt-in): in WAL mode a commit returns once the frame is
  in the OS page cache; equally safe against process crashes (SIGKILL), but the last
  commits may be lost on power loss or kernel crash. A commit then costs no fsync;
  use it only where the operator accepts that window (``benchmarks/bench_credentials.py``
  measures both).
- The WAL is checkpointed every ``wal_autocheckpoint`` pages (256 = 1 MiB by default)
  and never truncated, so every commit OVERWRITES already allocated WAL blocks and
  fdatasync flushes data only, never a new file size (which would also journal the
  file system's metadata). SQLite deletes the WAL when the last connection closes, so
  a store that finds the WAL short grows it once on open (``_preallocate_wal``: one
  1 MiB transaction whose pages go to the freelist, which later inserts reuse).

Invariants: plain synchronous code (no trio); each store object serializes its own
connection with a lock, so it may be shared by threads; processes open their own.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Protocol

from hornet.errors import DoubleSpendError, LocalProtocolError

_SERIAL_TAG: Final = b"hornet/credentials/v1/serial"
#: Bytes of the header SQLite writes before each page in the WAL.
_WAL_FRAME_HEADER: Final = 24
SERIAL_KEY_LEN: Final = 16


def serial_key(serial: bytes) -> bytes:
    """The stored form of a serial number S (33-byte encoding)."""
    return hashlib.sha256(_SERIAL_TAG + serial).digest()[:SERIAL_KEY_LEN]


def distinct_serial_keys(serials: Sequence[bytes]) -> list[bytes]:
    """Stored forms of one request's serials; a serial repeated inside it is a double spend."""
    keys = [serial_key(s) for s in serials]
    if len(set(keys)) != len(keys):
        raise DoubleSpendError("a serial appears twice in one request")
    return keys


def _sql(template: str, epoch: int) -> str:
    """Fill a partition name: ``{e}`` becomes a checked integer (never user text)."""
    return template.replace("{e}", str(_check_epoch(epoch)))


def _check_epoch(epoch: int) -> int:
    if not isinstance(epoch, int) or not 0 <= epoch < (1 << 32):
        raise LocalProtocolError("epoch must be an integer in [0, 2^32)")
    return epoch


class SpentSerialStore(Protocol):
    """What the issuer needs from storage."""

    def record(self, epoch: int, serials: Sequence[bytes], request_id: bytes,
               response: bytes | None = None, payment_id: bytes | None = None) -> bytes | None:
        """Atomically record ``serials`` (and the response / payment claim).

        Returns None when recorded, or the cached response when ``request_id`` was
        already recorded with one (idempotent retry). Raises ``DoubleSpendError`` if a
        serial or the payment was recorded by another request (or a response-less
        spend is replayed).
        """
        ...

    def is_spent(self, epoch: int, serial: bytes) -> bool: ...

    def cached_response(self, epoch: int, request_id: bytes) -> bytes | None: ...

    def epochs(self) -> list[int]: ...

    def drop_epoch(self, epoch: int) -> None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------
# SQLite


class SqliteSpentStore:
    """The default store: one SQLite file, WAL, synchronous writes."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL",
                 busy_timeout_s: float = 30.0, wal_autocheckpoint: int = 256,
                 preallocate_wal: bool = True) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise LocalProtocolError("synchronous must be FULL, NORMAL or EXTRA")
        if not 1 <= wal_autocheckpoint <= 1 << 20:
            raise LocalProtocolError("wal_autocheckpoint must be in [1, 2^20] pages")
        self.path = str(path)
        self.synchronous = synchronous
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        # Checkpoint every N pages and keep the WAL file (journal_size_limit = -1, the
        # default): commits then overwrite already allocated WAL blocks.
        self._conn.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")
        if preallocate_wal:
            self._preallocate_wal(wal_autocheckpoint)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS claims (payment BLOB PRIMARY KEY, request BLOB NOT NULL)"
            " WITHOUT ROWID"
        )
        #: Per-epoch hot-path statement text (sqlite3 caches its compiled form).
        self._insert_spent: dict[int, str] = {}

    def _preallocate_wal(self, pages: int) -> None:
        """Grow a short WAL file to one checkpoint interval, so commits overwrite it.

        One transaction writes ``pages`` pages (a zero blob in a scratch table that it
        drops again) into the WAL; a PASSIVE checkpoint (never waits for readers) then
        copies them to the database file, where they become free pages for later
        inserts, and the next writer restarts at the start of the now full-size WAL.
        """
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            return  # e.g. ":memory:": no WAL file to grow
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        try:
            size = Path(self.path + "-wal").stat().st_size
        except OSError:
            size = 0
        if size >= pages * (page_size + _WAL_FRAME_HEADER):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE hornet_wal_prealloc (fill BLOB)")
            conn.execute("INSERT INTO hornet_wal_prealloc VALUES (zeroblob(?))",
                         (pages * page_size,))
            conn.execute("DROP TABLE hornet_wal_prealloc")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # -- schema ---------------------------------------------------------------------
    def _ensure(self, epoch: int) -> None:
        if epoch in self._insert_spent:
            return
        e = _check_epoch(epoch)
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS spent_{e} "
            "(serial BLOB PRIMARY KEY, request BLOB NOT NULL) WITHOUT ROWID"
        )
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS responses_{e} "
            "(request BLOB PRIMARY KEY, response BLOB NOT NULL) WITHOUT ROWID"
        )
        self._insert_spent[e] = _sql("INSERT INTO spent_{e} VALUES (?, ?)", e)

    def epochs(self) -> list[int]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'spent_%'"
            ).fetchall()
        return sorted(int(name[len("spent_"):]) for (name,) in rows)

    def drop_epoch(self, epoch: int) -> None:
        """Forget an epoch's serials and responses (after its grace period)."""
        e = _check_epoch(epoch)
        with self._lock:
            self._conn.execute(f"DROP TABLE IF EXISTS spent_{e}")
            self._conn.execute(f"DROP TABLE IF EXISTS responses_{e}")
            self._insert_spent.pop(e, None)

    # -- reads ----------------------------------------------------------------------
    def is_spent(self, epoch: int, serial: bytes) -> bool:
        with self._lock:
            self._ensure(epoch)
            row = self._conn.execute(
                _sql("SELECT 1 FROM spent_{e} WHERE serial = ?", epoch), (serial_key(serial),)
            ).fetchone()
        return row is not None

    def cached_response(self, epoch: int, request_id: bytes) -> bytes | None:
        with self._lock:
            self._ensure(epoch)
            return self._cached(epoch, request_id)

    def _cached(self, epoch: int, request_id: bytes) -> bytes | None:
        row = self._conn.execute(
            _sql("SELECT response FROM responses_{e} WHERE request = ?", epoch), (request_id,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    # -- the one write --------------------------------------------------------------
    def record(self, epoch: int, serials: Sequence[bytes], request_id: bytes,
               response: bytes | None = None, payment_id: bytes | None = None) -> bytes | None:
        keys = distinct_serial_keys(serials)
        with self._lock:
            self._ensure(epoch)
            conn = self._conn
            if response is None and payment_id is None and len(keys) == 1:
                # Hot path: one autocommit INSERT is one atomic, durable transaction.
                try:
                    conn.execute(self._insert_spent[epoch], (keys[0], request_id))
                except sqlite3.IntegrityError as exc:
                    raise DoubleSpendError("credential serial already spent") from exc
                return None
            conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading
            try:
                cached = self._cached(epoch, request_id)
                if cached is not None:
                    conn.execute("ROLLBACK")
                    return cached
                conn.executemany(self._insert_spent[epoch], [(k, request_id) for k in keys])
                if response is not None:
                    conn.execute(_sql("INSERT INTO responses_{e} VALUES (?, ?)", epoch),
                                 (request_id, response))
                if payment_id is not None:
                    conn.execute("INSERT INTO claims VALUES (?, ?)",
                                 (_payment_key(payment_id), request_id))
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                conn.execute("ROLLBACK")
                raise DoubleSpendError("credential serial or payment already spent") from exc
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteSpentStore({self.path!r}, synchronous={self.synchronous})"


def _payment_key(payment_id: bytes) -> bytes:
    return hashlib.sha256(b"hornet/credentials/v1/payment" + payment_id).digest()


# --------------------------------------------------------------------------------------
# PostgreSQL


class PostgresSpentStore:
    """The store for a mixer with several front ends sharing one PostgreSQL database.

    Uses declaratively partitioned tables ``hornet_spent`` / ``hornet_responses``
    (PARTITION BY LIST (epoch)), one partition per epoch; ``drop_epoch`` drops the
    partitions. Requires ``psycopg`` (v3): ``pip install hornet-onion[postgres]``.
    Durability is PostgreSQL's: a COMMIT returns after the WAL flush
    (``synchronous_commit = on``, the server default).
    """

    def __init__(self, dsn: str) -> None:
        import psycopg  # noqa: PLC0415  (optional dependency)

        self._psycopg: Any = psycopg
        self._lock = threading.Lock()
        self._conn: Any = psycopg.connect(dsn, autocommit=True)
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(7262001)")
            cur.execute(
                "CREATE TABLE IF NOT EXISTS hornet_spent (epoch bigint NOT NULL,"
                " serial bytea NOT NULL, request bytea NOT NULL, PRIMARY KEY (epoch, serial))"
                " PARTITION BY LIST (epoch)"
            )
            cur.execute(
                "CREATE TABLE IF NOT EXISTS hornet_responses (epoch bigint NOT NULL,"
                " request bytea NOT NULL, response bytea NOT NULL,"
                " PRIMARY KEY (epoch, request)) PARTITION BY LIST (epoch)"
            )
            cur.execute(
                "CREATE TABLE IF NOT EXISTS hornet_claims (payment bytea PRIMARY KEY,"
                " request bytea NOT NULL)"
            )
        self._known: set[int] = set()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    def _ensure(self, epoch: int) -> None:
        if epoch in self._known:
            return
        e = _check_epoch(epoch)
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(7262001)")
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS hornet_spent_{e} PARTITION OF hornet_spent"
                f" FOR VALUES IN ({e})"
            )
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS hornet_responses_{e} PARTITION OF hornet_responses"
                f" FOR VALUES IN ({e})"
            )
        self._known.add(e)

    def epochs(self) -> list[int]:
        with self._lock, self._transaction() as cur:
            cur.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'hornet_spent'"
            )
            rows = cur.fetchall()
        return sorted(int(name[len("hornet_spent_"):]) for (name,) in rows)

    def drop_epoch(self, epoch: int) -> None:
        e = _check_epoch(epoch)
        with self._lock, self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(7262001)")
            cur.execute(f"DROP TABLE IF EXISTS hornet_spent_{e}")
            cur.execute(f"DROP TABLE IF EXISTS hornet_responses_{e}")
            self._known.discard(e)

    def is_spent(self, epoch: int, serial: bytes) -> bool:
        with self._lock:
            self._ensure(epoch)
            with self._transaction() as cur:
                cur.execute("SELECT 1 FROM hornet_spent WHERE epoch = %s AND serial = %s",
                            (epoch, serial_key(serial)))
                return cur.fetchone() is not None

    def cached_response(self, epoch: int, request_id: bytes) -> bytes | None:
        with self._lock:
            self._ensure(epoch)
            with self._transaction() as cur:
                return self._cached(cur, epoch, request_id)

    @staticmethod
    def _cached(cur: Any, epoch: int, request_id: bytes) -> bytes | None:
        cur.execute("SELECT response FROM hornet_responses WHERE epoch = %s AND request = %s",
                    (epoch, request_id))
        row = cur.fetchone()
        return None if row is None else bytes(row[0])

    def record(self, epoch: int, serials: Sequence[bytes], request_id: bytes,
               response: bytes | None = None, payment_id: bytes | None = None) -> bytes | None:
        keys = distinct_serial_keys(serials)
        unique_violation = self._psycopg.errors.UniqueViolation
        with self._lock:
            self._ensure(epoch)
            try:
                with self._transaction() as cur:
                    if response is not None:
                        cached = self._cached(cur, epoch, request_id)
                        if cached is not None:
                            return cached
                    for key in keys:
                        cur.execute("INSERT INTO hornet_spent VALUES (%s, %s, %s)",
                                    (epoch, key, request_id))
                    if response is not None:
                        cur.execute("INSERT INTO hornet_responses VALUES (%s, %s, %s)",
                                    (epoch, request_id, response))
                    if payment_id is not None:
                        cur.execute("INSERT INTO hornet_claims VALUES (%s, %s)",
                                    (_payment_key(payment_id), request_id))
            except unique_violation as exc:
                # A concurrent identical retry may have won: answer it from the cache.
                if response is not None:
                    with self._transaction() as cur:
                        cached = self._cached(cur, epoch, request_id)
                    if cached is not None:
                        return cached
                raise DoubleSpendError("credential serial or payment already spent") from exc
        return None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return "PostgresSpentStore(<dsn hidden>)"

"""The mixer's durable state: registered SCIDs (SQLite) and group-committed spends.

Strategy:
- ``ScidStore``: one SQLite file (WAL, ``synchronous=FULL`` by default) with the live
  registrations and the tombstones of expired SCIDs. Every change is one transaction;
  expiring a batch deletes the rows and writes their tombstones atomically.
- ``SpendLedger`` sits on a credentials ``SpentSerialStore`` (the spent-serial tables
  live there, not here) and adds *group commit*: the serials of several forwarded
  messages are inserted in ONE transaction, so one fsync covers them all. The store's
  primary key still decides every double spend: if the batch hits an already-spent
  serial the whole transaction rolls back and each serial is retried in its own
  transaction, so exactly the fresh ones are accepted. A spend is never reported
  accepted before the transaction holding it has committed.

Invariants: plain synchronous code (no trio, no clock): times are parameters.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from hornet.credentials.store import SpentSerialStore
from hornet.errors import DoubleSpendError, LocalProtocolError
from hornet.mixer.scid import Registration

_BATCH_TAG: Final = b"hornet/mixer/v1/spend-batch"


def _scid_key(scid: int) -> bytes:
    return scid.to_bytes(8, "big")


class ScidStore:
    """Registered synthetic SCIDs and tombstones in SQLite."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise LocalProtocolError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS mixer_scids (scid BLOB PRIMARY KEY, target BLOB NOT NULL,"
            " owner BLOB NOT NULL, expires REAL NOT NULL, created REAL NOT NULL) WITHOUT ROWID"
        )
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS mixer_scid_tombstones (scid BLOB PRIMARY KEY,"
            " until REAL NOT NULL) WITHOUT ROWID"
        )

    def load(self) -> tuple[list[Registration], dict[int, float]]:
        """Every stored registration (expired ones included) and every tombstone."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT scid, target, owner, expires, created FROM mixer_scids").fetchall()
            tombs = self._conn.execute("SELECT scid, until FROM mixer_scid_tombstones").fetchall()
        registrations = [
            Registration(int.from_bytes(s, "big"), bytes(t), bytes(o), float(e), float(c))
            for s, t, o, e, c in rows
        ]
        return registrations, {int.from_bytes(s, "big"): float(u) for s, u in tombs}

    def insert(self, registration: Registration) -> None:
        r = registration
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO mixer_scids VALUES (?, ?, ?, ?, ?)",
                    (_scid_key(r.scid), r.target, r.owner_hash, r.expires_at, r.created_at),
                )
            except sqlite3.IntegrityError as exc:
                raise LocalProtocolError("SCID already registered") from exc

    def update_expiry(self, scid: int, expires_at: float) -> None:
        with self._lock:
            self._conn.execute("UPDATE mixer_scids SET expires = ? WHERE scid = ?",
                               (expires_at, _scid_key(scid)))

    def delete(self, scid: int) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM mixer_scids WHERE scid = ?", (_scid_key(scid),))

    def expire(self, scids: Sequence[int], tombstone_until: float) -> None:
        """Delete ``scids`` and tombstone them until ``tombstone_until``, atomically."""
        if not scids:
            return
        keys = [(_scid_key(s),) for s in scids]
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM mixer_scids WHERE scid = ?", keys)
                conn.executemany("INSERT OR REPLACE INTO mixer_scid_tombstones VALUES (?, ?)",
                                 [(k, tombstone_until) for (k,) in keys])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def purge_tombstones(self, now: float) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM mixer_scid_tombstones WHERE until <= ?", (now,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"ScidStore({self.path!r})"


class SpendLedger:
    """Group commit of spent serials on top of a ``SpentSerialStore``."""

    def __init__(self, store: SpentSerialStore) -> None:
        self.store = store
        self.transactions = 0

    def record_batch(self, epoch: int, serials: Sequence[bytes]) -> list[bool]:
        """Record distinct ``serials`` of one epoch; True for each newly accepted one.

        One transaction for the whole batch; on a conflict, one per serial.
        """
        if not serials:
            return []
        if len(set(serials)) != len(serials):
            raise LocalProtocolError("a batch must not repeat a serial")
        batch_id = hashlib.sha256(_BATCH_TAG + b"".join(serials)).digest()
        try:
            self.transactions += 1
            self.store.record(epoch, list(serials), batch_id)
            return [True] * len(serials)
        except DoubleSpendError:
            if len(serials) == 1:
                return [False]
        accepted = []
        for serial in serials:
            try:
                self.transactions += 1
                self.store.record(epoch, [serial], hashlib.sha256(_BATCH_TAG + serial).digest())
                accepted.append(True)
            except DoubleSpendError:
                accepted.append(False)
        return accepted

    def record_request(self, epoch: int, serials: Sequence[bytes], request_id: bytes,
                       response: bytes) -> bytes | None:
        """Record a request's serials with its response; the cached response on a retry.

        Raises ``DoubleSpendError`` if a serial was spent by another request.
        """
        self.transactions += 1
        return self.store.record(epoch, list(serials), request_id, response)

    def cached_response(self, epoch: int, request_id: bytes) -> bytes | None:
        return self.store.cached_response(epoch, request_id)

    def is_spent(self, epoch: int, serial: bytes) -> bool:
        return self.store.is_spent(epoch, serial)


__all__ = ["ScidStore", "SpendLedger"]

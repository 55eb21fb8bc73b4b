"""A relay's durable state: restart generation and setup replay tags (SPEC.md §7.5).

SQLite in WAL mode, the embedded default. A relay opens it before it serves:
1. ``generation`` is read and incremented (committed with ``synchronous=FULL``): SVs mix
   it in, so FSes sealed before a crash do not open after it and data packets recorded
   before the crash cannot be replayed into the new process;
2. the setup replay tags of the key epochs still usable are loaded into the core's
   filters, so setup packets recorded before the crash are refused after it;
3. while serving, each accepted setup's tag is committed before the packet is sent on:
   the core hands the tag out in its result (``SetupForward``, or ``SetupDrop`` for a
   setup that failed after its ECDH), ``RelayNode`` commits it here and then
   acknowledges it to the core (``Relay.setup_tags_persisted``); a core left with too
   many unacknowledged tags refuses new setups rather than forget one.
   With ``sync="normal"`` (the default) a commit survives the relay process being killed
   (it is in the WAL file, in the OS's cache), not a power loss; ``sync="full"`` adds an
   fsync per commit for that.
Tags of key epochs that can no longer be used are deleted (``prune``).

Every node kind that keeps its node key across restarts keeps one such file: ``hornet
relay`` (config ``state``), destinations (``serve(..., state=)``) and the mixer's relay
(``serve_entry_relay(..., state=)``, in the mixer's state directory).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import Final

from hornet.core.relay import SetupTag
from hornet.errors import ConfigError

SCHEMA_VERSION: Final = 1
_SYNC: Final = {"normal": "NORMAL", "full": "FULL"}


class RelayState:
    """The state file of one relay. Not thread-safe: one relay process owns it."""

    def __init__(self, path: str | PathLike[str], *, sync: str = "normal") -> None:
        if sync not in _SYNC:
            raise ConfigError(f"state sync must be one of {sorted(_SYNC)}, got {sync!r}")
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS setup_tags (epoch INTEGER NOT NULL, tag BLOB NOT NULL,"
                " PRIMARY KEY (epoch, tag)) WITHOUT ROWID"
            )
            version = self._meta("schema")
            if version is None:
                self._set_meta("schema", SCHEMA_VERSION)
            elif version != SCHEMA_VERSION:
                raise ConfigError(f"state file {self.path}: unknown schema version {version}")
            # The generation bump must reach the disk before anything is served under it.
            self._db.execute("PRAGMA synchronous=FULL")
            self.generation = (self._meta("generation") or 0) + 1
            if self.generation >= 1 << 32:
                raise ConfigError(f"state file {self.path}: generation counter exhausted")
            self._set_meta("generation", self.generation)
            self._db.execute(f"PRAGMA synchronous={_SYNC[sync]}")
        except sqlite3.Error as exc:
            raise ConfigError(f"state file {self.path}: {exc}") from None

    def __repr__(self) -> str:
        return f"RelayState(path={str(self.path)!r}, generation={self.generation})"

    def _meta(self, key: str) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def record(self, tags: Iterable[SetupTag]) -> None:
        """Commit ``tags`` (one transaction); returns once they are durable."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO setup_tags (epoch, tag) VALUES (?, ?)",
                [(t.epoch, t.tag) for t in tags],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def tags(self, epoch: int) -> list[bytes]:
        rows = self._db.execute("SELECT tag FROM setup_tags WHERE epoch = ?", (epoch,))
        return [bytes(row[0]) for row in rows]

    def prune(self, oldest_epoch: int) -> int:
        """Forget the tags of epochs before ``oldest_epoch``; returns how many went."""
        cursor = self._db.execute("DELETE FROM setup_tags WHERE epoch < ?", (oldest_epoch,))
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()


@contextlib.contextmanager
def open_state(state: str | PathLike[str] | RelayState) -> Iterator[RelayState]:
    """``state`` as an open ``RelayState``: a path is opened here and closed on exit; an
    open ``RelayState`` stays the caller's to close."""
    if isinstance(state, RelayState):
        yield state
        return
    opened = RelayState(state)
    try:
        yield opened
    finally:
        opened.close()

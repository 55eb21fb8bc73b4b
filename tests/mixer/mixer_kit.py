"""Shared helpers for the mixer tests: a sans-IO mixer on temporary SQLite files and
clients that talk to it by direct calls (no transport)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from hornet.core import crypto
from hornet.core.blinding import BlindedPath
from hornet.core.onion_message import create_message_path
from hornet.credentials.params import CredentialParams
from hornet.credentials.payments import VoucherPayments
from hornet.credentials.store import SqliteSpentStore
from hornet.mixer.actions import Transmit
from hornet.mixer.config import MixerConfig, PeerConfig
from hornet.mixer.engine import MixerEngine
from hornet.mixer.protocol import Prices
from hornet.mixer.requests import CircuitEntry
from hornet.mixer.session import MixerReply, MixerSession, Wallet
from hornet.mixer.state import ScidStore, SpendLedger

T0 = 1_750_000_000.0  # a fixed "now" (2025-06-15)


def make_config(**overrides: Any) -> MixerConfig:
    base: dict[str, Any] = {
        "credential_params": CredentialParams(issuance_k=8),
        "prices": Prices(message=1, scid_register=2, scid_renew=1, hints=0),
        "scid_lifetime_s": 60.0,
        "scid_max_ahead_s": 240.0,
        "queue_messages": 4,
        "queue_bytes": 1 << 20,
    }
    base.update(overrides)
    return MixerConfig(**base)


@attrs.define
class Kit:
    """A mixer core on real SQLite files in ``path`` with deterministic keys."""

    path: Path
    config: MixerConfig
    rng: random.Random
    node_key: crypto.SecretKey
    master: bytes
    core: MixerEngine = attrs.field(init=False)
    spent: SqliteSpentStore = attrs.field(init=False)
    scids: ScidStore = attrs.field(init=False)
    payments: VoucherPayments = attrs.field(init=False)
    now: float = T0
    entry: CircuitEntry | None = None

    def __attrs_post_init__(self) -> None:
        self.open()

    def open(self) -> None:
        self.spent = SqliteSpentStore(self.path / "spent.sqlite", synchronous="NORMAL")
        self.payments = VoucherPayments(self.path / "spent.sqlite")
        self.scids = ScidStore(self.path / "scids.sqlite", synchronous="NORMAL")
        self.core = MixerEngine.create(self.config, self.node_key, self.master,
                                       ledger=SpendLedger(self.spent), payments=self.payments,
                                       scid_store=self.scids, now=self.now, entry=self.entry)

    def close(self) -> None:
        self.scids.close()
        self.payments.close()
        self.spent.close()

    def restart(self) -> None:
        self.close()
        self.open()

    @property
    def mixer_id(self) -> bytes:
        return self.node_key.public_key

    def handle(self, peer: bytes, message: bytes, *, flush: bool = True) -> list[Transmit]:
        actions = self.core.handle(peer, message, self.now, self.rng)
        if flush:
            actions += self.core.flush(self.now)
        actions += self.core.poll(self.now)
        return [a for a in actions if isinstance(a, Transmit)]

    def wallet(self) -> Wallet:
        """An empty wallet holding this mixer to its listing (as a directory publishes it)."""
        return Wallet(self.core.listing(self.now))

    def session(self, *, wallet: Wallet | None = None) -> MixerSession:
        identity = crypto.SecretKey.from_rng(self.rng)
        return MixerSession.create(identity, wallet if wallet is not None else self.wallet(),
                                   self.rng)

    def call(self, session: MixerSession, request: tuple[bytes, Any]) -> MixerReply:
        """Send a request from ``session`` and feed the mixer's answer back to it."""
        _, outgoing = request
        assert outgoing.first_node_id == self.mixer_id
        for transmit in self.handle(session.node_id, outgoing.message):
            if transmit.peer == session.node_id:
                reply = session.receive(transmit.message)
                assert isinstance(reply, MixerReply)
                return reply
        raise AssertionError("the mixer did not answer")

    def funded_session(self, *, buys: int = 1) -> MixerSession:
        """A new identity with ``buys`` × issuance_k unit credentials."""
        session = self.session()
        assert self.call(session, session.info_request(self.rng)).error is None
        for _ in range(buys):
            voucher = self.payments.mint(self.config.credential_params.issuance_k, self.rng)
            reply = self.call(session, session.buy_request(voucher, self.rng, now=self.now))
            assert reply.error is None, reply.error
        return session


def make_kit(path: Path, *, seed: int = 7, config: MixerConfig | None = None,
             entry: Callable[[bytes], CircuitEntry] | None = None) -> Kit:
    """A kit; ``entry(master_secret)`` gives its circuit relay, if it has one."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    node_key, master = crypto.SecretKey.from_rng(rng), rng.randbytes(32)
    return Kit(path, config or make_config(), rng, node_key, master,
               entry=None if entry is None else entry(master))


def destination(rng: random.Random) -> tuple[crypto.SecretKey, BlindedPath]:
    """A node and a blinded path to it (no path_id)."""
    key = crypto.SecretKey.from_rng(rng)
    return key, create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                    [key.public_key])


def peer_config(rng: random.Random, profile: str = "cln") -> tuple[crypto.SecretKey, PeerConfig]:
    key = crypto.SecretKey.from_rng(rng)
    return key, PeerConfig(key.public_key, profile)

"""A mixer: its sans-IO machine (``MixerCore``) and its stores (``MixerStorage``).

``MixerEngine`` is what ``open_mixer`` builds and ``MixerService`` runs. The service
executes the machine's storage actions in worker threads; ``handle``, ``flush``,
``poll`` and ``peer_online`` here execute them inline instead (blocking), for tests,
benchmarks and tools that drive a mixer without trio. Either way the machine acts
on a spend only after its storage result.

Also here: ``mixer_listing``, the mixer's directory listing.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable

import attrs

from hornet.core import crypto
from hornet.credentials.issuer import Issuer
from hornet.credentials.params import CredentialParams, IssuerSecretKey
from hornet.credentials.payments import PaymentBackend
from hornet.credentials.service import CredentialService
from hornet.credentials.transcript import Rng
from hornet.directory.model import MAX_LISTED_EPOCHS, MixerListing
from hornet.errors import LocalProtocolError
from hornet.mixer.actions import Action, CircuitRequest, Transmit
from hornet.mixer.config import MixerConfig
from hornet.mixer.core import MixerCore, MixerStatistics
from hornet.mixer.hints import Hints
from hornet.mixer.protocol import MixerInfo
from hornet.mixer.requests import CircuitEntry
from hornet.mixer.routing import PeerState
from hornet.mixer.scid import Registration, ScidBook
from hornet.mixer.state import ScidStore, SpendLedger
from hornet.mixer.storage import MixerStorage

#: What leaves the engine: the actions that move bytes.
Output = Transmit | CircuitRequest


def mixer_listing(params: CredentialParams, node_id: bytes,
                  issuer_keys: Callable[[int], IssuerSecretKey], now: float, *,
                  epochs: int = 2) -> MixerListing:
    """The mixer's directory listing at ``now`` (docs/spec-mixer.md §3.5): the issuer
    parameters of ``epochs`` credential epochs from the current one (the current and the
    next by default), and of the previous one while it is in its grace period, since
    INFO still shows it. Published ahead of use, like a relay's setup keys."""
    if not 1 <= epochs <= MAX_LISTED_EPOCHS:
        raise LocalProtocolError(f"epochs must be in [1, {MAX_LISTED_EPOCHS}]")
    first, current = min(params.presentable_epochs(now)), params.epoch_at(now)
    keys = tuple(issuer_keys(e).public(e) for e in range(first, current + epochs))
    return MixerListing(bytes(node_id), params, keys)


@attrs.define
class MixerEngine:
    """One mixer: ``machine`` decides, ``storage`` persists. Build with ``create``."""

    machine: MixerCore
    storage: MixerStorage

    @classmethod
    def create(cls, config: MixerConfig, node_key: crypto.SecretKey, master_secret: bytes, *,
               ledger: SpendLedger, payments: PaymentBackend | None,
               scid_store: ScidStore | None, now: float,
               entry: CircuitEntry | None = None) -> MixerEngine:
        """A mixer on these stores, holding the registrations ``scid_store`` has."""
        registrations: list[Registration] = []
        tombstones: dict[int, float] = {}
        if scid_store is not None:
            registrations, tombstones = scid_store.load()
        machine = MixerCore.create(config, node_key, master_secret, now=now,
                                   registrations=registrations, tombstones=tombstones,
                                   sells_credentials=payments is not None, entry=entry)
        service = CredentialService(machine.issuer, ledger.store, payments)
        return cls(machine, MixerStorage(ledger, service, scid_store))

    # -- driving the machine inline -------------------------------------------------
    def run(self, actions: list[Action], now: float) -> list[Output]:
        """Execute the storage actions among ``actions`` (and those their results lead
        to) inline; return the actions that move bytes, in order."""
        out: list[Output] = []
        todo = deque(actions)
        while todo:
            action = todo.popleft()
            if isinstance(action, Transmit | CircuitRequest):
                out.append(action)
            else:
                todo.extendleft(reversed(self.machine.storage_done(
                    self.storage.execute(action), now)))
        return out

    def handle(self, peer: bytes, message: bytes, now: float, rng: Rng) -> list[Output]:
        """``MixerCore.handle`` with its storage actions executed inline."""
        return self.run(self.machine.handle(peer, message, now, rng), now)

    def flush(self, now: float) -> list[Output]:
        """``MixerCore.flush``: commit the batched spends now and forward their messages."""
        return self.run(self.machine.flush(now), now)

    def poll(self, now: float) -> list[Output]:
        return self.run(self.machine.poll(now), now)

    def peer_online(self, node_id: bytes, now: float) -> list[Output]:
        return self.run(self.machine.peer_online(node_id, now), now)

    def peer_offline(self, node_id: bytes) -> None:
        self.machine.peer_offline(node_id)

    def add_peer(self, node_id: bytes, profile: str, *, now: float) -> None:
        self.machine.add_peer(node_id, profile, now=now)

    # -- views ----------------------------------------------------------------------
    def listing(self, now: float, *, epochs: int = 2) -> MixerListing:
        """This mixer's directory listing (``mixer_listing``) at ``now``."""
        machine = self.machine
        return mixer_listing(machine.config.credential_params, machine.node_key.public_key,
                             machine.issuer_keys, now, epochs=epochs)

    @property
    def config(self) -> MixerConfig:
        return self.machine.config

    @property
    def node_key(self) -> crypto.SecretKey:
        return self.machine.node_key

    @property
    def issuer(self) -> Issuer:
        return self.machine.issuer

    @property
    def book(self) -> ScidBook:
        return self.machine.book

    @property
    def peers(self) -> OrderedDict[bytes, PeerState]:
        return self.machine.peers

    @property
    def stats(self) -> Counter[str]:
        """The machine's live counters."""
        return self.machine.stats

    @property
    def ledger(self) -> SpendLedger:
        return self.storage.ledger

    def statistics(self) -> MixerStatistics:
        return self.machine.statistics()

    def info(self, now: float) -> MixerInfo:
        return self.machine.info(now)

    def hints(self, now: float) -> Hints:
        return self.machine.hints(now)

    def mailbox(self, scid: int) -> int:
        return self.machine.mailbox(scid)

    def __repr__(self) -> str:
        return f"MixerEngine({self.machine!r})"


__all__ = ["MixerEngine", "Output", "mixer_listing"]

"""The mixer as a sans-IO state machine: ``handle(peer, message, now, rng) -> actions``.

Rules (docs/spec-mixer.md):

1. Bytes in, actions out (``hornet.mixer.actions``). ``Transmit`` and
   ``CircuitRequest`` move bytes; storage actions (``CommitSpends``, ``CommitRequest``,
   ``RedeemCredentials``, ``ExpireScids``) are executed by the caller, whose results
   come back through ``storage_done``. Time and randomness are parameters. The
   machine touches no storage, socket, clock or random source, and imports no module
   that does.
2. Cheap checks first: message type, then the incoming peer's allowance (before any
   elliptic-curve work), then the Sphinx peel, then the payment.
3. An onion message for which the mixer is an intermediate hop is forwarded if
   (a) its hop names a live synthetic SCID (the registration prepaid delivery), or
   (b) its ``encrypted_data_tlv`` carries a payment worth ``prices.message``, or
   (c) it carries a ticket of a prepaid bundle, or
   (d) it is unpaid and ``forward_unpaid`` is set (the default: BOLT 4 forwarding
   is free, as on any node) and the incoming peer is within ``free_forward``, the
   per-peer limit of a plain node.
   A paid message waits in a bounded batch until ``flush`` emits one ``CommitSpends``
   for the batch (group commit); it is forwarded only when ``SpendsCommitted`` says
   its spends are durable. A serial waiting in a batch or in flight is refused at
   once; the store's primary key decides every other double spend.
4. Requests addressed to the mixer: ``hornet.mixer.requests``. Peers, queues,
   mailboxes and backpressure: ``hornet.mixer.routing``.
5. Untrusted bytes never raise out of ``handle``: every ``RemoteProtocolError``
   becomes a counter in ``statistics()``.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final

import attrs

from hornet.core import crypto
from hornet.core.onion_message import (
    ONION_MESSAGE_TYPE,
    create_onion_message,
)
from hornet.credentials.issuer import Issuer
from hornet.credentials.params import IssuerSecretKey, sign_issuer_params
from hornet.credentials.transcript import Rng
from hornet.errors import (
    DoubleSpendError,
    ExpiredError,
    HornetError,
    InsufficientValueError,
    IntegrityError,
    InvalidPointError,
    LocalProtocolError,
    MalformedCredentialError,
    MalformedInputError,
    PaymentRequiredError,
    RemoteProtocolError,
    ReplayError,
    UnknownScidError,
    UnknownVersionError,
    WrongEpochError,
)
from hornet.mixer.actions import (
    Action,
    CommitSpends,
    ExpireScids,
    SpendBatch,
    SpendsCommitted,
    StorageResult,
    Transmit,
)
from hornet.mixer.config import MixerConfig
from hornet.mixer.keys import derive_issuer_key, derive_scid_key
from hornet.mixer.peel import PeeledMessage, peel_message
from hornet.mixer.protocol import (
    MIXER_BUNDLE_TLV,
    MIXER_PAYMENT_TLV,
    MIXER_RECEIPT_REQUEST_TLV,
    MIXER_RECEIPT_TLV,
    ONION_MESSAGE_DROP_TYPE,
    MixerInfo,
    OnionMessageDrop,
    Payment,
    send_message_hash,
)
from hornet.mixer.requests import (
    AwaitedRequest,
    CircuitEntry,
    PrepaidBundle,
    RequestServer,
    Verified,
)
from hornet.mixer.riders import Receipt, ReceiptRequest, ReceiptStatus
from hornet.mixer.routing import PeerState, Router
from hornet.mixer.scid import Registration, ScidBook, ScidCipher

_TYPE_PREFIX: Final = ONION_MESSAGE_TYPE.to_bytes(2, "big")
_DROP_PREFIX: Final = ONION_MESSAGE_DROP_TYPE.to_bytes(2, "big")
_RECEIPT_KEY_TAG: Final = b"hornet/mixer/v1/receipt-key"
_TOMBSTONE_PURGE_S: Final = 60.0
_MAX_LOOPBACK: Final = 4


# --------------------------------------------------------------------------------------
# Records


@attrs.frozen
class _PendingSend:
    origin: bytes
    next_peer: bytes
    message: bytes
    ss_hash: bytes
    epoch: int
    serials: tuple[bytes, ...]
    receipt: ReceiptRequest | None = None


@attrs.frozen
class MixerStatistics(Mapping[str, int]):
    """A snapshot: counters plus gauges (live SCIDs, peers, messages waiting for a
    commit, storage actions in flight, queued messages and bytes). Reads as a mapping
    of its counters; a counter never incremented reads 0."""

    counters: Mapping[str, int]
    live_scids: int
    peers: int
    pending: int
    queued: int
    in_flight: int = 0
    queued_bytes: int = 0

    def __getitem__(self, name: str) -> int:
        return self.counters.get(name, 0)

    def __iter__(self) -> Iterator[str]:
        return iter(self.counters)

    def __len__(self) -> int:
        return len(self.counters)


_ERROR_COUNTERS: Final[tuple[tuple[type[HornetError], str], ...]] = (
    (InvalidPointError, "invalid_point"),
    (UnknownVersionError, "unknown_version"),
    (MalformedCredentialError, "bad_credential"),
    (MalformedInputError, "malformed"),
    (DoubleSpendError, "double_spend"),
    (ReplayError, "replay"),
    (WrongEpochError, "wrong_epoch"),
    (ExpiredError, "expired"),
    (IntegrityError, "bad_credential_or_mac"),
    (InsufficientValueError, "insufficient_value"),
    (PaymentRequiredError, "payment_required"),
    (UnknownScidError, "unknown_scid"),
)


def error_counter(exc: HornetError) -> str:
    """The counter name of a dropped message's error class."""
    for cls, name in _ERROR_COUNTERS:
        if isinstance(exc, cls):
            return name
    return "remote_error"


# --------------------------------------------------------------------------------------
# The state machine


@attrs.define
class MixerCore(Router, RequestServer):
    """The mixer's decisions. Build with ``MixerCore.create``."""

    config: MixerConfig
    node_key: crypto.SecretKey = attrs.field(repr=False)
    issuer: Issuer = attrs.field(repr=False)
    book: ScidBook = attrs.field(repr=False)
    issuer_keys: Callable[[int], IssuerSecretKey] = attrs.field(repr=False)
    sells_credentials: bool = True
    channels: dict[int, bytes] = attrs.field(factory=dict)
    entry: CircuitEntry | None = None
    peers: OrderedDict[bytes, PeerState] = attrs.field(factory=OrderedDict, repr=False)
    stats: Counter[str] = attrs.field(factory=Counter)
    signed_params: dict[int, bytes] = attrs.field(factory=dict, repr=False)
    _network: dict[bytes, str] = attrs.field(factory=dict, repr=False)
    _pending: list[_PendingSend] = attrs.field(factory=list, repr=False)
    #: Serials waiting in the batch or in a storage action in flight.
    _pending_serials: set[bytes] = attrs.field(factory=set, repr=False)
    _active: set[bytes] = attrs.field(factory=set, repr=False)
    _next_tomb_purge: float = 0.0
    #: Targets the transport reported offline, and the mailboxes of their SCIDs.
    _offline: OrderedDict[bytes, None] = attrs.field(factory=OrderedDict, repr=False)
    _mailboxes: dict[int, deque[bytes]] = attrs.field(factory=dict, repr=False)
    _mailbox_bytes: int = 0
    _bundles: OrderedDict[bytes, PrepaidBundle] = attrs.field(factory=OrderedDict, repr=False)
    #: Storage actions in flight, by commit id.
    _next_commit: int = 0
    _spend_commits: dict[int, list[_PendingSend]] = attrs.field(factory=dict, repr=False)
    _request_commits: dict[int, AwaitedRequest] = attrs.field(factory=dict, repr=False)
    _other_commits: set[int] = attrs.field(factory=set, repr=False)
    _minting: set[int] = attrs.field(factory=set, repr=False)
    _renewing: set[int] = attrs.field(factory=set, repr=False)

    @classmethod
    def create(cls, config: MixerConfig, node_key: crypto.SecretKey, master_secret: bytes, *,
               now: float, registrations: Iterable[Registration] = (),
               tombstones: Mapping[int, float] | None = None, sells_credentials: bool = True,
               entry: CircuitEntry | None = None) -> MixerCore:
        """A mixer whose issuer keys and SCID cipher key derive from ``master_secret``,
        holding the stored ``registrations`` and ``tombstones`` (SCID → until).
        ``sells_credentials``: BUY is served (a payment backend exists). ``entry`` is
        its HORNET relay; without one, circuits are not offered whatever the price."""
        if len(master_secret) != 32:
            raise LocalProtocolError("master secret must be 32 bytes")
        book = ScidBook(ScidCipher(derive_scid_key(master_secret)), config.scid_tombstone_s)
        core = cls(
            config=config, node_key=node_key, issuer=Issuer(config.credential_params),
            book=book, issuer_keys=lambda epoch: derive_issuer_key(master_secret, epoch),
            sells_credentials=sells_credentials, channels=dict(config.channels), entry=entry,
        )
        for scid, until in (tombstones or {}).items():
            if until > now:
                book.add_tombstone(scid, until)
        for registration in registrations:
            if registration.scid not in book.tombstones():
                book.add(registration)
        for peer in config.peers:
            core.add_peer(peer.node_id, peer.profile, now=now)
        core._ensure_epochs(now)
        return core

    # -- epochs ---------------------------------------------------------------------
    def _ensure_epochs(self, now: float) -> None:
        wanted = set(self.config.credential_params.presentable_epochs(now))
        have = set(self.signed_params)
        if wanted == have:
            return
        for epoch in sorted(wanted - have):
            public = self.issuer.add_epoch_key(epoch, self.issuer_keys(epoch))
            self.signed_params[epoch] = sign_issuer_params(
                self.config.credential_params, public, self.node_key)
        for epoch in have - wanted:
            self.issuer.drop_epoch_key(epoch)
            del self.signed_params[epoch]

    def _new_commit_id(self) -> int:
        self._next_commit += 1
        return self._next_commit

    # -- entry points ---------------------------------------------------------------
    def handle(self, peer: bytes, message: bytes, now: float, rng: Rng) -> list[Action]:
        """Process one BOLT 1 message received from ``peer``. Never raises on its bytes."""
        self.stats["received"] += 1
        self._ensure_epochs(now)
        head = bytes(message[:2])
        if head == _TYPE_PREFIX:
            return self._onion_message(bytes(peer), bytes(message), now, rng)
        if head == _DROP_PREFIX:
            return self._drop_notice(bytes(peer), bytes(message), now)
        self.stats["dropped_unknown_type"] += 1
        return []

    def flush(self, now: float) -> list[Action]:
        """Emit one ``CommitSpends`` for the batched spends (one transaction per epoch).
        Call after every burst of ``handle`` calls.

        Group commit: while a ``CommitSpends`` is in flight, the batch keeps filling
        (up to ``max_batch``) and is emitted when that commit's result comes back, so
        one fsync covers what arrived during the previous one."""
        del now
        if not self._pending or (self._spend_commits
                                 and len(self._pending) < self.config.max_batch):
            return []
        pending, self._pending = self._pending, []
        by_epoch: dict[int, list[bytes]] = {}
        for item in pending:
            by_epoch.setdefault(item.epoch, []).extend(item.serials)
        commit_id = self._new_commit_id()
        self._spend_commits[commit_id] = pending
        self.stats["spend_batches"] += 1
        return [CommitSpends(commit_id, tuple(SpendBatch(epoch, tuple(serials))
                                              for epoch, serials in by_epoch.items()))]

    def storage_done(self, result: StorageResult, now: float) -> list[Action]:
        """The result of a storage action this machine emitted: act on it.

        Raises:
            LocalProtocolError: ``result`` answers no action in flight.
        """
        commit_id = result.commit_id
        pending = self._spend_commits.pop(commit_id, None)
        if pending is not None:
            if not isinstance(result, SpendsCommitted):
                raise LocalProtocolError("CommitSpends is answered by SpendsCommitted")
            return self._spends_done(pending, result, now) + self.flush(now)
        awaited = self._request_commits.pop(commit_id, None)
        if awaited is not None:
            self._pending_serials.difference_update(awaited.serials)
            return self._request_done(awaited, result, now)
        if commit_id in self._other_commits:
            self._other_commits.discard(commit_id)
            return []
        raise LocalProtocolError(f"no storage action {commit_id} in flight")

    def _spends_done(self, pending: list[_PendingSend], result: SpendsCommitted,
                     now: float) -> list[Action]:
        serials = [s for item in pending for s in item.serials]
        if len(result.accepted) != len(serials):
            raise LocalProtocolError("SpendsCommitted must answer every serial")
        self._pending_serials.difference_update(serials)
        accepted = dict(zip(serials, result.accepted, strict=True))
        actions: list[Action] = []
        for item in pending:
            if all(accepted[s] for s in item.serials):
                self.stats["paid_messages"] += 1
                self.stats["spends_redeemed"] += len(item.serials)
                queued = self.stats["queued"]
                routed = self._route(item.origin, item.next_peer, item.message, item.ss_hash,
                                     now)
                actions += routed
                if item.receipt is not None:
                    if routed and isinstance(routed[0], Transmit) \
                            and routed[0].peer == item.next_peer:
                        actions += self._send_receipt(item.receipt, ReceiptStatus.SENT, now)
                    elif self.stats["queued"] > queued:
                        actions += self._send_receipt(item.receipt, ReceiptStatus.QUEUED, now)
            else:
                self.stats["dropped_double_spend"] += 1
        return actions

    def _send_receipt(self, request: ReceiptRequest, status: ReceiptStatus,
                      now: float) -> list[Action]:
        """A delivery receipt along the client's path (a paid message was handed on).
        Its onion session key is a PRF of the request (no rng at commit time)."""
        session_key = crypto.hmac_sha256(
            self.node_key.secret_bytes(),
            _RECEIPT_KEY_TAG + request.receipt_id + request.path.encode())
        try:
            outgoing = create_onion_message(
                session_key, request.path,
                payload=[(MIXER_RECEIPT_TLV, Receipt(request.receipt_id, status).encode())])
        except HornetError:
            self.stats["receipts_unsendable"] += 1
            return []
        if len(outgoing.first_node_id) != 33:
            self.stats["receipts_unsendable"] += 1
            return []
        self.stats["receipts_sent"] += 1
        return self._route(None, outgoing.first_node_id, outgoing.message, b"", now)

    def poll(self, now: float) -> list[Action]:
        """Timers: expire SCIDs, drain queues whose limiters allow, rotate epochs."""
        self._ensure_epochs(now)
        actions: list[Action] = []
        expired = self.book.expire(now)
        for registration in expired:
            self._drop_mailbox(registration.scid)
        if expired:
            self.stats["scids_expired"] += len(expired)
        purge = now >= self._next_tomb_purge
        if purge:
            self._next_tomb_purge = now + _TOMBSTONE_PURGE_S
        if expired or purge:
            commit_id = self._new_commit_id()
            self._other_commits.add(commit_id)
            actions.append(ExpireScids(commit_id, tuple(r.scid for r in expired),
                                       now + self.config.scid_tombstone_s,
                                       now if purge else None))
        return actions + self._drain(now)

    def next_wakeup(self, now: float) -> float | None:
        """When ``poll`` has work next (an SCID deadline, a queue that may drain)."""
        times = self._queue_wakeups(now)
        deadline = self.book.next_deadline()
        if deadline is not None:
            times.append(deadline)
        if self._pending and not self._spend_commits:
            times.append(now)
        return min(times) if times else None

    @property
    def pending(self) -> int:
        """Paid messages waiting for ``flush``."""
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        """Storage actions emitted and not yet answered."""
        return len(self._spend_commits) + len(self._request_commits) + len(self._other_commits)

    def statistics(self) -> MixerStatistics:
        queued, queued_bytes = self.queue_depths()
        return MixerStatistics(
            counters=dict(self.stats), live_scids=len(self.book), peers=len(self.peers),
            pending=len(self._pending), queued=queued, in_flight=self.in_flight,
            queued_bytes=queued_bytes,
        )

    # -- onion messages -------------------------------------------------------------
    def _onion_message(self, peer: bytes, message: bytes, now: float, rng: Rng) -> list[Action]:
        state = self._peer(peer, now)
        if state is None:
            return []
        cost = state.in_base.cost(len(message))
        if not state.in_limiter.take(now, cost, state.allowance.factor(now)):
            self.stats["dropped_rate_limited"] += 1
            return self._notice_rate_limited(state, message, now)
        state.in_meter.add(cost, now)
        try:
            peeled = peel_message(self.node_key, message)
        except RemoteProtocolError as exc:
            self.stats["dropped_" + error_counter(exc)] += 1
            return []
        if peeled.next_message is None:
            return self._final(peeled.tlv, now, rng, self._request_commits)
        return self._forward(peer, peeled, now)

    def _notice_rate_limited(self, state: PeerState, message: bytes, now: float) -> list[Action]:
        """Tell a peer we dropped its message (at most once per min interval per peer)."""
        if not self.config.send_drop_notices:
            return []
        if now - state.last_notice < self.config.backpressure_min_interval_s:
            return []
        try:
            ss_hash = peel_message(self.node_key, message).ss_hash
        except RemoteProtocolError:
            return []
        return self._notice(state, ss_hash, now)

    def _resolve_scid(self, scid: int, now: float) -> tuple[bytes, bool]:
        """(next peer, prepaid) for a ``short_channel_id`` hop; raises UnknownScidError."""
        registration = self.book.lookup(scid, now)
        if registration is not None:
            return registration.target, True
        channel_peer = self.channels.get(scid)
        if channel_peer is not None:
            return channel_peer, False
        if self.book.get(scid) is not None or scid in self.book.tombstones():
            self.stats["dropped_scid_expired"] += 1
            raise ExpiredError("synthetic SCID expired")
        raise UnknownScidError("unknown short_channel_id")

    def _forward(self, peer: bytes, peeled: PeeledMessage, now: float,
                 depth: int = 0) -> list[Action]:
        data = peeled.data
        assert peeled.next_message is not None
        prepaid = False
        if data.short_channel_id is not None:
            try:
                next_peer, prepaid = self._resolve_scid(data.short_channel_id, now)
            except ExpiredError:
                return []
            except UnknownScidError:
                self.stats["dropped_unknown_scid"] += 1
                return []
        else:
            assert data.next_node_id is not None
            next_peer = data.next_node_id
        if prepaid:
            self.stats["scid_deliveries"] += 1
            if next_peer in self._offline:
                assert data.short_channel_id is not None
                return self._store(data.short_channel_id, peeled.next_message)
            return self._route(peer, next_peer, peeled.next_message, peeled.ss_hash, now, depth)
        records = dict(data.records)
        raw_payment = records.get(MIXER_PAYMENT_TLV)
        raw_ticket = records.get(MIXER_BUNDLE_TLV)
        if raw_payment is None and raw_ticket is not None:
            if not self._bundle_message(raw_ticket, peeled.path_key, now):
                return []
            return self._route(peer, next_peer, peeled.next_message, peeled.ss_hash, now, depth)
        if raw_payment is None:
            if not self.config.forward_unpaid and self.config.prices.message != 0:
                self.stats["dropped_unpaid"] += 1
                return []
            state = self.peers.get(peer)
            if state is not None and depth == 0:
                cost = self.config.free_forward.cost(len(peeled.next_message))
                if not state.free_limiter.take(now, cost):
                    self.stats["dropped_free_rate_limited"] += 1
                    return self._notice(state, peeled.ss_hash, now)
            self.stats["free_forwards"] += 1
            return self._route(peer, next_peer, peeled.next_message, peeled.ss_hash, now, depth)
        try:
            payment = Payment.decode(raw_payment)
            raw_receipt = records.get(MIXER_RECEIPT_REQUEST_TLV)
            receipt = None if raw_receipt is None else ReceiptRequest.decode(raw_receipt)
            verified = self._verify_payment(payment, send_message_hash(peeled.path_key), now,
                                            self.config.prices.message)
        except RemoteProtocolError as exc:
            self.stats["dropped_" + error_counter(exc)] += 1
            return []
        if verified.epoch is None:  # a free message price
            return self._route(peer, next_peer, peeled.next_message, peeled.ss_hash, now, depth)
        self._pending.append(_PendingSend(peer, next_peer, peeled.next_message, peeled.ss_hash,
                                          verified.epoch, verified.serials, receipt))
        self._pending_serials.update(verified.serials)
        if len(self._pending) >= self.config.max_batch:
            return self.flush(now)
        return []

    def _verify_payment(self, payment: Payment, message_hash: bytes, now: float,
                        price: int) -> Verified:
        """Verify just enough spends to cover ``price`` (extra spends stay unspent).

        Raises ``InsufficientValueError`` before any proof is checked if the spends
        cannot cover the price; ``DoubleSpendError`` for a serial repeated in the
        payment, waiting in the current batch or in a commit in flight; the scheme's
        errors otherwise.
        """
        if price <= 0:
            return Verified(None, (), 0)
        unit = self.config.credential_params.unit_value
        needed = -(-price // unit)
        if len(payment.spends) < needed:
            raise InsufficientValueError("payment does not cover the price")
        epoch: int | None = None
        serials: list[bytes] = []
        for spend in payment.spends[:needed]:
            verified = self.issuer.verify_spend(spend, message_hash=message_hash, now=now)
            if epoch is not None and verified.epoch != epoch:
                raise MalformedCredentialError("a payment spends credentials of one epoch")
            epoch = verified.epoch
            serials.append(verified.serial)
        if len(set(serials)) != len(serials) or self._pending_serials.intersection(serials):
            raise DoubleSpendError("credential serial already presented")
        return Verified(epoch, tuple(serials), needed * unit)

    def _loopback(self, origin: bytes | None, message: bytes, now: float,
                  depth: int) -> list[Action]:
        """The next hop is the mixer itself (e.g. a path entering through one of its
        synthetic SCIDs right after a paid hop): peel again, a bounded number of times."""
        if depth >= _MAX_LOOPBACK or origin is None:
            self.stats["dropped_loop"] += 1
            return []
        try:
            peeled = peel_message(self.node_key, message)
        except RemoteProtocolError as exc:
            self.stats["dropped_" + error_counter(exc)] += 1
            return []
        if peeled.next_message is None:
            self.stats["dropped_loop"] += 1
            return []
        return self._forward(origin, peeled, now, depth + 1)

    def _drop_notice(self, peer: bytes, message: bytes, now: float) -> list[Action]:
        """A downstream peer dropped something we relayed: penalise and inform the
        last incoming peer we relayed to it (t-bast's attribution rule)."""
        state = self.peers.get(peer)
        if state is None or not state.network:
            self.stats["dropped_drop_notice"] += 1
            return []
        if not state.in_limiter.take(now, 1.0, state.allowance.factor(now)):
            self.stats["dropped_rate_limited"] += 1
            return []
        try:
            notice = OnionMessageDrop.decode(message)
        except MalformedInputError:
            self.stats["dropped_malformed"] += 1
            return []
        self.stats["drop_notices_received"] += 1
        if not notice.rate_limited:
            return []
        return self._backpressure(state.last_incoming, notice.shared_secret_hash, now)

    # -- public views ---------------------------------------------------------------
    def info(self, now: float) -> MixerInfo:
        epochs = self.config.credential_params.presentable_epochs(now)
        prices = self.config.prices
        relay_key = None
        if self.entry is None:
            prices = attrs.evolve(prices, circuit_open=None)
        elif prices.circuit_open is not None:
            relay_key = self.entry.public_key
        return MixerInfo(
            node_id=self.node_key.public_key, now=now, prices=prices,
            scid_lifetime_s=int(self.config.scid_lifetime_s),
            signed_params=tuple(self.signed_params[e] for e in epochs if e in self.signed_params),
            relay_key=relay_key,
        )

    def registrations(self) -> list[Registration]:
        return self.book.registrations()


__all__ = [
    "MixerCore",
    "MixerStatistics",
    "PeeledMessage",
    "error_counter",
    "peel_message",
]

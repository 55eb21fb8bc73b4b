"""The mixer as a sans-IO state machine: ``handle(peer, message, now, rng) -> actions``.

Rules (docs/spec-mixer.md):

1. Bytes in, actions out. The only action that moves bytes is ``Transmit(peer,
   message)``; the trio service (``hornet.mixer.service``) performs them. Time and
   randomness are parameters; storage is injected (``SpendLedger``, ``ScidStore``).
2. Cheap checks first: message type, then the incoming peer's allowance (before any
   elliptic-curve work), then the Sphinx peel, then the payment.
3. An onion message for which the mixer is an intermediate hop is forwarded if
   (a) its hop names a live synthetic SCID (the registration prepaid delivery), or
   (b) its ``encrypted_data_tlv`` carries a payment worth ``prices.message``, or
   (c) it is unpaid and ``forward_unpaid`` is set (the default: BOLT 4 forwarding
   is free, as on any node) and the incoming peer is within ``free_forward``, the
   per-peer limit of a plain node. A paid message waits in a bounded batch until
   ``flush`` has committed its spends in one transaction (group commit); only then is
   it forwarded. A spend is never accepted twice: the store's primary key decides.
4. A message for which the mixer is the final hop carries one ``MIXER_REQUEST_TLV``;
   the response goes back along the request's ``reply_path``. A paid CIRCUIT request
   carries a HORNET setup packet P➊ for the mixer's own relay (``CircuitEntry``); it is
   checked for shape and EXP before anything is charged, and handed out as a
   ``CircuitRequest`` action once its spends are recorded: once only. A retry (the
   same request again, before or after a restart) gets the cached answer and no action,
   so a recorded request cannot make the mixer inject its setup again.
5. Forwarding respects the next peer's published limit: send now if its limiter
   allows and its queue is empty, else queue (bounded), else drop and push back on the
   incoming peer (halve its allowance; send it an ``onion_message_drop``).
6. Untrusted bytes never raise out of ``handle``: every ``RemoteProtocolError`` becomes
   a counter in ``statistics()``.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Final

import attrs

from hornet.core import crypto
from hornet.core.blinding import (
    BlindedPath,
    EncryptedData,
)
from hornet.core.chdr import EPOCH_OFFSET, TYPE_SETUP, setup_exp
from hornet.core.keys import usable_setup_epoch
from hornet.core.onion_message import (
    ONION_MESSAGE_TYPE,
    OnionMessagePayload,
    create_onion_message,
    peel_onion_message,
)
from hornet.core.params import CHDR_LEN, EXP_GRANULARITY_S, Params
from hornet.credentials.params import CredentialParams, IssuerSecretKey, sign_issuer_params
from hornet.credentials.payments import PaymentBackend
from hornet.credentials.scheme import Issuer
from hornet.credentials.service import CredentialService
from hornet.credentials.transcript import Rng
from hornet.directory import MAX_LISTED_EPOCHS, MixerListing
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
from hornet.mixer.config import MixerConfig
from hornet.mixer.hints import Hints, PeerHint, rank
from hornet.mixer.protocol import (
    MIXER_BUNDLE_TLV,
    MIXER_PAYMENT_TLV,
    MIXER_RECEIPT_REQUEST_TLV,
    MIXER_RECEIPT_TLV,
    MIXER_REQUEST_TLV,
    MIXER_RESPONSE_TLV,
    ONION_MESSAGE_DROP_TYPE,
    BundleGrant,
    BundleTicket,
    Kind,
    MixerInfo,
    OnionMessageDrop,
    Payment,
    Receipt,
    ReceiptRequest,
    ReceiptStatus,
    Request,
    Response,
    ScidGrant,
    Status,
    bundle_mac,
    owner_hash,
    send_message_hash,
    shared_secret_hash,
)
from hornet.mixer.ratelimit import Allowance, Limit, Limiter, RateMeter, make_limiter
from hornet.mixer.scid import Registration, ScidBook, ScidCipher
from hornet.mixer.state import ScidStore, SpendLedger

_TYPE_PREFIX: Final = ONION_MESSAGE_TYPE.to_bytes(2, "big")
_DROP_PREFIX: Final = ONION_MESSAGE_DROP_TYPE.to_bytes(2, "big")
_REQUEST_ID_TAG: Final = b"hornet/mixer/v1/request-id"
_ISSUER_KEY_TAG: Final = b"hornet/mixer/v1/issuer-key"
_RELAY_KEY_TAG: Final = b"hornet/mixer/v1/relay-key"
_RELAY_SV_TAG: Final = b"hornet/mixer/v1/relay-sv"
_RECEIPT_KEY_TAG: Final = b"hornet/mixer/v1/receipt-key"
_TOMBSTONE_PURGE_S: Final = 60.0
_MAX_LOOPBACK: Final = 4


# --------------------------------------------------------------------------------------
# Actions


@attrs.frozen
class Transmit:
    """Send ``message`` (a BOLT 1 message: type 513 or 515) to the peer ``peer``."""

    peer: bytes
    message: bytes = attrs.field(repr=lambda m: f"<{len(m)} bytes>")


@attrs.frozen
class CircuitRequest:
    """A paid request to open a HORNET circuit through the mixer: inject ``setup``
    (P➊, whose first hop is the mixer's relay) into that relay. The setup reply P➋
    travels over HORNET, not back to the mixer; ``reply_path`` is informational."""

    request_id: bytes
    setup: bytes = attrs.field(repr=lambda m: f"<{len(m)} bytes>")
    paid_value: int
    reply_path: BlindedPath | None


@attrs.frozen
class CircuitEntry:
    """The mixer's co-hosted HORNET relay, as the core needs to know it: the public key
    published in INFO and the network parameters a setup packet must fit."""

    public_key: bytes
    params: Params

    def __attrs_post_init__(self) -> None:
        if len(self.public_key) != 33:
            raise LocalProtocolError("the relay key must be 33 bytes")

    def check_setup(self, setup: bytes, now: float, max_lifetime: float) -> None:
        """Refuse (``_Refused``) a setup the relay would drop, or one that would buy a
        circuit living longer than ``max_lifetime`` — before anything is charged."""
        params = self.params
        if (len(setup) != params.setup_packet_len or setup[0] != TYPE_SETUP
                or setup[1] != params.max_hops):
            raise _Refused(Status.MALFORMED)
        try:
            exp = setup_exp(setup[:CHDR_LEN])
        except MalformedInputError as exc:
            raise _Refused(Status.MALFORMED) from exc
        # The relay's own checks (SPEC.md §7.1-10.3): coarse EXP, not expired, a key
        # epoch it holds now.
        if (exp <= now or exp % EXP_GRANULARITY_S
                or usable_setup_epoch(params, setup[EPOCH_OFFSET], now) is None):
            raise _Refused(Status.MALFORMED)
        if exp > now + max_lifetime:
            raise _Refused(Status.TOO_EARLY)


Action = Transmit | CircuitRequest


# --------------------------------------------------------------------------------------
# Peeling one onion message (BOLT 4 §Onion Messages, reader), keeping what the mixer needs


@attrs.frozen
class PeeledMessage:
    """One hop's view: our decrypted ``encrypted_data_tlv``, the ``onionmsg_tlv``, the
    message for the next hop (None if we are final) and the onion_message_drop hash."""

    path_key: bytes
    data: EncryptedData
    tlv: OnionMessagePayload = attrs.field(repr=False)  # a request may carry a payment id
    next_message: bytes | None = attrs.field(repr=False)
    ss_hash: bytes = attrs.field(repr=False, eq=False)


def peel_message(node_key: crypto.SecretKey, message: bytes) -> PeeledMessage:
    """``process_onion_message`` that also returns the hop's ``encrypted_data_tlv``
    (its odd records carry the mixer payment). Raises only ``RemoteProtocolError``s."""
    peeled = peel_onion_message(node_key, message)
    return PeeledMessage(peeled.path_key, peeled.data, peeled.tlv, peeled.next_message,
                         shared_secret_hash(peeled.shared_secret))


# --------------------------------------------------------------------------------------
# Keys


class KeyedRng:
    """A deterministic byte stream HMAC-SHA256(key, label ‖ counter): derives per-epoch
    issuer keys from one master secret (so only the master secret is stored)."""

    __slots__ = ("_counter", "_key", "_label")

    def __init__(self, key: bytes, label: bytes) -> None:
        self._key = bytes(key)
        self._label = bytes(label)
        self._counter = 0

    def randbytes(self, n: int, /) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += crypto.hmac_sha256(self._key, self._label + self._counter.to_bytes(8, "big"))
            self._counter += 1
        return bytes(out[:n])

    def __repr__(self) -> str:
        return "KeyedRng(<hidden>)"


def derive_issuer_key(master_secret: bytes, epoch: int) -> IssuerSecretKey:
    """The issuer key of ``epoch``, derived from the mixer's master secret."""
    label = _ISSUER_KEY_TAG + epoch.to_bytes(4, "big")
    return IssuerSecretKey.generate(KeyedRng(master_secret, label))


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


def derive_scid_key(master_secret: bytes) -> bytes:
    return crypto.hmac_sha256(master_secret, b"hornet/mixer/v1/scid-key")


def derive_relay_secrets(master_secret: bytes) -> tuple[crypto.SecretKey, bytes]:
    """The co-hosted HORNET relay's node key and local secret SV, derived from the
    master secret (stable across restarts, independent of the Lightning node key)."""
    key = crypto.SecretKey.from_rng(KeyedRng(master_secret, _RELAY_KEY_TAG))
    return key, crypto.hmac_sha256(master_secret, _RELAY_SV_TAG)


# --------------------------------------------------------------------------------------
# Per-peer state


@attrs.frozen
class _Queued:
    message: bytes
    origin: bytes | None
    ss_hash: bytes
    cost: float


@attrs.define
class PeerState:
    """What the mixer tracks per peer: both limiters, the backpressure allowance, the
    bounded outgoing queue and the load meters behind the hints."""

    node_id: bytes
    profile: str
    network: bool
    out_limit: Limit
    out_limiter: Limiter
    in_base: Limit
    in_limiter: Limiter
    allowance: Allowance
    out_meter: RateMeter
    in_meter: RateMeter
    free_limiter: Limiter
    queue: deque[_Queued] = attrs.field(factory=deque)
    queue_bytes: int = 0
    last_incoming: bytes | None = None
    last_notice: float = float("-inf")


@attrs.define
class _Bundle:
    """A prepaid bundle: ``k`` messages under ``key`` until ``expires_at``."""

    key: bytes = attrs.field(repr=False)
    k: int
    expires_at: float
    used: int = 0  # bitmap of the sequence numbers already seen


@attrs.frozen
class _Verified:
    epoch: int | None
    serials: tuple[bytes, ...]
    value: int


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
class MixerStatistics:
    """A snapshot: counters plus gauges (live SCIDs, peers, pending, queued)."""

    counters: dict[str, int]
    live_scids: int
    peers: int
    pending: int
    queued: int

    def __getitem__(self, name: str) -> int:
        return self.counters.get(name, 0)


def _error_counter(exc: HornetError) -> str:
    """The counter name of a dropped message's error class."""
    for cls, name in (
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
    ):
        if isinstance(exc, cls):
            return name
    return "remote_error"


def _status_of(exc: HornetError) -> Status:
    for cls, status in (
        (MalformedCredentialError, Status.MALFORMED),
        (MalformedInputError, Status.MALFORMED),
        (DoubleSpendError, Status.DOUBLE_SPEND),
        (WrongEpochError, Status.WRONG_EPOCH),
        (IntegrityError, Status.BAD_CREDENTIAL),
        (InsufficientValueError, Status.INSUFFICIENT_VALUE),
        (PaymentRequiredError, Status.PAYMENT_REQUIRED),
        (UnknownScidError, Status.UNKNOWN_SCID),
    ):
        if isinstance(exc, cls):
            return status
    return Status.MALFORMED


class _Refused(Exception):
    """Internal: answer the request with ``status``."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.name)
        self.status = status


# --------------------------------------------------------------------------------------
# The state machine


@attrs.define
class MixerCore:
    """The mixer's decisions. Build with ``MixerCore.create``."""

    config: MixerConfig
    node_key: crypto.SecretKey = attrs.field(repr=False)
    issuer: Issuer = attrs.field(repr=False)
    credentials: CredentialService = attrs.field(repr=False)
    ledger: SpendLedger = attrs.field(repr=False)
    scid_store: ScidStore | None = attrs.field(repr=False)
    book: ScidBook = attrs.field(repr=False)
    issuer_keys: Callable[[int], IssuerSecretKey] = attrs.field(repr=False)
    channels: dict[int, bytes] = attrs.field(factory=dict)
    entry: CircuitEntry | None = None
    peers: OrderedDict[bytes, PeerState] = attrs.field(factory=OrderedDict, repr=False)
    stats: Counter[str] = attrs.field(factory=Counter)
    signed_params: dict[int, bytes] = attrs.field(factory=dict, repr=False)
    _network: dict[bytes, str] = attrs.field(factory=dict, repr=False)
    _pending: list[_PendingSend] = attrs.field(factory=list, repr=False)
    _pending_serials: set[bytes] = attrs.field(factory=set, repr=False)
    _active: set[bytes] = attrs.field(factory=set, repr=False)
    _next_tomb_purge: float = 0.0
    #: Targets the transport reported offline, and the mailboxes of their SCIDs.
    _offline: OrderedDict[bytes, None] = attrs.field(factory=OrderedDict, repr=False)
    _mailboxes: dict[int, deque[bytes]] = attrs.field(factory=dict, repr=False)
    _mailbox_bytes: int = 0
    _bundles: OrderedDict[bytes, _Bundle] = attrs.field(factory=OrderedDict, repr=False)

    @classmethod
    def create(cls, config: MixerConfig, node_key: crypto.SecretKey, master_secret: bytes, *,
               ledger: SpendLedger, payments: PaymentBackend | None,
               scid_store: ScidStore | None, now: float,
               entry: CircuitEntry | None = None) -> MixerCore:
        """A mixer whose issuer keys and SCID cipher key derive from ``master_secret``,
        with the registrations of ``scid_store`` (if any) loaded. ``entry`` is its
        HORNET relay; without one, circuits are not offered whatever the price."""
        if len(master_secret) != 32:
            raise LocalProtocolError("master secret must be 32 bytes")
        issuer = Issuer(config.credential_params)
        service = CredentialService(issuer, ledger.store, payments)
        book = ScidBook(ScidCipher(derive_scid_key(master_secret)), config.scid_tombstone_s)
        core = cls(
            config=config, node_key=node_key, issuer=issuer, credentials=service,
            ledger=ledger, scid_store=scid_store, book=book,
            issuer_keys=lambda epoch: derive_issuer_key(master_secret, epoch),
            channels=dict(config.channels), entry=entry,
        )
        if scid_store is not None:
            registrations, tombstones = scid_store.load()
            for scid, until in tombstones.items():
                if until > now:
                    book.add_tombstone(scid, until)
            for registration in registrations:
                if registration.scid not in book.tombstones():
                    book.add(registration)
        for peer in config.peers:
            core.add_peer(peer.node_id, peer.profile, now=now)
        core._ensure_epochs(now)
        return core

    # -- peers ----------------------------------------------------------------------
    def add_peer(self, node_id: bytes, profile: str, *, now: float) -> None:
        """Declare a network peer (a Lightning node) and the implementation it runs."""
        if profile not in self.config.profiles:
            raise LocalProtocolError(f"unknown profile {profile!r}")
        self._network[bytes(node_id)] = profile
        self.peers.pop(bytes(node_id), None)
        self._peer(bytes(node_id), now)

    def _new_peer(self, node_id: bytes, now: float) -> PeerState:
        cfg = self.config
        network = node_id in self._network
        profile = self._network[node_id] if network else cfg.client_profile
        out_limit = cfg.profile(profile)
        in_base = cfg.incoming_peer if network else cfg.incoming_client
        return PeerState(
            node_id=node_id, profile=profile, network=network,
            out_limit=out_limit, out_limiter=make_limiter(out_limit, now), in_base=in_base,
            in_limiter=make_limiter(in_base, now),
            allowance=Allowance(cfg.backpressure_recover_s, cfg.backpressure_min_interval_s,
                                cfg.backpressure_floor),
            out_meter=RateMeter(cfg.hint_tau_s), in_meter=RateMeter(cfg.hint_tau_s),
            free_limiter=make_limiter(cfg.free_forward, now),
        )

    def _peer(self, node_id: bytes, now: float) -> PeerState | None:
        """The state of ``node_id``, created on first contact; None if the table is full
        of peers that cannot be evicted (network peers and clients with queued data)."""
        state = self.peers.get(node_id)
        if state is not None:
            self.peers.move_to_end(node_id)
            return state
        if len(self.peers) >= self.config.max_peers:
            victim = next(
                (k for k, s in self.peers.items() if not s.network and not s.queue), None
            )
            if victim is None:
                self.stats["dropped_peer_table_full"] += 1
                return None
            del self.peers[victim]
            self.stats["peers_evicted"] += 1
        state = self._new_peer(node_id, now)
        self.peers[node_id] = state
        return state

    # -- mailboxes (spec §4.3) ------------------------------------------------------
    def peer_offline(self, node_id: bytes) -> None:
        """The transport lost its connection to ``node_id``: hold its SCID traffic. At
        most ``max_peers`` nodes are remembered as offline (the oldest is forgotten)."""
        self._offline[bytes(node_id)] = None
        self._offline.move_to_end(bytes(node_id))
        while len(self._offline) > self.config.max_peers:
            self._offline.popitem(last=False)

    def peer_online(self, node_id: bytes, now: float) -> list[Action]:
        """``node_id`` is connected again: deliver what its SCIDs' mailboxes hold."""
        node_id = bytes(node_id)
        self._offline.pop(node_id, None)
        actions: list[Action] = []
        for scid in [s for s, box in self._mailboxes.items() if box]:
            registration = self.book.lookup(scid, now)
            if registration is None or registration.target != node_id:
                continue
            box = self._mailboxes.pop(scid)
            for message in box:
                self._mailbox_bytes -= len(message)
                self.stats["mailbox_delivered"] += 1
                actions += self._route(None, node_id, message, b"", now)
        return actions

    def _store(self, scid: int, message: bytes) -> list[Action]:
        cfg = self.config
        box = self._mailboxes.setdefault(scid, deque())
        held = sum(len(m) for m in box)
        if (len(box) >= cfg.mailbox_messages or held + len(message) > cfg.mailbox_bytes
                or self._mailbox_bytes + len(message) > cfg.mailbox_total_bytes):
            self.stats["dropped_mailbox_full"] += 1
            return []
        box.append(message)
        self._mailbox_bytes += len(message)
        self.stats["mailbox_stored"] += 1
        return []

    def _drop_mailbox(self, scid: int) -> None:
        box = self._mailboxes.pop(scid, None)
        if box:
            self._mailbox_bytes -= sum(len(m) for m in box)
            self.stats["dropped_mailbox_expired"] += len(box)

    def mailbox(self, scid: int) -> int:
        """How many messages the mailbox of ``scid`` holds."""
        return len(self._mailboxes.get(scid, ()))

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
        """Commit the batched spends (one transaction per epoch) and forward the messages
        whose spends committed. Call after every burst of ``handle`` calls."""
        pending, self._pending = self._pending, []
        self._pending_serials.clear()
        if not pending:
            return []
        accepted: dict[bytes, bool] = {}
        by_epoch: dict[int, list[bytes]] = {}
        for item in pending:
            by_epoch.setdefault(item.epoch, []).extend(item.serials)
        for epoch, serials in by_epoch.items():
            for serial, ok in zip(serials, self.ledger.record_batch(epoch, serials), strict=True):
                accepted[serial] = ok
        self.stats["spend_batches"] += 1
        actions: list[Action] = []
        for item in pending:
            if all(accepted[s] for s in item.serials):
                self.stats["paid_messages"] += 1
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
        Its onion session key is a PRF of the request (flush takes no rng)."""
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
        expired = self.book.expire(now)
        for registration in expired:
            self._drop_mailbox(registration.scid)
        if expired:
            self.stats["scids_expired"] += len(expired)
            if self.scid_store is not None:
                self.scid_store.expire([r.scid for r in expired],
                                       now + self.config.scid_tombstone_s)
        if self.scid_store is not None and now >= self._next_tomb_purge:
            self.scid_store.purge_tombstones(now)
            self._next_tomb_purge = now + _TOMBSTONE_PURGE_S
        actions: list[Action] = []
        for node_id in list(self._active):
            state = self.peers.get(node_id)
            if state is None:
                self._active.discard(node_id)
                continue
            while state.queue and state.out_limiter.take(now, state.queue[0].cost):
                item = state.queue.popleft()
                state.queue_bytes -= len(item.message)
                state.out_meter.add(item.cost, now)
                self.stats["forwarded"] += 1
                actions.append(Transmit(node_id, item.message))
            if not state.queue:
                self._active.discard(node_id)
        return actions

    def next_wakeup(self, now: float) -> float | None:
        """When ``poll`` has work next (an SCID deadline, a queue that may drain)."""
        times: list[float] = []
        deadline = self.book.next_deadline()
        if deadline is not None:
            times.append(deadline)
        for node_id in self._active:
            state = self.peers.get(node_id)
            if state is not None and state.queue:
                times.append(now + state.out_limiter.delay(now, state.queue[0].cost))
        if self._pending:
            times.append(now)
        return min(times) if times else None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def statistics(self) -> MixerStatistics:
        return MixerStatistics(
            counters=dict(self.stats), live_scids=len(self.book), peers=len(self.peers),
            pending=len(self._pending),
            queued=sum(len(s.queue) for s in self.peers.values()),
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
            self.stats["dropped_" + _error_counter(exc)] += 1
            return []
        if peeled.next_message is None:
            return self._final(peer, peeled, now, rng)
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

    def _notice(self, state: PeerState, ss_hash: bytes, now: float) -> list[Action]:
        """An ``onion_message_drop`` to ``state``'s peer, at most once per min interval."""
        if not self.config.send_drop_notices:
            return []
        if now - state.last_notice < self.config.backpressure_min_interval_s:
            return []
        state.last_notice = now
        self.stats["drop_notices_sent"] += 1
        return [Transmit(state.node_id, OnionMessageDrop(True, ss_hash).encode())]

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
        raw_payment = dict(data.records).get(MIXER_PAYMENT_TLV)
        raw_ticket = dict(data.records).get(MIXER_BUNDLE_TLV)
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
            raw_receipt = dict(data.records).get(MIXER_RECEIPT_REQUEST_TLV)
            receipt = None if raw_receipt is None else ReceiptRequest.decode(raw_receipt)
            verified = self._verify_payment(payment, send_message_hash(peeled.path_key), now,
                                            self.config.prices.message)
        except RemoteProtocolError as exc:
            self.stats["dropped_" + _error_counter(exc)] += 1
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
                        price: int) -> _Verified:
        """Verify just enough spends to cover ``price`` (extra spends stay unspent).

        Raises ``InsufficientValueError`` before any proof is checked if the spends
        cannot cover the price; ``DoubleSpendError`` for a serial repeated in the
        payment or waiting in the current batch; the scheme's errors otherwise.
        """
        if price <= 0:
            return _Verified(None, (), 0)
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
        return _Verified(epoch, tuple(serials), needed * unit)

    def _route(self, origin: bytes | None, next_peer: bytes, message: bytes, ss_hash: bytes,
               now: float, depth: int = 0) -> list[Action]:
        """Send now, queue, or drop with backpressure on ``origin`` (rule 5)."""
        if next_peer == self.node_key.public_key:
            return self._loopback(origin, message, now, depth)
        out = self._peer(next_peer, now)
        if out is None:
            self.stats["dropped_no_route"] += 1
            return []
        cost = out.out_limit.cost(len(message))
        if origin is not None:
            out.last_incoming = origin
        if not out.queue and out.out_limiter.take(now, cost):
            out.out_meter.add(cost, now)
            self.stats["forwarded"] += 1
            return [Transmit(next_peer, message)]
        cfg = self.config
        fits = out.queue_bytes + len(message) <= cfg.queue_bytes
        if len(out.queue) < cfg.queue_messages and fits:
            out.queue.append(_Queued(message, origin, ss_hash, cost))
            out.queue_bytes += len(message)
            self._active.add(next_peer)
            self.stats["queued"] += 1
            return []
        self.stats["dropped_queue_full"] += 1
        return self._backpressure(origin, ss_hash, now)

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
            self.stats["dropped_" + _error_counter(exc)] += 1
            return []
        if peeled.next_message is None:
            self.stats["dropped_loop"] += 1
            return []
        return self._forward(origin, peeled, now, depth + 1)

    def _backpressure(self, origin: bytes | None, ss_hash: bytes, now: float) -> list[Action]:
        """Halve ``origin``'s allowance and tell it (onion_message_drop)."""
        if origin is None:
            return []
        state = self.peers.get(origin)
        if state is None:
            return []
        if state.allowance.penalise(now):
            self.stats["backpressure_penalties"] += 1
        if not self.config.send_drop_notices:
            return []
        if now - state.last_notice < self.config.backpressure_min_interval_s:
            return []
        state.last_notice = now
        self.stats["drop_notices_sent"] += 1
        return [Transmit(origin, OnionMessageDrop(True, ss_hash).encode())]

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

    # -- requests to the mixer ------------------------------------------------------
    def _final(self, peer: bytes, peeled: PeeledMessage, now: float, rng: Rng) -> list[Action]:
        raw = dict(peeled.tlv.records).get(MIXER_REQUEST_TLV)
        if raw is None:
            self.stats["dropped_not_a_request"] += 1
            return []
        try:
            request = Request.decode(raw)
        except MalformedInputError:
            self.stats["dropped_malformed_request"] += 1
            return []
        self.stats[f"request_{request.kind.name.lower()}"] += 1
        actions: list[Action] = []
        response = self._serve(request, raw, peeled.tlv.reply_path, now, rng, actions)
        status = Status(response[2 + len(request.request_id)])
        if status != Status.OK:
            self.stats[f"refused_{status.name.lower()}"] += 1
        reply_path = peeled.tlv.reply_path
        if reply_path is None:
            self.stats["responses_without_reply_path"] += 1
            return actions
        try:
            outgoing = create_onion_message(
                crypto.SecretKey.from_rng(rng).secret_bytes(), reply_path,
                payload=[(MIXER_RESPONSE_TLV, response)],
            )
        except HornetError:
            self.stats["responses_unsendable"] += 1
            return actions
        if len(outgoing.first_node_id) != 33:
            self.stats["responses_unsendable"] += 1
            return actions
        self.stats["responses_sent"] += 1
        return actions + self._route(None, outgoing.first_node_id, outgoing.message, b"", now)

    def _serve(self, request: Request, raw: bytes, reply_path: BlindedPath | None,
               now: float, rng: Rng, actions: list[Action]) -> bytes:
        """The encoded response to ``request`` (a cached one for an identical retry)."""
        def respond(status: Status, body: bytes = b"") -> bytes:
            return Response(request.kind, request.request_id, status, body).encode()

        try:
            kind = request.kind
            if kind == Kind.INFO:
                return respond(Status.OK, self.info(now).encode())
            if kind == Kind.BUY:
                if self.credentials.payments is None:
                    return respond(Status.UNSUPPORTED)
                return respond(Status.OK, self.credentials.issue(
                    request.credential_request, now=now, rng=rng))
            if kind == Kind.REISSUE:
                return respond(Status.OK, self.credentials.reissue(
                    request.credential_request, message_hash=bytes(32), now=now, rng=rng))
            if kind == Kind.REGISTER:
                return self._register(request, raw, now, rng, respond)
            if kind == Kind.RENEW:
                return self._renew(request, raw, now, respond)
            if kind == Kind.HINTS:
                return self._paid(request, raw, now, self.config.prices.hints,
                                  respond(Status.OK, self.hints(now).encode()))[0]
            if kind == Kind.CIRCUIT:
                price = self.config.prices.circuit_open
                if price is None or self.entry is None:
                    return respond(Status.UNSUPPORTED)
                self.entry.check_setup(request.setup, now, self.config.circuit_max_lifetime_s)
                out, fresh = self._paid(request, raw, now, price, respond(Status.OK))
                if not fresh:
                    self.stats["circuit_retries_answered_from_cache"] += 1
                elif out[2 + len(request.request_id)] == Status.OK:
                    actions.append(CircuitRequest(request.request_id, request.setup, price,
                                                  reply_path))
                return out
            if kind == Kind.BUNDLE:
                return self._open_bundle(request, raw, now, rng, respond)
            return respond(Status.UNSUPPORTED)  # pragma: no cover - Kind is exhaustive
        except _Refused as refused:
            return respond(refused.status)
        except RemoteProtocolError as exc:
            return respond(_status_of(exc))
        except LocalProtocolError:
            # Defensive: remote bytes should only raise the Remote branch.
            self.stats["local_errors"] += 1
            return respond(Status.MALFORMED)

    def _store_request_id(self, raw: bytes) -> bytes:
        return hashlib.sha256(_REQUEST_ID_TAG + raw).digest()

    def _paid(self, request: Request, raw: bytes, now: float, price: int,
              response: bytes) -> tuple[bytes, bool]:
        """Charge ``price`` and record the spends together with ``response``. Returns
        the response to send and whether the request is served now (False: a retry,
        answered from the cache; what it asked for was done the first time)."""
        verified = self._verify_payment(request.payment, request.message_hash(), now, price)
        if verified.epoch is None:
            return response, True
        cached = self.ledger.record_request(verified.epoch, verified.serials,
                                            self._store_request_id(raw), response)
        return (response, True) if cached is None else (cached, False)

    # -- bundles (spec §3.7) -- ---------------------------------------------------------
    def _open_bundle(self, request: Request, raw: bytes, now: float, rng: Rng,
                      respond: Callable[[Status, bytes], bytes]) -> bytes:
        """BUNDLE: one payment of ``prices.message`` buys ``bundle_k`` messages."""
        cfg = self.config
        if cfg.bundle_k == 0:
            return respond(Status.UNSUPPORTED, b"")
        self._expire_bundles(now)
        if len(self._bundles) >= cfg.max_bundles:
            return respond(Status.UNAVAILABLE, b"")
        bundle_id = rng.randbytes(16)
        grant = BundleGrant(bundle_id, cfg.bundle_k, now + cfg.bundle_lifetime_s)
        fresh = respond(Status.OK, grant.encode())
        out, served = self._paid(request, raw, now, cfg.prices.message, fresh)
        if served:  # not an identical retry of an earlier request
            self._bundles[bundle_id] = _Bundle(request.bundle_key, cfg.bundle_k,
                                                  grant.expires_at)
            self.stats["bundles_opened"] += 1
        return out

    def _expire_bundles(self, now: float) -> None:
        while self._bundles:
            bundle_id, bundle = next(iter(self._bundles.items()))
            if bundle.expires_at > now:
                return
            del self._bundles[bundle_id]

    def _bundle_message(self, raw: bytes, path_key: bytes, now: float) -> bool:
        """Accept one message of a bundle: live, ``seq < k``, unused, MAC valid."""
        try:
            ticket = BundleTicket.decode(raw)
        except MalformedInputError:
            self.stats["dropped_malformed"] += 1
            return False
        bundle = self._bundles.get(ticket.bundle_id)
        if bundle is None or bundle.expires_at <= now:
            self.stats["dropped_unknown_bundle"] += 1
            return False
        if ticket.seq >= bundle.k or bundle.used >> ticket.seq & 1:
            self.stats["dropped_bundle_replay"] += 1
            return False
        if not crypto.ct_equal(bundle_mac(bundle.key, ticket.seq, path_key), ticket.mac):
            self.stats["dropped_bad_credential_or_mac"] += 1
            return False
        bundle.used |= 1 << ticket.seq
        self.stats["bundle_messages"] += 1
        return True

    def _register(self, request: Request, raw: bytes, now: float, rng: Rng,
                  respond: Callable[[Status, bytes], bytes]) -> bytes:
        assert request.target is not None and request.owner_hash is not None
        try:
            crypto.validate_pubkey(request.target)
        except InvalidPointError as exc:
            raise _Refused(Status.MALFORMED) from exc
        cfg = self.config
        verified = self._verify_payment(request.payment, request.message_hash(), now,
                                        cfg.prices.scid_register)
        store_id = self._store_request_id(raw)
        if verified.epoch is not None:
            cached = self.ledger.cached_response(verified.epoch, store_id)
            if cached is not None:
                return cached
        if len(self.book) >= cfg.max_scids:
            raise _Refused(Status.UNAVAILABLE)
        try:
            scid = self.book.mint(rng, now, reserved=self.channels)
        except LocalProtocolError as exc:
            raise _Refused(Status.UNAVAILABLE) from exc
        registration = Registration(scid, request.target, request.owner_hash,
                                    now + cfg.scid_lifetime_s, now)
        response = respond(Status.OK, ScidGrant(scid, registration.expires_at).encode())
        if self.scid_store is not None:
            self.scid_store.insert(registration)
        if verified.epoch is not None:
            try:
                cached = self.ledger.record_request(verified.epoch, verified.serials, store_id,
                                                    response)
            except DoubleSpendError:
                if self.scid_store is not None:
                    self.scid_store.delete(scid)
                raise
            if cached is not None:
                if self.scid_store is not None:
                    self.scid_store.delete(scid)
                return cached
        self.book.add(registration)
        self.stats["scids_registered"] += 1
        return response

    def _renew(self, request: Request, raw: bytes, now: float,
               respond: Callable[[Status, bytes], bytes]) -> bytes:
        assert request.scid is not None and request.owner_secret is not None
        cfg = self.config
        registration = self.book.lookup(request.scid, now)
        if registration is None:
            raise _Refused(Status.UNKNOWN_SCID)
        if not crypto.ct_equal(owner_hash(request.owner_secret), registration.owner_hash):
            raise _Refused(Status.UNAUTHORISED)
        expires_at = max(registration.expires_at, now) + cfg.scid_lifetime_s
        if expires_at > now + cfg.scid_max_ahead_s:
            raise _Refused(Status.TOO_EARLY)
        verified = self._verify_payment(request.payment, request.message_hash(), now,
                                        cfg.prices.scid_renew)
        store_id = self._store_request_id(raw)
        if verified.epoch is not None:
            cached = self.ledger.cached_response(verified.epoch, store_id)
            if cached is not None:
                return cached
        response = respond(Status.OK, ScidGrant(request.scid, expires_at).encode())
        if self.scid_store is not None:
            self.scid_store.update_expiry(request.scid, expires_at)
        if verified.epoch is not None:
            try:
                cached = self.ledger.record_request(verified.epoch, verified.serials, store_id,
                                                    response)
            except DoubleSpendError:
                if self.scid_store is not None:
                    self.scid_store.update_expiry(request.scid, registration.expires_at)
                raise
            if cached is not None:
                return cached
        self.book.renew(request.scid, expires_at)
        self.stats["scids_renewed"] += 1
        return response

    # -- public views ---------------------------------------------------------------
    def listing(self, now: float, *, epochs: int = 2) -> MixerListing:
        """This mixer's directory listing (``mixer_listing``) at ``now``."""
        return mixer_listing(self.config.credential_params, self.node_key.public_key,
                             self.issuer_keys, now, epochs=epochs)

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

    def hints(self, now: float) -> Hints:
        """Utilisation of every network peer's link, both directions, least-loaded first."""
        outgoing: list[PeerHint] = []
        incoming: list[PeerHint] = []
        cfg = self.config
        for state in self.peers.values():
            if not state.network:
                continue
            out_limit = state.out_limit
            queue_fill = max(len(state.queue) / max(cfg.queue_messages, 1),
                             state.queue_bytes / max(cfg.queue_bytes, 1))
            out_util = max(state.out_meter.rate(now) / out_limit.rate,
                           state.out_limiter.fill(now), queue_fill)
            outgoing.append(PeerHint(state.node_id, out_util, state.profile,
                                     out_limit.message_rate, 1.0, queue_fill))
            factor = state.allowance.factor(now)
            in_util = max(state.in_meter.rate(now) / (state.in_base.rate * factor),
                          state.in_limiter.fill(now, factor))
            incoming.append(PeerHint(state.node_id, in_util, state.profile,
                                     state.in_base.message_rate * factor, factor, 0.0))
        return Hints(now, rank(outgoing, cfg.hint_entries), rank(incoming, cfg.hint_entries))

    def registrations(self) -> list[Registration]:
        return self.book.registrations()

    def known_peers(self) -> Iterable[bytes]:
        return self.peers.keys()


__all__ = [
    "Action",
    "CircuitEntry",
    "CircuitRequest",
    "KeyedRng",
    "MixerCore",
    "MixerStatistics",
    "PeeledMessage",
    "PeerState",
    "Transmit",
    "derive_issuer_key",
    "derive_relay_secrets",
    "derive_scid_key",
    "mixer_listing",
    "peel_message",
]

"""The mixer machine's answers to requests addressed to it (docs/spec-mixer.md §3).

Rules:
1. A message for which the mixer is the final hop carries one ``MIXER_REQUEST_TLV``;
   the response goes back along the request's ``reply_path``.
2. INFO (and a HINTS request at a zero price) is answered at once. Everything that
   spends or records is a storage action (``hornet.mixer.actions``): BUY and REISSUE
   become ``RedeemCredentials``; paid REGISTER, RENEW, HINTS, CIRCUIT and BUNDLE become
   ``CommitRequest``, which records the spends together with the response. The request
   is answered, and what it bought (a SCID, a renewal, a bundle, a circuit) takes
   effect, only when the storage result comes back; a refused spend answers with its
   status and grants nothing.
3. An identical retry of a recorded request (before or after a restart) gets the
   cached response and nothing else: a recorded CIRCUIT request cannot make the mixer
   inject its setup twice.
4. A CIRCUIT request carries a HORNET setup packet P➊ for the mixer's own relay
   (``CircuitEntry``); it is checked for shape and EXP before anything is charged.

``RequestServer`` is a base of ``MixerCore`` (hornet.mixer.core).
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Final

import attrs

from hornet.core import crypto
from hornet.core.blinding import BlindedPath
from hornet.core.chdr import EPOCH_OFFSET, TYPE_SETUP, setup_exp
from hornet.core.keys import usable_setup_epoch
from hornet.core.onion_message import OnionMessagePayload, create_onion_message
from hornet.core.params import CHDR_LEN, EXP_GRANULARITY_S, Params
from hornet.credentials.issuer import Issuer
from hornet.credentials.transcript import Rng
from hornet.errors import (
    DoubleSpendError,
    HornetError,
    InsufficientValueError,
    IntegrityError,
    InvalidPointError,
    LocalProtocolError,
    MalformedCredentialError,
    MalformedInputError,
    PaymentRequiredError,
    RemoteProtocolError,
    UnknownScidError,
    WrongEpochError,
)
from hornet.mixer.actions import (
    Action,
    CircuitRequest,
    CommitRefused,
    CommitRequest,
    CredentialsRedeemed,
    RedeemCredentials,
    RequestCommitted,
    ScidWrite,
    StorageAction,
    StorageResult,
)
from hornet.mixer.config import MixerConfig
from hornet.mixer.hints import Hints
from hornet.mixer.protocol import (
    MIXER_REQUEST_TLV,
    MIXER_RESPONSE_TLV,
    Kind,
    MixerInfo,
    Payment,
    Request,
    Response,
    ScidGrant,
    Status,
    owner_hash,
)
from hornet.mixer.riders import BundleGrant, BundleTicket, bundle_mac
from hornet.mixer.scid import Registration, ScidBook

_REQUEST_ID_TAG: Final = b"hornet/mixer/v1/request-id"
_SEED_LEN: Final = 32


class _Refused(Exception):
    """Answer the request with ``status`` (raised inside the machine, never out of it)."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.name)
        self.status = status


def status_of(exc: HornetError) -> Status:
    """The response status of a request refused with ``exc``."""
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


@attrs.frozen
class CircuitEntry:
    """The mixer's co-hosted HORNET relay, as the machine needs to know it: the public
    key published in INFO and the network parameters a setup packet must fit."""

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


@attrs.frozen
class Verified:
    """The spends of a payment that cover a price (``epoch`` None: nothing to pay)."""

    epoch: int | None
    serials: tuple[bytes, ...]
    value: int


@attrs.define
class PrepaidBundle:
    """A prepaid bundle: ``k`` messages under ``key`` until ``expires_at``."""

    key: bytes = attrs.field(repr=False)
    k: int
    expires_at: float
    used: int = 0  # bitmap of the sequence numbers already seen


#: What to do with the storage result of a request: return the response to send
#: (and append any further action); may raise ``_Refused`` or a ``RemoteProtocolError``.
Finish = Callable[[StorageResult, list[Action]], bytes]


@attrs.frozen
class Awaiting:
    """A request waiting for its storage ``action``."""

    action: StorageAction
    serials: tuple[bytes, ...]
    finish: Finish


@attrs.frozen
class AwaitedRequest:
    """A request in flight: what is needed to answer it once its result is back."""

    request: Request
    reply_path: BlindedPath | None
    session_key: bytes = attrs.field(repr=False)
    serials: tuple[bytes, ...] = attrs.field(repr=False)
    finish: Finish = attrs.field(repr=False)


def _respond(request: Request, status: Status, body: bytes = b"") -> bytes:
    return Response(request.kind, request.request_id, status, body).encode()


def _store_request_id(raw: bytes) -> bytes:
    return hashlib.sha256(_REQUEST_ID_TAG + raw).digest()


class RequestServer:
    """Requests to the mixer, answered by ``MixerCore``."""

    config: MixerConfig
    issuer: Issuer
    book: ScidBook
    channels: dict[int, bytes]
    entry: CircuitEntry | None
    sells_credentials: bool
    stats: Counter[str]
    _pending_serials: set[bytes]
    _bundles: OrderedDict[bytes, PrepaidBundle]
    _minting: set[int]
    _renewing: set[int]

    # Provided by MixerCore and Router.
    def info(self, now: float) -> MixerInfo:
        raise NotImplementedError

    def hints(self, now: float) -> Hints:
        raise NotImplementedError

    def _verify_payment(self, payment: Payment, message_hash: bytes, now: float,
                        price: int) -> Verified:
        raise NotImplementedError

    def _new_commit_id(self) -> int:
        raise NotImplementedError

    def _route(self, origin: bytes | None, next_peer: bytes, message: bytes, ss_hash: bytes,
               now: float, depth: int = 0) -> list[Action]:
        raise NotImplementedError

    # -- answering ------------------------------------------------------------------
    def _final(self, tlv: OnionMessagePayload, now: float, rng: Rng,
               inflight: dict[int, AwaitedRequest]) -> list[Action]:
        raw = dict(tlv.records).get(MIXER_REQUEST_TLV)
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
        answer = self._answer(request, lambda: self._serve(request, raw, tlv.reply_path,
                                                            now, rng, actions))
        session_key = crypto.SecretKey.from_rng(rng).secret_bytes()
        if isinstance(answer, Awaiting):
            inflight[answer.action.commit_id] = AwaitedRequest(
                request, tlv.reply_path, session_key, answer.serials, answer.finish)
            self._pending_serials.update(answer.serials)
            return [*actions, answer.action]
        return actions + self._send_response(request, tlv.reply_path, answer, session_key, now)

    def _request_done(self, awaited: AwaitedRequest, result: StorageResult,
                      now: float) -> list[Action]:
        """The storage result of a request in flight: answer it."""
        actions: list[Action] = []
        response = self._answer(awaited.request, lambda: awaited.finish(result, actions))
        assert isinstance(response, bytes)
        return actions + self._send_response(awaited.request, awaited.reply_path, response,
                                             awaited.session_key, now)

    def _answer(self, request: Request,
                serve: Callable[[], bytes | Awaiting]) -> bytes | Awaiting:
        try:
            return serve()
        except _Refused as refused:
            return _respond(request, refused.status)
        except RemoteProtocolError as exc:
            return _respond(request, status_of(exc))
        except LocalProtocolError:
            # Defensive: remote bytes should only raise the Remote branch.
            self.stats["local_errors"] += 1
            return _respond(request, Status.MALFORMED)

    def _send_response(self, request: Request, reply_path: BlindedPath | None,
                       response: bytes, session_key: bytes, now: float) -> list[Action]:
        status = Status(response[2 + len(request.request_id)])
        if status != Status.OK:
            self.stats[f"refused_{status.name.lower()}"] += 1
        if reply_path is None:
            self.stats["responses_without_reply_path"] += 1
            return []
        try:
            outgoing = create_onion_message(session_key, reply_path,
                                            payload=[(MIXER_RESPONSE_TLV, response)])
        except HornetError:
            self.stats["responses_unsendable"] += 1
            return []
        if len(outgoing.first_node_id) != 33:
            self.stats["responses_unsendable"] += 1
            return []
        self.stats["responses_sent"] += 1
        return self._route(None, outgoing.first_node_id, outgoing.message, b"", now)

    def _serve(self, request: Request, raw: bytes, reply_path: BlindedPath | None,
               now: float, rng: Rng, actions: list[Action]) -> bytes | Awaiting:
        """The encoded response to ``request``, or the storage action it waits for."""
        kind = request.kind
        if kind == Kind.INFO:
            return _respond(request, Status.OK, self.info(now).encode())
        if kind in (Kind.BUY, Kind.REISSUE):
            return self._redeem(request, now, rng)
        if kind == Kind.REGISTER:
            return self._register(request, raw, now, rng)
        if kind == Kind.RENEW:
            return self._renew(request, raw, now)
        if kind == Kind.HINTS:
            return self._paid(request, raw, now, self.config.prices.hints,
                              _respond(request, Status.OK, self.hints(now).encode()), actions)
        if kind == Kind.CIRCUIT:
            return self._circuit(request, raw, reply_path, now, actions)
        if kind == Kind.BUNDLE:
            return self._open_bundle(request, raw, now, rng, actions)
        return _respond(request, Status.UNSUPPORTED)  # pragma: no cover - Kind is exhaustive

    def _redeem(self, request: Request, now: float, rng: Rng) -> bytes | Awaiting:
        """BUY or REISSUE: the credential service verifies, records and signs."""
        if request.kind == Kind.BUY and not self.sells_credentials:
            return _respond(request, Status.UNSUPPORTED)

        def finish(result: StorageResult, actions: list[Action]) -> bytes:
            del actions
            if isinstance(result, CommitRefused):
                raise result.error
            assert isinstance(result, CredentialsRedeemed)
            self.stats["credentials_issued"] += 1
            return _respond(request, Status.OK, result.body)

        action = RedeemCredentials(self._new_commit_id(),
                                   "issue" if request.kind == Kind.BUY else "reissue",
                                   request.credential_request, now, rng.randbytes(_SEED_LEN))
        return Awaiting(action, (), finish)

    def _paid(self, request: Request, raw: bytes, now: float, price: int, response: bytes,
              actions: list[Action], *, on_fresh: Callable[[list[Action]], None] | None = None,
              on_cached: Callable[[], None] | None = None) -> bytes | Awaiting:
        """Charge ``price`` and record the spends together with ``response``.
        ``on_fresh`` grants what was bought, once the spends are durable; an identical
        retry gets the cached response and ``on_cached`` instead."""
        verified = self._verify_payment(request.payment, request.message_hash(), now, price)
        if verified.epoch is None:
            if on_fresh is not None:
                on_fresh(actions)
            return response

        def finish(result: StorageResult, actions: list[Action]) -> bytes:
            if isinstance(result, CommitRefused):
                raise result.error
            assert isinstance(result, RequestCommitted)
            if result.cached is not None:
                if on_cached is not None:
                    on_cached()
                return result.cached
            self.stats["spends_redeemed"] += len(verified.serials)
            if on_fresh is not None:
                on_fresh(actions)
            return response

        action = CommitRequest(self._new_commit_id(), verified.epoch, verified.serials,
                               _store_request_id(raw), response)
        return Awaiting(action, verified.serials, finish)

    def _circuit(self, request: Request, raw: bytes, reply_path: BlindedPath | None,
                 now: float, actions: list[Action]) -> bytes | Awaiting:
        price = self.config.prices.circuit_open
        entry = self.entry
        if price is None or entry is None:
            return _respond(request, Status.UNSUPPORTED)
        entry.check_setup(request.setup, now, self.config.circuit_max_lifetime_s)

        def open_circuit(out: list[Action]) -> None:
            out.append(CircuitRequest(request.request_id, request.setup, price, reply_path))

        def cached() -> None:
            self.stats["circuit_retries_answered_from_cache"] += 1

        return self._paid(request, raw, now, price, _respond(request, Status.OK), actions,
                          on_fresh=open_circuit, on_cached=cached)

    # -- bundles (spec §3.7) --------------------------------------------------------
    def _open_bundle(self, request: Request, raw: bytes, now: float, rng: Rng,
                     actions: list[Action]) -> bytes | Awaiting:
        """BUNDLE: one payment of ``prices.message`` buys ``bundle_k`` messages."""
        cfg = self.config
        if cfg.bundle_k == 0:
            return _respond(request, Status.UNSUPPORTED)
        self._expire_bundles(now)
        if len(self._bundles) >= cfg.max_bundles:
            return _respond(request, Status.UNAVAILABLE)
        bundle_id = rng.randbytes(16)
        grant = BundleGrant(bundle_id, cfg.bundle_k, now + cfg.bundle_lifetime_s)

        def open_bundle(actions: list[Action]) -> None:
            del actions
            self._bundles[bundle_id] = PrepaidBundle(request.bundle_key, cfg.bundle_k,
                                              grant.expires_at)
            self.stats["bundles_opened"] += 1

        return self._paid(request, raw, now, cfg.prices.message,
                          _respond(request, Status.OK, grant.encode()), actions,
                          on_fresh=open_bundle)

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

    # -- synthetic SCIDs (spec §4) --------------------------------------------------
    def _register(self, request: Request, raw: bytes, now: float,
                  rng: Rng) -> bytes | Awaiting:
        assert request.target is not None and request.owner_hash is not None
        try:
            crypto.validate_pubkey(request.target)
        except InvalidPointError as exc:
            raise _Refused(Status.MALFORMED) from exc
        cfg = self.config
        verified = self._verify_payment(request.payment, request.message_hash(), now,
                                        cfg.prices.scid_register)
        store_id = _store_request_id(raw)
        refusal: Status | None = None
        registration: Registration | None = None
        if len(self.book) + len(self._minting) >= cfg.max_scids:
            refusal = Status.UNAVAILABLE
        else:
            try:
                scid = self.book.mint(rng, now, reserved=self.channels.keys() | self._minting)
            except LocalProtocolError:
                refusal = Status.UNAVAILABLE
            else:
                registration = Registration(scid, request.target, request.owner_hash,
                                            now + cfg.scid_lifetime_s, now)
        if refusal is not None and verified.epoch is None:
            raise _Refused(refusal)
        response = None if registration is None else _respond(
            request, Status.OK, ScidGrant(registration.scid, registration.expires_at).encode())
        if registration is not None:
            self._minting.add(registration.scid)

        def finish(result: StorageResult, actions: list[Action]) -> bytes:
            del actions
            if registration is not None:
                self._minting.discard(registration.scid)
            if isinstance(result, CommitRefused):
                raise result.error
            assert isinstance(result, RequestCommitted)
            if result.cached is not None:
                return result.cached
            if registration is None or response is None:
                raise _Refused(refusal or Status.UNAVAILABLE)
            self.book.add(registration)
            self.stats["spends_redeemed"] += len(verified.serials)
            self.stats["scids_registered"] += 1
            return response

        action = CommitRequest(self._new_commit_id(), verified.epoch, verified.serials,
                               store_id, response,
                               None if registration is None else ScidWrite(insert=registration))
        return Awaiting(action, verified.serials, finish)

    def _renew(self, request: Request, raw: bytes, now: float) -> bytes | Awaiting:
        assert request.scid is not None and request.owner_secret is not None
        scid = request.scid
        cfg = self.config
        registration = self.book.lookup(scid, now)
        if registration is None:
            raise _Refused(Status.UNKNOWN_SCID)
        if not crypto.ct_equal(owner_hash(request.owner_secret), registration.owner_hash):
            raise _Refused(Status.UNAUTHORISED)
        if scid in self._renewing:
            raise _Refused(Status.UNAVAILABLE)  # one renewal of a SCID at a time
        expires_at = max(registration.expires_at, now) + cfg.scid_lifetime_s
        if expires_at > now + cfg.scid_max_ahead_s:
            raise _Refused(Status.TOO_EARLY)
        verified = self._verify_payment(request.payment, request.message_hash(), now,
                                        cfg.prices.scid_renew)
        response = _respond(request, Status.OK, ScidGrant(scid, expires_at).encode())
        self._renewing.add(scid)

        def finish(result: StorageResult, actions: list[Action]) -> bytes:
            del actions
            self._renewing.discard(scid)
            if isinstance(result, CommitRefused):
                raise result.error
            assert isinstance(result, RequestCommitted)
            if result.cached is not None:
                return result.cached
            self.book.renew(scid, expires_at)
            self.stats["spends_redeemed"] += len(verified.serials)
            self.stats["scids_renewed"] += 1
            return response

        write = ScidWrite(scid=scid, expires_at=expires_at,
                          previous_expiry=registration.expires_at)
        action = CommitRequest(self._new_commit_id(), verified.epoch, verified.serials,
                               _store_request_id(raw), response, write)
        return Awaiting(action, verified.serials, finish)


__all__ = [
    "AwaitedRequest",
    "Awaiting",
    "CircuitEntry",
    "PrepaidBundle",
    "RequestServer",
    "Verified",
    "status_of",
]

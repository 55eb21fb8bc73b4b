"""The client's half of the mixer protocol, sans-IO: build requests, read responses.

Strategy:
- A ``Wallet`` holds the credentials bought from one mixer and the issuer parameters
  the directory commits that mixer to (``MixerListing``); the signed parameters the
  mixer shows in INFO must equal them. It is separate from the session so that a
  client can buy under one identity and spend under another (the point of anonymous
  credentials): use one session per identity, each over its own connection.
- A ``MixerSession`` is one identity talking to one mixer. Every request is an
  onion message whose final hop is the mixer, carrying one ``MIXER_REQUEST_TLV``
  record and a ``reply_path`` back to this identity (through ``reply_hops`` if set).
  Every response is matched by its 16-byte request id and checked against the
  ``path_id`` only this session knows.
- Sending through the mixer: the session builds its own blinded hops
  ``[to_mixer…, mixer, next_hops…]`` in front of the destination's blinded path. The
  mixer's hop names the next hop and carries the payment (spends bound to the path
  key E the mixer will see, which the session knows because it chose e_0).
- A reply path entering through the mixer is ``[via…, mixer, self]`` where the mixer's
  hop names a registered synthetic SCID (``short_channel_id``), not our node id.

Invariants: no I/O, no clock, no randomness of its own (``rng`` everywhere); credential
secrets, owner secrets and the path id never appear in ``repr``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs

from hornet.core import crypto
from hornet.core.blinding import (
    BlindedPath,
    EncryptedData,
    create_blinded_path,
    derive_blinding_secrets,
    pad_to_equal_length,
)
from hornet.core.onion_message import (
    DeliverMessage,
    ForwardMessage,
    OutgoingOnionMessage,
    create_message_path,
    create_onion_message,
    prepend_hops,
    process_onion_message,
)
from hornet.credentials.params import verify_issuer_params
from hornet.credentials.scheme import Client, Credential, PendingRequest
from hornet.credentials.transcript import Rng
from hornet.directory.model import Directory, MixerListing
from hornet.errors import (
    IssuerKeyMismatchError,
    LocalProtocolError,
    MalformedInputError,
    RemoteProtocolError,
    RequestRefusedError,
)
from hornet.mixer.hints import Hints
from hornet.mixer.protocol import (
    BUNDLE_KEY_LEN,
    MIXER_BUNDLE_TLV,
    MIXER_PAYMENT_TLV,
    MIXER_RECEIPT_REQUEST_TLV,
    MIXER_RECEIPT_TLV,
    MIXER_REQUEST_TLV,
    MIXER_RESPONSE_TLV,
    ONION_MESSAGE_DROP_TYPE,
    REQUEST_ID_LEN,
    Kind,
    MixerInfo,
    OnionMessageDrop,
    Payment,
    Request,
    Response,
    ScidGrant,
    Status,
    owner_hash,
    send_message_hash,
)
from hornet.mixer.riders import BundleGrant, BundleTicket, Receipt, ReceiptRequest, bundle_mac

MAX_PENDING: Final = 256
PATH_ID_LEN: Final = 32


def _scalar(rng: Rng) -> bytes:
    return crypto.SecretKey.from_rng(rng).secret_bytes()


# --------------------------------------------------------------------------------------
# Wallet


@attrs.define
class Wallet:
    """Unit credentials bought from one mixer, held to that mixer's directory listing
    (secret: keep it private).

    The issuer parameters come from ``listing`` (the directory every client reads), never
    from the mixer: INFO is only checked against them, and a mixer that shows anything
    else is refused with ``IssuerKeyMismatchError`` before any purchase or spend. So a
    mixer cannot hand one buyer an issuer key of its own and recognise that buyer's
    spends later. ``fingerprints`` holds the epochs the mixer has shown and that matched.
    """

    listing: MixerListing
    client: Client = attrs.field(init=False, repr=False)
    credentials: list[Credential] = attrs.field(factory=list, repr=False)
    fingerprints: dict[int, bytes] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.client = Client(self.listing.credential_params)
        for public in self.listing.issuer_keys:
            self.client.add_issuer_params(public)

    @classmethod
    def from_directory(cls, directory: Directory, mixer_id: bytes) -> Wallet:
        """A wallet for the mixer ``mixer_id`` as ``directory`` lists it."""
        listing = directory.mixer(mixer_id)
        if listing is None:
            raise LocalProtocolError("the directory lists no such mixer")
        return cls(listing)

    @property
    def mixer_id(self) -> bytes:
        return self.listing.node_id

    @property
    def balance(self) -> int:
        return sum(c.value for c in self.credentials)

    def __len__(self) -> int:
        return len(self.credentials)

    def commit(self, listing: MixerListing) -> None:
        """Take a newer directory's listing of the same mixer (keys of later epochs).
        An epoch both listings name must keep its key."""
        if listing.node_id != self.mixer_id:
            raise LocalProtocolError("the listing is for another mixer")
        if listing.credential_params != self.listing.credential_params:
            raise IssuerKeyMismatchError("the directory changed the mixer's credential "
                                         "parameters")
        for public in listing.issuer_keys:
            known = self.listing.issuer_key(public.epoch)
            if known is not None and known.encode() != public.encode():
                raise IssuerKeyMismatchError("the directory changed an epoch's issuer key")
        self.listing = listing
        for public in listing.issuer_keys:
            self.client.add_issuer_params(public)

    def learn(self, info: MixerInfo) -> None:
        """Check the issuer parameters the mixer shows in INFO (signed by its node key)
        against the directory's listing; adopt nothing unless all of them match."""
        if info.node_id != self.mixer_id:
            raise MalformedInputError("INFO names another mixer")
        shown = [verify_issuer_params(signed, self.mixer_id) for signed in info.signed_params]
        for verified in shown:
            if verified.params != self.listing.credential_params:
                raise IssuerKeyMismatchError(
                    "the mixer's credential parameters differ from the directory's")
            committed = self.listing.issuer_key(verified.public.epoch)
            if committed is None:
                raise IssuerKeyMismatchError(
                    f"the directory lists no issuer key for epoch {verified.public.epoch}")
            if committed.encode() != verified.public.encode():
                raise IssuerKeyMismatchError(
                    f"the mixer shows an issuer key for epoch {verified.public.epoch} "
                    "that the directory does not list")
        for verified in shown:
            self.fingerprints[verified.public.epoch] = verified.fingerprint

    def require_client(self) -> Client:
        return self.client

    def take(self, count: int) -> list[Credential]:
        """Remove ``count`` unit credentials, oldest epoch first."""
        if count > len(self.credentials):
            raise LocalProtocolError("not enough credentials in the wallet")
        self.credentials.sort(key=lambda c: c.epoch)
        taken, self.credentials = self.credentials[:count], self.credentials[count:]
        return taken

    def give_back(self, credentials: Sequence[Credential]) -> None:
        self.credentials.extend(credentials)


# --------------------------------------------------------------------------------------
# Results


@attrs.frozen
class ScidRegistration:
    """A synthetic SCID this client holds at the mixer until ``expires_at``."""

    scid: int
    expires_at: float
    owner_secret: bytes = attrs.field(repr=False, eq=False)


@attrs.frozen
class MixerReply:
    """A response to one of our requests: ``result`` if OK, else ``error`` (the mixer's
    refusal, or our refusal of what it answered, e.g. ``IssuerKeyMismatchError``)."""

    request_id: bytes
    kind: Kind
    result: object = None
    error: RemoteProtocolError | None = None


@attrs.frozen
class Delivered:
    """An application message for us (e.g. a reply through our synthetic SCID)."""

    payload: tuple[tuple[int, bytes], ...]
    reply_path: BlindedPath | None


@attrs.frozen
class DropNotice:
    """An onion_message_drop from the mixer: it dropped one of our messages."""

    rate_limited: bool
    shared_secret_hash: bytes


Incoming = MixerReply | Delivered | DropNotice | Receipt


@attrs.frozen(eq=False)
class _Call:
    kind: Kind
    spent: tuple[Credential, ...] = attrs.field(repr=False)
    issuance: PendingRequest | None = attrs.field(default=None, repr=False)
    owner_secret: bytes | None = attrs.field(default=None, repr=False)
    bundle_key: bytes | None = attrs.field(default=None, repr=False)


@attrs.define
class Bundle:
    """Messages prepaid at the mixer (spec-mixer §3.5): ``k`` of them, numbered from 0,
    under ``key`` until ``expires_at``."""

    bundle_id: bytes
    key: bytes = attrs.field(repr=False)
    k: int
    expires_at: float
    next_seq: int = 0

    @property
    def remaining(self) -> int:
        return self.k - self.next_seq


# --------------------------------------------------------------------------------------
# Session


@attrs.define
class MixerSession:
    """One identity (``identity``) talking to one mixer, sans-IO."""

    identity: crypto.SecretKey = attrs.field(repr=False)
    wallet: Wallet
    to_mixer: tuple[bytes, ...] = ()
    reply_hops: tuple[bytes, ...] = ()
    path_id: bytes = attrs.field(default=b"", repr=False)
    info: MixerInfo | None = None
    _calls: dict[bytes, _Call] = attrs.field(factory=dict, repr=False)
    ignored: int = 0
    bundles: list[Bundle] = attrs.field(factory=list, repr=False)

    @classmethod
    def create(cls, identity: crypto.SecretKey, wallet: Wallet, rng: Rng, *,
               to_mixer: Sequence[bytes] = (), reply_hops: Sequence[bytes] = ()) -> MixerSession:
        return cls(identity, wallet, tuple(to_mixer), tuple(reply_hops),
                   rng.randbytes(PATH_ID_LEN))

    @property
    def mixer_id(self) -> bytes:
        return self.wallet.mixer_id

    @property
    def node_id(self) -> bytes:
        return self.identity.public_key

    # -- paths ----------------------------------------------------------------------
    def own_reply_path(self, rng: Rng) -> BlindedPath:
        """A reply path to this identity, through ``reply_hops`` (used for responses)."""
        return create_message_path(_scalar(rng), [*self.reply_hops, self.node_id],
                                   path_id=self.path_id)

    def reply_path(self, registration: ScidRegistration, rng: Rng, *,
                   via: Sequence[bytes] = ()) -> BlindedPath:
        """A reply path that enters through the mixer: ``[via…, mixer, self]``, the
        mixer's hop naming ``registration.scid``. ``via`` are hops in front of the
        mixer (e.g. the least-loaded incoming peer from ``Hints.best_incoming``)."""
        nodes = [*via, self.mixer_id, self.node_id]
        items = [EncryptedData(next_node_id=bytes(n)) for n in nodes[1:-1]]
        items.append(EncryptedData(short_channel_id=registration.scid))
        items.append(EncryptedData(path_id=self.path_id))
        items = pad_to_equal_length(items)
        return create_blinded_path(_scalar(rng), list(zip(nodes, items, strict=True)))

    def _to_mixer_path(self, rng: Rng) -> BlindedPath:
        path = create_message_path(_scalar(rng), [self.mixer_id])
        if self.to_mixer:
            path = prepend_hops(_scalar(rng), self.to_mixer, path)
        return path

    # -- requests -------------------------------------------------------------------
    def _new_call(self, request_kind: Kind, rng: Rng) -> bytes:
        if len(self._calls) >= MAX_PENDING:
            raise LocalProtocolError("too many requests in flight")
        while True:
            request_id = rng.randbytes(REQUEST_ID_LEN)
            if request_id not in self._calls:
                return request_id

    def _request(self, request: Request, call: _Call, rng: Rng) -> OutgoingOnionMessage:
        outgoing = create_onion_message(
            _scalar(rng), self._to_mixer_path(rng),
            payload=[(MIXER_REQUEST_TLV, request.encode())],
            reply_path=self.own_reply_path(rng),
        )
        self._calls[request.request_id] = call
        return outgoing

    def _pay(self, price: int, message_hash: bytes, rng: Rng) -> tuple[Payment, list[Credential]]:
        if price <= 0:
            return Payment(), []
        client = self.wallet.require_client()
        count = -(-price // client.params.unit_value)
        credentials = self.wallet.take(count)
        try:
            spends = tuple(client.spend_request(c, message_hash=message_hash, rng=rng)
                           for c in credentials)
        except BaseException:
            self.wallet.give_back(credentials)
            raise
        return Payment(spends), credentials

    def _prices(self) -> MixerInfo:
        if self.info is None:
            raise LocalProtocolError("ask the mixer for INFO first")
        return self.info

    def info_request(self, rng: Rng) -> tuple[bytes, OutgoingOnionMessage]:
        request = Request(Kind.INFO, self._new_call(Kind.INFO, rng))
        return request.request_id, self._request(request, _Call(Kind.INFO, ()), rng)

    def buy_request(self, payment_id: bytes, rng: Rng, *, values: Sequence[int] | None = None,
                    now: float | None = None) -> tuple[bytes, OutgoingOnionMessage]:
        """Issuance against ``payment_id`` (a voucher code or a paid invoice's id):
        ``issuance_k`` unit credentials unless ``values`` says otherwise. The epoch is
        the one at ``now`` (default: the mixer's clock in its last INFO)."""
        client = self.wallet.require_client()
        params = client.params
        info = self._prices()  # nothing is paid before an INFO that matched the directory
        epoch = params.epoch_at(info.now if now is None else now)
        values = list(values) if values is not None else [params.unit_value] * params.issuance_k
        pending = client.issuance_request(values, payment_id, epoch=epoch, rng=rng)
        request = Request(Kind.BUY, self._new_call(Kind.BUY, rng),
                          credential_request=pending.request)
        return request.request_id, self._request(request, _Call(Kind.BUY, (), pending), rng)

    def rollover_request(self, rng: Rng) -> tuple[bytes, OutgoingOnionMessage] | None:
        """ROLLOVER ``k`` unit credentials of the oldest epoch into the next epoch (free,
        value preserved; do it during the grace period). None if the wallet holds fewer
        than ``k`` credentials of an older epoch than the newest one it knows."""
        self._prices()
        client = self.wallet.require_client()
        newest = max(self.wallet.fingerprints, default=None)
        k = client.params.k
        old = sorted((c for c in self.wallet.credentials if newest is not None
                      and c.epoch < newest), key=lambda c: c.epoch)
        epoch = old[0].epoch if old else None
        chosen = [c for c in old if c.epoch == epoch][:k]
        if len(chosen) < k:
            return None
        for credential in chosen:
            self.wallet.credentials.remove(credential)
        try:
            pending = client.rollover_request(chosen, [c.value for c in chosen], rng=rng)
        except BaseException:
            self.wallet.give_back(chosen)
            raise
        request = Request(Kind.REISSUE, self._new_call(Kind.REISSUE, rng),
                          credential_request=pending.request)
        call = _Call(Kind.REISSUE, tuple(chosen), pending)
        return request.request_id, self._request(request, call, rng)

    def register_request(self, rng: Rng) -> tuple[bytes, OutgoingOnionMessage]:
        """Register a synthetic SCID that routes to this identity."""
        secret = rng.randbytes(32)
        request_id = self._new_call(Kind.REGISTER, rng)
        unpaid = Request(Kind.REGISTER, request_id, target=self.node_id,
                         owner_hash=owner_hash(secret))
        payment, spent = self._pay(self._prices().prices.scid_register, unpaid.message_hash(), rng)
        request = attrs.evolve(unpaid, payment=payment)
        call = _Call(Kind.REGISTER, tuple(spent), owner_secret=secret)
        return request_id, self._request(request, call, rng)

    def renew_request(self, registration: ScidRegistration,
                      rng: Rng) -> tuple[bytes, OutgoingOnionMessage]:
        request_id = self._new_call(Kind.RENEW, rng)
        unpaid = Request(Kind.RENEW, request_id, scid=registration.scid,
                         owner_secret=registration.owner_secret)
        payment, spent = self._pay(self._prices().prices.scid_renew, unpaid.message_hash(), rng)
        call = _Call(Kind.RENEW, tuple(spent), owner_secret=registration.owner_secret)
        return request_id, self._request(attrs.evolve(unpaid, payment=payment), call, rng)

    def hints_request(self, rng: Rng) -> tuple[bytes, OutgoingOnionMessage]:
        request_id = self._new_call(Kind.HINTS, rng)
        unpaid = Request(Kind.HINTS, request_id)
        payment, spent = self._pay(self._prices().prices.hints, unpaid.message_hash(), rng)
        return request_id, self._request(attrs.evolve(unpaid, payment=payment),
                                         _Call(Kind.HINTS, tuple(spent)), rng)

    def circuit_request(self, setup: bytes, rng: Rng) -> tuple[bytes, OutgoingOnionMessage]:
        """Pay ``prices.circuit_open`` to have the mixer inject ``setup`` (a HORNET P➊
        whose first hop is the mixer's relay, INFO ``relay_key``) into its relay. The
        spends are bound to the request hash, which covers every byte of ``setup``."""
        price = self._prices().prices.circuit_open
        if price is None:
            raise LocalProtocolError("this mixer does not offer HORNET circuits")
        request_id = self._new_call(Kind.CIRCUIT, rng)
        unpaid = Request(Kind.CIRCUIT, request_id, setup=bytes(setup))
        payment, spent = self._pay(price, unpaid.message_hash(), rng)
        return request_id, self._request(attrs.evolve(unpaid, payment=payment),
                                         _Call(Kind.CIRCUIT, tuple(spent)), rng)

    def forget(self, request_id: bytes) -> None:
        """Stop waiting for ``request_id`` (its credentials count as spent)."""
        self._calls.pop(request_id, None)

    # -- sending through the mixer ----------------------------------------------------
    def send_message(self, destination: BlindedPath, payload: Sequence[tuple[int, bytes]],
                     rng: Rng, *, reply_path: BlindedPath | None = None,
                     next_hops: Sequence[bytes] = (),
                     receipt_id: bytes | None = None) -> OutgoingOnionMessage:
        """An onion message to ``destination`` through the mixer, paid with
        ``prices.message`` worth of unit credentials. ``next_hops`` are extra hops
        between the mixer and the destination's introduction node (e.g. from
        ``Hints.best_outgoing``). With ``receipt_id`` the mixer's hop asks for a
        delivery receipt along ``own_reply_path`` (spec-mixer §5.5)."""
        if not destination.first_node_is_pubkey:
            raise LocalProtocolError("resolve the destination's sciddir first")
        price = self._prices().prices.message
        nodes = [*self.to_mixer, self.mixer_id, *next_hops]
        targets = [*nodes[1:], destination.first_node_id]
        e0 = _scalar(rng)
        mixer_index = len(self.to_mixer)
        path_key = derive_blinding_secrets(e0, nodes)[mixer_index].path_key
        payment, spent = self._pay(price, send_message_hash(path_key), rng)
        try:
            items = [EncryptedData(next_node_id=bytes(t)) for t in targets]
            items[-1] = attrs.evolve(items[-1], next_path_key_override=destination.first_path_key)
            records = [(MIXER_PAYMENT_TLV, payment.encode())] if payment.spends else []
            if receipt_id is not None:
                request = ReceiptRequest(receipt_id, self.own_reply_path(rng))
                records.append((MIXER_RECEIPT_REQUEST_TLV, request.encode()))
            if records:
                items[mixer_index] = attrs.evolve(items[mixer_index], records=tuple(records))
            prefix = create_blinded_path(e0, list(zip(nodes, items, strict=True)))
            return create_onion_message(_scalar(rng), prefix.concat(destination),
                                        payload=payload, reply_path=reply_path)
        except BaseException:
            self.wallet.give_back(spent)
            raise

    # -- bundles (spec-mixer §3.7) ----------------------------------------------------
    def bundle_request(self, rng: Rng) -> tuple[bytes, OutgoingOnionMessage]:
        """Buy a bundle: one payment of ``prices.message`` for the mixer's ``k`` messages."""
        key = rng.randbytes(BUNDLE_KEY_LEN)
        request_id = self._new_call(Kind.BUNDLE, rng)
        unpaid = Request(Kind.BUNDLE, request_id, bundle_key=key)
        payment, spent = self._pay(self._prices().prices.message, unpaid.message_hash(), rng)
        call = _Call(Kind.BUNDLE, tuple(spent), bundle_key=key)
        return request_id, self._request(attrs.evolve(unpaid, payment=payment), call, rng)

    def bundled_message(self, destination: BlindedPath, payload: Sequence[tuple[int, bytes]],
                        rng: Rng, *, now: float, reply_path: BlindedPath | None = None,
                        next_hops: Sequence[bytes] = ()) -> OutgoingOnionMessage:
        """Like ``send_message``, paid with the next message of a live bundle instead of
        a spend. ``LocalProtocolError`` if no bundle has a message left."""
        self.bundles = [b for b in self.bundles if b.remaining > 0 and b.expires_at > now]
        if not self.bundles:
            raise LocalProtocolError("no prepaid bundle message left")
        if not destination.first_node_is_pubkey:
            raise LocalProtocolError("resolve the destination's sciddir first")
        bundle = self.bundles[0]
        nodes = [*self.to_mixer, self.mixer_id, *next_hops]
        targets = [*nodes[1:], destination.first_node_id]
        e0 = _scalar(rng)
        mixer_index = len(self.to_mixer)
        path_key = derive_blinding_secrets(e0, nodes)[mixer_index].path_key
        seq = bundle.next_seq
        bundle.next_seq += 1
        ticket = BundleTicket(bundle.bundle_id, seq, bundle_mac(bundle.key, seq, path_key))
        items = [EncryptedData(next_node_id=bytes(t)) for t in targets]
        items[-1] = attrs.evolve(items[-1], next_path_key_override=destination.first_path_key)
        items[mixer_index] = attrs.evolve(items[mixer_index],
                                          records=((MIXER_BUNDLE_TLV, ticket.encode()),))
        prefix = create_blinded_path(e0, list(zip(nodes, items, strict=True)))
        return create_onion_message(_scalar(rng), prefix.concat(destination),
                                    payload=payload, reply_path=reply_path)

    # -- receiving ------------------------------------------------------------------
    def receive(self, message: bytes) -> Incoming | None:
        """Read one message sent to this identity. None if it must be ignored (not for
        one of our paths, or a forward request). Raises ``RemoteProtocolError`` on junk."""
        message = bytes(message)
        if message[:2] == ONION_MESSAGE_DROP_TYPE.to_bytes(2, "big"):
            notice = OnionMessageDrop.decode(message)
            return DropNotice(notice.rate_limited, notice.shared_secret_hash)
        action = process_onion_message(self.identity, message)
        if isinstance(action, ForwardMessage) or not isinstance(action, DeliverMessage):
            self.ignored += 1
            return None
        if not action.path_id_matches(self.path_id):
            self.ignored += 1
            return None
        raw = dict(action.payload).get(MIXER_RESPONSE_TLV)
        if raw is None:
            receipt = dict(action.payload).get(MIXER_RECEIPT_TLV)
            if receipt is not None:
                return Receipt.decode(receipt)
            return Delivered(action.payload, action.reply_path)
        return self._complete(Response.decode(raw))

    def _complete(self, response: Response) -> MixerReply | None:
        call = self._calls.pop(response.request_id, None)
        if call is None or call.kind != response.kind:
            self.ignored += 1
            return None
        if response.status != Status.OK:
            if response.status != Status.DOUBLE_SPEND:
                # The mixer records spends only with an OK response: reuse them.
                self.wallet.give_back(call.spent)
            error = RequestRefusedError(f"mixer refused {response.kind.name}: "
                                        f"{response.status.name}", int(response.status))
            return MixerReply(response.request_id, response.kind, error=error)
        try:
            result = self._result(call, response)
        except RemoteProtocolError as exc:
            return MixerReply(response.request_id, response.kind, error=exc)
        return MixerReply(response.request_id, response.kind, result)

    def _result(self, call: _Call, response: Response) -> object:
        kind, body = response.kind, response.body
        if kind == Kind.INFO:
            info = MixerInfo.decode(body)
            try:
                self.wallet.learn(info)
            except IssuerKeyMismatchError:
                self.info = None  # no paid request until an INFO matches the directory
                raise
            self.info = info
            return info
        if kind in (Kind.BUY, Kind.REISSUE):
            assert call.issuance is not None
            credentials = self.wallet.require_client().finish(call.issuance, body)
            self.wallet.give_back(credentials)
            return len(credentials)
        if kind in (Kind.REGISTER, Kind.RENEW):
            grant = ScidGrant.decode(body)
            assert call.owner_secret is not None
            return ScidRegistration(grant.scid, grant.expires_at, call.owner_secret)
        if kind == Kind.HINTS:
            return Hints.decode(body)
        if kind == Kind.BUNDLE:
            bundle_grant = BundleGrant.decode(body)
            assert call.bundle_key is not None
            bundle = Bundle(bundle_grant.bundle_id, call.bundle_key, bundle_grant.k,
                            bundle_grant.expires_at)
            self.bundles.append(bundle)
            return bundle
        return body


__all__ = [
    "Bundle",
    "Delivered",
    "DropNotice",
    "Incoming",
    "MixerReply",
    "MixerSession",
    "ScidRegistration",
    "Wallet",
]

"""Fuzz targets above the HORNET core: the onion-message mixer (wire protocol, the core's
request handling, the client session), anonymous credentials, and config/directory files.
"""

from __future__ import annotations

import json
import random
from typing import Any, ClassVar, Final

import attrs
from fuzzkit import Target, remove_scratch, scratch_dir, where

from hornet.core import crypto
from hornet.core.blinding import EncryptedData, create_blinded_path
from hornet.core.chdr import TYPE_SETUP
from hornet.core.onion_message import DeliverMessage as OmDeliver
from hornet.core.onion_message import (
    create_message_path,
    create_onion_message,
    process_onion_message,
)
from hornet.core.params import Params
from hornet.credentials.params import (
    CredentialParams,
    IssuerPublicParams,
    IssuerSecretKey,
    sign_issuer_params,
    verify_issuer_params,
)
from hornet.credentials.payments import VoucherPayments
from hornet.credentials.scheme import Client, Credential, CredentialsResponse, Issuer
from hornet.credentials.service import CredentialService
from hornet.credentials.store import SqliteSpentStore
from hornet.directory.model import (
    Directory,
    NodeKeys,
    directory_of,
    load_key_file,
    relay_info,
    write_key_file,
)
from hornet.errors import HornetError
from hornet.mixer.actions import Transmit
from hornet.mixer.config import MixerConfig, parse_config
from hornet.mixer.engine import MixerEngine
from hornet.mixer.entry import circuit_entry, relay_keys
from hornet.mixer.hints import Hints, PeerHint
from hornet.mixer.protocol import (
    MIXER_PAYMENT_TLV,
    MIXER_REQUEST_TLV,
    MIXER_RESPONSE_TLV,
    Kind,
    MixerInfo,
    OnionMessageDrop,
    Payment,
    Prices,
    Request,
    Response,
    ScidGrant,
    Status,
    send_message_hash,
)
from hornet.mixer.ratelimit import Limit
from hornet.mixer.service import load_config_file, load_or_create_keys
from hornet.mixer.session import MAX_PENDING, MixerSession, Wallet
from hornet.mixer.state import ScidStore, SpendLedger
from hornet.node.admission import Limits
from hornet.node.config import RelayConfig, load_json_config

T0: Final = 1_750_000_000.0  # the mixer's "now" (2025-06-15)
SEED: Final = 0x5EED


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311  (deterministic worlds by design)


def _scalar(rng: random.Random) -> bytes:
    return crypto.SecretKey.from_rng(rng).secret_bytes()


# --------------------------------------------------------------------------------------
# The mixer world


class MixerWorld:
    """A mixer core on SQLite files in a scratch directory, with a HORNET entry relay
    (so CIRCUIT requests are served), no rate limits (these targets are about content),
    and one funded client session. Deterministic for a given seed."""

    def __init__(self, seed: int = SEED) -> None:
        self.path = scratch_dir("mixer")
        self.rng = rng = _rng(seed)
        self.now = T0
        unlimited = Limit(1e9, 1e9)
        self.config = MixerConfig(
            credential_params=CredentialParams(issuance_k=4),
            prices=Prices(message=1, scid_register=2, scid_renew=1, hints=0, circuit_open=1),
            scid_lifetime_s=60.0,
            scid_max_ahead_s=240.0,
            queue_messages=4,
            queue_bytes=1 << 20,
            incoming_client=unlimited,
            incoming_peer=unlimited,
        )
        self.node_key, master = crypto.SecretKey.from_rng(rng), rng.randbytes(32)
        self.params = Params()
        self.spent = SqliteSpentStore(
            self.path / "spent.sqlite", synchronous="NORMAL", preallocate_wal=False
        )
        self.payments = VoucherPayments(self.path / "spent.sqlite")
        self.scids = ScidStore(self.path / "scids.sqlite", synchronous="NORMAL")
        self.core = MixerEngine.create(
            self.config,
            self.node_key,
            master,
            ledger=SpendLedger(self.spent),
            payments=self.payments,
            scid_store=self.scids,
            now=self.now,
            entry=circuit_entry(relay_keys(master), self.params),
        )
        self.session = MixerSession.create(
            crypto.SecretKey.from_rng(rng), Wallet(self.core.listing(T0)), rng
        )
        self.transmits: list[bytes] = []  # every message the mixer sent to the session
        assert self.call(self.session.info_request(rng)[1].message) is not None
        for _ in range(2):
            voucher = self.payments.mint(self.config.credential_params.issuance_k, rng)
            _, out = self.session.buy_request(voucher, rng, now=self.now)
            reply = self.call(out.message)
            assert reply is not None and reply.error is None, reply

    @property
    def mixer_id(self) -> bytes:
        return self.node_key.public_key

    def handle(self, message: bytes, peer: bytes | None = None) -> list[bytes]:
        """Feed the core one message; returns what it sent to the session."""
        peer = peer or self.session.node_id
        actions = self.core.handle(peer, message, self.now, self.rng)
        actions += self.core.flush(self.now)
        actions += self.core.poll(self.now)
        return [
            a.message for a in actions if isinstance(a, Transmit) and a.peer == self.session.node_id
        ]

    def call(self, message: bytes) -> Any:
        """A request from the session and its answer, read by the session."""
        for answer in self.handle(message):
            self.transmits.append(answer)
            return self.session.receive(answer)
        return None

    def setup_packet(self, exp_ahead: int = 60) -> bytes:
        """A setup of the right shape for the entry relay: type, r, a coarse EXP and the
        current key epoch's low byte (what ``CircuitEntry.check_setup`` reads)."""
        p = self.params
        exp = int(self.now) + exp_ahead
        exp -= exp % 10
        epoch = p.epoch_of(self.now) & 0xFF if hasattr(p, "epoch_of") else 0
        head = bytes((TYPE_SETUP, p.max_hops)) + exp.to_bytes(4, "big") + bytes((epoch,))
        return head + bytes(11) + self.rng.randbytes(p.setup_packet_len - 18)

    def close(self) -> None:
        self.scids.close()
        self.payments.close()
        self.spent.close()
        remove_scratch(self.path)


# --------------------------------------------------------------------------------------
# Mixer wire protocol


class MixerProtocolTarget(Target):
    """Every decoder of the mixer protocol (requests, responses and their bodies)."""

    name = "mixer_protocol"
    entry_points = (
        "hornet.mixer.protocol.Request.decode",
        "hornet.mixer.protocol.Response.decode",
        "hornet.mixer.protocol.Payment.decode",
        "hornet.mixer.protocol.Prices.decode",
        "hornet.mixer.protocol.MixerInfo.decode",
        "hornet.mixer.protocol.ScidGrant.decode",
        "hornet.mixer.protocol.OnionMessageDrop.decode",
        "hornet.mixer.hints.Hints.decode",
        "hornet.mixer.hints.PeerHint.decode",
    )
    max_len = 2500

    def build(self) -> None:
        world = MixerWorld()
        rng = world.rng
        info = world.core.info(world.now)
        payment = Payment((rng.randbytes(300), rng.randbytes(3)))
        rid = rng.randbytes(16)
        requests = [
            Request(Kind.INFO, rid),
            Request(Kind.BUY, rid, credential_request=rng.randbytes(200)),
            Request(
                Kind.REGISTER, rid, target=world.mixer_id, owner_hash=bytes(32), payment=payment
            ),
            Request(Kind.RENEW, rid, scid=12345, owner_secret=bytes(32)),
            Request(Kind.HINTS, rid),
            Request(Kind.CIRCUIT, rid, setup=world.setup_packet(), payment=payment),
        ]
        hint = PeerHint(world.mixer_id, 0.5, "cln", 10.0, 0.25, 0.1)
        self._seeds = [r.encode() for r in requests] + [
            Response(Kind.INFO, rid, Status.OK, info.encode()).encode(),
            payment.encode(),
            Prices().encode(),
            Prices(circuit_open=3).encode(),
            info.encode(),
            ScidGrant(99, T0 + 60).encode(),
            OnionMessageDrop(True, bytes(32)).encode(),
            Hints(T0, (hint, hint), (hint,)).encode(),
            hint.encode(),
        ]
        world.close()

    def dictionary(self) -> list[bytes]:
        return [b"\x01\x00", b"\x01\x01", b"\x01\x02", b"\x01\x06", b"\xff\xff\xff\xff"]

    def feed_one(self, data: bytes) -> None:
        for entry, decode in zip(
            self.entry_points,
            (
                Request.decode,
                Response.decode,
                Payment.decode,
                Prices.decode,
                MixerInfo.decode,
                ScidGrant.decode,
                OnionMessageDrop.decode,
                Hints.decode,
                PeerHint.decode,
            ),
            strict=True,
        ):
            value = self.call(entry, data, decode, data)
            # (MixerInfo is left out: its u64 milliseconds pass through a float of
            # seconds, so timestamps beyond 2^53 ms do not survive a round trip.)
            checked = ("Request.decode", "Payment.decode", "Prices.decode", "Drop.decode")
            if value is not None and entry.endswith(checked) and value.encode() != data:
                raise self.violation("crash", entry, data, "decode/encode is not the identity")


# --------------------------------------------------------------------------------------
# The mixer core


class MixerCoreTarget(Target):
    """``MixerCore.handle`` (+ ``flush``/``poll``), which never raises. Input: mode ‖ body.

    mode % 3 == 0: body is a whole BOLT 1 message from the network.
    mode % 3 == 1: body is a MIXER_REQUEST_TLV value, sent to the mixer in an otherwise
                   valid onion message (with a reply path when (mode // 3) is odd).
    mode % 3 == 2: body is a MIXER_PAYMENT_TLV value in the mixer's hop of an otherwise
                   valid onion message to a destination (a paid forward).
    Bit 1 of mode // 3 picks the sending peer (the client session or another node).
    The seeds' paid requests carry spends bound to them, and BUY a real issuance request.
    """

    name = "mixer_core"
    world: MixerWorld
    deep = ("paid_messages", "scids_registered", "CircuitRequest", "request_buy", "responses_sent")
    entry_points = ("hornet.mixer.core.MixerCore.handle",)
    max_len = 3000
    reset_every = 5000

    def build(self) -> None:
        previous: MixerWorld | None = getattr(self, "world", None)
        if previous is not None:
            previous.close()
        self.world = world = MixerWorld()
        rng = world.rng
        self.peers = [world.session.node_id, crypto.SecretKey.from_rng(rng).public_key]
        self.to_mixer = create_message_path(_scalar(rng), [world.mixer_id])
        self.reply = world.session.own_reply_path(rng)
        self.dest = crypto.SecretKey.from_rng(rng).public_key
        self.dest_path = create_message_path(_scalar(rng), [self.dest])
        self.e0 = _scalar(rng)  # fixed: the mixer-hop path key is constant, spends bind to it
        self._create = (create_onion_message, create_blinded_path, EncryptedData)
        if self._seeds:
            return
        session = world.session
        client = session.wallet.require_client()
        path_key = crypto.pubkey_from_secret(self.e0)
        spends = tuple(
            client.spend_request(c, message_hash=send_message_hash(path_key), rng=rng)
            for c in session.wallet.take(2)
        )

        def paid(request: Request, count: int) -> Request:
            bound = request.message_hash()
            return attrs.evolve(
                request,
                payment=Payment(
                    tuple(
                        client.spend_request(c, message_hash=bound, rng=rng)
                        for c in session.wallet.take(count)
                    )
                ),
            )

        params = world.config.credential_params
        issuance = client.issuance_request(
            [params.unit_value] * params.issuance_k,
            world.payments.mint(params.issuance_k, rng),
            epoch=params.epoch_at(world.now),
            rng=rng,
        )
        requests = [
            Request(Kind.INFO, rng.randbytes(16)),
            Request(Kind.HINTS, rng.randbytes(16)),
            paid(
                Request(Kind.REGISTER, rng.randbytes(16), target=self.dest, owner_hash=bytes(32)), 2
            ),
            Request(Kind.RENEW, rng.randbytes(16), scid=1, owner_secret=bytes(32)),
            paid(Request(Kind.CIRCUIT, rng.randbytes(16), setup=world.setup_packet()), 1),
            Request(Kind.BUY, rng.randbytes(16), credential_request=issuance.request),
        ]
        whole = [
            session.info_request(rng)[1].message,
            session.hints_request(rng)[1].message,
            session.send_message(self.dest_path, [(77_771, b"x")], rng).message,
            OnionMessageDrop(True, bytes(32)).encode(),
            OnionMessageDrop(False, bytes(32)).encode(),
        ]
        self._seeds = (
            [b"\x00" + m for m in whole]
            + [b"\x01" + r.encode() for r in requests]
            + [b"\x04" + r.encode() for r in requests]
            + [b"\x02" + Payment(spends).encode(), b"\x02" + Payment().encode()]
        )

    def _wrap(self, mode: int, body: bytes) -> bytes | None:
        """The onion message that carries ``body`` (None if it cannot be built)."""
        create_onion_message, create_blinded_path, encrypted_data = self._create
        rng = self.world.rng
        try:
            if mode % 3 == 1:
                return create_onion_message(
                    _scalar(rng),
                    self.to_mixer,
                    payload=[(MIXER_REQUEST_TLV, body)],
                    reply_path=self.reply if (mode // 3) & 1 else None,
                ).message
            item = encrypted_data(
                next_node_id=self.dest,
                next_path_key_override=self.dest_path.first_path_key,
                records=((MIXER_PAYMENT_TLV, body),),
            )
            prefix = create_blinded_path(self.e0, [(self.world.mixer_id, item)])
            return create_onion_message(
                _scalar(rng), prefix.concat(self.dest_path), payload=[(77_771, b"x")]
            ).message
        except HornetError:
            return None  # the body does not fit an onion message: nothing to send

    def canonical(self, data: bytes) -> bytes:
        if not data:
            return data
        kind, flags = data[0] % 3, data[0] // 3
        reply = flags & 1 if kind == 1 else 0
        return bytes((kind, reply, (flags >> 1) & 1)) + data[1:]

    def feed_one(self, data: bytes) -> None:
        if not data:
            return
        mode, body = data[0], data[1:]
        message = body if mode % 3 == 0 else self._wrap(mode, body)
        if message is None:
            self.outcomes["unwrappable"] += 1
            return
        world, entry = self.world, self.entry_points[0]
        peer = self.peers[(mode // 6) & 1]
        self.calls[entry] += 1
        before = dict(world.core.stats)
        try:
            actions = world.core.handle(peer, message, world.now, world.rng)
            actions += world.core.flush(world.now)
            actions += world.core.poll(world.now)
        except Exception as exc:  # the contract: never raises
            raise self.violation("crash", entry, data, where(exc)) from exc
        for key, value in world.core.stats.items():
            if value != before.get(key, 0) and key != "received":
                self.outcomes[key] += 1
        for action in actions:
            self.outcomes[type(action).__name__] += 1

    def check_bounds(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        core, config = self.world.core, self.world.config
        stats = core.statistics()
        self.bound("mixer.peers", stats.peers, config.max_peers, sizes)
        self.bound("mixer.pending", stats.pending, 0, sizes)
        self.bound("mixer.live_scids", stats.live_scids, config.max_scids, sizes)
        for node_id, state in core.peers.items():
            self.bound(
                f"mixer.queue[{node_id.hex()[:8]}]", len(state.queue), config.queue_messages, sizes
            )
        return sizes


# --------------------------------------------------------------------------------------
# The mixer client session


class MixerSessionTarget(Target):
    """``MixerSession.receive``. Input: mode ‖ body.

    mode even: body is a whole message from the network.
    mode odd:  body is a MIXER_RESPONSE_TLV value, delivered in a valid onion message on
               the session's own reply path. The session's pending calls (INFO, HINTS,
               REGISTER, BUY) and wallet are restored before every input, so a body
               whose request id matches one reaches the response parsers every time.
    """

    name = "mixer_session"
    world: MixerWorld
    deep = ("MixerReply",)
    entry_points = ("hornet.mixer.session.MixerSession.receive",)
    max_len = 3000
    reset_every = 20_000

    def build(self) -> None:
        previous: MixerWorld | None = getattr(self, "world", None)
        if previous is not None:
            previous.close()
        self.world = world = MixerWorld()
        session, rng = world.session, world.rng
        self.reply = session.own_reply_path(rng)
        self._create = create_onion_message
        requests = [
            session.info_request(rng),
            session.hints_request(rng),
            session.register_request(rng),
        ]
        voucher = world.payments.mint(world.config.credential_params.issuance_k, rng)
        requests.append(session.buy_request(voucher, rng, now=world.now))
        answers = [a for _, out in requests for a in world.handle(out.message)]
        self.calls_snapshot = dict(session._calls)
        self.wallet_snapshot = list(session.wallet.credentials)
        if self._seeds:
            return
        bodies = []
        for answer in answers:
            action = process_onion_message(session.identity, answer)
            assert isinstance(action, OmDeliver)
            bodies.append(dict(action.payload)[MIXER_RESPONSE_TLV])
        self._seeds = [b"\x00" + a for a in answers + world.transmits] + [
            b"\x01" + b for b in bodies
        ]

    def canonical(self, data: bytes) -> bytes:
        return bytes((data[0] & 1,)) + data[1:] if data else data

    def feed_one(self, data: bytes) -> None:
        if not data:
            return
        session, entry = self.world.session, self.entry_points[0]
        message = data[1:]
        if data[0] & 1:
            try:
                message = self._create(
                    _scalar(self.world.rng), self.reply, payload=[(MIXER_RESPONSE_TLV, data[1:])]
                ).message
            except HornetError:
                self.outcomes["unwrappable"] += 1
                return
            session._calls.clear()
            session._calls.update(self.calls_snapshot)
            session.wallet.credentials[:] = self.wallet_snapshot
        result = self.call(entry, data, session.receive, message)
        self.outcomes[type(result).__name__] += 1
        error = getattr(result, "error", None)
        if error is not None:
            self.outcomes[f"refused:{type(error).__name__}"] += 1

    def check_bounds(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        session = self.world.session
        self.bound("session.calls", len(session._calls), MAX_PENDING, sizes)
        self.bound(
            "session.wallet", len(session.wallet.credentials), len(self.wallet_snapshot) + 8, sizes
        )
        return sizes


# --------------------------------------------------------------------------------------
# Credentials


class CredentialsTarget(Target):
    """Every credential decoder and verifier that reads bytes from the network, and the
    issuer's service on top of them (request ids, spent-serial store, payments)."""

    name = "credentials"
    entry_points = (
        "hornet.credentials.scheme.Issuer.verify_spend",
        "hornet.credentials.scheme.Issuer.verify_reissue",
        "hornet.credentials.scheme.Issuer.verify_issuance",
        "hornet.credentials.scheme.CredentialsResponse.decode",
        "hornet.credentials.scheme.Credential.from_bytes",
        "hornet.credentials.params.CredentialParams.decode",
        "hornet.credentials.params.IssuerPublicParams.decode",
        "hornet.credentials.params.verify_issuer_params",
        "hornet.credentials.scheme.Client.finish",
        "hornet.credentials.service.CredentialService.spend",
        "hornet.credentials.service.CredentialService.reissue",
        "hornet.credentials.service.CredentialService.issue",
    )
    max_len = 6000
    MSG: ClassVar[bytes] = bytes(range(32))
    NOW: ClassVar[float] = 500.0

    def build(self) -> None:
        rng = self.rng = _rng(SEED)
        params = CredentialParams(epoch_length=1000, grace_period=100, range_bits=4, issuance_k=2)
        keys = {0: IssuerSecretKey.generate(rng), 1: IssuerSecretKey.generate(rng)}
        self.issuer = issuer = Issuer.create(params, keys)
        self.client = client = Client(params)
        for epoch in keys:
            client.add_issuer_params(issuer.public_params(epoch))
        self.node = crypto.SecretKey.from_rng(rng)
        path = scratch_dir("credentials")
        payments = VoucherPayments(path / "spent.sqlite")
        self.service = CredentialService(
            issuer, SqliteSpentStore(path / "spent.sqlite", preallocate_wal=False), payments
        )
        voucher = payments.mint(10, rng)
        self.pending = client.issuance_request([1, 1], voucher, epoch=0, rng=rng)
        response = issuer.issue(issuer.verify_issuance(self.pending.request, now=self.NOW), rng)
        a, b = client.finish(self.pending, response)
        other = client.issuance_request([1, 0], payments.mint(1, rng), epoch=0, rng=rng)
        c, _ = client.finish(
            other, issuer.issue(issuer.verify_issuance(other.request, now=self.NOW), rng)
        )
        spend = client.spend_request(c, message_hash=self.MSG, rng=rng)
        reissue = client.reissue_request([a, b], [1, 0], message_hash=self.MSG, rng=rng)
        self._seeds = [
            spend,
            reissue.request,
            self.pending.request,
            response,
            a.to_bytes(),
            params.encode(),
            issuer.public_params(0).encode(),
            sign_issuer_params(params, issuer.public_params(0), self.node),
        ]

    def feed_one(self, data: bytes) -> None:
        ep, issuer, msg, now = self.entry_points, self.issuer, self.MSG, self.NOW
        self.call(ep[0], data, issuer.verify_spend, data, message_hash=msg, now=now)
        self.call(ep[1], data, issuer.verify_reissue, data, message_hash=msg, now=now)
        self.call(ep[2], data, issuer.verify_issuance, data, now=now)
        self.call(ep[3], data, CredentialsResponse.decode, data, 2)
        self.call(ep[4], data, Credential.from_bytes, data)
        self.call(ep[5], data, CredentialParams.decode, data)
        self.call(ep[6], data, IssuerPublicParams.decode, data)
        self.call(ep[7], data, verify_issuer_params, data, self.node.public_key)
        self.call(ep[8], data, self.client.finish, self.pending, data)
        self.call(ep[9], data, self.service.spend, data, message_hash=msg, now=now)
        self.call(ep[10], data, self.service.reissue, data, message_hash=msg, now=now, rng=self.rng)
        self.call(ep[11], data, self.service.issue, data, now=now, rng=self.rng)


# --------------------------------------------------------------------------------------
# Config and directory files


class ConfigTarget(Target):
    """Directory and key files, the mixer's config (JSON and TOML) and key file.

    The input is the file's bytes. It is written to a scratch file for each loader, and,
    when it parses as JSON, also handed as an object to ``Directory.from_json`` and
    ``parse_config``. A ``HornetError`` (``ConfigError``) is the expected refusal.
    """

    name = "config"
    entry_points = (
        "hornet.directory.Directory.load",
        "hornet.directory.Directory.from_json",
        "hornet.directory.load_key_file",
        "hornet.mixer.service.load_config_file[json]",
        "hornet.mixer.service.load_config_file[toml]",
        "hornet.mixer.config.parse_config",
        "hornet.mixer.service.load_or_create_keys",
        "hornet.node.config.RelayConfig.load",
        "hornet.node.admission.Limits.from_mapping",
    )
    max_len = 12_000

    def __init__(self) -> None:
        self.allowed = (HornetError,)  # a bad local file: ConfigError names the field
        self.contract = ()  # everything else is a crash
        super().__init__()

    def build(self) -> None:
        self.dir = scratch_dir("config")
        rng = _rng(SEED)
        keys = [NodeKeys.generate(rng) for _ in range(3)]
        directory = directory_of(
            [relay_info(k, ("127.0.0.1", 9000 + i)) for i, k in enumerate(keys)], Params()
        )
        write_key_file(self.dir / "seed.key", keys[0])
        peer = crypto.SecretKey.from_rng(rng).public_key.hex()
        config = {
            "listen": "127.0.0.1:9736",
            "state_dir": "state",
            "max_peers": 100,
            "prices": {"message": 1, "scid_register": 2, "circuit_open": 5},
            "credentials": {
                "range_bits": 16,
                "issuance_k": 4,
                "epoch_length": 3600,
                "grace_period": 60,
            },
            "scid": {"lifetime_s": 600, "max_ahead_s": 2400.5},
            "limits": {
                "profiles": {"slow": {"rate": 1.5, "burst": 3, "unit": "byte"}},
                "incoming_peer": "slow",
                "client_profile": "hornet",
                "incoming_client": {"rate": 10, "burst": 20, "window": True},
            },
            "backpressure": {"floor": 0.25},
            "hints": {"entries": 4},
            "peers": [{"node_id": peer, "address": "10.0.0.1:9735", "profile": "cln"}],
            "channels": [{"scid": "800000x12x1", "node_id": peer}, {"scid": 7, "node_id": peer}],
            "relay": {"listen": "127.0.0.1:9737", "directory": "dir.json"},
        }
        toml = (
            'listen = "127.0.0.1:9736"\nmax_peers = 100\n[prices]\nmessage = 1\n'
            "circuit_open = 5\n[credentials]\nrange_bits = 16\n[scid]\nlifetime_s = 600.0\n"
            '[[peers]]\nnode_id = "' + peer + '"\naddress = "10.0.0.1:9735"\n'
            '[[channels]]\nscid = "800000x12x1"\nnode_id = "' + peer + '"\n'
        )
        relay_config = {
            "key_file": "node.key",
            "directory": "directory.json",
            "listen": "127.0.0.1:7000",
            "loss": 0.0,
            "link": True,
            "data_rate": 1000.0,
            "setup_burst": 10,
            "puzzle_base": 4,
            "puzzle_max": 12,
            "queue": 64,
        }
        mixer_keys = {
            "type": "hornet-mixer-keys",
            "node_secret": "11" * 32,
            "master_secret": "22" * 32,
            "node_id": peer,
        }
        self._seeds = [
            json.dumps(directory.to_json()).encode(),
            (self.dir / "seed.key").read_bytes(),
            json.dumps(config).encode(),
            toml.encode(),
            json.dumps(mixer_keys).encode(),
            json.dumps(relay_config).encode(),
        ]

    def dictionary(self) -> list[bytes]:
        return [
            b'"',
            b"{",
            b"}",
            b"[",
            b"]",
            b":",
            b",",
            b"null",
            b"true",
            b"1e999",
            b"-1",
            b"9" * 40,
            b"9" * 4400,
            b"[" * 2000,
            b'{"a":' * 1500,
            b"\\u0000",
            b'"relays"',
            b'"params"',
            b'"max_hops"',
            b'"node_id"',
            b'"public_key"',
            b'"address"',
            b'"secret"',
            b"\xff\xfe",
            b"=",
            b"[[peers]]",
            b"nan",
            b"inf",
        ]

    def feed_one(self, data: bytes) -> None:
        ep = self.entry_points
        as_json, as_toml = self.dir / "input.json", self.dir / "input.toml"
        as_json.write_bytes(data)
        as_toml.write_bytes(data)
        as_json.chmod(0o600)  # key loaders refuse files others may read
        self.call(ep[0], data, Directory.load, as_json)
        self.call(ep[2], data, load_key_file, as_json)
        self.call(ep[3], data, load_config_file, as_json)
        self.call(ep[4], data, load_config_file, as_toml)
        self.call(ep[6], data, load_or_create_keys, as_json)
        self.call(ep[7], data, RelayConfig.load, str(as_json))
        try:
            relay_config: Any = load_json_config(as_json)
        except HornetError:
            relay_config = None
        if relay_config is not None:
            self.call(ep[8], data, Limits.from_mapping, relay_config)
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            return
        self.call(ep[1], data, Directory.from_json, document)
        self.call(ep[5], data, parse_config, document)

    def structured(self, rng: random.Random) -> bytes | None:
        """A JSON-aware mutant: one value of a seed document replaced or dropped."""
        text = rng.choice(self._seeds)
        try:
            document = json.loads(text)
        except ValueError:
            return None
        replacements: list[Any] = [
            None,
            True,
            0,
            -1,
            1.5,
            2**70,
            10**400 if rng.random() < 0.1 else 7,
            float("nan"),
            "",
            "x" * 70,
            "zz",
            [],
            {},
            [1, "a"],
            {"k": {"k": []}},
            "127.0.0.1:0",
            "::1:80",
            "ff" * 33,
        ]

        def mutate(node: Any, depth: int) -> Any:
            if isinstance(node, dict) and node and rng.random() < 0.8:
                key = rng.choice(list(node))
                if rng.random() < 0.2:
                    del node[key]
                elif rng.random() < 0.1:
                    node["unknown_" + str(rng.randrange(9))] = rng.choice(replacements)
                else:
                    node[key] = mutate(node[key], depth + 1)
                return node
            if isinstance(node, list) and node and rng.random() < 0.8:
                i = rng.randrange(len(node))
                node[i] = mutate(node[i], depth + 1)
                return node
            return rng.choice(replacements)

        return json.dumps(mutate(document, 0)).encode()

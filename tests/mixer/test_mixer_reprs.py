"""No secret reaches a ``repr`` in hornet.credentials or hornet.mixer (STYLE.md).

The test runs a mixer and a client through INFO, BUY, REGISTER, a spend, a REISSUE and
requests still in flight, then walks every object reachable from them (attrs fields,
instance attributes, containers) and calls ``repr`` on each one defined in those two
packages. No secret may appear in any of them, whole or as any 8-byte window, in hex,
as escaped bytes or, for scalars, in decimal. A second test makes sure that the walk
reached every class of the two packages that has a ``repr`` of its own.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from mixer_kit import T0, Kit, make_config, make_kit

import hornet.credentials
import hornet.mixer
from hornet.core import crypto
from hornet.core.params import Params
from hornet.credentials.group import GroupElement, generators
from hornet.credentials.params import verify_issuer_params
from hornet.credentials.payments import Invoice
from hornet.credentials.proofs import Equation, term
from hornet.credentials.scheme import (
    CredentialsResponse,
    IssuanceRequest,
    ReissueRequest,
    SpendRequest,
)
from hornet.credentials.transcript import NonceSource, Transcript
from hornet.errors import DoubleSpendError
from hornet.mixer.actions import (
    CommitRefused,
    CommitRequest,
    CommitSpends,
    ExpireScids,
    RedeemCredentials,
    RequestCommitted,
    ScidsExpired,
    ScidWrite,
    SpendBatch,
    SpendsCommitted,
)
from hornet.mixer.config import PeerConfig
from hornet.mixer.core import peel_message
from hornet.mixer.keys import KeyedRng, derive_issuer_key, derive_relay_secrets, derive_scid_key
from hornet.mixer.metrics import MixerMetrics
from hornet.mixer.protocol import MIXER_REQUEST_TLV, Kind, Prices, Request, Response, Status
from hornet.mixer.service import MixerServiceStatistics, open_mixer
from hornet.mixer.session import (
    Delivered,
    DropNotice,
    MixerReply,
    MixerSession,
    ScidRegistration,
)

PACKAGES = (hornet.credentials, hornet.mixer)
WINDOW = 8  # bytes: a secret may not appear even in part


def _modules() -> list[Any]:
    names = []
    for package in PACKAGES:
        names.append(package.__name__)
        names += [m.name for m in pkgutil.iter_modules(package.__path__, package.__name__ + ".")]
    return [importlib.import_module(name) for name in names]


def _ours(obj: object) -> bool:
    module = type(obj).__module__
    return any(module == p.__name__ or module.startswith(p.__name__ + ".") for p in PACKAGES)


def _children(obj: object) -> Iterator[object]:
    if isinstance(obj, dict):
        yield from obj.keys()
        yield from obj.values()
    elif isinstance(obj, list | tuple | set | frozenset | deque):
        yield from obj
    elif attrs.has(type(obj)):
        for field in attrs.fields(type(obj)):
            yield getattr(obj, field.name, None)
    elif hasattr(obj, "__dict__") and not inspect.isroutine(obj) and not isinstance(obj, type):
        yield from vars(obj).values()
    for slot in getattr(type(obj), "__slots__", ()):
        yield getattr(obj, slot, None)


def _reachable(roots: Iterable[object]) -> list[object]:
    seen: set[int] = set()
    found: list[object] = []
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(obj))
        module = type(obj).__module__
        if not (module.startswith("hornet") or module in ("builtins", "collections")
                or _is_test_kit(obj)):
            continue  # sqlite connections, trio internals, …
        if _ours(obj):
            found.append(obj)
        stack.extend(_children(obj))
    return found


def _is_test_kit(obj: object) -> bool:
    return isinstance(obj, Kit)


def _forms(secret: bytes | int | GroupElement) -> set[str]:
    """How a secret could show up in a repr: hex, escaped bytes, decimal, in windows."""
    forms: set[str] = set()
    if isinstance(secret, GroupElement):
        raw = secret.encode()
    elif isinstance(secret, int):
        raw = secret.to_bytes(32, "big")
        forms |= {str(secret), format(secret, "x")}
    else:
        raw = secret
    for i in range(len(raw) - WINDOW + 1):
        chunk = raw[i:i + WINDOW]
        forms |= {chunk.hex(), repr(chunk)[2:-1]}
    return forms


@attrs.define
class Flow:
    kit: Kit
    roots: list[object] = attrs.Factory(list)
    secrets: dict[str, bytes | int | GroupElement] = attrs.Factory(dict)

    def secret(self, name: str, value: Any) -> Any:
        self.secrets[name] = value
        return value


@pytest.fixture
def flow(tmp_path: Path) -> Iterator[Flow]:
    flow, closers = _run_flow(tmp_path)
    yield flow
    for close in closers:
        close()


def _run_flow(tmp_path: Path) -> tuple[Flow, list[Callable[[], None]]]:
    kit = make_kit(tmp_path / "kit", config=make_config(
        prices=Prices(message=1, scid_register=2, scid_renew=1, hints=1)))
    flow = Flow(kit)
    rng = kit.rng
    flow.secret("master secret", kit.master)
    flow.secret("node key", kit.node_key.secret_bytes())
    flow.secret("SCID key", derive_scid_key(kit.master))
    relay_key, relay_sv = derive_relay_secrets(kit.master)
    flow.secret("relay key", relay_key.secret_bytes())
    flow.secret("relay SV", relay_sv)
    epoch = kit.config.credential_params.epoch_at(kit.now)
    issuer_key = derive_issuer_key(kit.master, epoch)
    for name, scalar in zip(("w", "w'", "x0", "x1", "ya"), issuer_key.scalars(), strict=True):
        flow.secret(f"issuer {name}", scalar)

    session = kit.funded_session()
    flow.secret("identity", session.identity.secret_bytes())
    flow.secret("path id", session.path_id)
    registration = kit.call(session, session.register_request(rng)).result
    assert isinstance(registration, ScidRegistration)
    flow.secret("owner secret", registration.owner_secret)
    client = session.wallet.client
    for i, credential in enumerate(session.wallet.credentials[:4]):
        flow.secret(f"credential {i} r", credential.r)
        flow.secret(f"credential {i} t", credential.t)
        flow.secret(f"credential {i} V", credential.V)
        flow.secret(f"credential {i} T", credential.T)

    # A BUY in flight: its voucher, its blindings, the request the mixer decodes.
    voucher = flow.secret("voucher", kit.payments.mint(8, rng))
    _, buy = session.buy_request(voucher, rng)
    pending = next(c.issuance for c in session._calls.values() if c.issuance is not None)
    for i, blinding in enumerate(pending.blindings):
        flow.secret(f"blinding {i}", blinding)
    peeled = peel_message(kit.node_key, buy.message)
    request = Request.decode(dict(peeled.tlv.records)[MIXER_REQUEST_TLV])
    params = kit.config.credential_params
    issuance = IssuanceRequest.decode(pending.request, params)
    ticket = kit.core.issuer.verify_issuance(pending.request, now=kit.now)
    issued = kit.core.issuer.issue(ticket, rng)
    response = CredentialsResponse.decode(issued, len(pending.requested))
    for i, (t, v) in enumerate(response.macs):
        flow.secret(f"MAC {i} t", t)
        flow.secret(f"MAC {i} V", v)
    fresh = client.finish(pending, issued)

    # A RENEW in flight (owner secret), a spend, a REISSUE.
    session.renew_request(registration, rng)
    spend_bytes = client.spend_request(fresh[0], message_hash=bytes(32), rng=rng)
    spend = SpendRequest.decode(spend_bytes, params)
    verified = kit.core.issuer.verify_spend(spend_bytes, message_hash=bytes(32), now=kit.now)
    reissue = client.reissue_request(fresh[1:3], [1, 1], rng=rng)
    reissue_request = ReissueRequest.decode(reissue.request, params)
    g = generators()
    equation = Equation(fresh[3].V, (term(0, g.Gw), term(1, fresh[3].U, fresh[3].t)))
    nonces = NonceSource(Transcript(b"test"), [fresh[3].r], rng)

    other = make_kit(tmp_path / "other", seed=9)
    state = open_mixer(make_config(), tmp_path / "state", now=T0, relay_params=Params())
    flow.secret("state master secret", state.master_secret)
    flow.secret("state node key", state.core.node_key.secret_bytes())
    invoice_id = flow.secret("invoice payment id", rng.randbytes(32))
    info = kit.core.info(kit.now)

    # The machine's storage work: a BUY left in flight (its seed), executed but not fed
    # back, and one record of every other action and result.
    _, buy_again = session.buy_request(flow.secret("voucher 2", kit.payments.mint(8, rng)), rng)
    (redeem,) = kit.core.machine.handle(session.node_id, buy_again.message, kit.now, rng)
    assert isinstance(redeem, RedeemCredentials)
    flow.secret("credential seed", redeem.seed)
    storage_records = [
        redeem, kit.core.storage.execute(redeem),
        CommitSpends(1, (SpendBatch(verified.epoch, (verified.serial,)),)),
        SpendsCommitted(1, (True,)),
        CommitRequest(2, verified.epoch, (verified.serial,), bytes(32), b"response",
                      ScidWrite(insert=kit.core.book.registrations()[0])),
        RequestCommitted(2, None), ExpireScids(3, (1,), kit.now, None), ScidsExpired(3),
        CommitRefused(4, DoubleSpendError("spent")),
    ]
    metrics = MixerMetrics(kit.mixer_id)
    metrics.commit_latency("CommitSpends", 0.001)
    metrics.observe(kit.core.statistics())
    flow.roots += [
        *storage_records, metrics,
        MixerServiceStatistics(kit.core.statistics(), {"dropped_inbound_full": 1}, 0, 0),
        kit, session, registration, pending, peeled, request, issuance, ticket, response,
        fresh, spend, verified, reissue, reissue_request, equation, nonces, state, other,
        Invoice(invoice_id, "lnbc1...", 8, "00" * 32), KeyedRng(kit.master, b"label"),
        issuer_key, info, verify_issuer_params(info.signed_params[0], kit.mixer_id),
        Response(Kind.BUY, request.request_id, Status.OK, issued),
        MixerReply(request.request_id, Kind.INFO, info),
        Delivered(((77, b"x"),), None), DropNotice(True, bytes(32)),
        kit.handle(session.node_id, buy.message),
        MixerSession.create(crypto.SecretKey.from_rng(random.Random(1)), session.wallet, rng),
        kit.core.statistics(), PeerConfig(relay_key.public_key, "lnd"),
    ]
    return flow, [kit.close, other.close, state.close]


def test_no_repr_in_credentials_or_mixer_shows_a_secret(flow: Flow) -> None:
    forms = {name: _forms(value) for name, value in flow.secrets.items()}
    objects = _reachable(flow.roots)
    leaks = []
    for obj in objects:
        text = repr(obj)
        for name, variants in forms.items():
            if any(v in text for v in variants):
                leaks.append(f"{type(obj).__qualname__} shows the {name}")
    checked = {type(obj).__qualname__ for obj in objects}
    print(f"\n{len(objects)} objects of {len(checked)} classes, {len(flow.secrets)} secrets")
    assert sorted(set(leaks)) == []
    assert {"PendingRequest", "IssuanceRequest", "Wallet", "MixerSession"} <= checked


#: Classes with a repr of their own that the flow does not reach, and why that is safe.
NOT_REACHED = {
    "ClnPayments": "custom repr: unit price only",
    "PostgresSpentStore": "custom repr: no DSN, no data",
    "SetupGate": "custom repr: address only",
    "EntryRelay": "custom repr: node id and address only",
    "EntryStatistics": "counters only",
    "MixerClientStatistics": "counters only",
    "TransportStatistics": "counters only",
    "LoggedMessage": "sender, receiver, message length",
    "Seen": "sender, next hop, size, flag",
    "Received": "sender and a Deliver (core: path_id hidden there)",
    "Hints": "public utilisation figures",
    "PeerHint": "public utilisation figures",
    "CircuitRequest": "setup packet shown as its length",
    "ScidGrant": "SCID and expiry, both sent in the clear",
    "OnionMessageDrop": "flag and a hash",
    "_Refused": "an exception carrying a status",
    "Verified": "epoch, serials (public), value",
    "Awaiting": "a storage action (reached above) and a closure",
    "_PendingSend": "peers, an onion message, serials (public)",
    "_Queued": "an onion message and its origin",
    "BitProverState": "attrs repr disabled: object's default repr",
    "PrepaidBundle": "bundle key hidden (repr=False); k, expiry, used bitmap",
    "Bundle": "bundle key hidden (repr=False); id, k, expiry, next sequence number",
    "BundleGrant": "bundle id, k and expiry, as the mixer sends them",
    "BundleTicket": "MAC hidden (repr=False); bundle id and sequence number",
    "Receipt": "receipt id and status, as sent along the client's reply path",
    "ReceiptRequest": "receipt id and a blinded path",
    "PeerConnection": "BOLT 8 transport and its keys hidden (repr=False); features, timers",
    "PeerTimers": "timer settings",
    "PeerReady": "a node id (authenticated, public) and its features",
    "PeerMessage": "the message shown as its length",
    "PeerClosed": "a reason",
}


def test_the_walk_reaches_every_class_with_a_repr(flow: Flow) -> None:
    reached = {type(obj) for obj in _reachable(flow.roots)}
    missing = []
    for module in _modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or issubclass(cls, BaseException | int):
                continue
            own_repr = cls.__repr__ is not object.__repr__
            if own_repr and cls not in reached and cls.__qualname__ not in NOT_REACHED:
                missing.append(cls.__qualname__)
            if cls in reached and cls.__qualname__ in NOT_REACHED:
                missing.append(f"{cls.__qualname__} (reached: drop it from NOT_REACHED)")
    assert missing == [], ", ".join(missing)


@pytest.mark.parametrize("secret", [bytes(range(32)), 2**200 + 12345])
def test_the_secret_forms_catch_a_partial_leak(secret: bytes | int) -> None:
    raw = secret if isinstance(secret, bytes) else secret.to_bytes(32, "big")
    leaky = f"Thing(id={raw[5:17].hex()})"
    assert any(form in leaky for form in _forms(secret))

"""Issuer keys are committed in the directory and wallets hold the mixer to them
(docs/spec-mixer.md §3.5, SPEC.md §9.2).

The attack: a mixer gives each buyer an issuer key of its own. A credential verifies
only under the key that issued it, so the mixer tries every per-buyer key on each later
anonymous spend and names the buyer. Wallets that take their keys from the directory,
which every client reads alike, refuse the per-buyer keys before they pay anything.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
from mixer_kit import T0, Kit, make_config, make_kit

from hornet.core import crypto
from hornet.core.onion_message import create_onion_message
from hornet.credentials.params import CredentialParams
from hornet.directory.model import Directory, MixerListing, mixer_listing_from_json
from hornet.errors import (
    ConfigError,
    InvalidProofError,
    IssuerKeyMismatchError,
    LocalProtocolError,
    RemoteProtocolError,
)
from hornet.mixer.client import MixerClient
from hornet.mixer.core import peel_message
from hornet.mixer.protocol import (
    MIXER_REQUEST_TLV,
    MIXER_RESPONSE_TLV,
    Kind,
    Prices,
    Request,
    Response,
    Status,
)
from hornet.mixer.service import MixerService, load_config_file, open_mixer
from hornet.mixer.session import MixerReply, MixerSession, Wallet
from hornet.mixer.transport import MemoryHub

BUYERS = 16
PRICES = Prices(message=1, scid_register=2, scid_renew=1, hints=1)


def _tagging_mixer(tmp_path: Path) -> tuple[Kit, list[Kit], Directory]:
    """One node key; the published face (its listing goes into the directory) and one
    per-buyer issuer: the same mixer with another master secret, so another issuer key
    for every epoch, signed by the same node key."""
    rng = random.Random(15)
    node_key = crypto.SecretKey.from_rng(rng)
    config = make_config(prices=PRICES)
    (tmp_path / "public").mkdir()
    public = Kit(tmp_path / "public", config, rng, node_key, rng.randbytes(32))
    per_buyer = []
    for i in range(BUYERS):
        (tmp_path / f"buyer{i}").mkdir()
        per_buyer.append(Kit(tmp_path / f"buyer{i}", config, rng, node_key, rng.randbytes(32)))
    directory = Directory((), mixers=(public.core.listing(T0),))
    return public, per_buyer, directory


def _answer(mixer: Kit, session: MixerSession, message: bytes, kind: Kind,
            body: bytes) -> MixerReply:
    """The mixer answers the request in ``message`` with ``body`` of its own making."""
    peeled = peel_message(mixer.core.node_key, message)
    request = Request.decode(dict(peeled.tlv.records)[MIXER_REQUEST_TLV])
    response = Response(kind, request.request_id, Status.OK, body)
    assert peeled.tlv.reply_path is not None
    reply = create_onion_message(crypto.SecretKey.from_rng(mixer.rng).secret_bytes(),
                                 peeled.tlv.reply_path,
                                 payload=[(MIXER_RESPONSE_TLV, response.encode())])
    answer = session.receive(reply.message)
    assert isinstance(answer, MixerReply)
    return answer


def _info_without_keys(public: Kit, session: MixerSession) -> None:
    """At spend time the mixer cannot know who is asking: it answers INFO with prices
    and no issuer parameters, so a wallet has nothing to compare and keeps its own."""
    _, outgoing = session.info_request(public.rng)
    info = attrs.evolve(public.core.info(public.now), signed_params=())
    assert _answer(public, session, outgoing.message, Kind.INFO, info.encode()).error is None


def _attribute(public: Kit, per_buyer: list[Kit], message: bytes) -> set[int]:
    """The mixer's side: the buyers under whose issuer key the request's spends verify."""
    peeled = peel_message(public.core.node_key, message)
    request = Request.decode(dict(peeled.tlv.records)[MIXER_REQUEST_TLV])
    suspects = set()
    for spend in request.payment.spends:
        for i, kit in enumerate(per_buyer):
            try:
                kit.core.issuer.verify_spend(spend, message_hash=request.message_hash(),
                                             now=kit.now)
            except RemoteProtocolError:
                continue
            suspects.add(i)
    return suspects


def test_a_mixer_giving_each_buyer_its_own_issuer_key_attributes_no_spend(
        tmp_path: Path) -> None:
    public, per_buyer, directory = _tagging_mixer(tmp_path)
    wallets = [Wallet.from_directory(directory, public.mixer_id) for _ in range(BUYERS)]
    refused = 0
    for kit, wallet in zip(per_buyer, wallets, strict=True):
        buyer = kit.session(wallet=wallet)
        info = kit.call(buyer, buyer.info_request(kit.rng))
        if isinstance(info.error, IssuerKeyMismatchError):
            refused += 1
            with pytest.raises(LocalProtocolError):  # no INFO: nothing can be bought
                buyer.buy_request(kit.payments.mint(8, kit.rng), kit.rng, now=kit.now)
            continue
        assert info.error is None
        voucher = kit.payments.mint(8, kit.rng)
        assert kit.call(buyer, buyer.buy_request(voucher, kit.rng, now=kit.now)).error is None

    # Later, each wallet spends one credential under a fresh identity.
    attributed = spends = 0
    for i, wallet in enumerate(wallets):
        spender = public.session(wallet=wallet)
        _info_without_keys(public, spender)
        if wallet.balance == 0:
            continue
        _, outgoing = spender.hints_request(public.rng)
        spends += 1
        attributed += _attribute(public, per_buyer, outgoing.message) == {i}
    print(f"\nper-buyer issuer keys: {refused}/{BUYERS} refused at INFO, "
          f"{attributed}/{spends} anonymous spends attributed")
    assert refused == BUYERS
    assert all(wallet.balance == 0 for wallet in wallets)
    assert all(kit.core.statistics()["request_buy"] == 0 for kit in per_buyer)
    assert attributed == 0


def test_an_honest_mixer_sells_and_its_spends_verify_under_the_one_listed_key(
        tmp_path: Path) -> None:
    public, _, directory = _tagging_mixer(tmp_path)
    wallet = Wallet.from_directory(directory, public.mixer_id)
    buyer = public.session(wallet=wallet)
    assert public.call(buyer, buyer.info_request(public.rng)).error is None
    voucher = public.payments.mint(8, public.rng)
    assert public.call(buyer, buyer.buy_request(voucher, public.rng, now=public.now)).error is None
    spender = public.session(wallet=wallet)
    assert public.call(spender, spender.info_request(public.rng)).error is None
    reply = public.call(spender, spender.hints_request(public.rng))
    assert reply.error is None and wallet.balance == 7
    assert wallet.fingerprints.keys() == {public.config.credential_params.epoch_at(T0)}


def test_a_mixer_showing_the_listed_key_but_issuing_under_another_gets_nothing_accepted(
        tmp_path: Path) -> None:
    public, per_buyer, directory = _tagging_mixer(tmp_path)
    wallet = Wallet.from_directory(directory, public.mixer_id)
    buyer = public.session(wallet=wallet)
    assert public.call(buyer, buyer.info_request(public.rng)).error is None
    voucher = public.payments.mint(8, public.rng)
    _, outgoing = buyer.buy_request(voucher, public.rng)
    pending = next(c.issuance for c in buyer._calls.values() if c.issuance is not None)
    request = Request.decode(dict(peel_message(public.core.node_key, outgoing.message)
                                  .tlv.records)[MIXER_REQUEST_TLV])
    ticket = public.core.issuer.verify_issuance(request.credential_request, now=public.now)
    tagged = per_buyer[0].core.issuer.issue(ticket, public.rng)  # MACs under a per-buyer key
    reply = _answer(public, buyer, outgoing.message, Kind.BUY, tagged)
    assert isinstance(reply.error, InvalidProofError)
    assert wallet.balance == 0
    honest = public.core.issuer.issue(ticket, public.rng)  # control: the listed key's MACs
    assert len(wallet.client.finish(pending, honest)) == 8


def test_the_wallet_refuses_an_epoch_the_directory_does_not_list(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    epoch = kit.config.credential_params.epoch_at(kit.now)
    listing = kit.core.listing(kit.now)
    stale = attrs.evolve(listing, issuer_keys=tuple(
        k for k in listing.issuer_keys if k.epoch != epoch))
    session = kit.session(wallet=Wallet(stale))
    reply = kit.call(session, session.info_request(kit.rng))
    assert isinstance(reply.error, IssuerKeyMismatchError)
    assert session.info is None and session.wallet.fingerprints == {}


def test_the_wallet_refuses_credential_parameters_other_than_the_listed_ones(
        tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    listing = attrs.evolve(kit.core.listing(kit.now),
                           credential_params=CredentialParams(issuance_k=9))
    session = kit.session(wallet=Wallet(listing))
    reply = kit.call(session, session.info_request(kit.rng))
    assert isinstance(reply.error, IssuerKeyMismatchError)


def test_a_key_change_after_a_good_info_stops_paid_requests(tmp_path: Path) -> None:
    public, per_buyer, directory = _tagging_mixer(tmp_path)
    session = public.session(wallet=Wallet.from_directory(directory, public.mixer_id))
    assert public.call(session, session.info_request(public.rng)).error is None
    voucher = public.payments.mint(8, public.rng)
    assert public.call(session, session.buy_request(voucher, public.rng)).error is None
    tagger = per_buyer[0]  # the same node, now showing a per-buyer key
    reply = tagger.call(session, session.info_request(tagger.rng))
    assert isinstance(reply.error, IssuerKeyMismatchError)
    with pytest.raises(LocalProtocolError):
        session.hints_request(public.rng)
    assert session.wallet.balance == 8
    assert public.call(session, session.info_request(public.rng)).error is None
    other = make_kit(tmp_path / "other", seed=8)  # another node's signature
    with pytest.raises(RemoteProtocolError):
        session.wallet.learn(attrs.evolve(other.core.info(T0), node_id=public.mixer_id))


def test_a_newer_listing_adds_epochs_but_cannot_change_a_listed_key(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    length = kit.config.credential_params.epoch_length
    wallet = Wallet(kit.core.listing(kit.now))
    later = kit.core.listing(kit.now + length, epochs=3)
    wallet.commit(later)
    assert wallet.listing == later
    other = make_kit(tmp_path / "other", seed=8)
    forged = attrs.evolve(other.core.listing(kit.now + length), node_id=kit.mixer_id)
    with pytest.raises(IssuerKeyMismatchError):
        wallet.commit(forged)
    with pytest.raises(LocalProtocolError):
        wallet.commit(other.core.listing(kit.now))


async def test_the_client_raises_the_typed_error_instead_of_waiting(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    _, per_buyer, directory = _tagging_mixer(tmp_path)
    hub = MemoryHub()
    tagger = per_buyer[3]
    service = MixerService(tagger.core, hub.attach(tagger.mixer_id),
                           clock=lambda: T0 + trio.current_time(), rng=tagger.rng,
                           storage_threads=False)  # autojump clock
    async with trio.open_nursery() as nursery:
        await nursery.start(service.serve)
        key = crypto.SecretKey.from_rng(tagger.rng)
        client = MixerClient.create(hub.attach(key.public_key), key,
                                    Wallet.from_directory(directory, tagger.mixer_id),
                                    rng=tagger.rng)
        await nursery.start(client.run)
        with trio.fail_after(5), pytest.raises(IssuerKeyMismatchError):
            await client.get_info()
        with pytest.raises(LocalProtocolError):
            await client.buy(tagger.payments.mint(8, tagger.rng))
        nursery.cancel_scope.cancel()
    assert tagger.core.statistics()["request_buy"] == 0


# --------------------------------------------------------------------------------------
# The listing in the directory, and `hornet mixer-entry`


def test_the_listing_round_trips_through_the_directory_file(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    listing = kit.core.listing(kit.now, epochs=3)
    path = tmp_path / "directory.json"
    Directory((), mixers=(listing,)).write(path)
    loaded = Directory.load(path)
    assert loaded.mixer(kit.mixer_id) == listing
    assert len(listing.issuer_keys) == 3
    assert "mixers" not in Directory(()).to_json()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("node_id", "02" * 16, "node_id"),
    ("node_id", "05" + "11" * 32, "node_id: not a valid secp256k1 point"),
    ("credential_params", "00" * 35, "credential_params"),
    ("issuer_keys", {"x1": "00" * 66}, "is not an epoch number"),
    ("issuer_keys", {"7": "02" * 33}, "issuer_keys.7"),
    ("issuer_keys", {"7": "ab"}, "issuer_keys.7: expected 66 bytes"),
    ("issuer_keys", [], "issuer_keys: expected an object"),
])
def test_a_bad_listing_is_a_config_error_naming_the_field(
        tmp_path: Path, field: str, value: object, message: str) -> None:
    entry = make_kit(tmp_path).core.listing(T0).to_json()
    entry[field] = value
    data = {"hornet_directory": 1, "relays": [], "mixers": [entry]}
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        Directory.from_json(data, where="dir.json")
    with pytest.raises(ConfigError, match="mixers"):
        Directory.from_json({**data, "mixers": [entry, entry]}, where="dir.json")


def test_mixer_entry_prints_the_keys_the_running_mixer_shows(tmp_path: Path) -> None:
    config = tmp_path / "mixer.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    out = subprocess.run([sys.executable, "-m", "hornet.cli", "mixer-entry", "--config",
                          str(config), "--epochs", "3"],
                         capture_output=True, text=True, check=True)
    listing = mixer_listing_from_json(json.loads(out.stdout))
    assert isinstance(listing, MixerListing) and len(listing.issuer_keys) >= 3
    now = time.time()
    state = open_mixer(load_config_file(config), tmp_path / "state", now=now)
    try:
        assert listing.node_id == state.core.node_key.public_key
        info = state.core.info(now)
        assert info.signed_params
        wallet = Wallet(listing)
        wallet.learn(info)  # the running mixer shows exactly the listed keys
        assert set(wallet.fingerprints) == set(
            state.core.config.credential_params.presentable_epochs(now))
    finally:
        state.close()
    bad = subprocess.run([sys.executable, "-m", "hornet.cli", "mixer-entry", "--config",
                          str(tmp_path / "missing.toml")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1

"""The sans-IO mixer core: payments, SCIDs, limits, backpressure, hints, restarts."""

from __future__ import annotations

import random
from pathlib import Path

import attrs
import pytest
from mixer_kit import Kit, destination, make_config, make_kit

from hornet.core import crypto
from hornet.core.blinding import BlindedPath
from hornet.core.onion_message import (
    DeliverMessage,
    create_message_path,
    create_onion_message,
    process_onion_message,
)
from hornet.errors import LocalProtocolError
from hornet.mixer.actions import Transmit
from hornet.mixer.config import PeerConfig
from hornet.mixer.hints import Direction, Hints
from hornet.mixer.protocol import OnionMessageDrop, Prices, Status
from hornet.mixer.ratelimit import Limit
from hornet.mixer.riders import Receipt, ReceiptStatus
from hornet.mixer.session import Delivered, MixerSession, ScidRegistration

APP_TLV = 77_771


def _send(kit: Kit, session: MixerSession, path: object, body: bytes = b"hi") -> list:  # type: ignore[type-arg]
    outgoing = session.send_message(path, [(APP_TLV, body)], kit.rng)  # type: ignore[arg-type]
    return kit.handle(session.node_id, outgoing.message)


def _with_prices(session: MixerSession, **prices: int) -> None:
    """Make the client believe other prices than the mixer charges."""
    assert session.info is not None
    session.info = attrs.evolve(session.info, prices=attrs.evolve(session.info.prices, **prices))


def _register(kit: Kit, session: MixerSession) -> ScidRegistration:
    reply = kit.call(session, session.register_request(kit.rng))
    assert reply.error is None, reply.error
    assert isinstance(reply.result, ScidRegistration)
    return reply.result


def _reply(kit: Kit, sender: crypto.SecretKey, session: MixerSession,
           registration: ScidRegistration, body: bytes = b"ack") -> list:  # type: ignore[type-arg]
    path = session.reply_path(registration, kit.rng)
    outgoing = create_onion_message(crypto.SecretKey.from_rng(kit.rng).secret_bytes(), path,
                                    payload=[(APP_TLV, body)])
    return kit.handle(sender.public_key, outgoing.message)


# -- paid forwarding --------------------------------------------------------------------


def test_paid_message_reaches_its_destination_and_records_the_spend(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    dest_key, dest_path = destination(kit.rng)
    session = kit.funded_session()
    out = _send(kit, session, dest_path, b"payload")
    assert [t.peer for t in out] == [dest_key.public_key]
    delivered = process_onion_message(dest_key, out[0].message)
    assert dict(delivered.payload)[APP_TLV] == b"payload"  # type: ignore[union-attr]
    assert kit.core.statistics()["paid_messages"] == 1
    assert len(session.wallet) == 7


def test_a_replayed_paid_message_is_forwarded_once(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    _, dest_path = destination(kit.rng)
    session = kit.funded_session()
    outgoing = session.send_message(dest_path, [(APP_TLV, b"x")], kit.rng)
    assert len(kit.handle(session.node_id, outgoing.message)) == 1
    assert kit.handle(session.node_id, outgoing.message) == []
    # within one group-commit batch too
    outgoing = session.send_message(dest_path, [(APP_TLV, b"y")], kit.rng)
    kit.handle(session.node_id, outgoing.message, flush=False)
    kit.handle(session.node_id, outgoing.message, flush=False)
    assert len(kit.core.flush(kit.now)) == 1
    stats = kit.core.statistics()
    assert stats["dropped_double_spend"] == 2
    assert stats["paid_messages"] == 2


def test_a_message_without_enough_value_is_refused_and_its_spend_not_recorded(
        tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=make_config(prices=Prices(message=2)))
    _, dest_path = destination(kit.rng)
    session = kit.funded_session()
    _with_prices(session, message=1)
    outgoing = session.send_message(dest_path, [(APP_TLV, b"cheap")], kit.rng)
    assert kit.handle(session.node_id, outgoing.message) == []
    stats = kit.core.statistics()
    assert stats["dropped_insufficient_value"] == 1
    assert stats["paid_messages"] == 0
    _with_prices(session, message=2)
    assert len(_send(kit, session, dest_path)) == 1


def test_a_registration_without_enough_value_is_refused_and_credentials_come_back(
        tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=make_config(prices=Prices(scid_register=3)))
    session = kit.funded_session()
    _with_prices(session, scid_register=2)
    reply = kit.call(session, session.register_request(kit.rng))
    assert reply.error is not None and reply.error.status == Status.INSUFFICIENT_VALUE
    assert len(session.wallet) == 8
    assert len(kit.core.book) == 0
    _with_prices(session, scid_register=3)
    _register(kit, session)
    assert len(session.wallet) == 5


def test_unpaid_messages_are_dropped_when_free_forwarding_is_off(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=make_config(prices=Prices(message=0), forward_unpaid=False))
    _, dest_path = destination(kit.rng)
    session = kit.funded_session()
    assert len(_send(kit, session, dest_path)) == 1  # a free price needs no spend
    kit2 = make_kit(tmp_path / "b", config=make_config(forward_unpaid=False))
    session2 = kit2.funded_session()
    _with_prices(session2, message=0)
    assert _send(kit2, session2, dest_path) == []
    assert kit2.core.statistics()["dropped_unpaid"] == 1


def test_a_voucher_buys_credentials_once(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    session = kit.funded_session()
    voucher = kit.payments.mint(8, kit.rng)
    assert kit.call(session, session.buy_request(voucher, kit.rng, now=kit.now)).error is None
    again = kit.call(session, session.buy_request(voucher, kit.rng, now=kit.now))
    assert again.error is not None and again.error.status == Status.DOUBLE_SPEND
    unknown = kit.call(session, session.buy_request(bytes(32), kit.rng, now=kit.now))
    assert unknown.error is not None and unknown.error.status == Status.PAYMENT_REQUIRED
    assert len(session.wallet) == 16


# -- synthetic SCIDs --------------------------------------------------------------------


def test_replies_reach_the_client_through_its_scid_until_it_expires(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    watchtower = crypto.SecretKey.from_rng(kit.rng)
    session = kit.funded_session()
    registration = _register(kit, session)
    out = _reply(kit, watchtower, session, registration, b"ack-1")
    assert [t.peer for t in out] == [session.node_id]
    delivered = session.receive(out[0].message)
    assert isinstance(delivered, Delivered) and dict(delivered.payload)[APP_TLV] == b"ack-1"
    kit.now = registration.expires_at - 0.001
    assert len(_reply(kit, watchtower, session, registration)) == 1
    kit.now = registration.expires_at
    assert _reply(kit, watchtower, session, registration) == []
    assert kit.core.statistics()["dropped_scid_expired"] == 1
    kit.now += 5
    assert _reply(kit, watchtower, session, registration) == []  # tombstoned now
    assert kit.core.statistics()["scids_expired"] == 1


def test_renewal_extends_the_deadline_and_needs_the_owner_secret(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    session = kit.funded_session()
    registration = _register(kit, session)
    kit.now += 30
    reply = kit.call(session, session.renew_request(registration, kit.rng))
    assert reply.error is None
    renewed = reply.result
    assert isinstance(renewed, ScidRegistration)
    assert renewed.expires_at == registration.expires_at + kit.config.scid_lifetime_s
    thief = attrs.evolve(registration, owner_secret=bytes(32))
    reply = kit.call(session, session.renew_request(thief, kit.rng))
    assert reply.error is not None and reply.error.status == Status.UNAUTHORISED
    for _ in range(3):
        reply = kit.call(session, session.renew_request(registration, kit.rng))
    assert reply.error is not None and reply.error.status == Status.TOO_EARLY
    kit.now = renewed.expires_at + 200
    kit.handle(session.node_id, b"\x00\x00")  # any message runs the timers
    reply = kit.call(session, session.renew_request(registration, kit.rng))
    assert reply.error is not None and reply.error.status == Status.UNKNOWN_SCID


def test_synthetic_scids_never_collide_with_channels_or_each_other(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    seen: set[int] = set()
    for _ in range(300):
        scid = kit.core.book.mint(kit.rng, kit.now, reserved=seen)
        assert scid not in seen
        assert kit.core.book.is_synthetic(scid)
        seen.add(scid)


def test_a_restart_keeps_spent_serials_and_registered_scids(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    watchtower = crypto.SecretKey.from_rng(kit.rng)
    _, dest_path = destination(kit.rng)
    session = kit.funded_session()
    registration = _register(kit, session)
    outgoing = session.send_message(dest_path, [(APP_TLV, b"once")], kit.rng)
    assert len(kit.handle(session.node_id, outgoing.message)) == 1
    old = make_kit(tmp_path / "other")  # an unrelated mixer does not know the SCID
    assert old.core.book.get(registration.scid) is None
    kit.restart()
    assert kit.handle(session.node_id, outgoing.message) == []
    assert kit.core.statistics()["dropped_double_spend"] == 1
    assert len(_reply(kit, watchtower, session, registration)) == 1
    kit.now = registration.expires_at + 1
    assert _reply(kit, watchtower, session, registration) == []
    kit.restart()
    assert kit.core.book.get(registration.scid) is None
    assert registration.scid in kit.core.book.tombstones()


# -- rate limits, backpressure, hints ---------------------------------------------------


def test_a_client_exceeding_its_allowance_is_throttled_and_others_are_not(
        tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=make_config(incoming_client=Limit(2.0, 4.0)))
    _, dest_path = destination(kit.rng)
    greedy = kit.funded_session(buys=2)
    polite = kit.funded_session()
    kit.now += 2.0  # refill the buckets the INFO and BUY requests used
    greedy_out = [_send(kit, greedy, dest_path) for _ in range(8)]
    forwarded = [o for o in greedy_out if any(t.peer != greedy.node_id for t in o)]
    notices = [t for o in greedy_out for t in o if t.peer == greedy.node_id]
    assert len(forwarded) == 4
    assert kit.core.statistics()["dropped_rate_limited"] == 4
    assert len(notices) == 1 and OnionMessageDrop.decode(notices[0].message).rate_limited
    assert all(len(_send(kit, polite, dest_path)) == 1 for _ in range(4))
    kit.now += 1.0  # two more tokens for the greedy client
    later = [t for _ in range(3) for t in _send(kit, greedy, dest_path)]
    assert sum(t.peer != greedy.node_id for t in later) == 2


def _congested_world(tmp_path: Path) -> tuple[Kit, crypto.SecretKey, MixerSession,
                                              ScidRegistration]:
    """A watchtower (eclair peer) replying to a client whose link is CLN-limited."""
    rng = random.Random(11)
    watchtower = crypto.SecretKey.from_rng(rng)
    kit = make_kit(tmp_path, config=make_config(
        client_profile="cln", queue_messages=4,
        peers=(PeerConfig(watchtower.public_key, "eclair"),),
        incoming_peer=Limit(100.0, 100.0)))
    session = kit.funded_session()
    kit.now += 5  # let the client's CLN bucket refill after the buy
    return kit, watchtower, session, _register(kit, session)


def test_backpressure_halves_the_sender_allowance_and_recovers(tmp_path: Path) -> None:
    kit, watchtower, session, registration = _congested_world(tmp_path)
    kit.now += 5
    outs = [_reply(kit, watchtower, session, registration) for _ in range(12)]
    to_client = [t for o in outs for t in o if t.peer == session.node_id]
    notices = [t for o in outs for t in o if t.peer == watchtower.public_key]
    assert len(to_client) == 4  # CLN: burst 4
    stats = kit.core.statistics()
    assert stats.queued == 4 and stats["dropped_queue_full"] == 4
    assert len(notices) == 1
    state = kit.core.peers[watchtower.public_key]
    assert state.allowance.factor(kit.now) == 0.5
    assert kit.core.hints(kit.now).incoming[0].allowance == 0.5
    kit.now += 1.0
    assert len(kit.core.poll(kit.now)) == 4  # the queue drains at 4/s
    kit.now += kit.config.backpressure_recover_s
    assert state.allowance.factor(kit.now) == 1.0
    assert kit.core.hints(kit.now).incoming[0].allowance == 1.0


def test_a_downstream_drop_notice_penalises_the_last_incoming_peer(tmp_path: Path) -> None:
    kit, watchtower, session, registration = _congested_world(tmp_path)
    other = crypto.SecretKey.from_rng(kit.rng)
    kit.core.add_peer(other.public_key, "ldk", now=kit.now)
    kit.core.add_peer(session.node_id, "cln", now=kit.now)  # the client as a network peer
    assert len(_reply(kit, watchtower, session, registration)) == 1
    notice = OnionMessageDrop(True, bytes(32)).encode()
    out = kit.handle(session.node_id, notice)
    assert [t.peer for t in out] == [watchtower.public_key]
    assert kit.core.peers[watchtower.public_key].allowance.factor(kit.now) == 0.5
    assert kit.core.peers[other.public_key].allowance.factor(kit.now) == 1.0
    assert kit.handle(other.public_key, b"\x02\x03" + bytes(10)) == []  # malformed: counted
    assert kit.core.statistics()["drop_notices_received"] == 1


def test_hints_rank_the_least_loaded_link_first_and_follow_load(tmp_path: Path) -> None:
    rng = random.Random(5)
    busy, quiet = crypto.SecretKey.from_rng(rng), crypto.SecretKey.from_rng(rng)
    kit = make_kit(tmp_path, config=make_config(peers=(
        PeerConfig(busy.public_key, "eclair"), PeerConfig(quiet.public_key, "eclair"))))
    session = kit.funded_session()
    before = kit.core.hints(kit.now)
    assert before.utilisation(busy.public_key, Direction.OUTGOING) == 0
    from hornet.core.onion_message import create_message_path
    busy_path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                    [busy.public_key])
    for _ in range(6):
        assert len(_send(kit, session, busy_path)) == 1
    during = kit.core.hints(kit.now)
    assert during.best_outgoing(1) == (quiet.public_key,)
    busy_load = during.utilisation(busy.public_key, Direction.OUTGOING)
    assert busy_load is not None and busy_load >= 0.6
    assert during.utilisation(quiet.public_key, Direction.OUTGOING) == 0
    kit.now += 120
    after = kit.core.hints(kit.now)
    assert (after.utilisation(busy.public_key, Direction.OUTGOING) or 0) < 0.01
    reply = kit.call(session, session.hints_request(kit.rng))
    assert isinstance(reply.result, Hints) and reply.result.encode() == after.encode()
    assert session.node_id not in {h.node_id for h in after.outgoing + after.incoming}


def test_a_message_through_the_mixer_to_a_path_entering_it_again_is_delivered(
        tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    alice, bob = kit.funded_session(), kit.funded_session()
    registration = _register(kit, bob)
    out = _send(kit, alice, bob.reply_path(registration, kit.rng), b"to bob")
    assert [t.peer for t in out] == [bob.node_id]
    delivered = bob.receive(out[0].message)
    assert isinstance(delivered, Delivered) and dict(delivered.payload)[APP_TLV] == b"to bob"


@pytest.mark.parametrize("size", [0, 1, 2, 37, 1403])
def test_short_and_unknown_messages_are_counted_not_raised(tmp_path: Path, size: int) -> None:
    kit = make_kit(tmp_path)
    assert kit.handle(bytes(33), b"\x02\x01" + bytes(max(0, size - 2))) == []
    assert kit.handle(bytes(33), b"\x00\x10" + bytes(size)) == []
    stats = kit.core.statistics()
    assert stats["received"] == 2
    assert stats["dropped_malformed"] + stats["dropped_unknown_type"] == 2


def test_the_number_of_live_scids_is_capped(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=make_config(max_scids=1))
    session = kit.funded_session()
    _register(kit, session)
    reply = kit.call(session, session.register_request(kit.rng))
    assert reply.error is not None and reply.error.status == Status.UNAVAILABLE
    assert len(session.wallet) == 6  # the refused registration's credentials came back


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    session = kit.funded_session()
    registration = _register(kit, session)
    texts = [repr(kit.core), repr(session), repr(registration), repr(session.wallet),
             repr(kit.core.book), repr(kit.core.book.registrations())]
    secrets_ = [kit.node_key.secret_bytes(), kit.master, session.identity.secret_bytes(),
                session.path_id, registration.owner_secret]
    for secret in secrets_:
        for text in texts:
            assert secret.hex() not in text and repr(secret) not in text


def test_credentials_roll_over_into_the_next_epoch_during_grace(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    _, dest_path = destination(kit.rng)
    session = kit.funded_session()
    params = kit.config.credential_params
    old_epoch = params.epoch_at(kit.now)
    kit.now = params.epoch_start(old_epoch + 1) + 10  # next epoch, inside the grace period
    assert kit.call(session, session.info_request(kit.rng)).error is None
    request = session.rollover_request(kit.rng)
    assert request is not None
    reply = kit.call(session, request)
    assert reply.error is None and reply.result == params.k
    rolled = [c for c in session.wallet.credentials if c.epoch == old_epoch + 1]
    assert len(rolled) == params.k and len(session.wallet) == 8
    kit.now = params.epoch_start(old_epoch + 1) + params.grace_period + 1  # old epoch gone
    stale = [c for c in session.wallet.credentials if c.epoch == old_epoch]
    session.wallet.credentials[:] = stale[:1]
    assert _send(kit, session, dest_path) == []
    assert kit.core.statistics()["dropped_wrong_epoch"] == 1
    session.wallet.credentials[:] = rolled
    assert len(_send(kit, session, dest_path)) == 1


def test_plain_forwarding_between_peers_is_free_and_replies_come_back(tmp_path: Path) -> None:
    """BOLT 4 forwarding with route blinding and a blinded reply path, no payment."""
    kit = make_kit(tmp_path)
    a, b = crypto.SecretKey.from_rng(kit.rng), crypto.SecretKey.from_rng(kit.rng)
    path = create_message_path(crypto.SecretKey.from_rng(kit.rng).secret_bytes(),
                               [kit.mixer_id, b.public_key])
    reply_path = create_message_path(crypto.SecretKey.from_rng(kit.rng).secret_bytes(),
                                     [kit.mixer_id, a.public_key], path_id=b"a" * 32)
    message = create_onion_message(crypto.SecretKey.from_rng(kit.rng).secret_bytes(), path,
                                   payload=[(APP_TLV, b"ping")], reply_path=reply_path)
    [out] = kit.handle(a.public_key, message.message)
    assert out.peer == b.public_key
    delivered = process_onion_message(b, out.message)
    assert isinstance(delivered, DeliverMessage) and dict(delivered.payload)[APP_TLV] == b"ping"
    assert delivered.reply_path is not None
    reply = create_onion_message(crypto.SecretKey.from_rng(kit.rng).secret_bytes(),
                                 delivered.reply_path, payload=[(APP_TLV, b"pong")])
    assert reply.first_node_id == kit.mixer_id
    [back] = kit.handle(b.public_key, reply.message)
    assert back.peer == a.public_key
    answer = process_onion_message(a, back.message)
    assert isinstance(answer, DeliverMessage) and answer.path_id_matches(b"a" * 32)
    assert kit.core.statistics()["free_forwards"] == 2


def test_free_forwarding_has_a_per_peer_limit_that_paid_messages_do_not(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=make_config(free_forward=Limit(0.001, 2.0)))
    a = crypto.SecretKey.from_rng(kit.rng)
    dest_key, dest_path = destination(kit.rng)
    sent = []
    for _ in range(4):
        path = create_message_path(crypto.SecretKey.from_rng(kit.rng).secret_bytes(),
                                   [kit.mixer_id, dest_key.public_key])
        message = create_onion_message(crypto.SecretKey.from_rng(kit.rng).secret_bytes(), path,
                                        payload=[(APP_TLV, b"free")])
        sent.append(len(kit.handle(a.public_key, message.message)))
    assert sent[:2] == [1, 1]
    assert kit.core.statistics()["dropped_free_rate_limited"] == 2
    session = kit.funded_session()
    assert all(len([t for t in _send(kit, session, dest_path) if t.message[:2] == b"\x02\x01"])
               == 1 for _ in range(4))
    assert kit.core.statistics()["paid_messages"] == 4


def test_a_paid_message_asking_for_a_receipt_gets_one_after_its_spend_commits(
        tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    dest_key, dest_path = destination(kit.rng)
    session = kit.funded_session()
    outgoing = session.send_message(dest_path, [(APP_TLV, b"x")], kit.rng,
                                    receipt_id=b"r" * 16)
    assert kit.handle(session.node_id, outgoing.message, flush=False) == []  # not yet
    transmits = [t for t in kit.core.flush(kit.now) if isinstance(t, Transmit)]
    assert [t.peer for t in transmits] == [dest_key.public_key, session.node_id]
    receipt = session.receive(transmits[1].message)
    assert receipt == Receipt(b"r" * 16, ReceiptStatus.SENT)
    assert kit.core.statistics()["receipts_sent"] == 1
    # the same message again: its spend is refused, so no forward and no receipt
    assert kit.handle(session.node_id, outgoing.message) == []
    assert kit.core.statistics()["receipts_sent"] == 1


def test_a_queued_message_gets_a_queued_receipt(tmp_path: Path) -> None:
    dest_key = crypto.SecretKey.from_rng(random.Random(77))
    kit = make_kit(tmp_path, config=make_config(
        peers=(PeerConfig(dest_key.public_key, "slow"),),
        profiles={"slow": Limit(0.001, 1.0), "hornet": Limit(1e9, 1e9)}))
    path = create_message_path(crypto.SecretKey.from_rng(kit.rng).secret_bytes(),
                               [dest_key.public_key])
    session = kit.funded_session()
    first = session.send_message(path, [(APP_TLV, b"1")], kit.rng, receipt_id=b"1" * 16)
    second = session.send_message(path, [(APP_TLV, b"2")], kit.rng, receipt_id=b"2" * 16)
    receipts = []
    for outgoing in (first, second):
        for transmit in kit.handle(session.node_id, outgoing.message):
            if transmit.peer == session.node_id:
                receipts.append(session.receive(transmit.message))
    assert receipts == [Receipt(b"1" * 16, ReceiptStatus.SENT),
                        Receipt(b"2" * 16, ReceiptStatus.QUEUED)]


def test_an_offline_targets_scid_traffic_waits_in_a_bounded_mailbox(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=make_config(mailbox_messages=3))
    watchtower = crypto.SecretKey.from_rng(kit.rng)
    session = kit.funded_session()
    registration = _register(kit, session)
    kit.core.peer_offline(session.node_id)
    for i in range(5):
        assert _reply(kit, watchtower, session, registration, b"held %d" % i) == []
    assert kit.core.mailbox(registration.scid) == 3
    stats = kit.core.statistics()
    assert stats["mailbox_stored"] == 3 and stats["dropped_mailbox_full"] == 2
    delivered = kit.core.peer_online(session.node_id, kit.now)
    assert [t.peer for t in delivered] == [session.node_id] * 3
    bodies = [session.receive(t.message) for t in delivered]  # type: ignore[union-attr]
    assert [dict(b.payload)[APP_TLV] for b in bodies] == [b"held 0", b"held 1", b"held 2"]  # type: ignore[union-attr]
    assert kit.core.mailbox(registration.scid) == 0
    assert len(_reply(kit, watchtower, session, registration)) == 1  # online: straight through


def test_a_mailbox_dies_with_its_scid(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    watchtower = crypto.SecretKey.from_rng(kit.rng)
    session = kit.funded_session()
    registration = _register(kit, session)
    kit.core.peer_offline(session.node_id)
    _reply(kit, watchtower, session, registration, b"late")
    assert kit.core.mailbox(registration.scid) == 1
    kit.now = registration.expires_at + 1
    kit.core.poll(kit.now)
    assert kit.core.statistics()["dropped_mailbox_expired"] == 1
    assert kit.core.peer_online(session.node_id, kit.now) == []


# -- bundles: one spend buys k messages --------------------------------------------------


def test_one_spend_buys_a_bundle_of_k_messages(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=make_config(bundle_k=4))
    dest_key, dest_path = destination(kit.rng)
    session = kit.funded_session()
    reply = kit.call(session, session.bundle_request(kit.rng))
    assert reply.error is None and reply.result.k == 4  # type: ignore[union-attr]
    assert len(session.wallet) == 8 - 1
    for i in range(4):
        outgoing = session.bundled_message(dest_path, [(APP_TLV, b"%d" % i)], kit.rng,
                                           now=kit.now)
        [transmit] = kit.handle(session.node_id, outgoing.message)
        assert transmit.peer == dest_key.public_key
    assert kit.core.statistics()["bundle_messages"] == 4
    with pytest.raises(LocalProtocolError):
        session.bundled_message(dest_path, [(APP_TLV, b"5")], kit.rng, now=kit.now)
    assert len(session.wallet) == 8 - 1  # four messages, one spend


def _ticket_attack_kit(tmp_path: Path) -> tuple[Kit, MixerSession, BlindedPath]:
    kit = make_kit(tmp_path, config=make_config(bundle_k=4, bundle_lifetime_s=30.0))
    _, dest_path = destination(kit.rng)
    session = kit.funded_session()
    assert kit.call(session, session.bundle_request(kit.rng)).error is None
    return kit, session, dest_path


def test_a_bundle_message_cannot_be_replayed(tmp_path: Path) -> None:
    kit, session, dest_path = _ticket_attack_kit(tmp_path)
    outgoing = session.bundled_message(dest_path, [(APP_TLV, b"x")], kit.rng, now=kit.now)
    assert len(kit.handle(session.node_id, outgoing.message)) == 1
    assert kit.handle(session.node_id, outgoing.message) == []
    assert kit.core.statistics()["dropped_bundle_replay"] == 1


def test_a_bundle_ticket_beyond_k_or_with_a_wrong_key_is_refused(tmp_path: Path) -> None:
    kit, session, dest_path = _ticket_attack_kit(tmp_path)
    bundle = session.bundles[0]
    bundle.next_seq = 4  # seq 4 of a bundle of k = 4
    bundle.k = 5
    beyond = session.bundled_message(dest_path, [(APP_TLV, b"x")], kit.rng, now=kit.now)
    assert kit.handle(session.node_id, beyond.message) == []
    assert kit.core.statistics()["dropped_bundle_replay"] == 1
    bundle.next_seq = 0  # an unused number, so only the MAC can refuse it
    bundle.key = bytes(32)  # a forger who knows the bundle id but not its key
    forged = session.bundled_message(dest_path, [(APP_TLV, b"y")], kit.rng, now=kit.now)
    assert kit.handle(session.node_id, forged.message) == []
    assert kit.core.statistics()["dropped_bad_credential_or_mac"] == 1
    assert kit.core.statistics()["bundle_messages"] == 0


def test_a_bundle_ends_at_its_deadline(tmp_path: Path) -> None:
    kit, session, dest_path = _ticket_attack_kit(tmp_path)
    kit.now += 30.0
    late = session.bundled_message(dest_path, [(APP_TLV, b"x")], kit.rng, now=kit.now - 1)
    assert kit.handle(session.node_id, late.message) == []
    assert kit.core.statistics()["dropped_unknown_bundle"] == 1

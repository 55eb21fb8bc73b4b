"""Garbage, corrupted messages and bad credentials are dropped and counted, never raised."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mixer_kit import Kit, destination, make_config, make_kit

from hornet.core import crypto
from hornet.core.blinding import EncryptedData, create_blinded_path
from hornet.core.onion_message import create_message_path, create_onion_message
from hornet.errors import RemoteProtocolError
from hornet.mixer.protocol import (
    MIXER_PAYMENT_TLV,
    MIXER_REQUEST_TLV,
    Payment,
    send_message_hash,
)
from hornet.mixer.ratelimit import Limit
from hornet.mixer.session import DropNotice, MixerSession

APP_TLV = 77_771
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kit, MixerSession, bytes]]:
    unlimited = Limit(1e9, 1e9)  # these tests are about content, not rates
    kit = make_kit(Path(tmp_path_factory.mktemp("fuzz")),
                   config=make_config(incoming_client=unlimited, incoming_peer=unlimited))
    session = kit.funded_session()
    yield kit, session, destination(kit.rng)[0].public_key
    kit.close()


def _dropped(kit: Kit) -> int:
    return sum(v for k, v in kit.core.statistics().counters.items() if k.startswith("dropped_"))


def _paid_message(kit: Kit, dest: bytes, payment: bytes, rng: random.Random) -> bytes:
    """An onion message mixer → dest whose mixer hop carries ``payment`` verbatim."""
    dest_path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(), [dest])
    items = [EncryptedData(next_node_id=dest, next_path_key_override=dest_path.first_path_key,
                           records=((MIXER_PAYMENT_TLV, payment),))]
    e0 = crypto.SecretKey.from_rng(rng).secret_bytes()
    prefix = create_blinded_path(e0, [(kit.mixer_id, items[0])])
    return create_onion_message(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                prefix.concat(dest_path), payload=[(APP_TLV, b"x")]).message


@FUZZ
@given(data=st.binary(max_size=3000), prefix=st.sampled_from([b"", b"\x02\x01", b"\x02\x03"]))
def test_arbitrary_bytes_are_counted_and_dropped(world: tuple[Kit, MixerSession, bytes],
                                                 data: bytes, prefix: bytes) -> None:
    kit, _, _ = world
    before = (kit.core.statistics()["received"], _dropped(kit))
    assert kit.handle(bytes(33), prefix + data) == []
    after = (kit.core.statistics()["received"], _dropped(kit))
    assert after[0] == before[0] + 1
    assert after[1] >= before[1] + 1


@FUZZ
@given(bit=st.integers(min_value=0))
def test_any_single_bit_flip_of_a_paid_message_is_dropped(
        world: tuple[Kit, MixerSession, bytes], bit: int) -> None:
    kit, session, dest = world
    dest_path = create_message_path(crypto.SecretKey.from_rng(kit.rng).secret_bytes(), [dest])
    saved = list(session.wallet.credentials)
    message = bytearray(session.send_message(dest_path, [(APP_TLV, b"m")], kit.rng).message)
    session.wallet.credentials[:] = saved  # a dropped message spends nothing
    bit %= len(message) * 8
    message[bit // 8] ^= 1 << (bit % 8)
    before = _dropped(kit)
    out = kit.handle(session.node_id, bytes(message))
    assert all(t.peer != dest for t in out)
    assert _dropped(kit) == before + 1


@FUZZ
@given(payment=st.binary(max_size=800))
def test_random_payment_records_are_dropped(world: tuple[Kit, MixerSession, bytes],
                                            payment: bytes) -> None:
    kit, _, dest = world
    before = _dropped(kit)
    assert kit.handle(bytes(33), _paid_message(kit, dest, payment, kit.rng)) == []
    assert _dropped(kit) == before + 1


@FUZZ
@given(position=st.integers(min_value=0, max_value=329), value=st.integers(1, 255))
def test_corrupted_credentials_are_dropped_as_bad(world: tuple[Kit, MixerSession, bytes],
                                                  position: int, value: int) -> None:
    kit, session, dest = world
    client = session.wallet.require_client()
    credential = session.wallet.credentials[0]  # never recorded: every spend here fails
    rng = kit.rng
    dest_path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(), [dest])
    e0 = crypto.SecretKey.from_rng(rng).secret_bytes()
    path_key = crypto.pubkey_from_secret(e0)
    spend = bytearray(client.spend_request(credential, message_hash=send_message_hash(path_key),
                                           rng=rng))
    spend[position] ^= value
    item = EncryptedData(next_node_id=dest, next_path_key_override=dest_path.first_path_key,
                         records=((MIXER_PAYMENT_TLV, Payment((bytes(spend),)).encode()),))
    prefix = create_blinded_path(e0, [(kit.mixer_id, item)])
    message = create_onion_message(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                   prefix.concat(dest_path), payload=[(APP_TLV, b"x")]).message
    stats = kit.core.statistics()
    assert kit.handle(bytes(33), message) == []
    after = kit.core.statistics()
    bad = ("dropped_bad_credential", "dropped_bad_credential_or_mac", "dropped_malformed",
           "dropped_wrong_epoch", "dropped_invalid_point")
    assert sum(after[k] for k in bad) == sum(stats[k] for k in bad) + 1
    assert after["paid_messages"] == stats["paid_messages"]


@FUZZ
@given(request=st.binary(max_size=600))
def test_random_requests_never_crash_the_mixer(world: tuple[Kit, MixerSession, bytes],
                                               request: bytes) -> None:
    kit, session, _ = world
    rng = kit.rng
    path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(), [kit.mixer_id])
    message = create_onion_message(crypto.SecretKey.from_rng(rng).secret_bytes(), path,
                                   payload=[(MIXER_REQUEST_TLV, request)],
                                   reply_path=session.own_reply_path(rng)).message
    before = kit.core.statistics()["received"]
    for transmit in kit.handle(session.node_id, message):
        assert transmit.peer == session.node_id  # only ever an answer to the sender
    assert kit.core.statistics()["received"] == before + 1


@FUZZ
@given(data=st.binary(max_size=2000), prefix=st.sampled_from([b"", b"\x02\x01", b"\x02\x03"]))
def test_a_client_session_raises_only_remote_errors_on_garbage(
        world: tuple[Kit, MixerSession, bytes], data: bytes, prefix: bytes) -> None:
    _, session, _ = world
    with contextlib.suppress(RemoteProtocolError):
        result = session.receive(prefix + data)
        assert result is None or isinstance(result, DropNotice)

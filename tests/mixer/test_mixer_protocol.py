"""Codecs of the client protocol, hints and onion_message_drop."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.errors import LocalProtocolError, MalformedInputError
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
    owner_hash,
)

ids = st.binary(min_size=16, max_size=16)
node_ids = st.binary(min_size=33, max_size=33)
spends = st.lists(st.binary(min_size=1, max_size=400), max_size=5).map(tuple).map(Payment)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    kind = draw(st.sampled_from(list(Kind)))
    rid = draw(ids)
    if kind == Kind.INFO:
        return Request(kind, rid)
    if kind in (Kind.BUY, Kind.REISSUE):
        return Request(kind, rid, credential_request=draw(st.binary(min_size=1, max_size=500)))
    payment = draw(spends)
    if kind == Kind.REGISTER:
        return Request(kind, rid, target=draw(node_ids),
                       owner_hash=draw(st.binary(min_size=32, max_size=32)), payment=payment)
    if kind == Kind.RENEW:
        return Request(kind, rid, scid=draw(st.integers(0, 2**64 - 1)),
                       owner_secret=draw(st.binary(min_size=32, max_size=32)), payment=payment)
    if kind == Kind.CIRCUIT:
        return Request(kind, rid, setup=draw(st.binary(max_size=300)), payment=payment)
    if kind == Kind.BUNDLE:
        return Request(kind, rid, bundle_key=draw(st.binary(min_size=32, max_size=32)),
                       payment=payment)
    return Request(kind, rid, payment=payment)


def test_custom_record_types_are_odd_and_in_the_right_ranges() -> None:
    assert MIXER_REQUEST_TLV % 2 == 1 and MIXER_REQUEST_TLV >= 64
    assert MIXER_RESPONSE_TLV % 2 == 1 and MIXER_RESPONSE_TLV >= 64
    assert MIXER_PAYMENT_TLV % 2 == 1


@given(requests())
def test_requests_round_trip(request: Request) -> None:
    assert Request.decode(request.encode()) == request


@given(requests(), st.binary(min_size=1, max_size=4))
def test_trailing_bytes_after_a_paid_request_are_rejected(request: Request, extra: bytes) -> None:
    if request.kind in (Kind.INFO, Kind.BUY, Kind.REISSUE):
        return
    with pytest.raises(MalformedInputError):
        Request.decode(request.encode() + extra)


def test_the_payment_is_bound_to_the_request_fields() -> None:
    a = Request(Kind.REGISTER, bytes(16), target=b"\x02" * 33, owner_hash=bytes(32))
    b = Request(Kind.REGISTER, bytes(16), target=b"\x03" * 33, owner_hash=bytes(32))
    c = Request(Kind.REGISTER, b"\x01" * 16, target=b"\x02" * 33, owner_hash=bytes(32))
    assert len({a.message_hash(), b.message_hash(), c.message_hash()}) == 3
    paid = Request(Kind.REGISTER, bytes(16), target=b"\x02" * 33, owner_hash=bytes(32),
                   payment=Payment((b"x",)))
    assert paid.message_hash() == a.message_hash()
    assert owner_hash(bytes(32)) != owner_hash(b"\x01" * 32)


def test_owner_secrets_are_not_in_repr() -> None:
    secret = bytes(range(32))
    request = Request(Kind.RENEW, bytes(16), scid=1, owner_secret=secret)
    assert secret.hex() not in repr(request) and repr(secret) not in repr(request)


@settings(max_examples=300)
@given(st.binary(max_size=700))
def test_decoders_raise_only_malformed_input(data: bytes) -> None:
    for decode in (Request.decode, Response.decode, MixerInfo.decode, ScidGrant.decode,
                   Hints.decode, Payment.decode, OnionMessageDrop.decode, Prices.decode):
        with contextlib.suppress(MalformedInputError):
            decode(data)


@given(st.sampled_from(list(Kind)), ids, st.sampled_from(list(Status)), st.binary(max_size=99))
def test_responses_round_trip(kind: Kind, rid: bytes, status: Status, body: bytes) -> None:
    response = Response(kind, rid, status, body)
    assert Response.decode(response.encode()) == response


def test_info_grant_drop_and_prices_round_trip() -> None:
    info = MixerInfo(b"\x02" * 33, 1_750_000_000.123, Prices(1, 2, 1, 0, 5), 600, (),
                     relay_key=b"\x03" * 33)
    assert MixerInfo.decode(info.encode()) == info
    assert info.encode().endswith(b"\x03" * 33)
    no_circuits = MixerInfo(b"\x02" * 33, 1.0, Prices(), 600, ())
    assert MixerInfo.decode(no_circuits.encode()) == no_circuits
    with pytest.raises(MalformedInputError):  # a circuit price without the relay key
        MixerInfo.decode(info.encode()[:-33])
    with pytest.raises(LocalProtocolError):
        MixerInfo(b"\x02" * 33, 1.0, Prices(circuit_open=1), 600, ())
    assert Prices.decode(Prices(circuit_open=None).encode()).circuit_open is None
    grant = ScidGrant(123456789, 1_750_000_060.5)
    assert ScidGrant.decode(grant.encode()) == grant
    drop = OnionMessageDrop(True, bytes(range(32)))
    assert OnionMessageDrop.decode(drop.encode()) == drop
    assert drop.encode()[:2] == (515).to_bytes(2, "big")
    with pytest.raises(LocalProtocolError):
        Prices(message=-1)


@given(st.lists(st.tuples(node_ids, st.floats(0, 60), st.floats(0, 1000)), max_size=6))
def test_hints_round_trip_to_the_permille(rows: list[tuple[bytes, float, float]]) -> None:
    entries = tuple(PeerHint(n, u, "cln", r, 0.5, 0.25) for n, u, r in rows)
    hints = Hints(1_750_000_000.0, entries, entries[::-1])
    decoded = Hints.decode(hints.encode())
    assert len(decoded.outgoing) == len(entries)
    for a, b in zip(decoded.outgoing, entries, strict=True):
        assert a.node_id == b.node_id and a.profile == "cln"
        assert abs(a.utilisation - b.utilisation) <= 0.0005
        assert abs(a.rate - b.rate) <= 0.0005
    assert decoded.encode() == hints.encode()

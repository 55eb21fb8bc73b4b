"""Untrusted bytes into every decoder and verify entry point raise only RemoteProtocolError."""

from __future__ import annotations

import contextlib
import random

import pytest
from cred_kit import MSG, NOW, World, make_world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hornet.core.crypto import SecretKey
from hornet.credentials.messages import (
    CREDENTIAL_LEN,
    ISSUANCE,
    REISSUE,
    SPEND,
    Credential,
    CredentialsResponse,
    issuance_request_len,
    reissue_request_len,
    response_len,
    spend_request_len,
)
from hornet.credentials.params import (
    SIGNED_PARAMS_LEN,
    CredentialParams,
    IssuerPublicParams,
    verify_issuer_params,
)
from hornet.errors import RemoteProtocolError

WORLD: World = make_world(seed=21, range_bits=4)
NODE = SecretKey.from_rng(random.Random(8))
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _entry_points(data: bytes) -> None:
    issuer, client, params = WORLD.issuer, WORLD.client, WORLD.params
    calls = [
        lambda: issuer.verify_spend(data, message_hash=MSG, now=NOW),
        lambda: issuer.verify_reissue(data, message_hash=MSG, now=NOW),
        lambda: issuer.verify_issuance(data, now=NOW),
        lambda: CredentialsResponse.decode(data, 2),
        lambda: Credential.from_bytes(data),
        lambda: CredentialParams.decode(data),
        lambda: IssuerPublicParams.decode(data),
        lambda: verify_issuer_params(data, NODE.public_key),
    ]
    del client, params
    for call in calls:
        with contextlib.suppress(RemoteProtocolError):
            call()


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_remote_errors(data: bytes) -> None:
    _entry_points(data)


def _sized(kind: int | None, length: int) -> st.SearchStrategy[bytes]:
    body = st.binary(min_size=length, max_size=length)
    if kind is None:
        return body
    return body.map(lambda b: bytes((kind,)) + bytes(4) + b[5:])


@FUZZ
@given(st.one_of(
    _sized(SPEND, spend_request_len(WORLD.params)),
    _sized(REISSUE, reissue_request_len(WORLD.params)),
    _sized(ISSUANCE, issuance_request_len(WORLD.params)),
    _sized(0x80, response_len(2)),
    _sized(None, CREDENTIAL_LEN),
    _sized(None, SIGNED_PARAMS_LEN),
))
def test_right_length_garbage_raises_only_remote_errors(data: bytes) -> None:
    _entry_points(data)


@pytest.fixture(scope="module")
def valid() -> dict[str, bytes]:
    a, b, c = WORLD.credentials([1, 3, 2])
    return {
        "spend": WORLD.client.spend_request(a, message_hash=MSG, rng=WORLD.rng),
        "reissue": WORLD.client.reissue_request([b, c], [4, 0], message_hash=MSG,
                                                rng=WORLD.rng).request,
    }


@FUZZ
@given(st.data())
def test_any_single_bit_flip_of_a_valid_request_is_rejected(valid: dict[str, bytes],
                                                            data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(valid)))
    blob = bytearray(valid[kind])
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(RemoteProtocolError):
        if kind == "spend":
            WORLD.issuer.verify_spend(bytes(blob), message_hash=MSG, now=NOW)
        else:
            WORLD.issuer.verify_reissue(bytes(blob), message_hash=MSG, now=NOW)


def test_valid_requests_verify_unflipped(valid: dict[str, bytes]) -> None:
    WORLD.issuer.verify_spend(valid["spend"], message_hash=MSG, now=NOW)
    WORLD.issuer.verify_reissue(valid["reissue"], message_hash=MSG, now=NOW)

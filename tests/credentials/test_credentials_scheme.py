"""Scheme correctness and its soundness checks (each must fail as stated)."""

from __future__ import annotations

import random

import attrs
import pytest
from cred_kit import EPOCH_LENGTH, GRACE, MSG, NOW, make_world

from hornet.core.crypto import SECP256K1_ORDER, SecretKey
from hornet.credentials import group, proofs, statements
from hornet.credentials.client import build_reissue_request
from hornet.credentials.group import GroupElement, generators
from hornet.credentials.issuer import Issuer
from hornet.credentials.messages import (
    REISSUE,
    Credential,
    issuance_request_len,
    reissue_request_len,
    response_len,
    spend_request_len,
)
from hornet.credentials.params import (
    IssuerSecretKey,
    sign_issuer_params,
    verify_issuer_params,
)
from hornet.credentials.transcript import NonceSource, Transcript
from hornet.errors import (
    DoubleSpendError,
    InsufficientValueError,
    IntegrityError,
    InvalidProofError,
    LocalProtocolError,
    MalformedCredentialError,
    WrongEpochError,
)


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return make_world()


def test_issuance_round_trip_gives_credentials_of_the_requested_values(world) -> None:
    creds = world.credentials([1, 1, 5, 0, 7, 1, 1, 2])
    assert [c.value for c in creds] == [1, 1, 5, 0, 7, 1, 1, 2]
    assert all(c.epoch == 0 for c in creds)


def test_spend_verifies_and_names_the_serial(world) -> None:
    (cred,) = world.credentials([1])
    data = world.client.spend_request(cred, message_hash=MSG, rng=world.rng)
    assert len(data) == spend_request_len(world.params) == 330
    verified = world.issuer.verify_spend(data, message_hash=MSG, now=NOW)
    assert verified.epoch == 0
    assert verified.serial == _serial(world, cred).encode()


def _serial(world, cred: Credential) -> GroupElement:  # type: ignore[no-untyped-def]
    from hornet.credentials.group import generators

    return generators().Gs.point * cred.r


def test_forged_mac_is_rejected(world) -> None:
    (cred,) = world.credentials([1])
    forged = attrs.evolve(cred, V=GroupElement.hash_to_group(b"forged V"))
    data = world.client.spend_request(forged, message_hash=MSG, rng=world.rng)
    with pytest.raises(InvalidProofError):
        world.issuer.verify_spend(data, message_hash=MSG, now=NOW)


def test_credential_of_another_issuer_key_is_rejected(world) -> None:
    other = Issuer.create(world.params, {0: IssuerSecretKey.generate(random.Random(99))})
    (cred,) = world.credentials([1])
    data = world.client.spend_request(cred, message_hash=MSG, rng=world.rng)
    with pytest.raises(InvalidProofError):
        other.verify_spend(data, message_hash=MSG, now=NOW)


def test_presentation_for_a_different_message_hash_is_rejected(world) -> None:
    (cred,) = world.credentials([1])
    data = world.client.spend_request(cred, message_hash=MSG, rng=world.rng)
    with pytest.raises(InvalidProofError):
        world.issuer.verify_spend(data, message_hash=bytes(32), now=NOW)


def test_spending_a_larger_credential_as_a_unit_is_rejected(world) -> None:
    (cred,) = world.credentials([5])
    with pytest.raises(LocalProtocolError):
        world.client.spend_request(cred, message_hash=MSG, rng=world.rng)
    lying = attrs.evolve(cred, value=1)
    data = world.client.spend_request(lying, message_hash=MSG, rng=world.rng)
    with pytest.raises(InvalidProofError):
        world.issuer.verify_spend(data, message_hash=MSG, now=NOW)


def test_reissue_splits_value_and_the_outputs_spend(world) -> None:
    a, b = world.credentials([10, 3])
    pending = world.client.reissue_request([a, b], [1, 11], message_hash=MSG, rng=world.rng)
    assert len(pending.request) == reissue_request_len(world.params)
    ticket = world.issuer.verify_reissue(pending.request, message_hash=MSG, now=NOW, price=1)
    response = world.issuer.issue(ticket, world.rng)
    assert len(response) == response_len(world.params.k)
    unit, change = world.client.finish(pending, response)
    assert (unit.value, change.value) == (1, 11)
    data = world.client.spend_request(unit, message_hash=MSG, rng=world.rng)
    world.issuer.verify_spend(data, message_hash=MSG, now=NOW)


def test_spend_of_more_than_the_balance_is_rejected(world) -> None:
    a, b = world.credentials([4, 4])
    # Claim to pay 1 (Δ = −1) while taking out 4 + 4: the balance proof cannot hold.
    pending = build_reissue_request(world.client, REISSUE, [a, b], [4, 4], epoch_out=0,
                                    delta=-1, message_hash=MSG, rng=world.rng)
    with pytest.raises(InvalidProofError):
        world.issuer.verify_reissue(pending.request, message_hash=MSG, now=NOW, price=1)


def test_negative_value_output_is_rejected_by_the_range_proof(world) -> None:
    a, b = world.credentials([4, 4])
    # (9, −1) balances (Δ = 0) but −1 has no n-bit decomposition.
    pending = build_reissue_request(world.client, REISSUE, [a, b], [9, -1], epoch_out=0,
                                    delta=0, message_hash=MSG, rng=world.rng)
    with pytest.raises(InvalidProofError):
        world.issuer.verify_reissue(pending.request, message_hash=MSG, now=NOW)


def test_output_of_2_to_the_n_is_rejected_by_the_range_proof(world) -> None:
    a, b = world.credentials([0, 0])
    big = 1 << world.params.range_bits
    pending = build_reissue_request(world.client, REISSUE, [a, b], [big, 0], epoch_out=0,
                                    delta=big, message_hash=MSG, rng=world.rng)
    with pytest.raises((InvalidProofError, MalformedCredentialError, InsufficientValueError)):
        world.issuer.verify_reissue(pending.request, message_hash=MSG, now=NOW, price=-big)


def test_reissue_that_does_not_pay_the_price_is_insufficient(world) -> None:
    a, b = world.credentials([2, 2])
    pending = world.client.reissue_request([a, b], [2, 2], message_hash=MSG, rng=world.rng)
    with pytest.raises(InsufficientValueError):
        world.issuer.verify_reissue(pending.request, message_hash=MSG, now=NOW, price=1)


def test_presenting_one_credential_twice_in_a_request_is_a_double_spend(world) -> None:
    (a,) = world.credentials([3])
    pending = world.client.reissue_request([a, a], [3, 3], message_hash=MSG, rng=world.rng)
    with pytest.raises(DoubleSpendError):
        world.issuer.verify_reissue(pending.request, message_hash=MSG, now=NOW)


def test_previous_epoch_is_accepted_in_grace_and_rejected_after(world) -> None:
    (cred,) = world.credentials([1])
    data = world.client.spend_request(cred, message_hash=MSG, rng=world.rng)
    world.issuer.verify_spend(data, message_hash=MSG, now=EPOCH_LENGTH + GRACE / 2)
    with pytest.raises(WrongEpochError):
        world.issuer.verify_spend(data, message_hash=MSG, now=EPOCH_LENGTH + GRACE + 1)


def test_rollover_moves_value_to_the_next_epoch_only_within_grace(world) -> None:
    a, b = world.credentials([3, 4])
    pending = world.client.rollover_request([a, b], [6, 1], rng=world.rng)
    late = EPOCH_LENGTH + GRACE + 1
    with pytest.raises(WrongEpochError):
        world.issuer.verify_reissue(pending.request, message_hash=bytes(32), now=late)
    ticket = world.issuer.verify_reissue(pending.request, message_hash=bytes(32),
                                         now=EPOCH_LENGTH + 1)
    new = world.client.finish(pending, world.issuer.issue(ticket, world.rng))
    assert [(c.epoch, c.value) for c in new] == [(1, 6), (1, 1)]
    data = world.client.spend_request(new[1], message_hash=MSG, rng=world.rng)
    world.issuer.verify_spend(data, message_hash=MSG, now=late)


def test_issuance_in_a_past_epoch_is_rejected(world) -> None:
    pending = world.client.issuance_request([1] * world.params.issuance_k, bytes(32), epoch=0,
                                            rng=world.rng)
    assert len(pending.request) == issuance_request_len(world.params)
    with pytest.raises(WrongEpochError):
        world.issuer.verify_issuance(pending.request, now=EPOCH_LENGTH + 1)


def test_response_made_with_another_key_is_rejected_by_the_client(world) -> None:
    tagger = Issuer.create(world.params, {0: IssuerSecretKey.generate(random.Random(5))})
    pending = world.client.issuance_request([1] * world.params.issuance_k, bytes(32), epoch=0,
                                            rng=world.rng)
    with pytest.raises(InvalidProofError):  # the request is bound to the published iparams
        tagger.verify_issuance(pending.request, now=NOW)
    ticket = world.issuer.verify_issuance(pending.request, now=NOW)
    with pytest.raises(InvalidProofError):  # a MAC under an unpublished key is detected
        world.client.finish(pending, tagger.issue(ticket, world.rng))


def test_response_to_another_request_is_rejected(world) -> None:
    p1 = world.client.issuance_request([1] * 8, bytes(32), epoch=0, rng=world.rng)
    p2 = world.client.issuance_request([1] * 8, bytes(32), epoch=0, rng=world.rng)
    r1 = world.issuer.issue(world.issuer.verify_issuance(p1.request, now=NOW), world.rng)
    with pytest.raises(InvalidProofError):
        world.client.finish(p2, r1)


def test_signed_issuer_params_verify_and_detect_tampering(world) -> None:
    node = SecretKey.from_rng(random.Random(3))
    blob = sign_issuer_params(world.params, world.issuer.public_params(0), node)
    verified = verify_issuer_params(blob, node.public_key)
    assert verified.public == world.issuer.public_params(0)
    assert verified.params == world.params
    tampered = bytearray(blob)
    tampered[40] ^= 1  # inside Cw
    with pytest.raises((IntegrityError, MalformedCredentialError)):
        verify_issuer_params(bytes(tampered), node.public_key)
    other = SecretKey.from_rng(random.Random(4))
    with pytest.raises(MalformedCredentialError):
        verify_issuer_params(blob, other.public_key)


def _common_substrings(a: bytes, b: bytes, width: int) -> set[bytes]:
    grams = {a[i : i + width] for i in range(len(a) - width + 1)}
    return {b[i : i + width] for i in range(len(b) - width + 1)} & grams


def test_two_spends_from_one_issuance_share_no_byte_pattern(world) -> None:
    c1, c2 = world.credentials([1, 1])
    s1 = world.client.spend_request(c1, message_hash=MSG, rng=world.rng)
    s2 = world.client.spend_request(c2, message_hash=MSG, rng=world.rng)
    header = 5  # type byte and epoch: the same for every spend of the epoch, by design
    assert s1[:header] == s2[:header]
    assert _common_substrings(s1[header:], s2[header:], 6) == set()
    # A second presentation of the SAME credential differs everywhere except the serial.
    s3 = world.client.spend_request(c1, message_hash=MSG, rng=world.rng)
    assert s3[header + 4 * 33 : header + 5 * 33] == s1[header + 4 * 33 : header + 5 * 33]
    shown1, shown3 = s1[header : header + 4 * 33], s3[header : header + 4 * 33]
    assert _common_substrings(shown1, shown3, 6) == set()


def test_spend_with_message_fits_a_1300_byte_onion_payload(world) -> None:
    (cred,) = world.credentials([1])
    data = world.client.spend_request(cred, message_hash=MSG, rng=world.rng)
    assert len(data) + 900 <= 1300


def test_credential_bytes_round_trip(world) -> None:
    (cred,) = world.credentials([1])
    again = Credential.from_bytes(cred.to_bytes())
    assert again.to_bytes() == cred.to_bytes()
    assert again.T == cred.T
    data = world.client.spend_request(again, message_hash=MSG, rng=world.rng)
    world.issuer.verify_spend(data, message_hash=MSG, now=NOW)


def test_secrets_stay_out_of_repr(world) -> None:
    (cred,) = world.credentials([1])
    key = IssuerSecretKey.generate(random.Random(1))
    assert hex(cred.r)[2:12] not in repr(cred)
    assert str(cred.r) not in repr(cred)
    assert str(key.w) not in repr(key) and hex(key.w)[2:12] not in repr(key)
    assert "hidden" in repr(key)


def test_issuer_client_and_pending_requests_keep_secrets_out_of_repr(world) -> None:
    key = IssuerSecretKey.generate(random.Random(12))
    issuer = Issuer.create(world.params, {0: key})
    a, b = world.credentials([2, 2])
    pending = world.client.reissue_request([a, b], [1, 2], message_hash=MSG, rng=world.rng)
    secrets = [*key.scalars(), *pending.blindings, a.r, a.t, b.r, b.t]
    secrets += [(-v) % SECP256K1_ORDER for v in key.scalars()]
    text = repr(issuer) + repr(world.client) + repr(pending) + repr(issuer._key(0))
    for value in secrets:
        assert str(value) not in text
        assert f"{value:064x}"[:16] not in text


class _TracingLib:
    """Stands in for libsecp256k1's cffi ``lib``: records every call it forwards."""

    def __init__(self, lib: object, trace: list[tuple[str, int]]) -> None:
        self._lib, self._trace = lib, trace

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        func = getattr(self._lib, name)

        def call(*args):  # type: ignore[no-untyped-def]
            # combine's point count is its 4th argument; other calls record 0
            count = args[3] if name == "secp256k1_ec_pubkey_combine" else 0
            self._trace.append((name, count))
            return func(*args)

        return call


def _trace_group_ops(monkeypatch: pytest.MonkeyPatch, run) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """The sequence of libsecp256k1 calls (name, point count) that ``run`` makes."""
    trace: list[tuple[str, int]] = []
    monkeypatch.setattr(group, "_lib", _TracingLib(group._lib, trace))
    try:
        run()
    finally:
        monkeypatch.undo()
    return trace


def test_bit_prover_runs_the_same_group_operations_for_both_bit_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    g = generators()
    e = 0x1234567890ABCDEF
    results = {}
    traces = {}
    for bit in (0, 1):
        def run(bit: int = bit) -> None:
            nonces = NonceSource(Transcript(b"bit-test"), [bit], random.Random(1))
            b = proofs.bit_commitment(77, bit, g.Gg)
            state = proofs.bit_commit(bit, 77, b, g.Gg, nonces)
            results[bit] = (b, state, proofs.bit_respond(state, e))

        run()  # warm the per-generator constants first
        traces[bit] = _trace_group_ops(monkeypatch, run)
    assert traces[0] == traces[1]
    assert traces[0]  # something was traced
    for bit in (0, 1):
        b, state, (c0, s0, s1) = results[bit]
        assert b == GroupElement.base_mul(77) + g.Gg.point * (bit + 1) - g.Gg.point
        r0, r1 = proofs.bit_recompute(b, -g.Gg.point, e, c0=c0, s0=s0, s1=s1)
        assert (r0, r1) == (state.r0, state.r1)  # the CDS proof verifies for both bits


def test_presentation_runs_the_same_group_operations_for_zero_and_non_zero_values(
        world, monkeypatch: pytest.MonkeyPatch) -> None:
    zero, five = world.credentials([0, 5])
    g = generators()
    traces = [
        _trace_group_ops(monkeypatch, lambda c=c: statements.present(g, c, 99))
        for c in (zero, five)
    ]
    assert traces[0] == traces[1]
    # Ca = z·Ga + (a+1)·Gg − Gg + r·Gh in one 4-point combine
    assert ("secp256k1_ec_pubkey_combine", 4) in traces[0]

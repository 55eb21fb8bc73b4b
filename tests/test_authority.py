"""Directory authorities: signed entries, signed documents, and the k-of-n consensus.
Each attack test performs the attack through the public API and fails if it works."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from hornet.authority import (
    Authority,
    AuthorityKey,
    consensus,
    sign_entry,
    verify_document,
    verify_entry,
)
from hornet.core import crypto
from hornet.core.params import Params
from hornet.directory.model import NodeKeys, relay_info
from hornet.errors import ConfigError, HornetError, IntegrityError, ReplayError

PARAMS = Params()
NOW = 1_800_000_000
RNG = random.Random(40)
RELAYS = [NodeKeys.generate(RNG) for _ in range(4)]
AUTHORITIES = [AuthorityKey.generate(RNG) for _ in range(3)]
TRUSTED = frozenset(a.public for a in AUTHORITIES)
AUX = bytes(32)


def _entry(keys: NodeKeys, port: int, signed_at: int = NOW, **changes: Any) -> dict[str, Any]:
    entry = relay_info(keys, ("127.0.0.1", port), PARAMS, now=NOW).to_json()
    entry.update(changes)
    return sign_entry(keys.node_key, entry, signed_at, AUX)


def _authority(i: int) -> Authority:
    authority = Authority(AUTHORITIES[i], PARAMS)
    for j, keys in enumerate(RELAYS):
        authority.submit(_entry(keys, 7000 + j), NOW)
    return authority


def test_bip340_signing_matches_the_published_vector_0() -> None:
    signature = crypto.schnorr_sign(bytes(31) + b"\x03", bytes(32), bytes(32))
    assert signature.hex().upper() == (
        "E907831F80848D1069A5371B402410364BDF1C5F8307B0084C55F1CE2DCA8215"
        "25F66A4A85EA8B71E482A74F382D2CE5EBEEE8FDB2172F477DF4900D310536C0"
    )


def test_three_authorities_give_the_directory_of_their_relays() -> None:
    documents = [_authority(i).publish(NOW, AUX) for i in range(3)]
    directory, valid_until = consensus(documents, TRUSTED, 2, NOW + 10)
    assert {r.node_id for r in directory} == {k.node_id for k in RELAYS}
    assert valid_until == NOW + 3600
    assert directory.get(RELAYS[0].node_id).setup_key(PARAMS.epoch_of(NOW)) is not None  # type: ignore[union-attr]


def test_an_entry_signed_by_another_key_is_refused() -> None:
    authority = Authority(AUTHORITIES[0], PARAMS)
    forged = _entry(RELAYS[0], 7000)
    # The attacker signs the victim's entry, with its own address, under its own key.
    forged["entry"]["address"] = "203.0.113.9:7000"
    forged = sign_entry(RELAYS[1].node_key, forged["entry"], NOW, AUX)
    with pytest.raises(IntegrityError):
        authority.submit(forged, NOW)
    assert authority.entries == {}


def test_a_tampered_entry_is_refused() -> None:
    entry = _entry(RELAYS[0], 7000)
    entry["entry"]["address"] = "203.0.113.9:7000"
    with pytest.raises(IntegrityError):
        verify_entry(entry)


def test_an_old_entry_replayed_cannot_roll_a_relay_back() -> None:
    authority = Authority(AUTHORITIES[0], PARAMS)
    old = _entry(RELAYS[0], 7000, signed_at=NOW - 60)
    authority.submit(old, NOW - 60)
    authority.submit(_entry(RELAYS[0], 7001, signed_at=NOW), NOW)
    with pytest.raises(ReplayError):
        authority.submit(old, NOW)
    assert authority.entries[RELAYS[0].node_id].info.address == ("127.0.0.1", 7001)


def test_an_entry_for_another_relays_address_is_refused() -> None:
    authority = Authority(AUTHORITIES[0], PARAMS)
    authority.submit(_entry(RELAYS[0], 7000), NOW)
    with pytest.raises(ConfigError, match="another relay holds this address"):
        authority.submit(_entry(RELAYS[1], 7000), NOW)


def test_an_entry_without_current_keys_or_far_from_now_is_refused() -> None:
    authority = Authority(AUTHORITIES[0], PARAMS)
    stale = relay_info(RELAYS[0], ("127.0.0.1", 7000), PARAMS, now=NOW - 5 * 3600).to_json()
    with pytest.raises(ConfigError, match="no setup key"):
        authority.submit(sign_entry(RELAYS[0].node_key, stale, NOW, AUX), NOW)
    with pytest.raises(ConfigError, match="too far"):
        authority.submit(_entry(RELAYS[0], 7000, signed_at=NOW - 3600), NOW)


def test_one_lying_authority_cannot_add_or_change_a_relay() -> None:
    honest = [_authority(i).publish(NOW, AUX) for i in range(2)]
    liar = _authority(2)
    # The liar lists a relay of its own and swaps relay 0's address for its own.
    evil = NodeKeys.generate(random.Random(99))
    liar.submit(_entry(evil, 9000), NOW)
    liar.submit(_entry(RELAYS[0], 9001, signed_at=NOW + 1), NOW)
    directory, _ = consensus([*honest, liar.publish(NOW, AUX)], TRUSTED, 2, NOW + 10)
    assert directory.get(evil.node_id) is None
    assert directory.get(RELAYS[0].node_id).address == ("127.0.0.1", 7000)  # type: ignore[union-attr]


def test_documents_from_untrusted_keys_do_not_count() -> None:
    impostors = [AuthorityKey.generate(random.Random(50 + i)) for i in range(2)]
    documents = []
    for key in impostors:
        authority = Authority(key, PARAMS)
        authority.submit(_entry(RELAYS[0], 7000), NOW)
        documents.append(authority.publish(NOW, AUX))
    documents.append(_authority(0).publish(NOW, AUX))
    with pytest.raises(ConfigError, match="only 1 of the 2"):
        consensus(documents, TRUSTED, 2, NOW + 10)


def test_a_tampered_document_does_not_verify() -> None:
    document = _authority(0).publish(NOW, AUX)
    changed = copy.deepcopy(document)
    changed["relays"][0]["address"] = "203.0.113.9:1"
    with pytest.raises(IntegrityError):
        verify_document(changed, TRUSTED, NOW + 10)
    extended = copy.deepcopy(document)
    extended["valid_until"] += 10 * 3600
    with pytest.raises(IntegrityError):
        verify_document(extended, TRUSTED, NOW + 10)


def test_an_expired_document_is_refused_and_the_previous_is_kept() -> None:
    authority = _authority(0)
    first = authority.publish(NOW, AUX)
    second = authority.publish(NOW + 1800, AUX)
    assert authority.previous == first and authority.current == second
    with pytest.raises(ConfigError, match="not valid now"):
        verify_document(first, TRUSTED, NOW + 3600)
    assert verify_document(second, TRUSTED, NOW + 3600).valid_until == NOW + 1800 + 3600


def test_entries_not_renewed_leave_the_document() -> None:
    authority = _authority(0)
    later = NOW + authority.entry_lifetime_s + 1
    renewed = relay_info(RELAYS[0], ("127.0.0.1", 7000), PARAMS, now=later).to_json()
    authority.submit(sign_entry(RELAYS[0].node_key, renewed, later, AUX), later)
    document = authority.publish(later, AUX)
    assert [e["node_id"] for e in document["relays"]] == [RELAYS[0].node_id.hex()]


def test_authority_key_files(tmp_path: Path) -> None:
    key = AuthorityKey.generate(random.Random(7))
    key.write(tmp_path / "authority.key")
    assert (tmp_path / "authority.key").stat().st_mode & 0o777 == 0o600
    assert AuthorityKey.load(tmp_path / "authority.key").public == key.public
    assert "secret" not in repr(key) or key.secret.secret_bytes().hex() not in repr(key)
    (tmp_path / "authority.key").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        AuthorityKey.load(tmp_path / "authority.key")


@pytest.mark.parametrize(
    "garbage",
    [None, [], {}, {"entry": {}, "signed_at": 1, "signature": "00"}, {"entry": 1}],
)
def test_garbage_entries_raise_hornet_errors_only(garbage: Any) -> None:
    with pytest.raises(HornetError):
        verify_entry(garbage)
    with pytest.raises(HornetError):
        verify_document(garbage, TRUSTED, NOW)

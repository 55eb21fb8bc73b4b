"""Mixers listed through the authorities: a mixer's relay uploads its entry with the
mixer's listing (issuer keys per credential epoch) signed by the mixer's Lightning node
key, the authorities' documents carry it, and a node's k-of-n consensus lists the mixer.
Each attack test performs the attack and fails if it works."""

from __future__ import annotations

import copy
import random
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from hornet.authority import (
    Authority,
    AuthorityKey,
    consensus,
    sign_document,
    sign_entry,
    sign_mixer_listing,
    verify_entry,
)
from hornet.authority.service import serve_authority
from hornet.core import crypto
from hornet.core.params import Params
from hornet.credentials.params import CredentialParams
from hornet.directory.document import MIXER_TAG, tagged_digest
from hornet.directory.fetch import DirectoryClient, publish_entry
from hornet.directory.model import MixerListing, NodeKeys, relay_info
from hornet.errors import ConfigError, HornetError, IntegrityError
from hornet.mixer.engine import mixer_listing
from hornet.mixer.entry import relay_keys
from hornet.mixer.keys import derive_issuer_key
from hornet.mixer.session import Wallet

PARAMS = Params()
NOW = 1_800_000_000
AUX = bytes(32)
RNG = random.Random(70)
RELAYS = [NodeKeys.generate(RNG) for _ in range(3)]
AUTHORITIES = [AuthorityKey.generate(RNG) for _ in range(3)]
TRUSTED = frozenset(a.public for a in AUTHORITIES)
MASTER = RNG.randbytes(32)
MIXER_KEY = crypto.SecretKey.from_rng(RNG)  # the mixer's Lightning node key
MIXER_RELAY = relay_keys(MASTER)  # its co-hosted relay


def _listing(now: float, master: bytes = MASTER, key: crypto.SecretKey = MIXER_KEY) -> MixerListing:
    return mixer_listing(
        CredentialParams(issuance_k=8), key.public_key,
        lambda epoch: derive_issuer_key(master, epoch), now,
    )


def _mixer_field(now: float) -> dict[str, Any]:
    return {"mixer": sign_mixer_listing(MIXER_KEY, _listing(now), MIXER_RELAY.node_id, AUX)}


def _entry(keys: NodeKeys, port: int, signed_at: int = NOW, **extra: Any) -> dict[str, Any]:
    entry = relay_info(keys, ("127.0.0.1", port), PARAMS, now=NOW).to_json()
    entry.update(extra)
    return sign_entry(keys.node_key, entry, signed_at, AUX)


def _authority(i: int) -> Authority:
    authority = Authority(AUTHORITIES[i], PARAMS)
    for j, keys in enumerate(RELAYS):
        authority.submit(_entry(keys, 7000 + j), NOW)
    authority.submit(_entry(MIXER_RELAY, 7100, **_mixer_field(NOW)), NOW)
    return authority


def test_the_consensus_lists_the_mixer_its_relay_uploaded() -> None:
    documents = [_authority(i).publish(NOW, AUX) for i in range(3)]
    directory, _ = consensus(documents, TRUSTED, 2, NOW + 10)
    assert directory.mixers == (_listing(NOW),)
    assert directory.get(MIXER_RELAY.node_id) is not None
    wallet = Wallet.from_directory(directory, MIXER_KEY.public_key)
    assert wallet.listing.issuer_keys == _listing(NOW).issuer_keys


def test_a_relay_cannot_carry_a_listing_the_mixer_did_not_sign() -> None:
    authority = Authority(AUTHORITIES[0], PARAMS)
    rogue = RELAYS[0]
    # 1. The mixer's own signed listing, copied into another relay's entry.
    with pytest.raises(IntegrityError):
        authority.submit(_entry(rogue, 7000, **_mixer_field(NOW)), NOW)
    # 2. A listing under the mixer's node id with the rogue's issuer keys, signed by the
    #    rogue (it does not hold the mixer's key).
    forged = _listing(NOW, master=bytes(32))
    body = {"listing": forged.to_json(), "relay": rogue.node_id.hex()}
    signature = crypto.schnorr_sign(
        rogue.node_key.secret_bytes(), tagged_digest(MIXER_TAG, body), AUX
    )
    field = {"listing": body["listing"], "signature": signature.hex()}
    with pytest.raises(IntegrityError):
        authority.submit(_entry(rogue, 7000, mixer=field), NOW)
    # 3. The mixer's signed listing with one issuer key swapped.
    tampered = _mixer_field(NOW)
    first = next(iter(tampered["mixer"]["listing"]["issuer_keys"]))
    tampered["mixer"]["listing"]["issuer_keys"][first] = (
        forged.to_json()["issuer_keys"][first]
    )
    with pytest.raises(IntegrityError):
        authority.submit(_entry(MIXER_RELAY, 7100, **tampered), NOW)
    assert not authority.entries


def test_colluding_authorities_cannot_change_a_mixers_issuer_keys() -> None:
    """Even k authorities (the whole threshold) cannot list issuer keys the mixer did not
    sign: nodes check the mixer's signature in every document."""
    forged = _listing(NOW, master=bytes(32)).to_json()
    documents = []
    for i in range(2):
        authority = _authority(i)
        entry = copy.deepcopy(authority.entries[MIXER_RELAY.node_id].entry)
        entry["mixer"]["listing"] = forged
        documents.append(
            _resign(authority, [e.entry for e in authority.entries.values()
                                if e.info.node_id != MIXER_RELAY.node_id] + [entry])
        )
    with pytest.raises(ConfigError, match="only 0 of the 2"):
        consensus(documents, TRUSTED, 2, NOW + 10)


def _resign(authority: Authority, entries: list[dict[str, Any]]) -> dict[str, Any]:
    params = authority.publish(NOW, AUX)["params"]
    return sign_document(authority.key.secret, entries, params, NOW, NOW + 3600, AUX)


def test_one_authority_cannot_drop_or_move_a_mixer() -> None:
    honest = [_authority(i).publish(NOW, AUX) for i in range(2)]
    liar = _authority(2)
    # The liar drops the mixer's listing from its document: outvoted by the other two.
    stripped = copy.deepcopy(liar.entries[MIXER_RELAY.node_id].entry)
    del stripped["mixer"]
    lying = _resign(liar, [e.entry for e in liar.entries.values()
                           if e.info.node_id != MIXER_RELAY.node_id] + [stripped])
    directory, _ = consensus([*honest, lying], TRUSTED, 2, NOW + 10)
    assert directory.mixers == (_listing(NOW),)
    # Two agreed entries carrying one mixer (its key signed for two relays): neither is
    # used, and an authority refuses the second one.
    second = Authority(AUTHORITIES[0], PARAMS)
    second.submit(_entry(MIXER_RELAY, 7100, **_mixer_field(NOW)), NOW)
    twice = sign_mixer_listing(MIXER_KEY, _listing(NOW), RELAYS[1].node_id, AUX)
    with pytest.raises(ConfigError, match="carries this mixer"):
        second.submit(_entry(RELAYS[1], 7001, mixer=twice), NOW)


@pytest.mark.parametrize(
    "garbage",
    [None, 5, "x", {}, {"listing": {}}, {"listing": {}, "signature": "00" * 64},
     {"listing": [], "signature": 1}],
)
def test_garbage_mixer_fields_raise_hornet_errors_only(garbage: Any) -> None:
    with pytest.raises(HornetError):
        verify_entry(_entry(RELAYS[0], 7000, mixer=garbage))


async def test_a_mixer_listed_through_http_authorities_reaches_a_wallet(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        urls = []
        for i, key in enumerate(AUTHORITIES):
            address = await nursery.start(
                partial(
                    serve_authority,
                    Authority(key, PARAMS),
                    ("127.0.0.1", 0),
                    state_dir=tmp_path / f"authority{i}",
                    publish_interval_s=0.5,
                )
            )
            urls.append(f"http://127.0.0.1:{address[1]}")
        for j, relay in enumerate(RELAYS):
            assert await publish_entry(urls, relay, ("127.0.0.1", 7000 + j), PARAMS) == 3
        now = time.time()
        field = {"mixer": sign_mixer_listing(MIXER_KEY, _listing(now), MIXER_RELAY.node_id, AUX)}
        assert await publish_entry(
            urls, MIXER_RELAY, ("127.0.0.1", 7100), PARAMS, now=now, extra=field
        ) == 3
        # A relay replaying the mixer's listing in its own entry is refused over HTTP too.
        rogue = sign_entry(
            RELAYS[0].node_key,
            {**relay_info(RELAYS[0], ("127.0.0.1", 7000), PARAMS, now=now).to_json(), **field},
            int(now) + 1,
            AUX,
        )
        async with httpx.AsyncClient() as http:
            refused = await http.post(f"{urls[0]}/entry", json=rogue)
        assert refused.status_code == 400
        await trio.sleep(1.2)  # each authority has published since
        client = DirectoryClient(urls, TRUSTED, 2, cache=tmp_path / "cache.json")
        directory = await client.fetch()
        assert directory.mixers == (_listing(now),)
        assert len(directory) == 4
        assert Wallet.from_directory(directory, MIXER_KEY.public_key).mixer_id == (
            MIXER_KEY.public_key
        )
        nursery.cancel_scope.cancel()


def test_a_mixer_carried_by_two_agreed_relays_is_not_listed() -> None:
    """The mixer signed its listing for two relays and each is agreed by k authorities
    (each authority holds one carrier): neither relay nor the mixer is used."""
    keys = [*AUTHORITIES, AuthorityKey.generate(random.Random(71))]
    documents = []
    for i, key in enumerate(keys):
        authority = Authority(key, PARAMS)
        carrier, port = (MIXER_RELAY, 7100) if i < 2 else (RELAYS[2], 7002)
        field = sign_mixer_listing(MIXER_KEY, _listing(NOW), carrier.node_id, AUX)
        authority.submit(_entry(RELAYS[0], 7000), NOW)
        authority.submit(_entry(carrier, port, mixer=field), NOW)
        documents.append(authority.publish(NOW, AUX))
    directory, _ = consensus(documents, frozenset(k.public for k in keys), 2, NOW + 10)
    assert directory.mixers == ()
    assert [r.node_id for r in directory] == [RELAYS[0].node_id]

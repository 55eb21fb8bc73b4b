"""Replay hornet's golden vectors (tests/vectors/hornet-*.json) hop by hop.

Relays are rebuilt from the secrets in the files alone, so these tests check the wire
format, not just self-consistency. ``tests/vectors/generate.py`` must also reproduce
the files byte for byte from its seed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from hornet.core.crypto import SecretKey
from hornet.core.params import CHDR_LEN, Params, Profile
from hornet.core.relay import Deliver, Drop, DropReason, Forward, Relay

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
FILES = sorted(VECTORS.glob("hornet-*.json"))


def _relays(doc: dict[str, Any], section: dict[str, Any] | None = None) -> dict[str, Relay]:
    params = Params(max_hops=doc["max_hops"], profile=Profile(doc["profile"]))
    relays = {}
    for entry in (section or doc)["relays"]:
        relay = Relay(
            SecretKey(bytes.fromhex(entry["secret_key"])),
            bytes.fromhex(entry["local_secret"]),
            params,
        )
        assert relay.node_id.hex() == entry["node_id"]
        assert relay.node_key.public_key.hex() == entry["public_key"]
        epoch = params.epoch_of(doc["now"])
        assert relay.setup_public_key(epoch).hex() == entry["setup_public_key"]
        relays[entry["node_id"]] = relay
    return relays


def _check(result: Forward | Deliver | Drop, expected: dict[str, str]) -> None:
    if expected["action"] == "forward":
        assert isinstance(result, Forward)
        assert result.next_hop.hex() == expected["next_hop"]
        assert result.packet.hex() == expected["packet"]
    elif expected["action"] == "deliver":
        assert isinstance(result, Deliver)
        assert result.circuit_id.hex() == expected["circuit_id"]
        assert result.reply_hop.hex() == expected["reply_hop"]
        assert result.message.hex() == expected["message"]
    else:
        assert isinstance(result, Drop) and result.reason.value == expected["reason"]


def test_vector_files_exist() -> None:
    assert {f.name for f in FILES} == {"hornet-paper.json", "hornet-hardened.json"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_golden_vectors_replay_hop_by_hop(path: Path) -> None:
    doc = json.loads(path.read_text())
    relays = _relays(doc)
    now = doc["now"]
    sections = (doc["setup"]["hops"], doc["data_forward"]["hops"], doc["data_backward"]["hops"])
    for hops in sections:
        for hop in hops:
            _check(relays[hop["node_id"]].process(bytes.fromhex(hop["packet_in"]), now), hop["out"])
    assert doc["setup"]["hops"][0]["packet_in"] == doc["setup"]["p1"]
    first_data = bytes.fromhex(doc["data_forward"]["hops"][0]["packet_in"])
    assert (
        first_data[CHDR_LEN : CHDR_LEN + len(doc["ahdr_forward"]) // 2].hex() == doc["ahdr_forward"]
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_rendezvous_vectors_replay_hop_by_hop(path: Path) -> None:
    doc = json.loads(path.read_text())
    section = doc["rendezvous"]
    relays = _relays(doc, section)
    trips = [
        section[name]["hops"]
        for name in (
            "destination_setup",
            "source_setup",
            "source_to_destination",
            "destination_to_source",
        )
    ]
    for hops in trips:
        for hop in hops:
            _check(
                relays[hop["node_id"]].process(bytes.fromhex(hop["packet_in"]), doc["now"]),
                hop["out"],
            )
    # The splice: RP receives a nested packet and sends an ordinary data packet on.
    rp_hops = [h for h in trips[2] if h["node_id"] == section["rendezvous_point"]]
    assert len(rp_hops) == 1
    assert rp_hops[0]["packet_in"][:2] == "03" and rp_hops[0]["out"]["packet"][:2] == "02"
    assert section["source_to_destination"]["at_destination"] == trips[2][-1]["out"]["packet"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_golden_vectors_replayed_at_a_later_time_are_refused(path: Path) -> None:
    doc = json.loads(path.read_text())
    relays = _relays(doc)
    hop = doc["data_forward"]["hops"][0]
    relay = relays[hop["node_id"]]
    # Tolerated skew: still accepted just before EXP + max_skew_s, refused from then on.
    late = doc["exp"] + doc["max_skew_s"]
    assert isinstance(relay.process(bytes.fromhex(hop["packet_in"]), late - 1), Forward)
    result = relays[hop["node_id"]].process(bytes.fromhex(hop["packet_in"]), late)
    assert isinstance(result, Drop) and result.reason.value == "expired"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_golden_vectors_replayed_to_the_same_relay_are_refused(path: Path) -> None:
    doc = json.loads(path.read_text())
    relays = _relays(doc)
    now = doc["now"]
    for section in ("setup", "data_forward"):
        hop = doc[section]["hops"][0]
        relay, packet = relays[hop["node_id"]], bytes.fromhex(hop["packet_in"])
        _check(relay.process(packet, now), hop["out"])
        again = relay.process(packet, now)
        if section == "setup" or doc["profile"] == "hardened":
            assert again == Drop(DropReason.REPLAY)
        else:
            assert isinstance(again, Forward)  # the paper profile has no data replay filter


def test_generator_reproduces_the_files_byte_for_byte() -> None:
    sys.path.insert(0, str(VECTORS))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(VECTORS))
    for name, doc in generate.documents().items():
        assert (VECTORS / name).read_text() == json.dumps(doc, indent=1) + "\n"

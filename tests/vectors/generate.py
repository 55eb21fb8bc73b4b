"""Write hornet's golden vectors: ``python tests/vectors/generate.py``.

Everything derives from one seed, so the output is byte-for-byte reproducible. Each file
lists the relays' secrets (identity key, local secret; their key-epoch setup keys and SVs
derive from it, SPEC.md §7.1, at restart generation 0), the inputs, and every hop's packet in and
decision out, so another implementation can replay them hop by hop
(``tests/core/test_golden_vectors.py`` does exactly that).

hornet-paper.json and hornet-hardened.json, one per profile, each hold:
- setup: P➊ through 3 forward hops (2 relays and the destination, whose answer is P➋)
  and P➋ through 2 backward relays, and the two AHDRs the source builds;
- data: one forward packet (INIT) and one backward packet on that circuit;
- rendezvous: its own 5 relays; D's and S's RENDEZVOUS setups with relay 2 as RP, D's
  descriptor, one nested packet S → RP → D (INIT, carrying RH_S) and D's answer.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from hornet.core.crypto import SecretKey
from hornet.core.e2e import DestinationSession, SourceSession
from hornet.core.params import Params, Profile
from hornet.core.relay import Deliver, Drop, Forward
from hornet.core.rendezvous import RendezvousDestination, RendezvousSource
from hornet.core.setup import build_setup, complete_setup
from hornet.testing.sim import SOURCE_ID, SimNetwork, Trip

SEED = 0x484F524E
HERE = Path(__file__).resolve().parent
NOW, EXP, PAYLOAD = 1_700_000_000, 1_700_000_600, 512


def _result(result: Forward | Deliver | Drop) -> dict[str, str]:
    if isinstance(result, Forward):
        return {
            "action": "forward",
            "next_hop": result.next_hop.hex(),
            "packet": result.packet.hex(),
        }
    if isinstance(result, Deliver):
        return {
            "action": "deliver",
            "circuit_id": result.circuit_id.hex(),
            "reply_hop": result.reply_hop.hex(),
            "message": result.message.hex(),
        }
    return {"action": "drop", "reason": result.reason.value}


def _trip(trip: Trip) -> list[dict[str, Any]]:
    return [
        {"node_id": hop.node_id.hex(), "packet_in": hop.packet.hex(), "out": _result(hop.result)}
        for hop in trip.hops
    ]


def _relays(net: SimNetwork) -> list[dict[str, str]]:
    epoch = net.params.epoch_of(NOW)
    return [
        {
            "node_id": relay.node_id.hex(),
            "secret_key": relay.node_key.secret_bytes().hex(),
            "public_key": relay.node_key.public_key.hex(),
            "local_secret": net.secrets[i].hex(),
            "setup_public_key": relay.setup_public_key(epoch).hex(),  # key epoch ``key_epoch``
        }
        for i, relay in enumerate(net.relays)
    ]


DEST_ID = b"dest\x00\x00\x00\x01"


def _setup_trip(
    net: SimNetwork, forward: list[int], backward: list[int], endpoint: bytes, rng: random.Random
) -> tuple[Any, Trip]:
    epoch = net.params.epoch_of(NOW)
    request = build_setup(
        net.params,
        [net.spec(i, epoch) for i in forward],
        [net.spec(i, epoch) for i in backward],
        endpoint,
        EXP,
        rng,
        rendezvous=True,
        key_epoch=epoch,
    )
    trip = net.send(request.first_hop, request.packet, NOW)
    return complete_setup(request.pending, trip.exit_packet, rng), trip


def build_rendezvous(params: Params) -> dict[str, Any]:
    net = SimNetwork(5, params, seed=SEED + 2)
    rng = random.Random(SEED + 3)
    rp = 2
    d_keys, d_trip = _setup_trip(net, [3, rp], [4], DEST_ID, rng)
    identity = SecretKey.from_rng(rng)
    dest = RendezvousDestination(d_keys, identity, PAYLOAD)
    descriptor = dest.descriptor()
    s_keys, s_trip = _setup_trip(net, [0, rp], [1], SOURCE_ID, rng)
    source = RendezvousSource(s_keys, descriptor, rng)
    to_d = net.deliver(source.seal(b"hornet golden vector: to D", NOW, rng), NOW)
    got = dest.receive(to_d.exit_packet)
    assert got.data == b"hornet golden vector: to D"
    to_s = net.deliver(dest.seal(got.connection, b"hornet golden vector: to S", NOW, rng), NOW)
    assert source.open(to_s.exit_packet) == b"hornet golden vector: to S"
    return {
        "relays": _relays(net),
        "rendezvous_point": net.relays[rp].node_id.hex(),
        "destination_id": DEST_ID.hex(),
        "destination_identity_key": identity.secret_bytes().hex(),
        "destination_setup": {"hops": _trip(d_trip)},
        "source_setup": {"hops": _trip(s_trip)},
        "descriptor": descriptor.encode().hex(),
        "source_to_destination": {
            "message": "hornet golden vector: to D",
            "hops": _trip(to_d),
            "at_destination": to_d.exit_packet.hex(),
        },
        "destination_to_source": {
            "message": "hornet golden vector: to S",
            "hops": _trip(to_s),
            "at_source": to_s.exit_packet.hex(),
        },
    }


def build(profile: Profile) -> dict[str, Any]:
    params = Params(profile=profile)
    net = SimNetwork(5, params, seed=SEED)
    rng = random.Random(SEED + 1)
    forward, backward = [0, 1, 2], [3, 4]
    epoch = params.epoch_of(NOW)
    request = build_setup(
        params,
        [net.spec(i, epoch) for i in forward],
        [net.spec(i, epoch) for i in backward],
        SOURCE_ID,
        EXP,
        rng,
        key_epoch=epoch,
    )
    # The destination answers P➊ with P➋ (a Forward to R^b_0); the trip follows it through
    # the backward relays until it leaves the network towards the source.
    setup_trip = net.send(request.first_hop, request.packet, NOW)
    keys = complete_setup(request.pending, setup_trip.exit_packet, rng)
    source = SourceSession(keys, PAYLOAD)
    out = source.seal(b"hornet golden vector: forward", NOW, rng)
    data_fwd = net.deliver(out, NOW)
    dest = DestinationSession(params, data_fwd.delivered, PAYLOAD)
    assert dest.receive(data_fwd.delivered) == b"hornet golden vector: forward"
    reply_out = dest.seal(b"hornet golden vector: backward", rng)
    data_bwd = net.deliver(reply_out, NOW)
    assert source.open(data_bwd.exit_packet) == b"hornet golden vector: backward"
    return {
        "comment": "hornet golden vector; see SPEC.md. Hex strings; times in Unix seconds.",
        "profile": profile.value,
        "max_hops": params.max_hops,
        "now": NOW,
        "exp": EXP,
        "epoch_s": params.epoch_s,
        "max_skew_s": params.max_skew_s,
        "key_epoch": params.epoch_of(NOW),
        "generation": 0,
        "payload_size": PAYLOAD,
        "source_id": SOURCE_ID.hex(),
        "relays": _relays(net),
        "forward_path": [net.relays[i].node_id.hex() for i in forward],
        "backward_path": [net.relays[i].node_id.hex() for i in backward],
        "setup": {
            "p1": request.packet.hex(),
            "hops": _trip(setup_trip),
            "p2_at_source": setup_trip.exit_packet.hex(),
        },
        "ahdr_forward": keys.ahdr_forward.hex(),
        "ahdr_backward": keys.ahdr_backward.hex(),
        "data_forward": {"message": "hornet golden vector: forward", "hops": _trip(data_fwd)},
        "data_backward": {
            "message": "hornet golden vector: backward",
            "first_hop": reply_out.next_hop.hex(),
            "hops": _trip(data_bwd),
            "at_source": data_bwd.exit_packet.hex(),
        },
        "rendezvous": build_rendezvous(params),
    }


def documents() -> dict[str, dict[str, Any]]:
    return {f"hornet-{p.value}.json": build(p) for p in (Profile.PAPER, Profile.HARDENED)}


def main() -> int:
    for name, doc in documents().items():
        (HERE / name).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

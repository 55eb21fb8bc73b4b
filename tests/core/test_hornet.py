"""HORNET setup and data forwarding: round trips, tampering, expiry, replay, sizes."""

from __future__ import annotations

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.core import crypto
from hornet.core.chdr import PUZZLE_OFFSET, bound_setup_chdr, setup_chdr, with_puzzle
from hornet.core.circuit import DestinationSession, SourceSession
from hornet.core.fs import (
    Flag,
    HopKeys,
    Route,
    add_fs,
    fs_create,
    fs_open,
    init_fs_payload,
    retrieve_fses,
)
from hornet.core.params import CHDR_LEN, C, Params, Profile
from hornet.core.relay import Deliver, Drop, DropReason, Forward, Relay, SetupDrop
from hornet.core.setup import (
    CircuitKeys,
    SetupRequest,
    build_setup,
    complete_setup,
    route_tlv,
)
from hornet.core.sphinx import build_onion
from hornet.errors import IntegrityError, RemoteProtocolError, ReplayError
from hornet.testing.sim import SOURCE_ID, SimNetwork, open_session

PROFILES = [Profile.PAPER, Profile.HARDENED]
R = 7


@pytest.fixture(scope="module", params=PROFILES, ids=lambda p: p.value)
def net(request: pytest.FixtureRequest) -> SimNetwork:
    return SimNetwork(2 * R + 1, Params(max_hops=R, profile=request.param))


def _forward(length: int) -> list[int]:
    return list(range(length))


def _backward(length: int) -> list[int]:
    return list(range(R, R + length))


def _request(net: SimNetwork, forward: int, backward: int, exp: int = 600) -> SetupRequest:
    return build_setup(
        net.params,
        [net.spec(i) for i in _forward(forward)],
        [net.spec(i) for i in _backward(backward)],
        SOURCE_ID,
        exp,
        net.rng,
    )


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("length", range(1, R + 1))
def test_round_trip_for_every_path_length(net: SimNetwork, length: int) -> None:
    source, dest = open_session(net, _forward(length), _backward(length))
    for i in range(3):
        trip = net.deliver(source.seal(b"ping %d" % i, 2, net.rng), 2)
        assert len(trip.hops) == length
        assert dest.receive(trip.delivered) == b"ping %d" % i
        back = net.deliver(dest.seal(b"pong %d" % i, net.rng), 2)
        assert len(back.hops) == length
        assert source.open(back.exit_packet) == b"pong %d" % i


@pytest.mark.parametrize(("forward", "backward"), [(1, R), (R, 1), (3, 5)])
def test_paths_of_different_lengths_each_way(net: SimNetwork, forward: int, backward: int) -> None:
    source, dest = open_session(net, _forward(forward), _backward(backward))
    back = net.deliver(dest.seal(b"reply", net.rng), 2)
    assert source.open(back.exit_packet) == b"reply"


def test_first_packet_carries_the_backward_header(net: SimNetwork) -> None:
    source = SourceSession(net.setup(_forward(3), _backward(3)), 1024)
    trip = net.deliver(source.seal(b"hello", 1, net.rng), 1)
    dest = DestinationSession(net.params, trip.delivered, 1024)
    assert dest.receive(trip.delivered) == b"hello"
    assert dest.ahdr_backward == source.keys.ahdr_backward
    with pytest.raises(Exception, match="no reply header"):
        DestinationSession(net.params, trip.delivered, 1024).seal(b"x", net.rng)


# --- sizes --------------------------------------------------------------------------------


def test_setup_and_data_packets_have_one_size_whatever_the_path(net: SimNetwork) -> None:
    setup_sizes, data_sizes = set(), set()
    for length in (1, 4, R):
        request = build_setup(
            net.params,
            [net.spec(i) for i in _forward(length)],
            [net.spec(i) for i in _backward(length)],
            SOURCE_ID,
            600,
            net.rng,
        )
        trip = net.send(request.first_hop, request.packet, 0)
        setup_sizes.update(len(h.packet) for h in trip.hops)
        keys = complete_setup(request.pending, trip.exit_packet, net.rng)
        out = SourceSession(keys, 512).seal(b"x", 1, net.rng)
        data_sizes.update(len(h.packet) for h in net.deliver(out, 1).hops)
    assert setup_sizes == {net.params.setup_packet_len}
    assert data_sizes == {net.params.data_packet_len(512)}


def test_last_hop_view_of_the_ahdr_looks_random() -> None:
    net = SimNetwork(4, Params(max_hops=R, profile=Profile.PAPER), seed=5)
    counts: collections.Counter[int] = collections.Counter()
    ahdr = slice(CHDR_LEN, CHDR_LEN + net.params.ahdr_len)
    for _ in range(40):
        keys = net.setup([0, 1], [2])
        packet = SourceSession(keys, 1024).seal(b"x", 1, net.rng).packet
        at_last_hop = net.send(keys.first_hop, packet, 1).hops[-1].packet[ahdr]
        view = net.relays[1]._circuit(at_last_hop, 1).next_ahdr  # what PROC_AHDR leaves
        assert bytes(C) not in view  # no zero block: padding is random, not zeros
        counts.update(view)
    total = sum(counts.values())
    # 40 × 336 bytes: every byte value appears, none far above its share.
    assert len(counts) == 256
    assert max(counts.values()) < 3 * total / 256


# --- tampering ----------------------------------------------------------------------------


def test_every_flipped_ahdr_bit_is_dropped_at_the_next_relay(net: SimNetwork) -> None:
    source, _ = open_session(net, _forward(3), _backward(2))
    packet = source.seal(b"data", 2, net.rng).packet
    relay = net.by_id[source.keys.first_hop]
    assert isinstance(relay.process(packet, 2), Forward)
    for bit in range(CHDR_LEN * 8, (CHDR_LEN + net.params.ahdr_len) * 8):
        tampered = bytearray(packet)
        tampered[bit // 8] ^= 1 << (bit % 8)
        result = relay.process(bytes(tampered), 2)
        assert isinstance(result, Drop), bit
        assert result.reason in (DropReason.INTEGRITY, DropReason.MALFORMED, DropReason.EXPIRED)


def test_flipped_setup_header_bits_are_dropped_at_the_next_relay(net: SimNetwork) -> None:
    request = _request(net, 3, 3)
    relay = net.by_id[request.first_hop]
    header_end = CHDR_LEN + net.params.shdr_len
    puzzle = range(PUZZLE_OFFSET * 8, CHDR_LEN * 8)  # read by the entry relay's node only
    for bit in range(0, header_end * 8, 3):  # CHDR and Sphinx header, every third bit
        if bit in puzzle:
            continue
        tampered = bytearray(request.packet)
        tampered[bit // 8] ^= 1 << (bit % 8)
        assert isinstance(relay.process(bytes(tampered), 0), Drop), bit


def test_the_puzzle_field_is_not_forwarded(net: SimNetwork) -> None:
    # The entry relay's puzzle (SPEC.md §7.6) is zeroed before the CHDR goes on: the
    # packet that leaves is the one a puzzle-free setup would give.
    request = _request(net, 3, 3)
    relay = net.by_id[request.first_hop]
    with_nonce = with_puzzle(request.packet, 9, bytes(range(10)))
    assert with_nonce != request.packet
    first = relay.process(with_nonce, 0)
    assert isinstance(first, Forward)
    assert first.packet[:CHDR_LEN] == bound_setup_chdr(request.packet[:CHDR_LEN])
    assert first.packet[PUZZLE_OFFSET:CHDR_LEN] == bytes(CHDR_LEN - PUZZLE_OFFSET)


@pytest.mark.parametrize("receiver", [0, 1, 2], ids=["first-link", "by-relay-0", "by-relay-1"])
def test_every_flipped_forward_setup_payload_bit_is_dropped_at_the_next_hop(
    net: SimNetwork, receiver: int
) -> None:
    # Flip SP on the link into hop ``receiver`` of a 3-hop forward path: on the first
    # link, or by a corrupt relay before it. Hop 2 is the destination.
    request = _request(net, 3, 3)
    hop, packet = request.first_hop, request.packet
    for _ in range(receiver):
        result = net.by_id[hop].process(packet, 0)
        assert isinstance(result, Forward)
        hop, packet = result.next_hop, result.packet
    sp_start = CHDR_LEN + net.params.shdr_len
    for bit in range(sp_start * 8 + receiver, (sp_start + net.params.sp_len) * 8, 3):
        tampered = bytearray(packet)
        tampered[bit // 8] ^= 1 << (bit % 8)
        trip = net.send(hop, bytes(tampered), 0)
        assert len(trip.hops) == 1, bit  # no tag reaches anyone beyond the next hop
        assert trip.final == Drop(DropReason.INTEGRITY), bit
    assert isinstance(net.by_id[hop].process(packet, 0), Forward)  # the original passes


def _backward_setup(net: SimNetwork) -> tuple[SetupRequest, Forward]:
    """A setup over 2 forward and 3 backward hops, run up to the destination's P➋."""
    request = _request(net, 2, 3)
    relay = net.by_id[request.first_hop].process(request.packet, 0)
    assert isinstance(relay, Forward)
    answer = net.by_id[relay.next_hop].process(relay.packet, 0)
    assert isinstance(answer, Forward)
    return request, answer


@pytest.mark.parametrize("offset", [0, 200, -1])
def test_flipped_backward_setup_payload_fails_at_the_source(net: SimNetwork, offset: int) -> None:
    # SP^b is made by the destination: backward hops cannot check it, the source does.
    request, answer = _backward_setup(net)
    tampered = bytearray(answer.packet)
    tampered[CHDR_LEN + net.params.shdr_len + offset % net.params.sp_len] ^= 0x04
    back = net.send(answer.next_hop, bytes(tampered), 0)
    assert len(back.hops) == 3 and isinstance(back.final, Forward)
    with pytest.raises(IntegrityError):
        complete_setup(request.pending, back.exit_packet, net.rng)
    request, answer = _backward_setup(net)
    back = net.send(answer.next_hop, answer.packet, 0)
    assert isinstance(complete_setup(request.pending, back.exit_packet, net.rng), CircuitKeys)


def _setup_hop_packet(net: SimNetwork, flags: Flag, *, bind_sp: bool) -> bytes:
    """A one-hop setup packet for relay 0 with route ``flags``, its SP bound or not."""
    p = net.params
    chdr = setup_chdr(p.max_hops, 600)
    sp = net.rng.randbytes(p.sp_len)
    onion = build_onion(
        net.rng.randbytes(32),
        [(net.spec(0).public_key, route_tlv(Route(net.relays[1].node_id, flags)))],
        associated_data=chdr,
        payload_size=p.sphinx_payload_size,
        last_hop_next_hmac=net.rng.randbytes(32),
        hop_associated_data=(lambda _: [sp]) if bind_sp else None,
    )
    return chdr + onion.packet + sp + init_fs_payload(net.rng.randbytes(16), p.max_hops)


def test_a_setup_dropped_after_its_ecdh_still_hands_out_its_tag(net: SimNetwork) -> None:
    # Its tag entered the replay filter, so the caller must persist it too: a relay
    # restarted with that tag refuses the replay before the ECDH (REPLAY, not ROUTE).
    original = net.relays[0]
    relay = Relay(original.node_key, net.secrets[0], net.params, record_setup_tags=True)
    packet = _setup_hop_packet(net, Flag.NONE, bind_sp=False)
    result = relay.process(packet, 0)
    assert isinstance(result, SetupDrop) and result.reason is DropReason.ROUTE
    assert relay.unpersisted_setup_tags == 1
    restarted = Relay(
        original.node_key, net.secrets[0], net.params, generation=1, record_setup_tags=True
    )
    restarted.restore_setup_tags(result.setup_tag.epoch, [result.setup_tag.tag])
    assert restarted.process(packet, 0) == Drop(DropReason.REPLAY)


def test_unbound_setup_payload_is_refused_on_a_forward_hop(net: SimNetwork) -> None:
    # A P➋-style header (HMAC over CHDR only) must travel a BACKWARD route, and a bound
    # one must not: otherwise a source could send P➊ without per-hop SP integrity.
    relay = net.relays[0]
    unbound_forward = _setup_hop_packet(net, Flag.NONE, bind_sp=False)
    assert relay.process(unbound_forward, 0) == Drop(DropReason.ROUTE)
    bound_backward = _setup_hop_packet(net, Flag.BACKWARD, bind_sp=True)
    assert relay.process(bound_backward, 0) == Drop(DropReason.ROUTE)
    for flags, bind_sp in ((Flag.BACKWARD, False), (Flag.NONE, True)):
        accepted = relay.process(_setup_hop_packet(net, flags, bind_sp=bind_sp), 0)
        assert isinstance(accepted, Forward)
        assert accepted.next_hop == net.relays[1].node_id


def test_flipped_fs_payload_fails_at_the_source(net: SimNetwork) -> None:
    request = _request(net, 3, 3)
    tampered = bytearray(request.packet)
    # Block 0 of P survives every ADD_FS (each drops the last block) and is MACed.
    tampered[-R * C + 5] ^= 0x01
    trip = net.send(request.first_hop, bytes(tampered), 0)
    with pytest.raises(IntegrityError):
        complete_setup(request.pending, trip.exit_packet, net.rng)


def test_tampered_payload_is_dropped_or_rejected_end_to_end(net: SimNetwork) -> None:
    source, dest = open_session(net, _forward(3), _backward(3))
    packet = bytearray(source.seal(b"attack at dawn", 2, net.rng).packet)
    packet[-100] ^= 0x5A  # a corrupt first relay XORs a pattern into the payload
    trip = net.send(source.keys.first_hop, bytes(packet), 2)
    if net.params.profile is Profile.HARDENED:
        # The next relay's tag check fails: the destination never sees the packet.
        assert isinstance(trip.final, Drop) and trip.final.reason is DropReason.INTEGRITY
        assert len(trip.hops) == 1
    else:
        with pytest.raises(IntegrityError):
            dest.receive(trip.delivered)


def test_forged_replayed_and_duplicated_payloads_are_rejected(net: SimNetwork) -> None:
    source, dest = open_session(net, _forward(2), _backward(2))
    out = source.seal(b"once", 2, net.rng)
    delivered = net.deliver(out, 2).delivered
    assert dest.receive(delivered) == b"once"
    again = net.deliver(out, 2)  # the same packet again
    if net.params.profile is Profile.HARDENED:
        # The first relay's (FS, IV) filter refuses it (SPEC.md §7.5).
        assert len(again.hops) == 1 and again.final == Drop(DropReason.REPLAY)
    else:
        delivered = again.delivered
    with pytest.raises(ReplayError):
        dest.receive(delivered)  # and the destination's window too
    back_packet = dest.seal(b"r", net.rng)
    back = net.deliver(back_packet, 2).exit_packet
    assert source.open(back) == b"r"
    with pytest.raises(ReplayError):
        source.open(back)
    again = net.deliver(back_packet, 2)
    if net.params.profile is Profile.HARDENED:
        assert len(again.hops) == 1 and again.final == Drop(DropReason.REPLAY)


# --- expiry and replay ----------------------------------------------------------------------


def test_expired_setup_and_data_are_dropped(net: SimNetwork) -> None:
    skew = net.params.max_skew_s  # a relay tolerates clocks this far behind the source's
    request = build_setup(net.params, [net.spec(0)], [net.spec(R)], SOURCE_ID, 100, net.rng)
    late = net.send(request.first_hop, request.packet, 100 + skew)
    assert isinstance(late.final, Drop) and late.final.reason is DropReason.EXPIRED
    keys = net.setup([0, 1], [R], exp=50)
    out = SourceSession(keys, 1024).seal(b"x", 1, net.rng)
    assert isinstance(net.deliver(out, 49 + skew).final, Deliver)
    expired = net.deliver(out, 50 + skew)  # now served from the cache: still checked
    assert isinstance(expired.final, Drop) and expired.final.reason is DropReason.EXPIRED


def test_replayed_setup_packets_are_dropped(net: SimNetwork) -> None:
    request = build_setup(
        net.params, [net.spec(i) for i in _forward(2)], [net.spec(R)], SOURCE_ID, 600, net.rng
    )
    assert isinstance(net.send(request.first_hop, request.packet, 0).final, Forward)
    replay = net.send(request.first_hop, request.packet, 0)
    assert isinstance(replay.final, Drop) and replay.final.reason is DropReason.REPLAY


# --- untrusted bytes ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_only_ever_drop(data: bytes) -> None:
    net = _garbage_net()
    for relay in net.relays[:1]:
        result = relay.process(data, 0)
        assert isinstance(result, Drop)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(min_size=1, max_size=1600), kind=st.sampled_from([1, 2, 3]))
def test_well_typed_garbage_only_ever_drops(body: bytes, kind: int) -> None:
    net = _garbage_net()
    params = net.params
    size = params.setup_packet_len if kind == 1 else params.data_packet_len(512)
    packet = (bytes((kind, params.max_hops)) + body * (size // len(body) + 1))[:size]
    assert isinstance(net.relays[0].process(packet, 0), Drop)


_GARBAGE_NET: list[SimNetwork] = []


def _garbage_net() -> SimNetwork:
    if not _GARBAGE_NET:
        _GARBAGE_NET.append(SimNetwork(1, Params()))
    return _GARBAGE_NET[0]


# --- forwarding segments and the FS payload ----------------------------------------------


def test_fs_seals_all_32_bytes_as_one_block() -> None:
    prp = crypto.Prp256(bytes(range(16)))
    fs = fs_create(prp, bytes(16), Route(b"nexthop1"), 1234)
    opened = fs_open(prp, fs)
    assert opened.s == bytes(16) and opened.route.next_hop == b"nexthop1" and opened.exp == 1234
    # Flipping a bit in either half changes the other half of the plaintext too.
    for index in (0, 31):
        flipped = bytearray(fs)
        flipped[index] ^= 1
        plain = prp.decrypt(bytes(flipped))
        assert plain[:16] != bytes(16) and plain[16:] != prp.decrypt(fs)[16:]


def test_retrieve_fses_recovers_what_relays_added() -> None:
    for hops in range(1, R + 1):
        keys = [HopKeys(bytes([i]) * 16) for i in range(hops)]
        fses = [bytes([0xF0 + i]) * 32 for i in range(hops)]
        payload = init_fs_payload(b"seed" * 4, R)
        for k, fs in zip(keys, fses, strict=True):
            payload = add_fs(k, fs, payload)
            assert len(payload) == R * C
        assert retrieve_fses(payload, b"seed" * 4, keys, R) == fses
        with pytest.raises(IntegrityError):
            retrieve_fses(payload[:-1] + b"\x00", b"seed" * 4, keys, R)


def test_relay_state_is_bounded_by_its_cache() -> None:
    net = SimNetwork(3, Params(profile=Profile.PAPER), cache_size=64)
    relay = net.by_id[net.relays[0].node_id]
    for _ in range(200):
        keys = net.setup([0, 1], [2])
        net.deliver(SourceSession(keys, 512).seal(b"", 1, net.rng), 1)
    assert relay.cached_circuits == 64


def test_relays_work_without_a_cache() -> None:
    net = SimNetwork(4, Params(), cache_size=0)
    source, dest = open_session(net, [0, 1, 2], [3])
    assert dest.receive(net.deliver(source.seal(b"nc", 2, net.rng), 2).delivered) == b"nc"
    assert all(relay.cached_circuits == 0 for relay in net.relays)


def test_drop_reasons_never_leak_exception_types() -> None:
    assert {r.value for r in DropReason} == {
        "malformed",
        "integrity",
        "expired",
        "replay",
        "route",
        "lifetime",
        "key_epoch",
    }
    assert issubclass(ReplayError, RemoteProtocolError)


def test_end_to_end_frame_is_seq_then_aes256gcm_under_the_hmac_derived_key() -> None:
    """SPEC §5.5 byte for byte, checked with an independent AES-GCM and HMAC."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    net = SimNetwork(4)
    source, _ = open_session(net, [0, 1, 2, 3], [2, 1, 0])
    source.peer_has_reply_header = True  # plain DATA frames from here on
    trip = net.deliver(source.seal(b"watchtower blob", 1, net.rng), 1)
    deliver = trip.delivered
    key = hmac.new(b"hornet-e2e-fwd", deliver.session_secret, hashlib.sha256).digest()
    seq = deliver.message[:8]
    assert int.from_bytes(seq, "big") == 1  # frame 0 was the INIT
    plain = AESGCM(key).decrypt(bytes(4) + seq, deliver.message[8:], None)
    assert plain[:3] == bytes((0x00,)) + len(b"watchtower blob").to_bytes(2, "big")
    assert plain[3:18] == b"watchtower blob"
    assert plain[18:] == bytes(len(plain) - 18)


def test_the_destination_keys_its_gcm_and_ctr_layers_apart() -> None:
    """SPEC §3.3 and §5.4 byte for byte, with an independent AES: one s'_D, two modes.

    The destination removes its forward layer with AES-GCM and adds its backward layer
    with AES-CTR, both under keys from s'_D. GCM must use gcm = AES_s(8), CTR enc = AES_s(6),
    and GCM must not open under enc: no key serves both modes.
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from hornet.core.circuit import ReplayWindow, e2e_aead, open_frame

    net = SimNetwork(4, Params(profile=Profile.HARDENED), seed=0x6C5)
    p = net.params
    source, dest = open_session(net, [0, 1], [2, 3])
    trip = net.deliver(source.seal(b"two modes", 2, net.rng), 2)
    s = trip.delivered.session_secret
    ecb = Cipher(algorithms.AES(s), modes.ECB()).encryptor()
    derived = ecb.update(b"".join(i.to_bytes(16, "big") for i in range(1, 9)))
    prp, enc, gcm = derived[64:80], derived[80:96], derived[112:128]
    prp_ecb = Cipher(algorithms.AES(prp), modes.ECB())

    # Forward: what D received, opened as §5.4 says, under gcm and not under enc.
    packet = trip.hops[-1].packet
    ahdr_end = CHDR_LEN + p.ahdr_len
    iv = prp_ecb.decryptor().update(packet[2:CHDR_LEN])
    tag = packet[ahdr_end : ahdr_end + 16]
    rest = packet[ahdr_end + 16 : ahdr_end + p.tag_array_len]
    sealed = rest + bytes(16) + packet[ahdr_end + p.tag_array_len :] + tag
    opened = AESGCM(gcm).decrypt(iv[:12], sealed, None)
    assert opened[p.tag_array_len :] == trip.delivered.message
    with pytest.raises(InvalidTag):
        AESGCM(enc).decrypt(iv[:12], sealed, None)

    # Backward: D's layer is CTR under enc from the arriving IV, PRP(IV) leaving.
    out = dest.seal(b"back", net.rng)
    iv_out = out.packet[2:CHDR_LEN]
    iv_in = prp_ecb.decryptor().update(iv_out)
    layer = out.packet[ahdr_end + p.tag_array_len :]
    message = Cipher(algorithms.AES(enc), modes.CTR(iv_in)).encryptor().update(layer)
    frame = open_frame(e2e_aead(s, backward=True), message, ReplayWindow())
    assert frame.body == b"back"
    assert gcm != enc

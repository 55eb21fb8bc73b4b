"""Onion messages: the official blinded onion-message vector, processing rules, properties."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from externals import load_bolt04_vector
from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.core import crypto, sphinx
from hornet.core.blinding import (
    BlindedPath,
    EncryptedData,
    create_blinded_path,
    derive_blinding_secrets,
    pad_to_equal_length,
    unblind,
)
from hornet.core.onion_message import (
    HEADER_LEN,
    LARGE_PACKET_SIZE,
    MAX_PACKET_SIZE,
    SMALL_PACKET_SIZE,
    DeliverMessage,
    ForwardMessage,
    OnionMessage,
    OnionMessagePayload,
    create_message_path,
    create_onion_message,
    prepend_hops,
    process_onion_message,
)
from hornet.core.wire import encode_tlv_stream
from hornet.errors import (
    IntegrityError,
    LocalProtocolError,
    MalformedInputError,
    RemoteProtocolError,
)

h = bytes.fromhex

ALICE_ID = "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619"
BOB_ID = "0324653eac434488002cc06bbfb7f10fe18991e35f9fe4302dbea6d2353dc0ab1c"
CAROL_ID = "027f31ebc5462c1fdce1b737ecff52d37d75dea43ce11c74d25aa297165faa2007"
DAVE_ID = "032c0b7cf95324a07d05398b240174dc0c2be444d96b159aa6c7f7b1e668680991"


def _key(i: int) -> bytes:
    return hashlib.sha256(b"hornet-om-node-%d" % i).digest()


def _pub(i: int) -> bytes:
    return crypto.pubkey_from_secret(_key(i))


# --- blinded-onion-message-onion-test.json --------------------------------------------


def _vector() -> Any:
    return load_bolt04_vector("blinded-onion-message-onion-test.json")


def _vector_path(vector: Any) -> BlindedPath:
    """Dave's path Bob -> Carol -> Dave, then the sender's hop through Alice."""
    hops = vector["generate"]["hops"]
    dave_path = create_blinded_path(
        h(hops[1]["path_key_secret"]),
        [
            (h(node), h(hop["encrypted_data_tlv"]))
            for node, hop in zip((BOB_ID, CAROL_ID, DAVE_ID), hops[1:], strict=True)
        ],
    )
    return prepend_hops(h(hops[0]["path_key_secret"]), [h(ALICE_ID)], dave_path)


def test_vector_node_ids_are_the_decrypt_private_keys() -> None:
    keys = [h(hop["privkey"]) for hop in _vector()["decrypt"]["hops"]]
    assert [crypto.pubkey_from_secret(k).hex() for k in keys] == [
        ALICE_ID,
        BOB_ID,
        CAROL_ID,
        DAVE_ID,
    ]


def test_vector_encrypted_data_tlvs_from_fields_and_padding() -> None:
    hops = _vector()["generate"]["hops"]
    # Alice's hop: what prepend_hops writes (next_node_id, then the override).
    alice = hops[0]["tlvs"]
    assert EncryptedData(
        next_node_id=h(alice["next_node_id"]),
        next_path_key_override=h(alice["next_path_key_override"]),
    ).encode() == h(hops[0]["encrypted_data_tlv"])
    assert crypto.pubkey_from_secret(h(alice["path_key_override_secret"])) == h(
        alice["next_path_key_override"]
    )
    # Dave padded his three hops to equal length: our padding rule gives the same bytes.
    dave_items = [
        EncryptedData(
            next_node_id=h(hops[1]["tlvs"]["next_node_id"]), records=((561, h("123456")),)
        ),
        EncryptedData(next_node_id=h(hops[2]["tlvs"]["next_node_id"])),
        EncryptedData(path_id=h(hops[3]["tlvs"]["path_id"]), records=((65535, h("06c1")),)),
    ]
    padded = pad_to_equal_length(dave_items)
    assert [item.encode() for item in padded] == [h(x["encrypted_data_tlv"]) for x in hops[1:]]
    assert [item.padding for item in padded] == [
        h(x["tlvs"]["padding"]) if "padding" in x["tlvs"] else None for x in hops[1:]
    ]


def test_vector_generates_every_hop_value() -> None:
    vector = _vector()
    hops = vector["generate"]["hops"]
    chains = (
        (h(hops[0]["path_key_secret"]), [ALICE_ID], hops[:1]),
        (h(hops[1]["path_key_secret"]), [BOB_ID, CAROL_ID, DAVE_ID], hops[1:]),
    )
    for e0, nodes, expected in chains:
        secrets = derive_blinding_secrets(e0, [h(n) for n in nodes])
        for hop, got in zip(expected, secrets, strict=True):
            assert got.path_privkey == h(hop["path_key_secret"])
            assert got.shared_secret == h(hop["ss"])
            assert got.blinding_factor == h(hop["HMAC256('blinded_node_id', ss)"])
            assert got.blinded_node_id == h(hop["blinded_node_id"])
            assert got.path_key == h(hop["E"])
            assert got.path_key_tweak == h(hop["H(E || ss)"])
            # The vector prints e_{i+1} with a trailing 0x01 (a "compressed" marker).
            assert hop["next_e"].endswith("01") and len(hop["next_e"]) == 66
            assert got.next_path_privkey == h(hop["next_e"])[:32]
            assert got.rho == h(hop["rho"])
    path = _vector_path(vector)
    route = vector["route"]
    assert path.first_node_id == h(route["first_node_id"])
    assert path.first_path_key == h(route["first_path_key"])
    for hop, want, gen in zip(path.hops, route["hops"], hops, strict=True):
        assert hop.blinded_node_id == h(want["blinded_node_id"])
        assert hop.encrypted_recipient_data == h(want["encrypted_recipient_data"])
        assert hop.encrypted_recipient_data == h(gen["encrypted_recipient_data"])


def test_vector_onion_message_is_reproduced_byte_for_byte() -> None:
    vector = _vector()
    out = create_onion_message(
        h(vector["generate"]["session_key"]),
        _vector_path(vector),
        payload=[(1, h(vector["onionmessage"]["unknown_tag_1"]))],
    )
    assert out.first_node_id == h(ALICE_ID)
    message = OnionMessage.decode(out.message)
    assert message.packet == h(vector["onionmessage"]["onion_message_packet"])
    assert len(message.packet) == SMALL_PACKET_SIZE
    assert message.path_key == h(vector["route"]["first_path_key"])
    assert out.message == h(vector["decrypt"]["hops"][0]["onion_message"])
    assert message.encode() == out.message


def test_vector_is_processed_hop_by_hop() -> None:
    vector = _vector()
    hops = vector["decrypt"]["hops"]
    route_hops = vector["route"]["hops"]
    for index, hop in enumerate(hops):
        node_key = h(hop["privkey"])
        message = h(hop["onion_message"])
        # Lower level: unblind, peel, read the onionmsg_tlv.
        parsed = OnionMessage.decode(message)
        keys = unblind(node_key, parsed.path_key)
        peeled = sphinx.peel_onion(keys.blinded_private_key, parsed.packet)
        tlv = OnionMessagePayload.decode(peeled.payload)
        assert tlv.encrypted_recipient_data == h(route_hops[index]["encrypted_recipient_data"])

        result = process_onion_message(crypto.SecretKey(node_key), message)
        assert process_onion_message(node_key, message) == result
        if index < len(hops) - 1:
            assert isinstance(result, ForwardMessage)
            assert result.next_node_id == h(hop["next_node_id"])
            assert result.short_channel_id is None
            assert result.message == h(hops[index + 1]["onion_message"])
            assert tlv.records == () and tlv.reply_path is None
        else:
            assert isinstance(result, DeliverMessage)
            want = hop["tlvs"]
            assert tlv.encrypted_recipient_data == h(want["encrypted_recipient_data"])
            assert result.payload == ((1, h(want["unknown_tag_1"])),)
            assert result.payload == tlv.records
            assert result.reply_path is None
            path_id = h(vector["generate"]["hops"][3]["tlvs"]["path_id"])
            assert result.path_id == path_id
            assert result.path_id_matches(path_id)
            assert not result.path_id_matches(bytes(32))
            assert result.recipient_data.records == ((65535, h("06c1")),)
            assert result.path_key == parsed.path_key
            assert path_id.hex() not in repr(result)


# --- round trips ------------------------------------------------------------------------


def _process_along(keys: Sequence[bytes], message: bytes, nodes: Sequence[bytes]) -> DeliverMessage:
    for index, key in enumerate(keys):
        result = process_onion_message(key, message)
        if index < len(keys) - 1:
            assert isinstance(result, ForwardMessage)
            assert result.next_node_id == nodes[index + 1]
            assert len(result.message) == len(message)
            message = result.message
        else:
            assert isinstance(result, DeliverMessage)
            return result
    raise AssertionError("unreachable")


@settings(max_examples=25, deadline=None)
@given(
    hops=st.integers(min_value=1, max_value=8),
    body=st.binary(max_size=600),
    large=st.booleans(),
    seed=st.integers(min_value=1, max_value=2**32),
    with_reply=st.booleans(),
)
def test_round_trip_through_every_path_length_and_both_sizes(
    hops: int, body: bytes, large: bool, seed: int, with_reply: bool
) -> None:
    keys = [_key(seed + i) for i in range(hops)]
    nodes = [crypto.pubkey_from_secret(k) for k in keys]
    path_id = hashlib.sha256(b"path-id-%d" % seed).digest()
    path = create_message_path(_key(-seed), nodes, path_id=path_id)
    if large:
        body = body + bytes(2000)  # does not fit in 1300 bytes
    reply = (
        create_message_path(_key(-seed - 1), [nodes[0], _pub(0)], path_id=b"r")
        if with_reply
        else None
    )
    out = create_onion_message(_key(-seed - 2), path, payload=[(64, body)], reply_path=reply)
    assert out.first_node_id == nodes[0]
    assert len(out.message) == HEADER_LEN + (LARGE_PACKET_SIZE if large else SMALL_PACKET_SIZE)
    delivered = _process_along(keys, out.message, nodes)
    assert delivered.payload == ((64, body),)
    assert delivered.path_id == path_id
    assert delivered.reply_path == reply


def test_reply_travels_back_along_the_reply_path() -> None:
    alice, bob, carol = _key(1), _key(2), _key(3)
    nodes = [_pub(1), _pub(2), _pub(3)]
    reply_path = create_message_path(_key(10), [nodes[1], nodes[0]], path_id=b"reply-secret")
    out = create_onion_message(
        _key(11),
        create_message_path(_key(12), [nodes[1], nodes[2]]),
        payload=[(64, b"req")],
        reply_path=reply_path,
    )
    request = _process_along([bob, carol], out.message, [nodes[1], nodes[2]])
    assert request.reply_path is not None
    answer = create_onion_message(_key(13), request.reply_path, payload=[(66, b"inv")])
    assert answer.first_node_id == nodes[1]
    reply = _process_along([bob, alice], answer.message, [nodes[1], nodes[0]])
    assert reply.payload == ((66, b"inv"),)
    assert reply.path_id_matches(b"reply-secret")


def test_short_channel_id_hops_forward_by_channel() -> None:
    keys = [_key(1), _key(2)]
    nodes = [_pub(1), _pub(2)]
    path = create_blinded_path(
        _key(5),
        [(nodes[0], EncryptedData(short_channel_id=1729)), (nodes[1], EncryptedData(path_id=b"x"))],
    )
    out = create_onion_message(_key(6), path, payload=[(64, b"hi")])
    result = process_onion_message(keys[0], out.message)
    assert isinstance(result, ForwardMessage)
    assert result.short_channel_id == 1729
    assert result.next_node_id is None
    final = process_onion_message(keys[1], result.message)
    assert isinstance(final, DeliverMessage)
    assert final.payload == ((64, b"hi"),)


def test_prepended_hops_reach_a_recipient_path_with_an_override() -> None:
    keys = [_key(i) for i in range(1, 5)]
    nodes = [crypto.pubkey_from_secret(k) for k in keys]
    recipient_path = create_message_path(_key(20), nodes[2:], path_id=b"pid")
    full = prepend_hops(_key(21), nodes[:2], recipient_path)
    assert full.first_node_id == nodes[0]
    assert full.hops[2:] == recipient_path.hops
    out = create_onion_message(_key(22), full, payload=[(64, b"m")])
    assert _process_along(keys, out.message, nodes).path_id == b"pid"
    assert prepend_hops(_key(21), [], recipient_path) is recipient_path
    scid_intro = BlindedPath(b"\x00" + bytes(8), recipient_path.first_path_key, recipient_path.hops)
    with pytest.raises(LocalProtocolError):
        prepend_hops(_key(21), nodes[:1], scid_intro)


def test_size_is_the_smallest_standard_one_that_fits_or_the_callers() -> None:
    path = create_message_path(_key(1), [_pub(2)])
    small = create_onion_message(_key(3), path, payload=[(64, bytes(1000))])
    assert len(small.message) == HEADER_LEN + SMALL_PACKET_SIZE
    large = create_onion_message(_key(3), path, payload=[(64, bytes(1300))])
    assert len(large.message) == HEADER_LEN + LARGE_PACKET_SIZE
    forced = create_onion_message(
        _key(3), path, payload=[(64, b"x")], packet_size=LARGE_PACKET_SIZE
    )
    assert len(forced.message) == HEADER_LEN + LARGE_PACKET_SIZE
    assert isinstance(process_onion_message(_key(2), forced.message), DeliverMessage)
    with pytest.raises(LocalProtocolError):
        create_onion_message(_key(3), path, payload=[(64, bytes(40000))])
    with pytest.raises(LocalProtocolError):
        create_onion_message(_key(3), path, payload=[(64, bytes(1000))], packet_size=500)
    with pytest.raises(LocalProtocolError):
        create_onion_message(_key(3), path, payload=[(64, b"a"), (66, b"b")])
    with pytest.raises(LocalProtocolError):
        create_onion_message(_key(3), path, payload=[(4, b"a")])


# --- reader rules: each "MUST ignore" case raises a typed remote error ---------------


def _custom_onion(
    session: bytes,
    path: BlindedPath,
    payloads: Sequence[bytes],
) -> bytes:
    """An onion message with hand-written onionmsg_tlv payloads (for rule tests)."""
    hops = [(hop.blinded_node_id, p) for hop, p in zip(path.hops, payloads, strict=True)]
    packet = sphinx.create_onion(session, hops, payload_size=1300)
    return OnionMessage(path.first_path_key, packet).encode()


def _erd(path: BlindedPath, index: int) -> tuple[int, bytes]:
    return (4, path.hops[index].encrypted_recipient_data)


def _two_hop_path(first: EncryptedData, last: EncryptedData | None = None) -> BlindedPath:
    return create_blinded_path(
        _key(30), [(_pub(1), first), (_pub(2), last or EncryptedData(path_id=b"p"))]
    )


def test_non_final_hop_with_extra_fields_is_ignored() -> None:
    path = _two_hop_path(EncryptedData(next_node_id=_pub(2)))
    for extra in ((1, b"odd"), (64, b"payload")):
        records = sorted([_erd(path, 0), extra])
        message = _custom_onion(
            _key(31), path, [encode_tlv_stream(records), encode_tlv_stream([_erd(path, 1)])]
        )
        with pytest.raises(MalformedInputError):
            process_onion_message(_key(1), message)


def test_non_final_hop_with_path_id_or_no_next_hop_is_ignored() -> None:
    for data in (EncryptedData(next_node_id=_pub(2), path_id=b"x"), EncryptedData(padding=b"")):
        path = _two_hop_path(data)
        message = _custom_onion(
            _key(31),
            path,
            [encode_tlv_stream([_erd(path, 0)]), encode_tlv_stream([_erd(path, 1)])],
        )
        with pytest.raises(MalformedInputError):
            process_onion_message(_key(1), message)


def test_missing_encrypted_recipient_data_is_ignored() -> None:
    path = create_message_path(_key(30), [_pub(1)])
    message = _custom_onion(_key(31), path, [encode_tlv_stream([(1, b"no erd")])])
    with pytest.raises(MalformedInputError):
        process_onion_message(_key(1), message)


def test_final_hop_rules_on_payload_fields() -> None:
    path = create_message_path(_key(30), [_pub(1)])
    two = _custom_onion(
        _key(31), path, [encode_tlv_stream([_erd(path, 0), (64, b"a"), (66, b"b")])]
    )
    with pytest.raises(MalformedInputError):
        process_onion_message(_key(1), two)
    unknown_even = _custom_onion(_key(31), path, [encode_tlv_stream([_erd(path, 0), (72, b"a")])])
    with pytest.raises(MalformedInputError):
        process_onion_message(_key(1), unknown_even)
    accepted = process_onion_message(_key(1), unknown_even, known_payload_types={72})
    assert isinstance(accepted, DeliverMessage)
    assert accepted.payload == ((72, b"a"),)
    unknown_odd = _custom_onion(_key(31), path, [encode_tlv_stream([_erd(path, 0), (73, b"a")])])
    result = process_onion_message(_key(1), unknown_odd)
    assert isinstance(result, DeliverMessage)
    assert result.payload == ((73, b"a"),)


def test_allowed_features_with_any_bit_is_ignored() -> None:
    path = create_blinded_path(_key(30), [(_pub(1), EncryptedData(records=((14, b"\x02"),)))])
    out = create_onion_message(_key(31), path)
    with pytest.raises(MalformedInputError):
        process_onion_message(_key(1), out.message)
    empty = create_blinded_path(_key(30), [(_pub(1), EncryptedData(records=((14, b""),)))])
    assert isinstance(
        process_onion_message(_key(1), create_onion_message(_key(31), empty).message),
        DeliverMessage,
    )


def test_wrong_node_key_fails_integrity() -> None:
    out = create_onion_message(_key(3), create_message_path(_key(1), [_pub(2)]))
    with pytest.raises(IntegrityError):
        process_onion_message(_key(4), out.message)


def test_framing_errors_are_malformed() -> None:
    out = create_onion_message(_key(3), create_message_path(_key(1), [_pub(2)])).message
    bad_inputs = [
        b"",
        out[:36],
        b"\x02\x02" + out[2:],  # wrong message type
        out[:-1],  # len says one more byte
        out + b"\x00",
        out[:35] + (MAX_PACKET_SIZE + 1).to_bytes(2, "big") + bytes(MAX_PACKET_SIZE + 1),
    ]
    for bad in bad_inputs:
        with pytest.raises(MalformedInputError):
            process_onion_message(_key(2), bad)
        with pytest.raises(MalformedInputError):
            OnionMessage.decode(bad)


_VALID = create_onion_message(
    _key(3), create_message_path(_key(1), [_pub(2), _pub(4)]), payload=[(64, b"payload")]
).message


@settings(max_examples=300, deadline=None)
@given(bit=st.integers(min_value=0, max_value=len(_VALID) * 8 - 1))
def test_any_single_bit_flip_is_rejected_with_a_typed_error(bit: int) -> None:
    flipped = bytearray(_VALID)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(RemoteProtocolError):
        process_onion_message(_key(2), bytes(flipped))


def test_every_bit_flip_of_the_path_key_and_header_is_rejected() -> None:
    assert isinstance(process_onion_message(_key(2), _VALID), ForwardMessage)
    for bit in range((HEADER_LEN + 34) * 8):
        flipped = bytearray(_VALID)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(RemoteProtocolError):
            process_onion_message(_key(2), bytes(flipped))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_remote_errors(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        process_onion_message(_key(2), data)
    for decoder in (OnionMessage.decode, OnionMessagePayload.decode):
        with contextlib.suppress(RemoteProtocolError):
            assert decoder(data).encode() == data  # whatever is accepted re-encodes exactly


@settings(max_examples=200, deadline=None)
@given(
    path_key=st.sampled_from([_pub(9), b"\x02" + bytes(32), b"\x03" + b"\xee" * 32]),
    body=st.binary(min_size=SMALL_PACKET_SIZE - 1, max_size=SMALL_PACKET_SIZE - 1),
)
def test_well_framed_random_packets_raise_only_remote_errors(path_key: bytes, body: bytes) -> None:
    message = b"\x02\x01" + path_key + SMALL_PACKET_SIZE.to_bytes(2, "big") + b"\x00" + body
    with pytest.raises(RemoteProtocolError):
        process_onion_message(_key(2), message)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 80), st.binary(max_size=60)), max_size=5))
def test_random_onionmsg_tlv_streams_raise_only_remote_errors(
    records: list[tuple[int, bytes]],
) -> None:
    unique = sorted(dict(records).items())
    try:
        decoded = OnionMessagePayload.decode(encode_tlv_stream(unique))
    except RemoteProtocolError:
        return
    assert decoded.encode() == encode_tlv_stream(unique)


def test_results_are_frozen_and_forward_needs_one_destination() -> None:
    result = process_onion_message(_key(2), _VALID)
    assert isinstance(result, ForwardMessage)
    with pytest.raises(AttributeError):
        result.message = b""  # type: ignore[misc]
    with pytest.raises(LocalProtocolError):
        ForwardMessage(message=b"", next_node_id=_pub(1), short_channel_id=1)
    with pytest.raises(LocalProtocolError):
        ForwardMessage(message=b"")

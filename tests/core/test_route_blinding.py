"""Route blinding: the official route-blinding and blinded-payment vectors, and properties."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import attrs
import pytest
from externals import load_bolt04_vector
from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.core import crypto
from hornet.core.blinding import (
    BlindedHop,
    BlindedPath,
    EncryptedData,
    create_blinded_path,
    decrypt_recipient_data,
    derive_blinding_secrets,
    encrypt_recipient_data,
    next_path_key,
    pad_to_equal_length,
    process_blinded_hop,
    unblind,
)
from hornet.core.sphinx import peel_onion
from hornet.core.wire import decode_tlv_stream, encode_tlv_stream
from hornet.errors import (
    IntegrityError,
    InvalidPointError,
    LocalProtocolError,
    MalformedInputError,
    RemoteProtocolError,
)

h = bytes.fromhex


def _key(i: int) -> bytes:
    return hashlib.sha256(b"hornet-blinding-node-%d" % i).digest()


def _scid(text: str) -> int:
    """BOLT 7 "block x tx x output" text form, e.g. "0x0x1729"."""
    block, tx, out = (int(part) for part in text.split("x"))
    return (block << 40) | (tx << 16) | out


def _tu(value: int) -> bytes:
    """A truncated unsigned integer (BOLT 1 tu32/tu64): minimal big-endian bytes."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _features(bits: list[int]) -> bytes:
    if not bits:
        return b""
    value = sum(1 << bit for bit in bits)
    return value.to_bytes((max(bits) + 8) // 8, "big")


def _expected_records(tlvs: dict[str, Any]) -> list[tuple[int, bytes]]:
    """The records the JSON's ``tlvs`` describe that EncryptedData keeps raw."""
    out: list[tuple[int, bytes]] = []
    if "payment_relay" in tlvs:
        relay = tlvs["payment_relay"]
        out.append(
            (
                10,
                relay["cltv_expiry_delta"].to_bytes(2, "big")
                + relay["fee_proportional_millionths"].to_bytes(4, "big")
                + _tu(relay.get("fee_base_msat", 0)),
            )
        )
    if "payment_constraints" in tlvs:
        constraints = tlvs["payment_constraints"]
        out.append(
            (
                12,
                constraints["max_cltv_expiry"].to_bytes(4, "big")
                + _tu(constraints["htlc_minimum_msat"]),
            )
        )
    if "allowed_features" in tlvs:
        out.append((14, _features(tlvs["allowed_features"]["features"])))
    for name, value in tlvs.items():
        if name.startswith("unknown_tag_"):
            out.append((int(name.removeprefix("unknown_tag_")), h(value)))
    return sorted(out)


# --- route-blinding-test.json -------------------------------------------------------


def _route_vector() -> Any:
    return load_bolt04_vector("route-blinding-test.json")


def test_route_blinding_vector_encrypted_data_tlvs_decode_and_reencode() -> None:
    for hop in _route_vector()["generate"]["hops"]:
        encoded = h(hop["encoded_tlvs"])
        data = EncryptedData.decode(encoded)
        tlvs = hop["tlvs"]
        assert data.padding == (h(tlvs["padding"]) if "padding" in tlvs else None)
        expected_scid = _scid(tlvs["short_channel_id"]) if "short_channel_id" in tlvs else None
        assert data.short_channel_id == expected_scid
        assert data.next_node_id is None
        assert data.path_id == (h(tlvs["path_id"]) if "path_id" in tlvs else None)
        override = tlvs.get("next_path_key_override")
        assert data.next_path_key_override == (h(override) if override else None)
        assert list(data.records) == _expected_records(tlvs)
        assert data.encode() == encoded


def test_route_blinding_vector_generates_every_hop_value() -> None:
    hops = _route_vector()["generate"]["hops"]
    # Two blinded paths, each from its own session key: Bob -> Carol and Dave -> Eve.
    for first, count in ((0, 2), (2, 2)):
        part = hops[first : first + count]
        secrets = derive_blinding_secrets(
            h(part[0]["session_key"]), [h(x["node_id"]) for x in part]
        )
        for hop, hop_secrets in zip(part, secrets, strict=True):
            assert hop_secrets.path_privkey == h(hop["path_privkey"])
            assert hop_secrets.path_key == h(hop["path_key"])
            assert hop_secrets.shared_secret == h(hop["shared_secret"])
            assert hop_secrets.rho == h(hop["rho"])
            assert hop_secrets.blinded_node_id == h(hop["blinded_node_id"])
            assert encrypt_recipient_data(hop_secrets.rho, h(hop["encoded_tlvs"])) == h(
                hop["encrypted_data"]
            )
        # e_{i+1} of hop i is the next hop's path private key.
        assert secrets[0].next_path_privkey == h(part[1]["path_privkey"])


def test_route_blinding_vector_route_is_the_concatenation_of_two_paths() -> None:
    vector = _route_vector()
    hops = vector["generate"]["hops"]
    bob_carol = create_blinded_path(
        h(hops[0]["session_key"]), [(h(x["node_id"]), h(x["encoded_tlvs"])) for x in hops[:2]]
    )
    dave_eve = create_blinded_path(
        h(hops[2]["session_key"]), [(h(x["node_id"]), h(x["encoded_tlvs"])) for x in hops[2:]]
    )
    # Carol's next_path_key_override is the first path key of Dave's path.
    assert EncryptedData.decode(h(hops[1]["encoded_tlvs"])).next_path_key_override == (
        dave_eve.first_path_key
    )
    route = bob_carol.concat(dave_eve)
    expected = vector["route"]
    assert route.first_node_id == h(expected["first_node_id"])
    assert route.first_path_key == h(expected["first_path_key"])
    assert route.hops == tuple(
        BlindedHop(h(x["blinded_node_id"]), h(x["encrypted_data"])) for x in expected["hops"]
    )


def test_route_blinding_vector_unblinds_every_hop() -> None:
    vector = _route_vector()
    route_hops = vector["route"]["hops"]
    unblind_hops = vector["unblind"]["hops"]
    path_key = h(vector["route"]["first_path_key"])
    for hop, route_hop in zip(unblind_hops, route_hops, strict=True):
        assert path_key == h(hop["path_key"])  # each hop's key is the previous hop's output
        node_key = h(hop["node_privkey"])
        result = process_blinded_hop(node_key, path_key, h(route_hop["encrypted_data"]))
        keys = result.keys
        assert keys.blinded_private_key == h(hop["blinded_privkey"])
        # b_i·G is the blinded node id the sender encrypted the onion to.
        assert crypto.pubkey_from_secret(keys.blinded_private_key) == h(
            route_hop["blinded_node_id"]
        )
        assert decrypt_recipient_data(keys.rho, h(route_hop["encrypted_data"])) == h(
            hop["decrypted_data"]
        )
        assert result.data.encode() == h(hop["decrypted_data"])
        # The computed E_{i+1}, and the key actually handed on (override wins).
        assert next_path_key(path_key, keys.shared_secret) == h(hop["next_path_key"])
        override = hop.get("next_path_key_override")
        assert result.next_path_key == h(override or hop["next_path_key"])
        if override:
            assert result.data.next_path_key_override == h(override)
        # unblind with a SecretKey gives the same keys as with raw bytes.
        same = unblind(crypto.SecretKey(node_key), path_key)
        assert same.blinded_private_key == keys.blinded_private_key
        assert same.rho == keys.rho
        path_key = result.next_path_key


# --- blinded-payment-onion-test.json: an extra oracle for unblinding + peeling --------


def test_blinded_payment_vector_peels_with_blinded_keys() -> None:
    vector = load_bolt04_vector("blinded-payment-onion-test.json")
    generate = vector["generate"]
    associated_data = h(generate["associated_data"])
    blinded_route = generate["blinded_route"]
    hops = vector["decrypt"]["hops"]
    onions = [h(hop["onion"]) for hop in hops]
    assert onions[0] == h(generate["onion"])

    # Alice is an ordinary hop.
    peeled = peel_onion(h(hops[0]["node_privkey"]), onions[0], associated_data=associated_data)
    assert peeled.next_onion == onions[1]

    # Bob is the introduction point: plain Sphinx key, path key in current_path_key (12).
    peeled = peel_onion(h(hops[1]["node_privkey"]), onions[1], associated_data=associated_data)
    assert peeled.next_onion == onions[2]
    payload = decode_tlv_stream(peeled.payload)
    path_key = payload[12]
    assert path_key == h(blinded_route["first_path_key"])
    result = process_blinded_hop(h(hops[1]["node_privkey"]), path_key, payload[10])
    assert result.data.short_channel_id == 1
    assert result.next_path_key == h(hops[1]["next_path_key"])
    path_key = result.next_path_key

    # Carol, Dave, Eve peel with their blinded private keys.
    for index in range(2, 5):
        hop = hops[index]
        keys = unblind(h(hop["node_privkey"]), path_key)
        assert crypto.pubkey_from_secret(keys.blinded_private_key) == h(
            blinded_route["hops"][index - 1]["blinded_node_id"]
        )
        peeled = peel_onion(
            keys.blinded_private_key, onions[index], associated_data=associated_data
        )
        assert peeled.next_onion == (onions[index + 1] if index < 4 else None)
        encrypted = decode_tlv_stream(peeled.payload)[10]
        assert encrypted == h(blinded_route["hops"][index - 1]["encrypted_data"])
        result = process_blinded_hop(h(hop["node_privkey"]), path_key, encrypted)
        assert result.next_path_key == h(hop["next_path_key"])
        path_key = result.next_path_key
    assert result.data.path_id == h(
        generate["full_route"]["hops"][4]["tlvs"]["encrypted_recipient_data"]["path_id"]
    )


# --- behaviour and properties ---------------------------------------------------------

_node_index = st.integers(min_value=0, max_value=10_000)
_plaintexts = st.binary(min_size=0, max_size=80)


@settings(max_examples=40, deadline=None)
@given(
    e0=st.integers(min_value=1, max_value=2**64),
    nodes=st.lists(_node_index, min_size=1, max_size=6),
    plaintexts=st.data(),
)
def test_every_hop_recovers_its_data_and_the_path_key_chain(
    e0: int, nodes: list[int], plaintexts: st.DataObject
) -> None:
    keys = [_key(n) for n in nodes]
    datas = [
        EncryptedData(
            path_id=plaintexts.draw(_plaintexts),
            records=((plaintexts.draw(st.integers(15, 99)) * 2 + 1, b"x"),),
        )
        for _ in nodes
    ]
    path = create_blinded_path(
        e0.to_bytes(32, "big"),
        [(crypto.pubkey_from_secret(k), d) for k, d in zip(keys, datas, strict=True)],
    )
    assert path.first_node_id == crypto.pubkey_from_secret(keys[0])
    path_key = path.first_path_key
    for key, data, hop in zip(keys, datas, path.hops, strict=True):
        result = process_blinded_hop(key, path_key, hop.encrypted_recipient_data)
        assert result.data == data
        assert crypto.pubkey_from_secret(result.keys.blinded_private_key) == hop.blinded_node_id
        path_key = result.next_path_key
    assert BlindedPath.decode(path.encode()) == path


def test_tampered_encrypted_recipient_data_is_rejected() -> None:
    node = _key(1)
    path = create_blinded_path(_key(2), [(crypto.pubkey_from_secret(node), b"\x01\x00")])
    data = bytearray(path.hops[0].encrypted_recipient_data)
    for index in range(len(data)):
        flipped = bytearray(data)
        flipped[index] ^= 0x10
        with pytest.raises(IntegrityError):
            process_blinded_hop(node, path.first_path_key, bytes(flipped))


def test_a_wrong_node_key_cannot_decrypt() -> None:
    path = create_blinded_path(_key(2), [(crypto.pubkey_from_secret(_key(1)), b"\x01\x00")])
    with pytest.raises(IntegrityError):
        process_blinded_hop(_key(3), path.first_path_key, path.hops[0].encrypted_recipient_data)


def test_invalid_path_key_is_an_invalid_point() -> None:
    with pytest.raises(InvalidPointError):
        unblind(_key(1), b"\x02" + b"\xff" * 32)


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        (encode_tlv_stream([(16, b"")]), "unknown even"),
        (encode_tlv_stream([(2, bytes(7))]), "scid length"),
        (
            encode_tlv_stream([(2, bytes(8)), (4, crypto.pubkey_from_secret(bytes(31) + b"\x01"))]),
            "both",
        ),
        (encode_tlv_stream([(4, b"\x02" + bytes(31))]), "short point"),
        (encode_tlv_stream([(8, b"\x05" + bytes(32))]), "bad point"),
        (b"\x01\x05\x00", "truncated"),
    ],
)
def test_bad_encrypted_data_tlv_is_malformed(encoded: bytes, reason: str) -> None:
    with pytest.raises(MalformedInputError):
        EncryptedData.decode(encoded)


def test_odd_unknown_and_payment_types_are_kept() -> None:
    encoded = encode_tlv_stream([(10, b"\x00\x24"), (14, b""), (561, b"\x12")])
    data = EncryptedData.decode(encoded)
    assert data.records == ((10, b"\x00\x24"), (14, b""), (561, b"\x12"))
    assert data.allowed_features == b""
    assert data.encode() == encoded


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_into_decoders_raise_only_remote_errors(data: bytes) -> None:
    for decoder in (EncryptedData.decode, BlindedPath.decode):
        with contextlib.suppress(RemoteProtocolError):
            assert decoder(data).encode() == data  # whatever is accepted re-encodes exactly


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_tlv_streams_into_encrypted_data_raise_only_remote_errors(data: bytes) -> None:
    # Build syntactically valid TLV streams so that the field checks are exercised.
    records = []
    offset = 0
    tlv_type = 0
    while offset + 2 <= len(data):
        tlv_type += 1 + data[offset] % 6
        length = data[offset + 1] % 40
        records.append((tlv_type, data[offset + 2 : offset + 2 + length]))
        offset += 2 + length
    try:
        decoded = EncryptedData.decode(encode_tlv_stream(records))
    except RemoteProtocolError:
        return
    assert decoded.encode() == encode_tlv_stream(records)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            EncryptedData,
            short_channel_id=st.none() | st.integers(0, 2**64 - 1),
            path_id=st.none() | st.binary(max_size=400),
            records=st.lists(st.integers(8, 200), unique=True, max_size=3).map(
                lambda ts: tuple((2 * t + 1, b"v" * t) for t in sorted(ts))
            ),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_padding_gives_equal_lengths_and_keeps_content(items: list[EncryptedData]) -> None:
    padded = pad_to_equal_length(items)
    lengths = {len(item.encode()) for item in padded}
    assert len(lengths) == 1
    bare = [len(attrs.evolve(item, padding=None).encode()) for item in items]
    target = lengths.pop()
    assert target >= max(bare)

    def fillable(gap: int) -> bool:
        # One padding record is type (1) ‖ BigSize length (1, or 3 from 253) ‖ bytes.
        return gap == 0 or 2 <= gap <= 2 + 252 or gap >= 4 + 253

    # The target is the smallest length every item can be padded to.
    assert all(fillable(target - n) for n in bare)
    for smaller in range(max(bare), target):
        assert not all(fillable(smaller - n) for n in bare)
    for before, after in zip(items, padded, strict=True):
        assert attrs.evolve(after, padding=None) == attrs.evolve(before, padding=None)
        assert EncryptedData.decode(after.encode()) == after


def test_padding_covers_gaps_that_one_record_cannot_fill() -> None:
    # A 1-byte gap cannot hold a padding record (2 bytes minimum): the target grows.
    short = EncryptedData(path_id=b"")
    long = EncryptedData(path_id=b"a")
    padded = pad_to_equal_length([short, long])
    assert len(padded[0].encode()) == len(padded[1].encode()) == 5


def test_blinded_path_with_sciddir_round_trips_and_rejects_bad_prefixes() -> None:
    path = create_blinded_path(_key(2), [(crypto.pubkey_from_secret(_key(1)), b"\x01\x00")])
    scid_path = BlindedPath(b"\x01" + (1729).to_bytes(8, "big"), path.first_path_key, path.hops)
    assert not scid_path.first_node_is_pubkey
    assert BlindedPath.decode(scid_path.encode()) == scid_path
    with pytest.raises(MalformedInputError):
        BlindedPath.decode(b"\x04" + scid_path.encode()[1:])
    with pytest.raises(MalformedInputError):
        BlindedPath.decode(scid_path.encode() + b"\x00")
    with pytest.raises(MalformedInputError):
        BlindedPath.decode(scid_path.encode()[:-1])
    zero_hops = scid_path.encode()[: 9 + 33] + b"\x00"
    with pytest.raises(MalformedInputError):
        BlindedPath.decode(zero_hops)
    with pytest.raises(LocalProtocolError):
        BlindedPath(b"\x05" + bytes(8), path.first_path_key, path.hops)


def test_secrets_are_hidden_from_repr() -> None:
    secrets = derive_blinding_secrets(_key(2), [crypto.pubkey_from_secret(_key(1))])[0]
    keys = unblind(_key(1), secrets.path_key)
    text = repr(secrets) + repr(keys)
    for secret in (
        secrets.path_privkey,
        secrets.shared_secret,
        secrets.rho,
        secrets.blinding_factor,
        keys.blinded_private_key,
        keys.shared_secret,
    ):
        assert secret.hex() not in text
    assert repr(EncryptedData(path_id=b"\xab" * 16)).count("ab" * 16) == 0


def test_caller_misuse_is_a_local_error() -> None:
    node = crypto.pubkey_from_secret(_key(1))
    with pytest.raises(LocalProtocolError):
        derive_blinding_secrets(bytes(32), [node])
    with pytest.raises(LocalProtocolError):
        derive_blinding_secrets(_key(2), [b"\x02" + b"\xff" * 32])
    with pytest.raises(LocalProtocolError):
        create_blinded_path(_key(2), [])
    with pytest.raises(LocalProtocolError):
        EncryptedData(records=((4, b""),))
    with pytest.raises(LocalProtocolError):
        EncryptedData(next_node_id=b"\x02")

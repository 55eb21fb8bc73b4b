"""Sphinx core: the official BOLT 4 vector, pyln-proto interop, and properties."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence

import pytest
from externals import load_bolt04_vector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyln.proto import onion as pyln_onion
from pyln.proto.onion import RoutingOnion, SphinxHop, SphinxPath, TlvPayload
from pyln.proto.primitives import PrivateKey as PylnPrivateKey
from pyln.proto.primitives import PublicKey as PylnPublicKey
from pyln.proto.primitives import Secret as PylnSecret

from hornet.core import crypto
from hornet.core.sphinx import BuiltOnion, build_onion
from hornet.core.wire import decode_bigsize, encode_bigsize
from hornet.errors import (
    HornetError,
    IntegrityError,
    InvalidPointError,
    LocalProtocolError,
    MalformedInputError,
    RemoteProtocolError,
    UnknownVersionError,
)
from hornet.sphinx import (
    MIN_PAYLOAD_SIZE,
    PeeledOnion,
    SecretKey,
    create_onion,
    hop_frame_size,
    packet_size,
    peel_onion,
)


def _key(i: int) -> bytes:
    """Deterministic valid secret keys for test nodes."""
    return hashlib.sha256(b"hornet-test-node-%d" % i).digest()


def _strip_length(prefixed: bytes) -> bytes:
    length, offset = decode_bigsize(prefixed)
    assert offset + length == len(prefixed)
    return prefixed[offset:]


# --- the official vector --------------------------------------------------------------


def test_bolt4_onion_vector_is_reproduced_byte_for_byte() -> None:
    vector = load_bolt04_vector("onion-test.json")
    gen = vector["generate"]
    hops = [
        (bytes.fromhex(h["pubkey"]), _strip_length(bytes.fromhex(h["payload"])))
        for h in gen["hops"]
    ]
    onion = create_onion(
        bytes.fromhex(gen["session_key"]),
        hops,
        associated_data=bytes.fromhex(gen["associated_data"]),
    )
    assert len(onion) == 1366
    assert onion.hex() == vector["onion"]


def test_bolt4_onion_vector_peels_hop_by_hop() -> None:
    vector = load_bolt04_vector("onion-test.json")
    gen = vector["generate"]
    assocdata = bytes.fromhex(gen["associated_data"])
    onion: bytes | None = bytes.fromhex(vector["onion"])
    node_keys = [bytes.fromhex(k) for k in vector["decode"]]
    for index, (secret, hop) in enumerate(zip(node_keys, gen["hops"], strict=True)):
        assert crypto.pubkey_from_secret(secret).hex() == hop["pubkey"]
        assert onion is not None
        peeled = peel_onion(secret, onion, associated_data=assocdata)
        assert peeled.payload == _strip_length(bytes.fromhex(hop["payload"]))
        assert len(peeled.shared_secret) == 32
        if index < len(node_keys) - 1:
            assert peeled.next_onion is not None and len(peeled.next_onion) == 1366
        else:
            assert peeled.is_final and peeled.next_onion is None
        onion = peeled.next_onion


def test_vector_peel_with_wrong_associated_data_fails_integrity() -> None:
    vector = load_bolt04_vector("onion-test.json")
    secret = bytes.fromhex(vector["decode"][0])
    with pytest.raises(IntegrityError):
        peel_onion(secret, bytes.fromhex(vector["onion"]), associated_data=b"\x43" * 32)


# --- interop with pyln-proto, 1 to 20 hops ---------------------------------------------
#
# pyln-proto (26.4 and every release up to 26.6.9) XORs its ChaCha20 stream in place with
# ``encryptor.update_into(dest, dest)``. cryptography 51 refuses overlapping buffers, so
# every pyln onion call raises ``ValueError: data and buf must not overlap``.
#
# Of the three ways out (a test-only shim, a newer pyln-proto, an upper bound on
# cryptography) we chose the shim: no pyln-proto release fixes the call yet, and an upper
# bound would test interop against a cryptography that users no longer get from
# ``pip install hornet-onion``. The shim replaces exactly that one helper, inside these
# tests only, with the same ChaCha20 keystream XORed through a copy. Every other line
# of pyln-proto's onion code (key derivation, filler, HMACs, TLV parsing) runs unchanged.


def _pyln_chacha20_stream(key: bytes, dest: bytearray | memoryview) -> None:
    """pyln's ``chacha20_stream``: XOR the ChaCha20 keystream (zero nonce) into ``dest``."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    encryptor = Cipher(algorithms.ChaCha20(key, b"\x00" * 16), None).encryptor()
    dest[:] = encryptor.update(bytes(dest))


@pytest.fixture(autouse=True)
def _pyln_onion_with_copying_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyln_onion, "chacha20_stream", _pyln_chacha20_stream)


def test_the_pyln_shim_keeps_pyln_keystream_semantics() -> None:
    """The shim XORs the same stream pyln's helper would, and in place like it."""
    key = bytes(range(32))
    buf = bytearray(b"\x00" * 64)
    _pyln_chacha20_stream(key, buf)
    assert bytes(buf) == crypto.chacha20_stream(key, 64)
    view = memoryview(bytearray(buf))
    _pyln_chacha20_stream(key, view)
    assert bytes(view) == b"\x00" * 64


def _tlv_payload(i: int) -> bytes:
    """A 32-byte TLV payload, so that 20 hops fill 1300 bytes exactly (20 × 65)."""
    payload = TlvPayload()
    payload.add_field(6, i.to_bytes(8, "big"))
    payload.add_field(8, bytes([i]) * 20)
    return payload.to_bytes(include_prefix=False)


@pytest.mark.parametrize("n_hops", range(1, 21))
def test_pyln_unwraps_onions_we_build(n_hops: int) -> None:
    secrets = [_key(i) for i in range(n_hops)]
    hops = [(crypto.pubkey_from_secret(s), _tlv_payload(i)) for i, s in enumerate(secrets)]
    assocdata = b"\x99" * 32
    onion = create_onion(_key(1000 + n_hops), hops, associated_data=assocdata)
    routing = RoutingOnion.from_bin(onion)
    for i, secret in enumerate(secrets):
        payload, routing = routing.unwrap(PylnPrivateKey(secret), assocdata)
        assert payload.to_bytes(include_prefix=False) == hops[i][1]
        assert (routing is None) == (i == n_hops - 1)


@pytest.mark.parametrize("n_hops", range(1, 21))
def test_we_peel_onions_pyln_builds(n_hops: int) -> None:
    # Equal-size payloads: pyln-proto's filler is wrong for unequal sizes.
    secrets = [_key(i) for i in range(n_hops)]
    assocdata = b"\x42" * 32
    payloads = [_tlv_payload(i) for i in range(n_hops)]
    path = SphinxPath(
        [
            SphinxHop(PylnPublicKey(crypto.pubkey_from_secret(s)), encode_bigsize(len(p)) + p)
            for s, p in zip(secrets, payloads, strict=True)
        ],
        assocdata=assocdata,
        session_key=PylnSecret(_key(2000 + n_hops)),
    )
    onion: bytes | None = path.compile().to_bin()
    for i, secret in enumerate(secrets):
        assert onion is not None
        peeled = peel_onion(SecretKey(secret), onion, associated_data=assocdata)
        assert peeled.payload == payloads[i]
        onion = peeled.next_onion
    assert onion is None


# --- properties ------------------------------------------------------------------------

_payload = st.binary(min_size=2, max_size=120)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payloads=st.lists(_payload, min_size=1, max_size=8),
    extra=st.integers(min_value=0, max_value=400),
    assocdata=st.binary(max_size=64),
    session=st.integers(min_value=1, max_value=2**64),
)
def test_create_then_peel_round_trips(
    payloads: list[bytes], extra: int, assocdata: bytes, session: int
) -> None:
    payload_size = max(MIN_PAYLOAD_SIZE, sum(hop_frame_size(len(p)) for p in payloads) + extra)
    keys = [SecretKey(_key(i)) for i in range(len(payloads))]
    onion: bytes | None = create_onion(
        session.to_bytes(32, "big"),
        [(k.public_key, p) for k, p in zip(keys, payloads, strict=True)],
        associated_data=assocdata,
        payload_size=payload_size,
    )
    for key, payload in zip(keys, payloads, strict=True):
        assert onion is not None and len(onion) == packet_size(payload_size)
        peeled = peel_onion(key, onion, associated_data=assocdata)
        assert peeled.payload == payload
        onion = peeled.next_onion
    assert onion is None


@pytest.mark.parametrize("payload_size", [MIN_PAYLOAD_SIZE, 200, 1300, 32768])
def test_supported_payload_sizes_round_trip(payload_size: int) -> None:
    n = 1 if payload_size < 200 else 3
    keys = [SecretKey(_key(i)) for i in range(n)]
    payloads = [b"\x02\x00"] if n == 1 else [b"\x02\x01" + bytes([i]) for i in range(n)]
    onion = create_onion(
        _key(99),
        [(k.public_key, p) for k, p in zip(keys, payloads, strict=True)],
        payload_size=payload_size,
    )
    assert len(onion) == payload_size + 66
    for i, key in enumerate(keys):
        peeled = peel_onion(key, onion)
        assert peeled.payload == payloads[i]
        if peeled.next_onion is None:
            assert i == n - 1
            break
        onion = peeled.next_onion


def _three_hop_onion() -> tuple[list[SecretKey], bytes]:
    keys = [SecretKey(_key(i)) for i in range(3)]
    onion = create_onion(
        _key(7),
        [(k.public_key, bytes([2, 1, i])) for i, k in enumerate(keys)],
        associated_data=b"ad",
        payload_size=256,
    )
    return keys, onion


def test_every_single_bit_flip_is_rejected() -> None:
    keys, onion = _three_hop_onion()
    for bit in range(len(onion) * 8):
        tampered = bytearray(onion)
        tampered[bit // 8] ^= 1 << (bit % 8)
        byte = bit // 8
        if byte == 0:
            expected: tuple[type[Exception], ...] = (UnknownVersionError,)
        elif byte < 34:
            # A flipped ephemeral key is either not a point or a different point, whose
            # shared secret gives a different mu key: the HMAC fails.
            expected = (IntegrityError, InvalidPointError)
        else:
            expected = (IntegrityError,)
        with pytest.raises(expected):
            peel_onion(keys[0], bytes(tampered), associated_data=b"ad")


# --- HORNET extension: per-hop associated data and candidate ADs ------------------------


def _bound_onion(extras: list[bytes]) -> tuple[list[SecretKey], BuiltOnion, list[bytes]]:
    keys = [SecretKey(_key(i)) for i in range(len(extras))]
    seen: list[bytes] = []

    def hook(secrets: Sequence[bytes]) -> list[bytes]:
        seen.extend(secrets)
        return extras

    built = build_onion(
        _key(8),
        [(k.public_key, bytes([2, 1, i])) for i, k in enumerate(keys)],
        associated_data=b"common",
        payload_size=256,
        last_hop_next_hmac=b"\x07" * 32,
        hop_associated_data=hook,
    )
    return keys, built, seen


def test_each_hop_checks_its_own_extra_associated_data() -> None:
    extras = [b"first", b"", b"third" * 50]
    keys, built, seen = _bound_onion(extras)
    assert seen == list(built.shared_secrets)  # the hook saw every hop's ss, in order
    onion: bytes | None = built.packet
    for key, extra in zip(keys, extras, strict=True):
        assert onion is not None
        right = b"common" + extra
        for wrong in {b"common", right + b"x", b"other" + extra} - {right}:
            with pytest.raises(IntegrityError):
                peel_onion(key, onion, associated_data=wrong)
        peeled = peel_onion(key, onion, associated_data=right)
        assert peeled.associated_data_index == 0
        onion = peeled.next_onion
    assert onion is not None  # the last hop forwards: its next_hmac is not zero


def test_empty_extras_are_plain_bolt4() -> None:
    keys = [SecretKey(_key(i)) for i in range(3)]
    hops = [(k.public_key, bytes([2, 1, i])) for i, k in enumerate(keys)]
    plain = build_onion(_key(9), hops, associated_data=b"ad", payload_size=256)
    hooked = build_onion(
        _key(9),
        hops,
        associated_data=b"ad",
        payload_size=256,
        hop_associated_data=lambda secrets: [b""] * len(secrets),
    )
    assert hooked.packet == plain.packet


def test_peel_reports_which_candidate_matched() -> None:
    keys, onion = _three_hop_onion()  # built with associated data b"ad"
    for candidates, index in (
        ((b"ad",), 0),
        ((b"ad", b"other"), 0),
        ((b"other", b"ad"), 1),
        ((b"x", b"y", b"ad"), 2),
    ):
        peeled = peel_onion(keys[0], onion, associated_data=candidates)
        assert peeled.associated_data_index == index
        single = peel_onion(keys[0], onion, associated_data=b"ad")
        assert (peeled.payload, peeled.next_onion) == (single.payload, single.next_onion)
    with pytest.raises(IntegrityError):
        peel_onion(keys[0], onion, associated_data=(b"a", b"d", b"ad\x00"))


def test_bad_hook_results_and_empty_candidates_are_caller_errors() -> None:
    keys = [SecretKey(_key(i)) for i in range(2)]
    hops = [(k.public_key, b"\x02\x00") for k in keys]
    for wrong_count in ([], [b"a"], [b"a", b"b", b"c"]):
        with pytest.raises(LocalProtocolError):
            build_onion(_key(3), hops, hop_associated_data=lambda _, w=wrong_count: w)
    with pytest.raises(LocalProtocolError):
        peel_onion(keys[0], create_onion(_key(3), hops), associated_data=())


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_remote_errors(data: bytes) -> None:
    key = SecretKey(_key(0))
    with contextlib.suppress(RemoteProtocolError):
        peel_onion(key, data)


@settings(max_examples=200, deadline=None)
@given(prefix=st.binary(min_size=34, max_size=34), body=st.binary(min_size=100, max_size=100))
def test_well_sized_garbage_raises_only_remote_errors(prefix: bytes, body: bytes) -> None:
    key = SecretKey(_key(0))
    packet = b"\x00" + prefix[1:] + body + bytes(32)
    with pytest.raises(RemoteProtocolError):
        peel_onion(key, packet)


def _forge_single_hop(key: SecretKey, plaintext_frame: bytes, payload_size: int) -> bytes:
    """A packet with a valid HMAC whose decrypted hop_payloads begin with ``plaintext_frame``."""
    session = _key(55)
    ephemeral = crypto.pubkey_from_secret(session)
    ss = crypto.ecdh(session, key.public_key)
    rho = crypto.hmac_sha256(b"rho", ss)
    mu = crypto.hmac_sha256(b"mu", ss)
    plain = plaintext_frame + bytes(payload_size - len(plaintext_frame))
    hop_payloads = crypto.chacha20_xor(rho, plain)
    return b"\x00" + ephemeral + hop_payloads + crypto.hmac_sha256(mu, hop_payloads)


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (b"\x00", "legacy zero length"),
        (b"\x01\x05", "one-byte payload"),
        (b"\xfd\x00\x10", "non-minimal BigSize"),
        (b"\xfd\x01\x00", "frame longer than the packet"),
        (b"\xff" + (2**40).to_bytes(8, "big"), "absurd length"),
    ],
)
def test_bad_hop_frames_are_malformed(frame: bytes, why: str) -> None:
    key = SecretKey(_key(3))
    with pytest.raises(MalformedInputError):
        peel_onion(key, _forge_single_hop(key, frame, 200))


def test_wrong_length_and_version_are_malformed() -> None:
    key = SecretKey(_key(0))
    with pytest.raises(MalformedInputError):
        peel_onion(key, b"\x00" * 50)
    _, onion = _three_hop_onion()
    with pytest.raises(UnknownVersionError):
        peel_onion(key, b"\x01" + onion[1:])


def test_invalid_ephemeral_point_is_rejected() -> None:
    _, onion = _three_hop_onion()
    bad = onion[:1] + b"\x02" + b"\xff" * 32 + onion[34:]  # x >= p: not a point
    with pytest.raises(InvalidPointError):
        peel_onion(SecretKey(_key(0)), bad)


def test_caller_errors_are_local() -> None:
    pub = SecretKey(_key(0)).public_key
    with pytest.raises(LocalProtocolError):
        create_onion(_key(1), [])
    with pytest.raises(LocalProtocolError):
        create_onion(_key(1), [(pub, b"\x02\x00" + bytes(1300))])
    with pytest.raises(LocalProtocolError):
        create_onion(bytes(32), [(pub, b"\x02\x00")])
    with pytest.raises(LocalProtocolError):
        create_onion(_key(1), [(b"\x02" + b"\xff" * 32, b"\x02\x00")])
    with pytest.raises(LocalProtocolError):
        create_onion(_key(1), [(pub, b"\x02\x00")], payload_size=10)
    with pytest.raises(LocalProtocolError):
        peel_onion(bytes(32), create_onion(_key(1), [(pub, b"\x02\x00")]))
    assert issubclass(LocalProtocolError, HornetError)


def test_secrets_never_appear_in_repr() -> None:
    secret = _key(5)
    key = SecretKey(secret)
    onion = create_onion(_key(6), [(key.public_key, b"\x02\x00")])
    peeled = peel_onion(key, onion)
    for text in (repr(key), repr(peeled), str(peeled)):
        assert secret.hex() not in text
        assert peeled.shared_secret.hex() not in text
    assert isinstance(peeled, PeeledOnion)
    # Shared secrets do not take part in equality either.
    assert peeled == PeeledOnion(peeled.payload, None, b"\x00" * 32)

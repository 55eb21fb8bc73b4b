"""BOLT 8 handshake: the spec's test vectors (Appendix A) and interop with pyln-proto."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from pyln.proto import wire

from hornet.core.crypto import (
    SecretKey,
    chacha20poly1305_decrypt,
    chacha20poly1305_encrypt,
    hkdf_sha256_pair,
)
from hornet.errors import (
    IntegrityError,
    InvalidPointError,
    LocalProtocolError,
    MalformedInputError,
    UnknownVersionError,
)
from hornet.link.noise import Initiator, Responder, TransportKeys

# lightning/bolts 08-transport.md, Appendix A.
RS_PRIV = bytes.fromhex("21" * 32)
RS_PUB = bytes.fromhex("028d7500dd4c12685d1f568b4c2b5048e8534b873319f3a8daa612b469132ec7f7")
LS_PRIV = bytes.fromhex("11" * 32)
LS_PUB = bytes.fromhex("034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa")
E_INIT = bytes.fromhex("12" * 32)
E_RESP = bytes.fromhex("22" * 32)
ACT_ONE = bytes.fromhex(
    "00036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f7"
    "0df6086551151f58b8afe6c195782c6a"
)
ACT_TWO = bytes.fromhex(
    "0002466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27"
    "6e2470b93aac583c9ef6eafca3f730ae"
)
ACT_THREE = bytes.fromhex(
    "00b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc"
    "28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139ba"
)
CK = bytes.fromhex("919219dbb2920afa8db80f9a51787a840bcf111ed8d588caf9ab4be716e42b01")
SK = bytes.fromhex("969ab31b4d288cedf6218839b27a3e2140827047f2c0f01bf5c04435d43511a9")
RK = bytes.fromhex("bb9020b8965f4df047e07f955f3c4b88418984aadc5cdb35096b9ea8fa5c3442")


def _initiator() -> Initiator:
    return Initiator(SecretKey(LS_PRIV), RS_PUB, SecretKey(E_INIT))


def _responder() -> Responder:
    return Responder(SecretKey(RS_PRIV), SecretKey(E_RESP))


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


# --------------------------------------------------------------------------------------
# Initiator tests


def test_initiator_successful_handshake_matches_bolt8_vector() -> None:
    initiator = _initiator()
    assert SecretKey(LS_PRIV).public_key == LS_PUB
    assert initiator.act_one() == ACT_ONE
    initiator.read_act_two(ACT_TWO)
    act_three, keys = initiator.act_three()
    assert act_three == ACT_THREE
    assert keys.send_key == SK
    assert keys.receive_key == RK
    assert keys.chaining_key == CK
    assert keys.remote_static == RS_PUB


@pytest.mark.parametrize(
    ("name", "act_two", "error"),
    [
        ("act2 short read", ACT_TWO[:-1], MalformedInputError),
        ("act2 bad version", b"\x01" + ACT_TWO[1:], UnknownVersionError),
        ("act2 bad key serialization", b"\x00\x04" + ACT_TWO[2:], InvalidPointError),
        ("act2 bad MAC", ACT_TWO[:-1] + b"\xaf", IntegrityError),
    ],
)
def test_initiator_rejects_bolt8_bad_act_two(name: str, act_two: bytes, error: type) -> None:
    initiator = _initiator()
    assert initiator.act_one() == ACT_ONE
    with pytest.raises(error):
        initiator.read_act_two(act_two)


def test_failed_act_two_leaves_the_initiator_able_to_finish() -> None:
    initiator = _initiator()
    initiator.act_one()
    with pytest.raises(IntegrityError):
        initiator.read_act_two(ACT_TWO[:-1] + b"\xaf")
    initiator.read_act_two(ACT_TWO)
    assert initiator.act_three()[0] == ACT_THREE


# --------------------------------------------------------------------------------------
# Responder tests


def test_responder_successful_handshake_matches_bolt8_vector() -> None:
    responder = _responder()
    assert SecretKey(RS_PRIV).public_key == RS_PUB
    responder.read_act_one(ACT_ONE)
    assert responder.act_two() == ACT_TWO
    keys = responder.read_act_three(ACT_THREE)
    assert keys.receive_key == SK
    assert keys.send_key == RK
    assert keys.chaining_key == CK
    assert keys.remote_static == LS_PUB


@pytest.mark.parametrize(
    ("name", "act_one", "error"),
    [
        ("act1 short read", ACT_ONE[:-1], MalformedInputError),
        ("act1 bad version", b"\x01" + ACT_ONE[1:], UnknownVersionError),
        ("act1 bad key serialization", b"\x00\x04" + ACT_ONE[2:], InvalidPointError),
        ("act1 bad MAC", ACT_ONE[:-1] + b"\x6b", IntegrityError),
    ],
)
def test_responder_rejects_bolt8_bad_act_one(name: str, act_one: bytes, error: type) -> None:
    with pytest.raises(error):
        _responder().read_act_one(act_one)


BAD_RS_ACT_THREE = _h(
    "00bfe3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa2235536ad09a8ee351870c2bb7f"
    "78b754a26c6cef79a98d25139c856d7efd252c2ae73c"
)


@pytest.mark.parametrize(
    ("name", "act_three", "error"),
    [
        ("act3 bad version", b"\x01" + ACT_THREE[1:], UnknownVersionError),
        ("act3 short read", ACT_THREE[:-1], MalformedInputError),
        ("act3 bad MAC for ciphertext", b"\x00\xc9" + ACT_THREE[2:], IntegrityError),
        ("act3 bad rs", BAD_RS_ACT_THREE, InvalidPointError),
        ("act3 bad MAC", ACT_THREE[:-1] + b"\xbb", IntegrityError),
    ],
)
def test_responder_rejects_bolt8_bad_act_three(name: str, act_three: bytes, error: type) -> None:
    responder = _responder()
    responder.read_act_one(ACT_ONE)
    assert responder.act_two() == ACT_TWO
    with pytest.raises(error):
        responder.read_act_three(act_three)
    # The failure changed nothing: the genuine act three still completes.
    assert responder.read_act_three(ACT_THREE).remote_static == LS_PUB


def test_acts_out_of_order_are_local_errors() -> None:
    initiator = _initiator()
    with pytest.raises(LocalProtocolError):
        initiator.act_three()
    with pytest.raises(LocalProtocolError):
        _responder().act_two()
    with pytest.raises(LocalProtocolError):
        Initiator(SecretKey(LS_PRIV), b"\x05" * 33, SecretKey(E_INIT))


def test_keys_stay_out_of_repr() -> None:
    _, keys = _finish_with_vectors()
    for text in (repr(keys), repr(_initiator()), repr(_responder())):
        assert SK.hex() not in text and RK.hex() not in text and CK.hex() not in text
        assert "11" * 32 not in text


def _finish_with_vectors() -> tuple[bytes, TransportKeys]:
    initiator = _initiator()
    initiator.act_one()
    initiator.read_act_two(ACT_TWO)
    return initiator.act_three()


# --------------------------------------------------------------------------------------
# BOLT 8 message framing (a test oracle for the split keys, not hornet's datagram format)


class Bolt8Stream:
    """BOLT 8 "Encrypting and Sending Messages" with key rotation every 1000 nonces."""

    def __init__(self, key: bytes, ck: bytes) -> None:
        self.key, self.ck, self.n = key, ck, 0

    def _nonce(self) -> bytes:
        nonce = bytes(4) + self.n.to_bytes(8, "little")
        self.n += 1
        return nonce

    def _rotate(self) -> None:
        if self.n == 1000:
            self.ck, self.key = hkdf_sha256_pair(self.ck, self.key)
            self.n = 0

    def encrypt(self, message: bytes) -> bytes:
        lc = chacha20poly1305_encrypt(self.key, self._nonce(), len(message).to_bytes(2, "big"), b"")
        c = chacha20poly1305_encrypt(self.key, self._nonce(), message, b"")
        self._rotate()
        return lc + c

    def decrypt(self, data: bytes) -> bytes:
        length = int.from_bytes(chacha20poly1305_decrypt(self.key, self._nonce(), data[:18], b""))
        body = data[18 : 18 + length + 16]
        message = chacha20poly1305_decrypt(self.key, self._nonce(), body, b"")
        self._rotate()
        return message


def test_split_keys_reproduce_bolt8_message_vectors() -> None:
    _, keys = _finish_with_vectors()
    stream = Bolt8Stream(keys.send_key, keys.chaining_key)
    outputs = [stream.encrypt(b"hello") for _ in range(1002)]
    expected = {
        0: "cf2b30ddf0cf3f80e7c35a6e6730b59fe802473180f396d88a8fb0db8cbcf25d2f214cf9ea1d95",
        1: "72887022101f0b6753e0c7de21657d35a4cb2a1f5cde2650528bbc8f837d0f0d7ad833b1a256a1",
        500: "178cb9d7387190fa34db9c2d50027d21793c9bc2d40b1e14dcf30ebeeeb220f48364f7a4c68bf8",
        501: "1b186c57d44eb6de4c057c49940d79bb838a145cb528d6e8fd26dbe50a60ca2c104b56b60e45bd",
        1000: "4a2f3cc3b5e78ddb83dcb426d9863d9d9a723b0337c89dd0b005d89f8d3c05c52b76b29b740f09",
        1001: "2ecd8c8a5629d0d02ab457a0fdd0f7b90a192cd46be5ecb6ca570bfc5e268338b1a16cf4ef2d36",
    }
    for index, text in expected.items():
        assert outputs[index].hex() == text, index


# --------------------------------------------------------------------------------------
# Interop with pyln-proto's BOLT 8 implementation (pyln.proto.wire)


def _pyln(local: bytes, remote: bytes | None, *, initiator: bool, ephemeral: bytes) -> Any:
    remote_key = wire.PublicKey(remote) if remote is not None else None
    if initiator:
        conn = wire.LightningConnection(None, remote_key, wire.PrivateKey(local), True)
    else:
        conn = wire.LightningConnection(None, None, wire.PrivateKey(local), False)
    conn.handshake["e"] = wire.PrivateKey(ephemeral)
    return conn


def test_our_initiator_completes_with_pyln_responder_acts() -> None:
    ls, rs, e1, e2 = (bytes([b]) * 32 for b in (0x31, 0x32, 0x33, 0x34))
    responder_pub = SecretKey(rs).public_key
    ours = Initiator(SecretKey(ls), responder_pub, SecretKey(e1))
    theirs = _pyln(rs, None, initiator=False, ephemeral=e2)
    theirs.handshake_act_one_responder(ours.act_one())
    ours.read_act_two(theirs.handshake_act_two_responder())
    act_three, keys = ours.act_three()
    theirs.handshake_act_three_responder(act_three)
    assert theirs.remote_pubkey.serializeCompressed() == SecretKey(ls).public_key
    assert (theirs.rk, theirs.sk, theirs.chaining_key) == (
        keys.send_key,
        keys.receive_key,
        keys.chaining_key,
    )


def test_pyln_initiator_completes_with_our_responder_acts() -> None:
    ls, rs, e1, e2 = (bytes([b]) * 32 for b in (0x41, 0x42, 0x43, 0x44))
    ours = Responder(SecretKey(rs), SecretKey(e2))
    theirs = _pyln(ls, SecretKey(rs).public_key, initiator=True, ephemeral=e1)
    ours.read_act_one(theirs.handshake_act_one_initiator())
    theirs.handshake_act_two_initiator(ours.act_two())
    keys = ours.read_act_three(theirs.handshake_act_three_initiator())
    assert keys.remote_static == SecretKey(ls).public_key
    assert (theirs.sk, theirs.rk, theirs.chaining_key) == (
        keys.receive_key,
        keys.send_key,
        keys.chaining_key,
    )


def _run_pyln(target: Any, results: list[Any]) -> threading.Thread:
    def body() -> None:
        try:
            results.append(target())
        except Exception as exc:  # surfaced by the assertion in the test
            results.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "pyln side closed early"
        data += chunk
    return data


def test_pyln_shake_and_messages_over_a_socket_with_our_initiator() -> None:
    """pyln's own ``shake()`` (random ephemeral) against ours, then messages both ways."""
    ours_sock, theirs_sock = socket.socketpair()
    ours_sock.settimeout(10)
    theirs_sock.settimeout(10)
    relay_key = SecretKey(bytes([0x55]) * 32)
    conn = wire.LightningConnection(theirs_sock, None, wire.PrivateKey(relay_key.secret_bytes()),
                                    False)

    def serve() -> bytes:
        conn.shake()
        message: bytes = conn.read_message()
        conn.send_message(b"pong:" + message)
        return message

    results: list[Any] = []
    thread = _run_pyln(serve, results)
    ours = Initiator(SecretKey(bytes([0x56]) * 32), relay_key.public_key,
                     SecretKey(bytes([0x57]) * 32))
    ours_sock.sendall(ours.act_one())
    ours.read_act_two(_recv_exactly(ours_sock, 50))
    act_three, keys = ours.act_three()
    ours_sock.sendall(act_three)
    send = Bolt8Stream(keys.send_key, keys.chaining_key)
    receive = Bolt8Stream(keys.receive_key, keys.chaining_key)
    ours_sock.sendall(send.encrypt(b"ping"))
    reply = receive.decrypt(_recv_exactly(ours_sock, 18 + 9 + 16))
    thread.join(10)
    ours_sock.close()
    theirs_sock.close()
    assert results == [b"ping"]
    assert reply == b"pong:ping"


def test_pyln_connects_over_a_socket_to_our_responder() -> None:
    ours_sock, theirs_sock = socket.socketpair()
    ours_sock.settimeout(10)
    theirs_sock.settimeout(10)
    relay_key = SecretKey(bytes([0x65]) * 32)
    client_secret = bytes([0x66]) * 32
    conn = wire.LightningConnection(theirs_sock, wire.PublicKey(relay_key.public_key),
                                    wire.PrivateKey(client_secret), True)

    def client() -> bytes:
        conn.shake()
        conn.send_message(b"hello relay")
        answer: bytes = conn.read_message()
        return answer

    results: list[Any] = []
    thread = _run_pyln(client, results)
    ours = Responder(relay_key, SecretKey(bytes([0x67]) * 32))
    ours.read_act_one(_recv_exactly(ours_sock, 50))
    ours_sock.sendall(ours.act_two())
    keys = ours.read_act_three(_recv_exactly(ours_sock, 66))
    assert keys.remote_static == SecretKey(client_secret).public_key
    receive = Bolt8Stream(keys.receive_key, keys.chaining_key)
    send = Bolt8Stream(keys.send_key, keys.chaining_key)
    assert receive.decrypt(_recv_exactly(ours_sock, 18 + 11 + 16)) == b"hello relay"
    ours_sock.sendall(send.encrypt(b"hello client"))
    thread.join(10)
    ours_sock.close()
    theirs_sock.close()
    assert results == [b"hello client"]

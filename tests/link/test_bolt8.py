"""BOLT 8 over a byte stream (``hornet.link.bolt8``): the spec's vectors, split reads,
and what a corrupted stream does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hornet.core.crypto import SecretKey
from hornet.errors import IntegrityError, LocalProtocolError, RemoteProtocolError
from hornet.link.bolt8 import Bolt8Connection, MessageCipher

# lightning/bolts 08-transport.md, Appendix A.
RS_PRIV = bytes.fromhex("21" * 32)
RS_PUB = bytes.fromhex("028d7500dd4c12685d1f568b4c2b5048e8534b873319f3a8daa612b469132ec7f7")
LS_PRIV = bytes.fromhex("11" * 32)
LS_PUB = bytes.fromhex("034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa")
E_INIT = bytes.fromhex("12" * 32)
E_RESP = bytes.fromhex("22" * 32)
ACT_ONE = bytes.fromhex(
    "00036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f7"
    "0df6086551151f58b8afe6c195782c6a")
ACT_TWO = bytes.fromhex(
    "0002466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27"
    "6e2470b93aac583c9ef6eafca3f730ae")
ACT_THREE = bytes.fromhex(
    "00b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc"
    "28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139ba")
MESSAGE_VECTORS = {
    0: "cf2b30ddf0cf3f80e7c35a6e6730b59fe802473180f396d88a8fb0db8cbcf25d2f214cf9ea1d95",
    1: "72887022101f0b6753e0c7de21657d35a4cb2a1f5cde2650528bbc8f837d0f0d7ad833b1a256a1",
    500: "178cb9d7387190fa34db9c2d50027d21793c9bc2d40b1e14dcf30ebeeeb220f48364f7a4c68bf8",
    501: "1b186c57d44eb6de4c057c49940d79bb838a145cb528d6e8fd26dbe50a60ca2c104b56b60e45bd",
    1000: "4a2f3cc3b5e78ddb83dcb426d9863d9d9a723b0337c89dd0b005d89f8d3c05c52b76b29b740f09",
    1001: "2ecd8c8a5629d0d02ab457a0fdd0f7b90a192cd46be5ecb6ca570bfc5e268338b1a16cf4ef2d36",
}


def _vector_initiator() -> Bolt8Connection:
    conn = Bolt8Connection.initiator(SecretKey(LS_PRIV), RS_PUB, SecretKey(E_INIT))
    assert conn.data_to_send() == ACT_ONE
    assert conn.receive_data(ACT_TWO) == []
    assert conn.data_to_send() == ACT_THREE
    return conn


def test_initiator_writes_the_bolt8_acts_and_message_vectors() -> None:
    conn = _vector_initiator()
    assert conn.remote_static == RS_PUB and conn.established
    outputs = []
    for _ in range(1002):
        conn.send_message(b"hello")
        outputs.append(conn.data_to_send())
    for index, text in MESSAGE_VECTORS.items():
        assert outputs[index].hex() == text, index


def test_responder_reads_the_bolt8_acts_and_message_vectors_in_small_pieces() -> None:
    conn = Bolt8Connection.responder(SecretKey(RS_PRIV), SecretKey(E_RESP))
    stream = ACT_ONE + ACT_THREE
    # the initiator's messages, as the vectors give them, in 7-byte reads
    sender = _vector_initiator()
    for _ in range(1002):
        sender.send_message(b"hello")
        stream += sender.data_to_send()
    received: list[bytes] = []
    for i in range(0, len(stream), 7):
        received += conn.receive_data(stream[i : i + 7])
        if i == 0:
            assert conn.data_to_send() == b""
    assert conn.remote_static == LS_PUB
    assert received == [b"hello"] * 1002


def test_a_flipped_bit_kills_the_stream() -> None:
    conn = Bolt8Connection.responder(SecretKey(RS_PRIV), SecretKey(E_RESP))
    conn.receive_data(ACT_ONE + ACT_THREE)
    sender = _vector_initiator()
    sender.send_message(b"hello")
    data = bytearray(sender.data_to_send())
    data[20] ^= 1
    with pytest.raises(IntegrityError):
        conn.receive_data(bytes(data))
    assert conn.closed
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"")


def test_sending_before_the_handshake_or_too_much_is_a_local_error() -> None:
    conn = Bolt8Connection.responder(SecretKey(RS_PRIV), SecretKey(E_RESP))
    with pytest.raises(LocalProtocolError):
        conn.send_message(b"early")
    established = _vector_initiator()
    with pytest.raises(LocalProtocolError):
        established.send_message(bytes(65_536))
    established.send_message(bytes(65_535))


def test_keys_stay_out_of_repr() -> None:
    cipher = MessageCipher(bytes([0x42]) * 32, bytes([0x43]) * 32)
    conn = _vector_initiator()
    assert "42" * 8 not in repr(cipher)
    assert "hidden" in repr(cipher) and RS_PUB.hex() in repr(conn)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_raises_only_remote_errors(data: bytes) -> None:
    conn = Bolt8Connection.responder(SecretKey(RS_PRIV), SecretKey(E_RESP))
    try:
        conn.receive_data(data)
    except RemoteProtocolError:
        assert conn.closed
    established = Bolt8Connection.responder(SecretKey(RS_PRIV), SecretKey(E_RESP))
    established.receive_data(ACT_ONE + ACT_THREE)
    try:
        established.receive_data(data)
    except RemoteProtocolError:
        assert established.closed

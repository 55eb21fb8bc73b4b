"""Wire encodings shared by every layer: BigSize (BOLT 1) and TLV streams.

Rule: decoders take untrusted bytes and raise only ``MalformedInputError``; encoders
take values from our own code and raise ``LocalProtocolError`` when a value cannot be
represented. Every multi-byte integer is big-endian (network order).
"""

from __future__ import annotations

from collections.abc import Iterable

from hornet.errors import LocalProtocolError, MalformedInputError

BIGSIZE_MAX = 0xFFFFFFFFFFFFFFFF


def encode_bigsize(value: int) -> bytes:
    """BOLT 1 BigSize: 1, 3, 5 or 9 bytes, big-endian, minimal."""
    if value < 0 or value > BIGSIZE_MAX:
        raise LocalProtocolError("BigSize value out of range")
    if value < 0xFD:
        return bytes((value,))
    if value <= 0xFFFF:
        return b"\xfd" + value.to_bytes(2, "big")
    if value <= 0xFFFFFFFF:
        return b"\xfe" + value.to_bytes(4, "big")
    return b"\xff" + value.to_bytes(8, "big")


def decode_bigsize(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode a BigSize at ``offset``; returns (value, offset after it).

    Rejects truncation and non-minimal encodings, as BOLT 1 requires.
    """
    if offset >= len(data):
        raise MalformedInputError("truncated BigSize")
    first = data[offset]
    if first < 0xFD:
        return first, offset + 1
    width, minimum = {0xFD: (2, 0xFD), 0xFE: (4, 0x10000), 0xFF: (8, 0x100000000)}[first]
    end = offset + 1 + width
    if end > len(data):
        raise MalformedInputError("truncated BigSize")
    value = int.from_bytes(data[offset + 1 : end], "big")
    if value < minimum:
        raise MalformedInputError("non-minimal BigSize")
    return value, end


def encode_tlv_stream(records: Iterable[tuple[int, bytes]]) -> bytes:
    """Encode (type, value) records; types must be strictly increasing."""
    out = bytearray()
    last = -1
    for tlv_type, value in records:
        if tlv_type <= last:
            raise LocalProtocolError("TLV types must be strictly increasing")
        last = tlv_type
        out += encode_bigsize(tlv_type) + encode_bigsize(len(value)) + value
    return bytes(out)


def decode_tlv_stream(data: bytes) -> dict[int, bytes]:
    """Decode a TLV stream (BOLT 1): strictly increasing types, no truncation."""
    records: dict[int, bytes] = {}
    offset = 0
    last = -1
    while offset < len(data):
        tlv_type, offset = decode_bigsize(data, offset)
        length, offset = decode_bigsize(data, offset)
        if tlv_type <= last:
            raise MalformedInputError("TLV types out of order or repeated")
        end = offset + length
        if end > len(data):
            raise MalformedInputError("truncated TLV value")
        records[tlv_type] = bytes(data[offset:end])
        offset = end
        last = tlv_type
    return records

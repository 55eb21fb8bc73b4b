"""Strict big-endian encodings of the credential wire formats.

Strategy: every decoder first checks the exact length its type and parameters imply
(fixed shapes per request type), then reads fields front to back with ``Reader``.

Invariants:
- Untrusted bytes raise only ``MalformedCredentialError`` (length, scalar >= n, bad
  integer range) or ``InvalidPointError`` (not a curve point); both are
  ``RemoteProtocolError``s.
- Scalars are 32-byte big-endian and canonical (< n); points are 33-byte compressed
  and never the point at infinity.
"""

from __future__ import annotations

from typing import Final

from hornet.core.crypto import SECP256K1_ORDER
from hornet.credentials.group import GroupElement
from hornet.errors import MalformedCredentialError

SCALAR_LEN: Final = 32
POINT_LEN: Final = 33


def encode_scalar(value: int) -> bytes:
    return (value % SECP256K1_ORDER).to_bytes(SCALAR_LEN, "big")


class Reader:
    """A cursor over untrusted bytes; every read is bounds-checked."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    def take(self, length: int) -> bytes:
        end = self._pos + length
        if end > len(self._data):
            raise MalformedCredentialError(f"{self._what}: truncated")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def uint(self, length: int) -> int:
        return int.from_bytes(self.take(length), "big")

    def sint(self, length: int) -> int:
        return int.from_bytes(self.take(length), "big", signed=True)

    def scalar(self) -> int:
        value = int.from_bytes(self.take(SCALAR_LEN), "big")
        if value >= SECP256K1_ORDER:
            raise MalformedCredentialError(f"{self._what}: scalar out of range")
        return value

    def point(self) -> GroupElement:
        return GroupElement.decode(self.take(POINT_LEN))

    def end(self) -> None:
        if self._pos != len(self._data):
            raise MalformedCredentialError(f"{self._what}: trailing bytes")


def expect_length(data: bytes, length: int, what: str) -> None:
    if len(data) != length:
        raise MalformedCredentialError(f"{what}: expected {length} bytes, got {len(data)}")

"""The mixer's secrets, all derived from one stored master secret.

Strategy: ``KeyedRng`` is a deterministic byte stream HMAC-SHA256(key, label ‖ counter);
each secret the mixer needs (per-epoch issuer keys, the SCID cipher key, the co-hosted
relay's node key and SV) is drawn from it under its own label, so only the master
secret is stored and a restart derives the same keys. Sans-IO: pure functions.
"""

from __future__ import annotations

from typing import Final

from hornet.core import crypto
from hornet.credentials.params import IssuerSecretKey

_ISSUER_KEY_TAG: Final = b"hornet/mixer/v1/issuer-key"
_SCID_KEY_TAG: Final = b"hornet/mixer/v1/scid-key"
_RELAY_KEY_TAG: Final = b"hornet/mixer/v1/relay-key"
_RELAY_SV_TAG: Final = b"hornet/mixer/v1/relay-sv"


class KeyedRng:
    """A deterministic byte stream HMAC-SHA256(key, label ‖ counter): derives per-epoch
    issuer keys from one master secret (so only the master secret is stored)."""

    __slots__ = ("_counter", "_key", "_label")

    def __init__(self, key: bytes, label: bytes) -> None:
        self._key = bytes(key)
        self._label = bytes(label)
        self._counter = 0

    def randbytes(self, n: int, /) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += crypto.hmac_sha256(self._key, self._label + self._counter.to_bytes(8, "big"))
            self._counter += 1
        return bytes(out[:n])

    def __repr__(self) -> str:
        return "KeyedRng(<hidden>)"


def derive_issuer_key(master_secret: bytes, epoch: int) -> IssuerSecretKey:
    """The issuer key of ``epoch``, derived from the mixer's master secret."""
    label = _ISSUER_KEY_TAG + epoch.to_bytes(4, "big")
    return IssuerSecretKey.generate(KeyedRng(master_secret, label))


def derive_scid_key(master_secret: bytes) -> bytes:
    """The key of the SCID cipher (``ScidCipher``)."""
    return crypto.hmac_sha256(master_secret, _SCID_KEY_TAG)


def derive_relay_secrets(master_secret: bytes) -> tuple[crypto.SecretKey, bytes]:
    """The co-hosted HORNET relay's node key and local secret SV, derived from the
    master secret (stable across restarts, independent of the Lightning node key)."""
    key = crypto.SecretKey.from_rng(KeyedRng(master_secret, _RELAY_KEY_TAG))
    return key, crypto.hmac_sha256(master_secret, _RELAY_SV_TAG)


__all__ = ["KeyedRng", "derive_issuer_key", "derive_relay_secrets", "derive_scid_key"]

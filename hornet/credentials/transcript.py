"""Fiat–Shamir transcript and synthetic nonces (wabisabi.md §4.4).

Strategy: a running SHA-256 over length-framed records ``len(tag):1 ‖ tag ‖
len(data):4 ‖ data``. Every request type opens with the protocol id, its own label and
the parameter digest (all generators and the configuration); the scheme then appends
every statement (public points, generators, witness indices), every commitment R and
the bound message hash before the challenge is drawn (strong Fiat–Shamir).

Challenge: e = int(SHA-512(state ‖ "challenge")) mod n (bias < 2^-256).

Nonces are synthetic: seed = SHA-512(transcript state ‖ secret witnesses ‖ 32 bytes
from the caller's rng); nonce_i = int(SHA-512(seed ‖ i)) mod n. A weak rng then
cannot make an issuer reuse a nonce for two different statements. The caller's rng
must be a CSPRNG in production (``secrets.SystemRandom()``); tests pass a seeded
``random.Random``.

Invariants: no clock, no global randomness; nonce seeds never appear in ``repr``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final, Protocol

from hornet.core.crypto import SECP256K1_ORDER

#: Protocol identifier hashed first into every transcript.
PROTOCOL_ID: Final = b"hornet/credentials/v1"


class Rng(Protocol):
    """Randomness source: ``secrets.SystemRandom()`` in production."""

    def randbytes(self, n: int, /) -> bytes: ...


def random_scalar(rng: Rng) -> int:
    """A uniform non-zero scalar (64 bytes reduced mod n)."""
    while True:
        value = int.from_bytes(rng.randbytes(64), "big") % SECP256K1_ORDER
        if value:
            return value


class Transcript:
    """A SHA-256 Fiat–Shamir transcript with framed records."""

    __slots__ = ("_h",)

    def __init__(self, label: bytes) -> None:
        self._h = hashlib.sha256()
        self.append(b"protocol", PROTOCOL_ID)
        self.append(b"label", label)

    def append(self, tag: bytes, data: bytes) -> None:
        self._h.update(
            len(tag).to_bytes(1, "big") + tag + len(data).to_bytes(4, "big") + data
        )

    def append_many(self, tag: bytes, items: Iterable[bytes]) -> None:
        self.append(tag, b"".join(items))

    def state(self) -> bytes:
        return self._h.copy().digest()

    def challenge(self) -> int:
        """e = H(transcript) mod n; never 0 for an honest transcript (probability 2^-256)."""
        digest = hashlib.sha512(self.state() + b"challenge").digest()
        return int.from_bytes(digest, "big") % SECP256K1_ORDER


class NonceSource:
    """Synthetic nonces bound to the transcript, the witness and fresh randomness."""

    __slots__ = ("_counter", "_seed")

    def __init__(self, transcript: Transcript, secrets: Iterable[int], rng: Rng) -> None:
        h = hashlib.sha512(b"nonce-seed")
        h.update(transcript.state())
        for value in secrets:
            h.update((value % SECP256K1_ORDER).to_bytes(32, "big"))
        h.update(rng.randbytes(32))
        self._seed = h.digest()
        self._counter = 0

    def scalar(self) -> int:
        while True:
            self._counter += 1
            digest = hashlib.sha512(self._seed + self._counter.to_bytes(4, "big")).digest()
            value = int.from_bytes(digest, "big") % SECP256K1_ORDER
            if value:
                return value

    def __repr__(self) -> str:
        return "NonceSource(<seed hidden>)"

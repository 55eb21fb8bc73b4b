"""Credential parameters, issuer keys per epoch, and signed public parameters.

Strategy:
- ``CredentialParams`` is the public configuration (range width n, k, issuance batch
  size, unit value, epoch schedule). Its digest, together with every generator,
  opens every transcript, so two parties with different configurations never agree
  on a proof.
- ``IssuerSecretKey`` is CPZ19's sk = (w, w', x0, x1, ya); the public parameters are
  iparams = (Cw, I) with Cw = w·Gw + w'·Gwp and I = GV − (x0·Gx0 + x1·Gx1 + ya·Ga)
  (wabisabi.md §1.3). One key per epoch.
- ``SignedIssuerParams`` is (configuration, epoch, Cw, I) signed with ECDSA by the
  issuer's node key, in one fixed 211-byte layout. A signature alone does not stop an
  issuer from handing one user a key set of its own to tag them: clients also require
  the parameters to equal the ones the directory lists for that issuer and epoch
  (``hornet.directory.MixerListing``, checked by ``hornet.mixer.session.Wallet``).

Invariants: secret scalars never appear in ``repr`` nor compare with ``==``; time is
always passed in (``now``, seconds), never read.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final

import attrs

from hornet.core.crypto import SECP256K1_ORDER, SecretKey, ecdsa_sign, ecdsa_verify
from hornet.credentials.encoding import Reader, expect_length
from hornet.credentials.group import GroupElement, generators, group_sum
from hornet.credentials.transcript import PROTOCOL_ID, Rng, random_scalar
from hornet.errors import LocalProtocolError, MalformedCredentialError

MAX_RANGE_BITS: Final = 62  # keeps |Δ| + Σ values far below n (no wrap-around)
MAX_K: Final = 10
MAX_ISSUANCE_K: Final = 64
_SIG_MAX: Final = 72
#: Encoded lengths: configuration, (epoch, Cw, I), issuer secret key.
PARAMS_LEN: Final = 35
IPARAMS_LEN: Final = 4 + 33 + 33
ISSUER_KEY_LEN: Final = 160
_IPARAMS_SIG_TAG: Final = b"hornet/credentials/v1/iparams-signature"


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise LocalProtocolError(f"{name} must be in [{low}, {high}]")


@attrs.frozen
class CredentialParams:
    """Public configuration shared by issuer and clients.

    range_bits: n, the width of range proofs (values are in [0, 2^n)).
    k: credentials presented and requested by reissuance and rollover (WabiSabi k).
    issuance_k: credentials per known-value issuance request.
    unit_value: value of the credential a presentation-only spend consumes.
    epoch_origin / epoch_length / grace_period: seconds; epoch e covers
    [origin + e·length, origin + (e+1)·length); credentials of epoch e − 1 are still
    accepted for ``grace_period`` seconds into epoch e.
    """

    range_bits: int = 32
    k: int = 2
    issuance_k: int = 8
    unit_value: int = 1
    epoch_origin: int = 0
    epoch_length: int = 7 * 24 * 3600
    grace_period: int = 24 * 3600

    def __attrs_post_init__(self) -> None:
        _check_range("range_bits", self.range_bits, 1, MAX_RANGE_BITS)
        _check_range("k", self.k, 1, MAX_K)
        _check_range("issuance_k", self.issuance_k, 1, MAX_ISSUANCE_K)
        _check_range("unit_value", self.unit_value, 1, (1 << self.range_bits) - 1)
        _check_range("epoch_origin", self.epoch_origin, 0, (1 << 63) - 1)
        _check_range("epoch_length", self.epoch_length, 1, (1 << 40))
        _check_range("grace_period", self.grace_period, 0, self.epoch_length)

    @property
    def max_value(self) -> int:
        return (1 << self.range_bits) - 1

    def encode(self) -> bytes:
        return (
            self.range_bits.to_bytes(1, "big")
            + self.k.to_bytes(1, "big")
            + self.issuance_k.to_bytes(1, "big")
            + self.unit_value.to_bytes(8, "big")
            + self.epoch_origin.to_bytes(8, "big")
            + self.epoch_length.to_bytes(8, "big")
            + self.grace_period.to_bytes(8, "big")
        )

    @classmethod
    def decode(cls, data: bytes) -> CredentialParams:
        expect_length(data, PARAMS_LEN, "credential parameters")
        r = Reader(data, "credential parameters")
        fields = (r.uint(1), r.uint(1), r.uint(1), r.uint(8), r.uint(8), r.uint(8), r.uint(8))
        try:
            return cls(*fields)
        except LocalProtocolError as exc:
            raise MalformedCredentialError("credential parameters out of range") from exc

    def digest(self) -> bytes:
        """SHA-256 of the protocol id, every generator and this configuration (cached)."""
        return _params_digest(self.encode())

    # -- epochs --------------------------------------------------------------------
    def epoch_at(self, now: float) -> int:
        if now < self.epoch_origin:
            raise LocalProtocolError("time is before the epoch origin")
        return int((now - self.epoch_origin) // self.epoch_length)

    def epoch_start(self, epoch: int) -> int:
        return self.epoch_origin + epoch * self.epoch_length

    def presentable_epochs(self, now: float) -> tuple[int, ...]:
        """Epochs whose credentials are accepted at ``now``: current, and previous in grace."""
        current = self.epoch_at(now)
        if current > 0 and now < self.epoch_start(current) + self.grace_period:
            return (current, current - 1)
        return (current,)


@functools.lru_cache(maxsize=64)
def _params_digest(encoded: bytes) -> bytes:
    return hashlib.sha256(PROTOCOL_ID + b"/params" + generators().encoding() + encoded).digest()


@attrs.frozen
class IssuerPublicParams:
    """iparams = (Cw, I) of one epoch (CPZ19 / WabiSabi §"Credentials")."""

    epoch: int
    Cw: GroupElement
    I: GroupElement  # noqa: E741  (the paper's symbol)

    def encode(self) -> bytes:
        return self.epoch.to_bytes(4, "big") + self.Cw.encode() + self.I.encode()

    @classmethod
    def decode(cls, data: bytes) -> IssuerPublicParams:
        expect_length(data, IPARAMS_LEN, "issuer parameters")
        r = Reader(data, "issuer parameters")
        return cls(r.uint(4), r.point(), r.point())


@attrs.frozen(eq=False)
class IssuerSecretKey:
    """sk = (w, w', x0, x1, ya) of one epoch (WabiSabi §"Credentials"; hidden from repr)."""

    w: int = attrs.field(repr=False)
    wp: int = attrs.field(repr=False)
    x0: int = attrs.field(repr=False)
    x1: int = attrs.field(repr=False)
    ya: int = attrs.field(repr=False)

    @classmethod
    def generate(cls, rng: Rng) -> IssuerSecretKey:
        """Five uniform non-zero scalars. ``rng`` must be a CSPRNG in production."""
        return cls(*(random_scalar(rng) for _ in range(5)))

    def scalars(self) -> tuple[int, int, int, int, int]:
        return (self.w, self.wp, self.x0, self.x1, self.ya)

    def to_bytes(self) -> bytes:
        """160 bytes for the operator's key file (keep it secret)."""
        return b"".join(v.to_bytes(32, "big") for v in self.scalars())

    @classmethod
    def from_bytes(cls, data: bytes) -> IssuerSecretKey:
        if len(data) != ISSUER_KEY_LEN:
            raise LocalProtocolError("issuer key must be 160 bytes")
        values = [int.from_bytes(data[i : i + 32], "big") for i in range(0, 160, 32)]
        if not all(0 < v < SECP256K1_ORDER for v in values):
            raise LocalProtocolError("issuer key scalar out of range")
        return cls(*values)

    def public(self, epoch: int) -> IssuerPublicParams:
        g = generators()
        cw = group_sum((g.Gw.point * self.w, g.Gwp.point * self.wp))
        terms = (g.Gx0.point * self.x0, g.Gx1.point * self.x1, g.Ga.point * self.ya)
        i = g.GV.point - group_sum(terms)
        return IssuerPublicParams(epoch, cw, i)

    def __repr__(self) -> str:
        return "IssuerSecretKey(<hidden>)"


@attrs.frozen
class VerifiedIssuerParams:
    """The result of ``verify_issuer_params``: what a client may use."""

    params: CredentialParams
    public: IssuerPublicParams
    node_public_key: bytes
    fingerprint: bytes


def _iparams_digest(body: bytes) -> bytes:
    return hashlib.sha256(_IPARAMS_SIG_TAG + body).digest()


#: Length of ``sign_issuer_params`` output.
SIGNED_PARAMS_LEN: Final = PARAMS_LEN + IPARAMS_LEN + 33 + 1 + _SIG_MAX


def sign_issuer_params(params: CredentialParams, public: IssuerPublicParams,
                       node_key: SecretKey) -> bytes:
    """config(35) ‖ epoch(4) ‖ Cw(33) ‖ I(33) ‖ node key(33) ‖ sig_len(1) ‖ DER sig padded to 72."""
    body = params.encode() + public.encode() + node_key.public_key
    sig = ecdsa_sign(node_key.secret_bytes(), _iparams_digest(body))
    return body + len(sig).to_bytes(1, "big") + sig.ljust(_SIG_MAX, b"\x00")


def verify_issuer_params(data: bytes, node_public_key: bytes) -> VerifiedIssuerParams:
    """Check the node signature; raise ``IntegrityError`` / ``MalformedCredentialError``."""
    expect_length(data, SIGNED_PARAMS_LEN, "signed issuer parameters")
    r = Reader(data, "signed issuer parameters")
    params = CredentialParams.decode(r.take(PARAMS_LEN))
    public = IssuerPublicParams.decode(r.take(IPARAMS_LEN))
    signer = r.take(33)
    sig_len = r.uint(1)
    padded = r.take(_SIG_MAX)
    r.end()
    if not 8 <= sig_len <= _SIG_MAX or any(padded[sig_len:]):
        raise MalformedCredentialError("signed issuer parameters: bad signature field")
    if signer != bytes(node_public_key):
        raise MalformedCredentialError("signed issuer parameters: signed by another node")
    body = data[: len(data) - 1 - _SIG_MAX]
    ecdsa_verify(signer, padded[:sig_len], _iparams_digest(body))
    fingerprint = hashlib.sha256(params.digest() + public.encode()).digest()
    return VerifiedIssuerParams(params, public, signer, fingerprint)

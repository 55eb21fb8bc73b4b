"""hornet's cryptographic primitives: hashes, MACs, ciphers, AEADs and secp256k1 keys.

With ``hornet.credentials.group`` (the credential group's point arithmetic), this is one
of the two modules that import a crypto library.

Strategy:
- secp256k1 goes through libsecp256k1 as bundled by coincurve. The hot paths (Sphinx
  peel, Sphinx create) call its cffi functions directly with pre-parsed key
  structures, so a peel parses the ephemeral key once and a create never derives
  the x-only key coincurve's ``PrivateKey`` computes on construction.
- Symmetric primitives come from OpenSSL: ``cryptography`` for ciphers, the standard
  library's ``hmac``/``hashlib`` (also OpenSSL) for one-shot HMAC and hashes.
- Every function takes its randomness from the caller; nothing here reads a clock or
  an RNG.

Invariants:
- Failures on untrusted input raise ``InvalidPointError`` / ``IntegrityError`` (typed,
  with no secret material in the message).
- Tag comparisons go through ``hmac.compare_digest`` (constant time).
- Secret-holding objects hide their bytes from ``repr`` and are not comparable.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any, Final

from coincurve import PrivateKey as _CCPrivateKey
from coincurve import PublicKey as _CCPublicKey
from coincurve import PublicKeyXOnly as _CCPublicKeyXOnly
from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT as _GLOBAL_CONTEXT
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from hornet.errors import IntegrityError, InvalidPointError, LocalProtocolError

# --------------------------------------------------------------------------------------
# Constants

#: Order n of the secp256k1 group.
SECP256K1_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
PUBKEY_LEN: Final = 33
SCALAR_LEN: Final = 32
SHA256_LEN: Final = 32

_CTX: Final = _GLOBAL_CONTEXT.ctx
_EC_COMPRESSED: Final = 258  # SECP256K1_EC_COMPRESSED flag
_ZERO_NONCE16: Final = bytes(16)
_ZERO_NONCE12: Final = bytes(12)

# --------------------------------------------------------------------------------------
# Hashes and MACs


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256, one shot (OpenSSL)."""
    return hmac.digest(key, data, "sha256")


def xor_bytes(a: bytes, b: bytes) -> bytes:
    """a XOR b for equal-length byte strings (one big-int operation, no Python loop)."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def ct_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two byte strings (timing depends only on lengths)."""
    return hmac.compare_digest(a, b)


# --------------------------------------------------------------------------------------
# ChaCha20 and ChaCha20-Poly1305


def chacha20_xor(key: bytes, data: bytes, nonce: bytes = _ZERO_NONCE12) -> bytes:
    """XOR ``data`` with the ChaCha20 keystream (RFC 8439, counter 0, 96-bit nonce).

    BOLT 4 uses a zero nonce for every stream (``rho``, ``pad``, ``ammag``).
    """
    cipher = Cipher(algorithms.ChaCha20(key, b"\x00\x00\x00\x00" + nonce), mode=None)
    return cipher.encryptor().update(data)


def chacha20_stream(key: bytes, length: int) -> bytes:
    """``length`` bytes of ChaCha20 keystream under a zero nonce."""
    return chacha20_xor(key, bytes(length))


def chacha20poly1305_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """RFC 8439 AEAD; returns ciphertext ‖ 16-byte tag."""
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def chacha20poly1305_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """RFC 8439 AEAD open; raises ``IntegrityError`` on a bad tag or short input."""
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError) as exc:
        raise IntegrityError("AEAD tag mismatch") from exc


# --------------------------------------------------------------------------------------
# AES (HORNET data plane: PRGs, PRPs, onion layers)


def aes_ctr_xor(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CTR (128-bit big-endian counter starting at ``iv``) XOR ``data``."""
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update(data)


def aes_ctr_stream(key: bytes, length: int, iv: bytes = _ZERO_NONCE16) -> bytes:
    return aes_ctr_xor(key, iv, bytes(length))


class AesBlock:
    """A cached AES-ECB context pair for single-block PRP calls (encrypt and decrypt).

    ECB contexts are stateless between blocks, so one encryptor/decryptor can be
    reused for every call: this is the cheapest way to run AES on 16 bytes from
    Python.
    """

    __slots__ = ("_dec", "_enc")

    def __init__(self, key: bytes) -> None:
        cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305  (single-block PRP)
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()

    def encrypt(self, block: bytes) -> bytes:
        return self._enc.update(block)

    def decrypt(self, block: bytes) -> bytes:
        return self._dec.update(block)

    def __repr__(self) -> str:
        return "AesBlock(<key hidden>)"


class AesCtr:
    """A cached AES-CTR context whose counter block is reset per call (``reset_nonce``).

    Creating a ``Cipher`` costs more than an ``update`` of a whole packet: data-plane
    code keeps one of these per key and calls ``xor(iv, data)`` per packet.
    """

    __slots__ = ("_ctx",)

    def __init__(self, key: bytes) -> None:
        self._ctx = Cipher(algorithms.AES(key), modes.CTR(_ZERO_NONCE16)).encryptor()

    def xor(self, iv: bytes, data: bytes) -> bytes:
        ctx = self._ctx
        ctx.reset_nonce(iv)
        return ctx.update(data)

    def __repr__(self) -> str:
        return "AesCtr(<key hidden>)"


class AesGcm:
    """A cached AES-128-GCM key: the hardened data profile's per-hop layer (SPEC.md §5.4).

    ``seal(nonce, data, aad) -> ciphertext ‖ 16-byte tag`` is the AEAD object's own bound
    method (no Python frame per packet); ``open(nonce, data, aad)`` raises
    ``IntegrityError`` on a bad tag (OpenSSL's constant-time check).
    """

    __slots__ = ("_aead", "seal")

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise LocalProtocolError("AES-128-GCM key must be 16 bytes")
        self._aead = AESGCM(key)
        self.seal: Callable[[bytes, bytes, bytes | None], bytes] = self._aead.encrypt

    def open(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
        try:
            return self._aead.decrypt(nonce, data, aad)
        except (InvalidTag, ValueError) as exc:
            raise IntegrityError("payload tag mismatch") from exc

    def __repr__(self) -> str:
        return "AesGcm(<key hidden>)"


def derive_keys(key: bytes, count: int) -> list[bytes]:
    """``count`` independent 16-byte keys from a 16-byte key: AES_key(i) for i = 1..count.

    AES under a uniformly random key is a PRF on distinct inputs, so one ECB call over
    ``count`` counter blocks replaces ``count`` HMACs (HORNET's h_op functions).
    """
    blocks = b"".join(i.to_bytes(16, "big") for i in range(1, count + 1))
    out = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(blocks)  # noqa: S305
    return [out[i : i + 16] for i in range(0, 16 * count, 16)]


def mac16(key: bytes, data: bytes) -> bytes:
    """HORNET MAC: HMAC-SHA256 truncated to k = 16 bytes."""
    return hmac.digest(key, data, "sha256")[:16]


class Prp256:
    """A 32-byte PRP: 4-round Luby–Rackoff Feistel network with AES-128 round functions.

    HORNET seals each forwarding segment (FS = s ‖ R ‖ EXP) as ONE 32-byte block, so a
    change to any bit scrambles all of s, R and EXP (sealing each 16-byte half on its own
    allows splicing halves of two FSes). Four rounds with independent PRF rounds give a
    strong PRP (Luby–Rackoff). Round keys are AES_key(1..4) of the 16-byte key.
    """

    __slots__ = ("_rounds",)

    def __init__(self, key: bytes) -> None:
        self._rounds = [AesBlock(k) for k in derive_keys(key, 4)]

    def encrypt(self, block: bytes) -> bytes:
        left = int.from_bytes(block[:16], "big")
        right = block[16:32]
        for aes in self._rounds:
            left, right = (
                int.from_bytes(right, "big"),
                (left ^ int.from_bytes(aes.encrypt(right), "big")).to_bytes(16, "big"),
            )
        return left.to_bytes(16, "big") + right

    def decrypt(self, block: bytes) -> bytes:
        left = block[:16]
        right = int.from_bytes(block[16:32], "big")
        for aes in reversed(self._rounds):
            left, right = (
                (right ^ int.from_bytes(aes.encrypt(left), "big")).to_bytes(16, "big"),
                int.from_bytes(left, "big"),
            )
        return left + right.to_bytes(16, "big")

    def __repr__(self) -> str:
        return "Prp256(<key hidden>)"


# --------------------------------------------------------------------------------------
# secp256k1: key pairs and Sphinx key operations


def parse_point(data: bytes) -> Any:
    """A compressed secp256k1 point as libsecp256k1's ``secp256k1_pubkey *``."""
    if len(data) != PUBKEY_LEN:
        raise InvalidPointError("public key must be 33 bytes (compressed)")
    point = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ec_pubkey_parse(_CTX, point, data, PUBKEY_LEN):
        raise InvalidPointError("public key is not a valid secp256k1 point")
    return point


def serialize_point(point: Any) -> bytes:
    """``parse_point`` reversed: the 33-byte compressed encoding."""
    out = _ffi.new("unsigned char[33]")
    out_len = _ffi.new("size_t *", PUBKEY_LEN)
    _lib.secp256k1_ec_pubkey_serialize(_CTX, out, out_len, point, _EC_COMPRESSED)
    return bytes(_ffi.buffer(out, PUBKEY_LEN))


def _ecdh_point(point: Any, secret: bytes) -> bytes:
    out = _ffi.new("unsigned char[32]")
    if not _lib.secp256k1_ecdh(_CTX, out, point, secret, _ffi.NULL, _ffi.NULL):
        raise InvalidPointError("ECDH failed")
    return bytes(_ffi.buffer(out, SHA256_LEN))


def _check_scalar(secret: bytes) -> None:
    if len(secret) != SCALAR_LEN or not _lib.secp256k1_ec_seckey_verify(_CTX, secret):
        raise LocalProtocolError("secret key must be 32 bytes encoding 1 <= k < n")


def is_valid_scalar(secret: bytes) -> bool:
    return len(secret) == SCALAR_LEN and bool(_lib.secp256k1_ec_seckey_verify(_CTX, secret))


def pubkey_from_secret(secret: bytes) -> bytes:
    """The compressed public key k·G of a 32-byte secret scalar."""
    _check_scalar(secret)
    point = _ffi.new("secp256k1_pubkey *")
    _lib.secp256k1_ec_pubkey_create(_CTX, point, secret)
    return serialize_point(point)


def validate_pubkey(data: bytes) -> bytes:
    """Return ``data`` if it is a valid compressed point, else raise ``InvalidPointError``."""
    parse_point(data)
    return data


def ecdh(secret: bytes, pubkey: bytes) -> bytes:
    """BOLT 4 / libsecp256k1 ECDH: SHA256 of the compressed point secret·pubkey."""
    _check_scalar(secret)
    return _ecdh_point(parse_point(pubkey), secret)


def pubkey_tweak_mul(pubkey: bytes, scalar: bytes) -> bytes:
    """``scalar · pubkey`` for a 32-byte scalar (e.g. a Sphinx blinding factor)."""
    point = parse_point(pubkey)
    if not _lib.secp256k1_ec_pubkey_tweak_mul(_CTX, point, scalar):
        raise InvalidPointError("blinding scalar out of range")
    return serialize_point(point)


def sphinx_ecdh(secret: bytes, ephemeral_pubkey: bytes) -> tuple[bytes, Any]:
    """First half of a Sphinx peel: (shared secret, parsed ephemeral key).

    ss = SHA256(secret · E). The parsed key is opaque and is handed back to
    ``sphinx_blind`` so that E is parsed once per peel. Raises ``InvalidPointError``.
    """
    point = parse_point(ephemeral_pubkey)
    return _ecdh_point(point, secret), point


def sphinx_blind(parsed_ephemeral: Any, ephemeral_pubkey: bytes, shared: bytes) -> bytes:
    """Second half of a Sphinx peel: E' = SHA256(E ‖ ss) · E (consumes the parsed key)."""
    blind = hashlib.sha256(ephemeral_pubkey + shared).digest()
    if not _lib.secp256k1_ec_pubkey_tweak_mul(_CTX, parsed_ephemeral, blind):
        raise InvalidPointError("blinding scalar out of range")
    return serialize_point(parsed_ephemeral)


def sphinx_path_secrets(session_key: bytes, pubkeys: Sequence[bytes]) -> tuple[bytes, list[bytes]]:
    """Sender side of Sphinx key agreement (BOLT 4 "shared secrets" for every hop).

    Returns (first ephemeral public key, shared secret per hop). The sender keeps
    the blinded scalar e_i = session_key · b_0 ⋯ b_{i-1} mod n, so each hop costs one
    base-point multiplication (E_i = e_i·G) and one ECDH, instead of the i+1
    variable-base multiplications of the textbook construction.
    """
    _check_scalar(session_key)
    scalar = int.from_bytes(session_key, "big")
    first_pub = b""
    secrets: list[bytes] = []
    last = len(pubkeys) - 1
    for index, pub in enumerate(pubkeys):
        e_bytes = scalar.to_bytes(SCALAR_LEN, "big")
        shared = _ecdh_point(parse_point(pub), e_bytes)
        secrets.append(shared)
        if index == last and index != 0:
            break
        point = _ffi.new("secp256k1_pubkey *")
        if not _lib.secp256k1_ec_pubkey_create(_CTX, point, e_bytes):
            raise LocalProtocolError("derived ephemeral scalar is invalid")
        eph = serialize_point(point)
        if index == 0:
            first_pub = eph
        blind = int.from_bytes(hashlib.sha256(eph + shared).digest(), "big")
        scalar = scalar * blind % SECP256K1_ORDER
    return first_pub, secrets


def schnorr_sign(secret: bytes, message: bytes, aux: bytes) -> bytes:
    """BIP-340 Schnorr signature (64 bytes) of a 32-byte ``message`` under ``secret``
    (libsecp256k1 through coincurve); ``aux`` is the 32 bytes of auxiliary randomness."""
    _check_scalar(secret)
    if len(message) != SHA256_LEN or len(aux) != SHA256_LEN:
        raise LocalProtocolError("BIP-340 signs a 32-byte message with 32 bytes of aux")
    return bytes(_CCPrivateKey(secret).sign_schnorr(message, aux))


def xonly_pubkey(pubkey: bytes) -> bytes:
    """The 32-byte x-only key (BIP-340) of a 33-byte compressed public key."""
    return validate_pubkey(pubkey)[1:]


def schnorr_verify(xonly: bytes, signature: bytes, message: bytes) -> None:
    """Raise ``IntegrityError`` unless ``signature`` is a valid BIP-340 signature of the
    32-byte ``message`` under the x-only key ``xonly``."""
    if len(xonly) != 32 or len(signature) != 64 or len(message) != SHA256_LEN:
        raise IntegrityError("signature does not verify")
    try:
        ok = _CCPublicKeyXOnly(bytes(xonly)).verify(bytes(signature), bytes(message))
    except (ValueError, TypeError) as exc:
        raise IntegrityError("signature does not verify") from exc
    if not ok:
        raise IntegrityError("signature does not verify")


def ecdsa_sign(secret: bytes, digest: bytes) -> bytes:
    """ECDSA over secp256k1 of a 32-byte digest; returns the DER signature."""
    _check_scalar(secret)
    if len(digest) != SHA256_LEN:
        raise LocalProtocolError("ECDSA signs a 32-byte digest")
    return bytes(_CCPrivateKey(secret).sign(digest, hasher=None))


def ecdsa_verify(pubkey: bytes, signature: bytes, digest: bytes) -> None:
    """Raise ``IntegrityError`` unless ``signature`` is valid for ``digest`` under ``pubkey``."""
    try:
        ok = _CCPublicKey(bytes(pubkey)).verify(bytes(signature), digest, hasher=None)
    except (ValueError, TypeError) as exc:
        raise IntegrityError("signature does not verify") from exc
    if not ok:
        raise IntegrityError("signature does not verify")


class SecretKey:
    """A secp256k1 secret key whose bytes never appear in ``repr`` and never compare.

    Holds the derived public key so that callers never recompute it.
    """

    __slots__ = ("_secret", "public_key")

    def __init__(self, secret: bytes) -> None:
        _check_scalar(secret)
        self._secret = bytes(secret)
        self.public_key: bytes = pubkey_from_secret(self._secret)

    @classmethod
    def from_rng(cls, rng: Any) -> SecretKey:
        """Draw a key from ``rng``: any object with ``randbytes(n) -> bytes``."""
        while True:
            candidate = rng.randbytes(SCALAR_LEN)
            if is_valid_scalar(candidate):
                return cls(candidate)

    def secret_bytes(self) -> bytes:
        """The raw 32 bytes, for key files and nothing else."""
        return self._secret

    def ecdh(self, pubkey: bytes) -> bytes:
        return _ecdh_point(parse_point(pubkey), self._secret)

    def sphinx_ecdh(self, ephemeral_pubkey: bytes) -> tuple[bytes, Any]:
        return sphinx_ecdh(self._secret, ephemeral_pubkey)

    def __repr__(self) -> str:
        return f"SecretKey(public_key={self.public_key.hex()}, secret=<hidden>)"

    def __eq__(self, other: object) -> bool:
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def secret_tweak_mul(secret: bytes | SecretKey, tweak: bytes) -> bytes:
    """``tweak · secret mod n`` with libsecp256k1 (constant time in the secret).

    Route blinding (BOLT 4 §Route Blinding) uses it twice: a blinded node's private key
    b_i = HMAC256("blinded_node_id", ss_i) · k_i, and the path-key chain
    e_{i+1} = SHA256(E_i ‖ ss_i) · e_i. Raises ``InvalidPointError`` if ``tweak`` is
    not a 32-byte scalar below n (or the product is zero); messages carry no secrets.
    """
    raw = secret._secret if isinstance(secret, SecretKey) else bytes(secret)
    _check_scalar(raw)
    if len(tweak) != SCALAR_LEN:
        raise InvalidPointError("tweak must be a 32-byte scalar")
    buf = _ffi.new("unsigned char[32]", raw)
    if not _lib.secp256k1_ec_seckey_tweak_mul(_CTX, buf, bytes(tweak)):
        raise InvalidPointError("tweak is out of range")
    return bytes(_ffi.buffer(buf, SCALAR_LEN))




# --------------------------------------------------------------------------------------
# BOLT 8 key derivation (hornet.link) and a cached AES-256-GCM key (link sessions,
# end-to-end frames)


def hkdf_sha256_pair(salt: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    """BOLT 8 ``HKDF(salt, ikm)``: RFC 5869 HKDF-SHA256, empty info, 64 bytes, two halves.

    Extract: PRK = HMAC(salt, ikm). Expand: T1 = HMAC(PRK, 0x01), T2 = HMAC(PRK, T1 ‖ 0x02).
    """
    prk = hmac.digest(salt, ikm, "sha256")
    first = hmac.digest(prk, b"\x01", "sha256")
    return first, hmac.digest(prk, first + b"\x02", "sha256")


class Aes256Gcm:
    """AES-256-GCM (NIST SP 800-38D, 12-byte nonce, 16-byte tag) under a cached 32-byte
    key: the per-packet AEAD of link datagrams and end-to-end frames (with AES-NI it is
    cheaper than ChaCha20-Poly1305 per packet; ``benchmarks/bench_link.py`` compares them).

    Building the AEAD object costs more than sealing a 1 KB datagram, so a session keeps
    one per direction. ``seal(nonce, plaintext, aad) -> ciphertext ‖ tag`` is the AEAD
    object's own bound method (no Python frame on the per-packet path). ``open`` raises
    ``IntegrityError`` on a bad tag or a ciphertext shorter than the tag (the tag check
    is OpenSSL's, constant time).
    """

    __slots__ = ("_aead", "seal")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise LocalProtocolError("AES-256-GCM key must be 32 bytes")
        self._aead = AESGCM(key)
        self.seal: Callable[[bytes, bytes, bytes | None], bytes] = self._aead.encrypt

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes | None) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError) as exc:
            raise IntegrityError("AEAD tag mismatch") from exc

    def __repr__(self) -> str:
        return "Aes256Gcm(<key hidden>)"

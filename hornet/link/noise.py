"""BOLT 8 handshake: Noise_XK_secp256k1_ChaChaPoly_SHA256 in three acts, exact bytes.

Strategy: the classes follow BOLT 8 ("Authenticated Key Exchange Handshake
Specification") act by act, with the spec's names (``ck``, ``h``, ``temp_k1..3``, ``e``,
``s``, ``re``, ``rs``). They are pure: the caller passes the static and ephemeral keys,
so the published vectors replay exactly; nothing here reads a clock or an RNG.

Invariants:
- A ``read_*`` method that fails leaves the handshake exactly as it was. Over UDP a
  forged or corrupted act must not kill a genuine handshake still in flight; the
  caller drops the datagram and keeps waiting.
- Errors from peer bytes: wrong length → ``MalformedInputError``; version ≠ 0 →
  ``UnknownVersionError``; a key that is not a point → ``InvalidPointError``; a tag
  that does not verify → ``IntegrityError``. Calling the acts out of order is the
  caller's mistake (``LocalProtocolError``).
- Keys never appear in ``repr`` and ``TransportKeys`` do not compare.
"""

from __future__ import annotations

from typing import Final

import attrs

from hornet.core.crypto import (
    SecretKey,
    chacha20poly1305_decrypt,
    chacha20poly1305_encrypt,
    hkdf_sha256_pair,
    sha256,
    validate_pubkey,
)
from hornet.errors import (
    InvalidPointError,
    LocalProtocolError,
    MalformedInputError,
    UnknownVersionError,
)

PROTOCOL_NAME: Final = b"Noise_XK_secp256k1_ChaChaPoly_SHA256"
#: BOLT 8's prologue. hornet keeps it, so its link handshake is byte-for-byte BOLT 8.
PROLOGUE: Final = b"lightning"
HANDSHAKE_VERSION: Final = 0
PUBKEY_LEN: Final = 33
TAG_LEN: Final = 16
ACT_ONE_LEN: Final = 1 + PUBKEY_LEN + TAG_LEN  # version ‖ e.pub ‖ tag = 50
ACT_TWO_LEN: Final = 1 + PUBKEY_LEN + TAG_LEN  # version ‖ e.pub ‖ tag = 50
ACT_THREE_LEN: Final = 1 + PUBKEY_LEN + TAG_LEN + TAG_LEN  # version ‖ enc(s.pub) ‖ tag = 66

_NONCE_ZERO: Final = bytes(12)
_NONCE_ONE: Final = bytes(4) + (1).to_bytes(8, "little")  # Noise nonce n = 1


@attrs.frozen(eq=False, repr=False)
class TransportKeys:
    """What a finished handshake hands to the transport (BOLT 8 "Act Three", last step).

    ``send_key``/``receive_key`` are this side's sk/rk; ``chaining_key`` is the final
    ck (BOLT 8 key rotation salts with it); ``handshake_hash`` is the final h, a public
    transcript hash; ``remote_static`` is the peer's static public key (rs).
    """

    send_key: bytes
    receive_key: bytes
    chaining_key: bytes
    handshake_hash: bytes
    remote_static: bytes

    def __repr__(self) -> str:
        return f"TransportKeys(remote_static={self.remote_static.hex()}, keys=<hidden>)"


class _SymmetricState:
    """Noise's ck / h / temp_k, as BOLT 8 names them."""

    __slots__ = ("ck", "h", "temp_k")

    def __init__(self, ck: bytes, h: bytes, temp_k: bytes) -> None:
        self.ck = ck
        self.h = h
        self.temp_k = temp_k

    @classmethod
    def initial(cls, responder_static: bytes, prologue: bytes) -> _SymmetricState:
        """Handshake State Initialization: h = SHA256(name); ck = h; mix prologue and rs."""
        h = sha256(PROTOCOL_NAME)
        ck = h
        h = sha256(h + prologue)
        h = sha256(h + responder_static)
        return cls(ck, h, b"")

    def copy(self) -> _SymmetricState:
        return _SymmetricState(self.ck, self.h, self.temp_k)

    def mix_hash(self, data: bytes) -> None:
        self.h = sha256(self.h + data)

    def mix_key(self, shared: bytes) -> None:
        self.ck, self.temp_k = hkdf_sha256_pair(self.ck, shared)

    def encrypt_and_hash(self, nonce: bytes, plaintext: bytes) -> bytes:
        ciphertext = chacha20poly1305_encrypt(self.temp_k, nonce, plaintext, self.h)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, nonce: bytes, ciphertext: bytes) -> bytes:
        plaintext = chacha20poly1305_decrypt(self.temp_k, nonce, ciphertext, self.h)
        self.mix_hash(ciphertext)
        return plaintext

    def __repr__(self) -> str:
        return "_SymmetricState(<hidden>)"


def _check_act(message: bytes, length: int, name: str) -> None:
    if len(message) != length:
        raise MalformedInputError(f"{name} must be {length} bytes, got {len(message)}")
    if message[0] != HANDSHAKE_VERSION:
        raise UnknownVersionError(f"{name} has unknown handshake version {message[0]}")


def _remote_key(data: bytes) -> bytes:
    """Parse a peer's public key; ``InvalidPointError`` if it is not a compressed point."""
    return validate_pubkey(bytes(data))


class Initiator:
    """The side that knows the responder's static key (XK): writes acts one and three.

    ``static`` is s (a relay's directory key, or a fresh key per link for a source);
    ``remote_static`` is rs from the directory; ``ephemeral`` is e.
    """

    __slots__ = ("_e", "_re", "_rs", "_s", "_stage", "_state")

    def __init__(
        self,
        static: SecretKey,
        remote_static: bytes,
        ephemeral: SecretKey,
        *,
        prologue: bytes = PROLOGUE,
    ) -> None:
        try:
            self._rs = _remote_key(remote_static)
        except InvalidPointError:
            raise LocalProtocolError("responder static key is not a valid point") from None
        self._s = static
        self._e = ephemeral
        self._re = b""
        self._state = _SymmetricState.initial(self._rs, prologue)
        self._stage = 0

    def _expect(self, stage: int, action: str) -> None:
        if self._stage != stage:
            raise LocalProtocolError(f"initiator cannot {action} now")

    def act_one(self) -> bytes:
        """Act One (sender): 0 ‖ e.pub ‖ c, with c = encryptWithAD(temp_k1, 0, h, "")."""
        self._expect(0, "write act one")
        state = self._state
        e_pub = self._e.public_key
        state.mix_hash(e_pub)
        state.mix_key(self._e.ecdh(self._rs))  # es
        c = state.encrypt_and_hash(_NONCE_ZERO, b"")
        self._stage = 1
        return bytes((HANDSHAKE_VERSION,)) + e_pub + c

    def read_act_two(self, message: bytes) -> None:
        """Act Two (receiver): check version, re, and the tag under temp_k2 (ee)."""
        self._expect(1, "read act two")
        _check_act(message, ACT_TWO_LEN, "act two")
        re = _remote_key(message[1 : 1 + PUBKEY_LEN])
        state = self._state.copy()
        state.mix_hash(re)
        state.mix_key(self._e.ecdh(re))  # ee
        state.decrypt_and_hash(_NONCE_ZERO, bytes(message[1 + PUBKEY_LEN :]))
        self._state, self._re, self._stage = state, re, 2

    def act_three(self) -> tuple[bytes, TransportKeys]:
        """Act Three (sender): 0 ‖ c ‖ t; c encrypts s.pub under temp_k2 with nonce 1, and
        t is the tag under temp_k3 (se). Then sk, rk = HKDF(ck, "")."""
        self._expect(2, "write act three")
        state = self._state
        c = state.encrypt_and_hash(_NONCE_ONE, self._s.public_key)
        state.mix_key(self._s.ecdh(self._re))  # se
        t = chacha20poly1305_encrypt(state.temp_k, _NONCE_ZERO, b"", state.h)
        sk, rk = hkdf_sha256_pair(state.ck, b"")
        self._stage = 3
        keys = TransportKeys(sk, rk, state.ck, state.h, self._rs)
        return bytes((HANDSHAKE_VERSION,)) + c + t, keys

    def __repr__(self) -> str:
        return f"Initiator(remote_static={self._rs.hex()}, stage={self._stage})"


class Responder:
    """The side whose static key the initiator knows: reads acts one and three."""

    __slots__ = ("_e", "_re", "_s", "_stage", "_state")

    def __init__(
        self, static: SecretKey, ephemeral: SecretKey, *, prologue: bytes = PROLOGUE
    ) -> None:
        self._s = static
        self._e = ephemeral
        self._re = b""
        self._state = _SymmetricState.initial(static.public_key, prologue)
        self._stage = 0

    def _expect(self, stage: int, action: str) -> None:
        if self._stage != stage:
            raise LocalProtocolError(f"responder cannot {action} now")

    def read_act_one(self, message: bytes) -> None:
        """Act One (receiver): check version, re, and the tag under temp_k1 (es)."""
        self._expect(0, "read act one")
        _check_act(message, ACT_ONE_LEN, "act one")
        re = _remote_key(message[1 : 1 + PUBKEY_LEN])
        state = self._state.copy()
        state.mix_hash(re)
        state.mix_key(self._s.ecdh(re))  # es
        state.decrypt_and_hash(_NONCE_ZERO, bytes(message[1 + PUBKEY_LEN :]))
        self._state, self._re, self._stage = state, re, 1

    def act_two(self) -> bytes:
        """Act Two (sender): 0 ‖ e.pub ‖ c, with c = encryptWithAD(temp_k2, 0, h, "")."""
        self._expect(1, "write act two")
        state = self._state
        e_pub = self._e.public_key
        state.mix_hash(e_pub)
        state.mix_key(self._e.ecdh(self._re))  # ee
        c = state.encrypt_and_hash(_NONCE_ZERO, b"")
        self._stage = 2
        return bytes((HANDSHAKE_VERSION,)) + e_pub + c

    def read_act_three(self, message: bytes) -> TransportKeys:
        """Act Three (receiver): decrypt rs, check t under temp_k3 (se); rk, sk = HKDF(ck, "")."""
        self._expect(2, "read act three")
        _check_act(message, ACT_THREE_LEN, "act three")
        state = self._state.copy()
        rs = _remote_key(state.decrypt_and_hash(_NONCE_ONE, bytes(message[1:50])))
        state.mix_key(self._e.ecdh(rs))  # se
        chacha20poly1305_decrypt(state.temp_k, _NONCE_ZERO, bytes(message[50:]), state.h)
        rk, sk = hkdf_sha256_pair(state.ck, b"")
        self._state, self._stage = state, 3
        return TransportKeys(sk, rk, state.ck, state.h, rs)

    def __repr__(self) -> str:
        return f"Responder(static={self._s.public_key.hex()}, stage={self._stage})"

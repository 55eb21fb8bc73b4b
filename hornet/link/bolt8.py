"""BOLT 8 over a byte stream: the handshake, then length-prefixed encrypted messages.

Strategy (h11's shape): ``Bolt8Connection`` is a pure machine. The caller feeds it the
bytes it read (``receive_data``) and gets whole decrypted messages back; it asks it to
``send_message`` and writes whatever ``data_to_send`` returns. The three acts are
``hornet.link.noise`` (byte-exact with the BOLT 8 vectors); the static and ephemeral
keys are passed in, so nothing here reads a clock or an RNG.

BOLT 8 "Encrypting and Sending Messages": each message is ``lc ‖ c``, ``lc`` the
2-byte big-endian length sealed with ChaCha20-Poly1305 (18 bytes), ``c`` the message
sealed under the next nonce; each direction's key rotates after 1000 nonces (500
messages) with ``ck', k' = HKDF(ck, k)``.

Invariants:
- Any failure on peer bytes (a bad act, a tag that does not verify) raises a
  ``RemoteProtocolError``; the machine is then dead (``closed``) and the caller must
  drop the connection. BOLT 8: a MAC failure on a stream terminates it.
- The receive buffer never holds more than one message in flight plus what one read
  returned: complete messages are decrypted as soon as they are whole.
- Keys never appear in ``repr``.
"""

from __future__ import annotations

import struct
from typing import Final

from hornet.core.crypto import (
    SecretKey,
    chacha20poly1305_decrypt,
    chacha20poly1305_encrypt,
    hkdf_sha256_pair,
)
from hornet.errors import LocalProtocolError, RemoteProtocolError
from hornet.link.noise import (
    ACT_ONE_LEN,
    ACT_THREE_LEN,
    ACT_TWO_LEN,
    Initiator,
    Responder,
    TransportKeys,
)

#: The largest BOLT 1 message (the length prefix is a u16).
MAX_MESSAGE_LEN: Final = 65_535
TAG_LEN: Final = 16
LENGTH_HEADER_LEN: Final = 2 + TAG_LEN  # 18
#: BOLT 8 "Lightning Message Key Rotation": rotate once a key has used 1000 nonces.
ROTATE_AFTER_NONCES: Final = 1000

_NONCE: Final = struct.Struct("<4xQ")
_LENGTH: Final = struct.Struct(">H")


class MessageCipher:
    """One direction of a BOLT 8 stream: key, chaining key and nonce counter."""

    __slots__ = ("_ck", "_key", "_n")

    def __init__(self, key: bytes, chaining_key: bytes) -> None:
        if len(key) != 32 or len(chaining_key) != 32:
            raise LocalProtocolError("BOLT 8 keys are 32 bytes")
        self._key = key
        self._ck = chaining_key
        self._n = 0

    def _next_nonce(self) -> bytes:
        nonce = _NONCE.pack(self._n)
        self._n += 1
        return nonce

    def _maybe_rotate(self) -> None:
        if self._n == ROTATE_AFTER_NONCES:
            self._ck, self._key = hkdf_sha256_pair(self._ck, self._key)
            self._n = 0

    def encrypt(self, message: bytes) -> bytes:
        """``lc ‖ c`` for one message (BOLT 8 "Encrypting and Sending Messages")."""
        if len(message) > MAX_MESSAGE_LEN:
            raise LocalProtocolError(f"a BOLT 8 message is at most {MAX_MESSAGE_LEN} bytes")
        lc = chacha20poly1305_encrypt(self._key, self._next_nonce(),
                                      _LENGTH.pack(len(message)), b"")
        c = chacha20poly1305_encrypt(self._key, self._next_nonce(), bytes(message), b"")
        self._maybe_rotate()
        return lc + c

    def decrypt_length(self, lc: bytes) -> int:
        """The body length from an 18-byte ``lc`` (uses one nonce)."""
        return int(_LENGTH.unpack(chacha20poly1305_decrypt(self._key, self._next_nonce(),
                                                           bytes(lc), b""))[0])

    def decrypt_body(self, c: bytes) -> bytes:
        """The message from its ``c`` (uses one nonce, then maybe rotates)."""
        message = chacha20poly1305_decrypt(self._key, self._next_nonce(), bytes(c), b"")
        self._maybe_rotate()
        return message

    def __repr__(self) -> str:
        return f"MessageCipher(nonce={self._n}, keys=<hidden>)"


class Bolt8Connection:
    """A BOLT 8 connection as a sans-IO machine (either side).

    Build with ``initiator`` (we know the peer's node id) or ``responder``. After the
    handshake, ``remote_static`` is the peer's authenticated node id.
    """

    def __init__(self, handshake: Initiator | Responder) -> None:
        self._handshake: Initiator | Responder | None = handshake
        self._buffer = bytearray()
        self._out = bytearray()
        self._send: MessageCipher | None = None
        self._receive: MessageCipher | None = None
        self._body_len: int | None = None
        self.remote_static: bytes | None = None
        self.closed = False
        self._act_one_read = False
        if isinstance(handshake, Initiator):
            self._out += handshake.act_one()

    @classmethod
    def initiator(cls, static: SecretKey, remote_static: bytes,
                  ephemeral: SecretKey) -> Bolt8Connection:
        return cls(Initiator(static, remote_static, ephemeral))

    @classmethod
    def responder(cls, static: SecretKey, ephemeral: SecretKey) -> Bolt8Connection:
        return cls(Responder(static, ephemeral))

    @property
    def established(self) -> bool:
        return self._send is not None

    def _finish(self, keys: TransportKeys) -> None:
        self._send = MessageCipher(keys.send_key, keys.chaining_key)
        self._receive = MessageCipher(keys.receive_key, keys.chaining_key)
        self.remote_static = keys.remote_static
        self._handshake = None

    def receive_data(self, data: bytes) -> list[bytes]:
        """Feed bytes read from the stream; the whole messages they completed."""
        if self.closed:
            raise LocalProtocolError("the connection is closed")
        self._buffer += data
        try:
            if self._handshake is not None:
                self._advance_handshake()
            return self._read_messages() if self._receive is not None else []
        except RemoteProtocolError:
            self.closed = True
            raise

    def _advance_handshake(self) -> None:
        handshake = self._handshake
        buffer = self._buffer
        if isinstance(handshake, Initiator):
            if len(buffer) < ACT_TWO_LEN:
                return
            handshake.read_act_two(bytes(buffer[:ACT_TWO_LEN]))
            del buffer[:ACT_TWO_LEN]
            act_three, keys = handshake.act_three()
            self._out += act_three
            self._finish(keys)
        elif isinstance(handshake, Responder):
            if not self._act_one_read:
                if len(buffer) < ACT_ONE_LEN:
                    return
                handshake.read_act_one(bytes(buffer[:ACT_ONE_LEN]))
                del buffer[:ACT_ONE_LEN]
                self._out += handshake.act_two()
                self._act_one_read = True
            if len(buffer) < ACT_THREE_LEN:
                return
            keys = handshake.read_act_three(bytes(buffer[:ACT_THREE_LEN]))
            del buffer[:ACT_THREE_LEN]
            self._finish(keys)

    def _read_messages(self) -> list[bytes]:
        cipher = self._receive
        assert cipher is not None
        buffer = self._buffer
        messages: list[bytes] = []
        while True:
            if self._body_len is None:
                if len(buffer) < LENGTH_HEADER_LEN:
                    return messages
                self._body_len = cipher.decrypt_length(bytes(buffer[:LENGTH_HEADER_LEN]))
                del buffer[:LENGTH_HEADER_LEN]
            need = self._body_len + TAG_LEN
            if len(buffer) < need:
                return messages
            messages.append(cipher.decrypt_body(bytes(buffer[:need])))
            del buffer[:need]
            self._body_len = None

    def send_message(self, message: bytes) -> None:
        """Encrypt ``message`` into the outgoing buffer."""
        if self._send is None or self.closed:
            raise LocalProtocolError("the connection is not established")
        if len(message) > MAX_MESSAGE_LEN:
            raise LocalProtocolError(f"a BOLT 8 message is at most {MAX_MESSAGE_LEN} bytes")
        self._out += self._send.encrypt(message)

    def data_to_send(self) -> bytes:
        """Everything waiting to be written (and forget it)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def pending_output(self) -> int:
        return len(self._out)

    def __repr__(self) -> str:
        peer = self.remote_static.hex() if self.remote_static else None
        return f"Bolt8Connection(remote_static={peer}, established={self.established})"


__all__ = [
    "LENGTH_HEADER_LEN",
    "MAX_MESSAGE_LEN",
    "Bolt8Connection",
    "MessageCipher",
]

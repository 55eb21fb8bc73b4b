"""Route blinding (BOLT 4 §Route Blinding, ``proposals/route-blinding.md``).

Strategy:
- The path's *creator* walks the path-key chain once: e_0 is the caller's secret,
  E_i = e_i·G, ss_i = SHA256(e_i·N_i), B_i = HMAC256("blinded_node_id", ss_i)·N_i,
  rho_i = HMAC256("rho", ss_i), e_{i+1} = SHA256(E_i ‖ ss_i)·e_i (scalar arithmetic,
  so each hop costs one base multiplication, one ECDH and one tweak of N_i).
- A *reader* (introduction or later node) does one ECDH with the path key it was
  handed: ss = SHA256(k·E), blinded private key b = HMAC256("blinded_node_id", ss)·k
  (used to peel the Sphinx layer), rho decrypts ``encrypted_recipient_data`` with
  ChaCha20-Poly1305 under a zero nonce and no associated data, and the next path key
  is ``next_path_key_override`` if present, else SHA256(E ‖ ss)·E.

Invariants:
- No clock, no randomness: e_0 comes from the caller.
- Decoders of untrusted bytes (``EncryptedData.decode``, ``BlindedPath.decode``,
  ``decrypt_recipient_data``, ``unblind``) raise only ``RemoteProtocolError``
  subclasses; misuse by the caller raises ``LocalProtocolError``.
- Secrets (e_i, ss_i, rho_i, b_i) are hidden from ``repr`` and excluded from ``==``;
  the AEAD checks its tag in constant time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs

from hornet.core import crypto
from hornet.core.wire import decode_tlv_stream, encode_bigsize, encode_tlv_stream
from hornet.errors import (
    InvalidPointError,
    LocalProtocolError,
    MalformedInputError,
)

# --------------------------------------------------------------------------------------
# Constants

PUBKEY_LEN: Final = crypto.PUBKEY_LEN
SCID_LEN: Final = 8
SCIDDIR_LEN: Final = 9
AEAD_TAG_LEN: Final = 16
#: ``blinded_path.num_hops`` is a byte.
MAX_BLINDED_HOPS: Final = 255
#: ``blinded_path_hop.enclen`` is a u16.
MAX_ENCRYPTED_DATA_LEN: Final = 0xFFFF

_BLINDED_NODE_ID: Final = b"blinded_node_id"  # key of HMAC256("blinded_node_id", ss_i)
_RHO: Final = b"rho"  # key of HMAC256("rho", ss_i)
_ZERO_NONCE: Final = bytes(12)

# encrypted_data_tlv record types (BOLT 4 §Inside encrypted_recipient_data)
TLV_PADDING: Final = 1
TLV_SHORT_CHANNEL_ID: Final = 2
TLV_NEXT_NODE_ID: Final = 4
TLV_PATH_ID: Final = 6
TLV_NEXT_PATH_KEY_OVERRIDE: Final = 8
TLV_PAYMENT_RELAY: Final = 10
TLV_PAYMENT_CONSTRAINTS: Final = 12
TLV_ALLOWED_FEATURES: Final = 14
_NAMED_TYPES: Final = frozenset(
    {TLV_PADDING, TLV_SHORT_CHANNEL_ID, TLV_NEXT_NODE_ID, TLV_PATH_ID, TLV_NEXT_PATH_KEY_OVERRIDE}
)
#: Even types a reader understands (kept raw in ``EncryptedData.records`` when not named).
KNOWN_EVEN_TYPES: Final = _NAMED_TYPES | {
    TLV_PAYMENT_RELAY,
    TLV_PAYMENT_CONSTRAINTS,
    TLV_ALLOWED_FEATURES,
}


# --------------------------------------------------------------------------------------
# encrypted_data_tlv


def _check_opt_len(name: str, value: bytes | None, length: int) -> None:
    if value is not None and len(value) != length:
        raise LocalProtocolError(f"{name} must be {length} bytes")


@attrs.frozen
class EncryptedData:
    """The plaintext ``encrypted_data_tlv`` for one blinded hop (BOLT 4 §Inside
    ``encrypted_recipient_data``).

    Named fields cover types 1–8; ``records`` holds every other record as
    (type, value) in increasing type order: ``payment_relay`` (10),
    ``payment_constraints`` (12), ``allowed_features`` (14) and unknown odd types.
    ``encode(decode(x)) == x`` for every accepted ``x``. ``path_id`` is kept out of
    ``repr``: recipients may put secrets (e.g. a preimage) in it.
    """

    padding: bytes | None = None
    short_channel_id: int | None = None
    next_node_id: bytes | None = None
    path_id: bytes | None = attrs.field(default=None, repr=False)  # may hold a secret
    next_path_key_override: bytes | None = None
    records: tuple[tuple[int, bytes], ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.short_channel_id is not None and not 0 <= self.short_channel_id < 1 << 64:
            raise LocalProtocolError("short_channel_id must fit in 8 bytes")
        _check_opt_len("next_node_id", self.next_node_id, PUBKEY_LEN)
        _check_opt_len("next_path_key_override", self.next_path_key_override, PUBKEY_LEN)
        last = -1
        for tlv_type, _ in self.records:
            if tlv_type in _NAMED_TYPES:
                raise LocalProtocolError("named encrypted_data_tlv types go in their fields")
            if tlv_type <= last:
                raise LocalProtocolError("records must have strictly increasing types")
            last = tlv_type

    @property
    def allowed_features(self) -> bytes | None:
        """The raw ``allowed_features`` bitfield (type 14), if present."""
        return dict(self.records).get(TLV_ALLOWED_FEATURES)

    def _all_records(self) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        if self.padding is not None:
            out.append((TLV_PADDING, self.padding))
        if self.short_channel_id is not None:
            out.append((TLV_SHORT_CHANNEL_ID, self.short_channel_id.to_bytes(SCID_LEN, "big")))
        if self.next_node_id is not None:
            out.append((TLV_NEXT_NODE_ID, self.next_node_id))
        if self.path_id is not None:
            out.append((TLV_PATH_ID, self.path_id))
        if self.next_path_key_override is not None:
            out.append((TLV_NEXT_PATH_KEY_OVERRIDE, self.next_path_key_override))
        out.extend(self.records)
        out.sort(key=lambda record: record[0])
        return out

    def encode(self) -> bytes:
        return encode_tlv_stream(self._all_records())

    @classmethod
    def decode(cls, data: bytes) -> EncryptedData:
        """Parse a decrypted ``encrypted_data_tlv``.

        Raises ``MalformedInputError`` on a bad TLV stream, a field of the wrong length,
        an unknown even type, or both ``short_channel_id`` and ``next_node_id``;
        ``InvalidPointError`` if a point does not decode.
        """
        fields = decode_tlv_stream(data)
        records: list[tuple[int, bytes]] = []
        for tlv_type, value in fields.items():
            if tlv_type not in _NAMED_TYPES:
                if tlv_type % 2 == 0 and tlv_type not in KNOWN_EVEN_TYPES:
                    raise MalformedInputError("encrypted_data_tlv has an unknown even type")
                records.append((tlv_type, value))
        scid = fields.get(TLV_SHORT_CHANNEL_ID)
        if scid is not None and len(scid) != SCID_LEN:
            raise MalformedInputError("short_channel_id must be 8 bytes")
        next_node_id = fields.get(TLV_NEXT_NODE_ID)
        if next_node_id is not None:
            crypto.validate_pubkey(next_node_id)
            if scid is not None:
                raise MalformedInputError("both short_channel_id and next_node_id are set")
        override = fields.get(TLV_NEXT_PATH_KEY_OVERRIDE)
        if override is not None:
            crypto.validate_pubkey(override)
        return cls(
            padding=fields.get(TLV_PADDING),
            short_channel_id=None if scid is None else int.from_bytes(scid, "big"),
            next_node_id=next_node_id,
            path_id=fields.get(TLV_PATH_ID),
            next_path_key_override=override,
            records=tuple(records),
        )


def _padding_len_for(gap: int) -> int | None:
    """Length L of a padding value whose record (type 1, BigSize(L), L bytes) is ``gap``."""
    for width in (1, 3, 5, 9):
        length = gap - 1 - width
        if length >= 0 and len(encode_bigsize(length)) == width:
            return length
    return None


def pad_to_equal_length(items: Sequence[EncryptedData]) -> list[EncryptedData]:
    """Give every ``encrypted_data_tlv`` the same encoded length with ``padding``
    (BOLT 4 §Route Blinding: the writer SHOULD pad them to equal length).

    Existing padding is replaced. Items already at the target length get none; the
    target is the smallest length at or above the longest unpadded item that every
    item can reach with one padding record (gaps of 1, 255 and 256 bytes cannot be
    filled: the record's BigSize length grows from 1 to 3 bytes at 253).
    """
    bare = [attrs.evolve(item, padding=None) for item in items]
    lengths = [len(item.encode()) for item in bare]
    target = max(lengths, default=0)
    while any(_padding_len_for(target - n) is None for n in lengths if n < target):
        target += 1
    out = []
    for item, length in zip(bare, lengths, strict=True):
        pad = _padding_len_for(target - length) if length < target else None
        out.append(item if pad is None else attrs.evolve(item, padding=bytes(pad)))
    return out


# --------------------------------------------------------------------------------------
# blinded_path


def _check_sciddir_or_pubkey(value: bytes) -> None:
    if len(value) == PUBKEY_LEN and value[0] in (2, 3):
        return
    if len(value) == SCIDDIR_LEN and value[0] in (0, 1):
        return
    raise LocalProtocolError("first_node_id must be a 33-byte point or a 9-byte sciddir")


@attrs.frozen
class BlindedHop:
    """``blinded_path_hop``: [point blinded_node_id][u16 enclen][encrypted_recipient_data]."""

    blinded_node_id: bytes
    encrypted_recipient_data: bytes

    def __attrs_post_init__(self) -> None:
        if len(self.blinded_node_id) != PUBKEY_LEN:
            raise LocalProtocolError("blinded_node_id must be 33 bytes")
        if len(self.encrypted_recipient_data) > MAX_ENCRYPTED_DATA_LEN:
            raise LocalProtocolError("encrypted_recipient_data longer than 65535 bytes")


@attrs.frozen
class BlindedPath:
    """``blinded_path`` (BOLT 4 §Route Blinding).

    ``first_node_id`` is a ``sciddir_or_pubkey`` (BOLT 1): a 33-byte point, or 9 bytes
    (direction 0/1 ‖ 8-byte short_channel_id) naming one end of a channel.
    """

    first_node_id: bytes
    first_path_key: bytes
    hops: tuple[BlindedHop, ...]

    def __attrs_post_init__(self) -> None:
        _check_sciddir_or_pubkey(self.first_node_id)
        if len(self.first_path_key) != PUBKEY_LEN:
            raise LocalProtocolError("first_path_key must be 33 bytes")
        if not 1 <= len(self.hops) <= MAX_BLINDED_HOPS:
            raise LocalProtocolError("a blinded path has 1 to 255 hops")

    @property
    def first_node_is_pubkey(self) -> bool:
        return len(self.first_node_id) == PUBKEY_LEN

    def concat(self, other: BlindedPath) -> BlindedPath:
        """This path followed by ``other``.

        Valid only if this path's last ``encrypted_data_tlv`` names ``other``'s first
        node and carries ``next_path_key_override = other.first_path_key`` (the
        ciphertext cannot be checked here).
        """
        return BlindedPath(self.first_node_id, self.first_path_key, self.hops + other.hops)

    def encode(self) -> bytes:
        out = [self.first_node_id, self.first_path_key, bytes((len(self.hops),))]
        for hop in self.hops:
            data = hop.encrypted_recipient_data
            out += [hop.blinded_node_id, len(data).to_bytes(2, "big"), data]
        return b"".join(out)

    @classmethod
    def decode(cls, data: bytes) -> BlindedPath:
        """Parse exactly one ``blinded_path`` filling ``data``.

        Raises ``MalformedInputError`` (truncated, trailing bytes, zero hops, bad
        ``sciddir_or_pubkey`` prefix) or ``InvalidPointError``.
        """
        path, end = cls.decode_prefix(data)
        if end != len(data):
            raise MalformedInputError("trailing bytes after blinded_path")
        return path

    @classmethod
    def decode_prefix(cls, data: bytes, offset: int = 0) -> tuple[BlindedPath, int]:
        """Parse one ``blinded_path`` at ``offset``; returns (path, offset after it)."""
        data = bytes(data)
        if offset >= len(data):
            raise MalformedInputError("truncated blinded_path")
        width = SCIDDIR_LEN if data[offset] in (0, 1) else PUBKEY_LEN
        if data[offset] not in (0, 1, 2, 3):
            raise MalformedInputError("bad sciddir_or_pubkey prefix")
        end = offset + width + PUBKEY_LEN + 1
        if end > len(data):
            raise MalformedInputError("truncated blinded_path")
        first_node_id = data[offset : offset + width]
        if width == PUBKEY_LEN:
            crypto.validate_pubkey(first_node_id)
        first_path_key = crypto.validate_pubkey(data[offset + width : end - 1])
        num_hops = data[end - 1]
        if num_hops == 0:
            raise MalformedInputError("blinded_path has no hops")
        offset = end
        hops = []
        for _ in range(num_hops):
            if offset + PUBKEY_LEN + 2 > len(data):
                raise MalformedInputError("truncated blinded_path_hop")
            node = crypto.validate_pubkey(data[offset : offset + PUBKEY_LEN])
            enclen = int.from_bytes(data[offset + PUBKEY_LEN : offset + PUBKEY_LEN + 2], "big")
            offset += PUBKEY_LEN + 2
            if offset + enclen > len(data):
                raise MalformedInputError("truncated encrypted_recipient_data")
            hops.append(BlindedHop(node, data[offset : offset + enclen]))
            offset += enclen
        return cls(first_node_id, first_path_key, tuple(hops)), offset


# --------------------------------------------------------------------------------------
# The path's creator


@attrs.frozen
class BlindingHopSecrets:
    """What the creator of a blinded path derives for hop i (BOLT 4 §Route Blinding,
    "The writer of a blinded_path"). Every secret is hidden from ``repr`` and ``==``.
    """

    path_key: bytes  # E_i
    blinded_node_id: bytes  # B_i
    path_privkey: bytes = attrs.field(repr=False, eq=False)  # e_i
    shared_secret: bytes = attrs.field(repr=False, eq=False)  # ss_i
    rho: bytes = attrs.field(repr=False, eq=False)  # HMAC256("rho", ss_i)
    blinding_factor: bytes = attrs.field(repr=False, eq=False)  # HMAC256("blinded_node_id", ss_i)
    path_key_tweak: bytes = attrs.field(repr=False, eq=False)  # SHA256(E_i ‖ ss_i)
    next_path_privkey: bytes = attrs.field(repr=False, eq=False)  # e_{i+1}


def derive_blinding_secrets(
    path_privkey: bytes, node_ids: Sequence[bytes]
) -> list[BlindingHopSecrets]:
    """Walk the path-key chain from e_0 = ``path_privkey`` over ``node_ids`` (N_i).

    Raises ``LocalProtocolError`` for an invalid e_0 or node id.
    """
    if not crypto.is_valid_scalar(path_privkey):
        raise LocalProtocolError("path private key must be a valid 32-byte scalar")
    e = bytes(path_privkey)
    out = []
    try:
        for node_id in node_ids:
            path_key = crypto.pubkey_from_secret(e)
            ss = crypto.ecdh(e, node_id)
            factor = crypto.hmac_sha256(_BLINDED_NODE_ID, ss)
            tweak = crypto.sha256(path_key + ss)
            next_e = crypto.secret_tweak_mul(e, tweak)
            out.append(
                BlindingHopSecrets(
                    path_key=path_key,
                    blinded_node_id=crypto.pubkey_tweak_mul(node_id, factor),
                    path_privkey=e,
                    shared_secret=ss,
                    rho=crypto.hmac_sha256(_RHO, ss),
                    blinding_factor=factor,
                    path_key_tweak=tweak,
                    next_path_privkey=next_e,
                )
            )
            e = next_e
    except InvalidPointError as exc:
        raise LocalProtocolError("a node id is not a valid point") from exc
    return out


def encrypt_recipient_data(rho: bytes, plaintext: bytes) -> bytes:
    """ChaCha20-Poly1305(key = rho_i, nonce = 0^12, no AAD); returns ciphertext ‖ tag."""
    return crypto.chacha20poly1305_encrypt(rho, _ZERO_NONCE, plaintext, b"")


def decrypt_recipient_data(rho: bytes, ciphertext: bytes) -> bytes:
    """Open ``encrypted_recipient_data``; raises ``IntegrityError`` on a bad tag."""
    return crypto.chacha20poly1305_decrypt(rho, _ZERO_NONCE, ciphertext, b"")


def create_blinded_path(
    path_privkey: bytes,
    hops: Sequence[tuple[bytes, bytes | EncryptedData]],
) -> BlindedPath:
    """Build a ``blinded_path`` over (node_id N_i, encrypted_data_tlv) pairs, first hop
    first (BOLT 4 §Route Blinding, writer). ``path_privkey`` is e_0 (caller's CSPRNG).

    Plaintexts may be given encoded (bytes, used verbatim) or as ``EncryptedData``.
    Padding is the caller's choice (see ``pad_to_equal_length``).
    """
    if not hops:
        raise LocalProtocolError("a blinded path needs at least one hop")
    node_ids = [bytes(node_id) for node_id, _ in hops]
    secrets = derive_blinding_secrets(path_privkey, node_ids)
    blinded = []
    for hop_secrets, (_, data) in zip(secrets, hops, strict=True):
        plaintext = data.encode() if isinstance(data, EncryptedData) else bytes(data)
        ciphertext = encrypt_recipient_data(hop_secrets.rho, plaintext)
        blinded.append(BlindedHop(hop_secrets.blinded_node_id, ciphertext))
    return BlindedPath(node_ids[0], secrets[0].path_key, tuple(blinded))


# --------------------------------------------------------------------------------------
# A reader: introduction point, intermediate or final node


@attrs.frozen
class BlindedHopKeys:
    """A reader's keys for one blinded hop; all secret, none in ``repr`` or ``==``."""

    shared_secret: bytes = attrs.field(repr=False, eq=False)  # ss = SHA256(k·E)
    blinded_private_key: bytes = attrs.field(repr=False, eq=False)  # b = HMAC(..., ss)·k
    rho: bytes = attrs.field(repr=False, eq=False)


def unblind(node_key: bytes | crypto.SecretKey, path_key: bytes) -> BlindedHopKeys:
    """Derive ss, b and rho from our key k and the received ``path_key`` E (BOLT 4
    §Route Blinding, "The reader of the encrypted_recipient_data").

    One ECDH. Raises ``InvalidPointError`` if ``path_key`` is not a point.
    """
    if isinstance(node_key, crypto.SecretKey):
        ss = node_key.ecdh(path_key)
    else:
        ss = crypto.ecdh(node_key, path_key)
    factor = crypto.hmac_sha256(_BLINDED_NODE_ID, ss)
    return BlindedHopKeys(
        shared_secret=ss,
        blinded_private_key=crypto.secret_tweak_mul(node_key, factor),
        rho=crypto.hmac_sha256(_RHO, ss),
    )


def next_path_key(path_key: bytes, shared_secret: bytes) -> bytes:
    """E_{i+1} = SHA256(E_i ‖ ss_i) · E_i (raises ``InvalidPointError``)."""
    return crypto.pubkey_tweak_mul(path_key, crypto.sha256(path_key + shared_secret))


@attrs.frozen
class BlindedHopResult:
    """A reader's view of one blinded hop: the decrypted instructions, the path key to
    hand to the next node, and the keys (hidden) to peel the onion with."""

    data: EncryptedData
    next_path_key: bytes
    keys: BlindedHopKeys = attrs.field(repr=False, eq=False)


def process_blinded_hop(
    node_key: bytes | crypto.SecretKey, path_key: bytes, encrypted_recipient_data: bytes
) -> BlindedHopResult:
    """Unblind, decrypt and parse one hop's ``encrypted_recipient_data``.

    The next path key honours ``next_path_key_override``. Raises only
    ``RemoteProtocolError`` subclasses for bad remote input.
    """
    keys = unblind(node_key, path_key)
    data = EncryptedData.decode(decrypt_recipient_data(keys.rho, encrypted_recipient_data))
    if data.next_path_key_override is not None:
        following = data.next_path_key_override
    else:
        following = next_path_key(path_key, keys.shared_secret)
    return BlindedHopResult(data=data, next_path_key=following, keys=keys)


__all__ = [
    "KNOWN_EVEN_TYPES",
    "BlindedHop",
    "BlindedHopKeys",
    "BlindedHopResult",
    "BlindedPath",
    "BlindingHopSecrets",
    "EncryptedData",
    "create_blinded_path",
    "decrypt_recipient_data",
    "derive_blinding_secrets",
    "encrypt_recipient_data",
    "next_path_key",
    "pad_to_equal_length",
    "process_blinded_hop",
    "unblind",
]

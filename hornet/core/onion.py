"""Data-payload onion layers (HORNET §4.4.2) in the two profiles.

PAPER profile, per hop with keys from s:
    ADD_LAYER(IV, O)    = (AES-CTR_enc(IV, O), PRP(IV))          # source, backward relays
    REMOVE_LAYER(IV, O) = (IV' = PRP⁻¹(IV), AES-CTR_enc(IV', O))  # forward relays, ends
The IV is replaced at every hop, so it identifies nothing across links.

HARDENED profile (default): forward layers are AES-GCM under the same (key, IV') pair,
and each hop's 16-byte tag travels in a tag array T of r·16 bytes that shifts like the
AHDR: hop i reads its tag from T[0:16], and passes on
    T' = (T[16:] ‖ 0^16) ⊕ AES-CTR_tag(IV', ·)
so T looks fresh on every link. The sender builds T with a filler and random padding,
so the last hop's view of T is random too. A relay that flips payload bits makes the
next honest relay's tag check fail and the packet is dropped there: a corrupt first
relay can no longer mark a payload for a corrupt destination (Kuhn et al., S&P 2020).
Backward relays cannot verify (the destination does not know their keys): they add CTR
layers and re-encrypt T, and the source checks the end-to-end AEAD.
"""

from __future__ import annotations

from collections.abc import Sequence

from hornet.core import crypto
from hornet.core.fs import HopKeys
from hornet.core.params import TAG_LEN, Profile
from hornet.errors import LocalProtocolError

GCM_NONCE_LEN = 12


class LayerCiphers:
    """One hop's cached cipher contexts: a circuit's keys never change, so an endpoint
    builds these once and every packet costs only ``update`` calls (no ``Cipher(...)``)."""

    __slots__ = ("enc", "gcm", "prp", "tag")

    def __init__(self, keys: HopKeys) -> None:
        self.prp = crypto.AesBlock(keys.prp)
        self.enc = crypto.AesCtr(keys.enc)
        self.gcm = crypto.AesGcm(keys.enc)
        self.tag = crypto.AesCtr(keys.tag)

    def __repr__(self) -> str:
        return "LayerCiphers(<hidden>)"

    def add_layer(self, iv: bytes, payload: bytes) -> tuple[bytes, bytes]:
        """ADD_LAYER (paper): returns (new IV, payload with one more layer)."""
        return self.prp.encrypt(iv), self.enc.xor(iv, payload)

    def remove_layer(self, iv: bytes, payload: bytes) -> tuple[bytes, bytes]:
        """REMOVE_LAYER (paper): returns (previous IV, payload with one layer less)."""
        prev = self.prp.decrypt(iv)
        return prev, self.enc.xor(prev, payload)


def add_layer(keys: HopKeys, iv: bytes, payload: bytes) -> tuple[bytes, bytes]:
    """ADD_LAYER (paper) with one-off contexts; returns (new IV, payload)."""
    return LayerCiphers(keys).add_layer(iv, payload)


def remove_layer(keys: HopKeys, iv: bytes, payload: bytes) -> tuple[bytes, bytes]:
    """REMOVE_LAYER (paper) with one-off contexts; returns (previous IV, payload)."""
    return LayerCiphers(keys).remove_layer(iv, payload)


class ForwardOnion:
    """The source's onion for one forward path (hop keys in path order, destination last).

    ``wrap(iv, message, padding)`` returns (IV_0, tag array T_0, payload O_0). ``iv`` is
    the innermost IV (random, from the caller); ``padding`` is (r − l)·16 random bytes for
    the hardened tag array (empty for the paper profile).
    """

    __slots__ = ("_hops", "_layers", "_max_hops", "_profile", "_size", "_zeros")

    def __init__(self, profile: Profile, hop_keys: Sequence[HopKeys], max_hops: int) -> None:
        self._profile = profile
        self._layers = tuple(LayerCiphers(keys) for keys in hop_keys)
        self._hops = len(hop_keys)
        self._max_hops = max_hops
        self._size = max_hops * TAG_LEN
        self._zeros = bytes(self._size)

    def __repr__(self) -> str:
        return f"ForwardOnion(hops={self._hops})"

    def wrap(self, iv: bytes, message: bytes, padding: bytes) -> tuple[bytes, bytes, bytes]:
        layers = self._layers
        if self._profile is Profile.PAPER:
            for layer in reversed(layers):
                iv, message = layer.add_layer(iv, message)
            return iv, b"", message
        if len(padding) != (self._max_hops - self._hops) * TAG_LEN:
            raise LocalProtocolError("tag-array padding has the wrong length")
        hops = self._hops
        tags = [b""] * hops
        ivs = [b""] * hops  # IV' each hop uses for its layer (the IV after its PRP⁻¹)
        for i in range(hops - 1, -1, -1):
            layer = layers[i]
            sealed = layer.gcm.seal(iv[:GCM_NONCE_LEN], message)
            message, tags[i] = sealed[:-TAG_LEN], sealed[-TAG_LEN:]
            ivs[i] = iv
            iv = layer.prp.encrypt(iv)
        # The tag array as one big-endian integer of r·16 bytes: hop i's stream S_i
        # (CTR under its tag key and IV') is drawn once and used twice, for the filler and
        # for T_i = tag_i ‖ (T_{i+1} ⊕ S_i)[: size − 16]; the last hop needs no stream.
        zeros = self._zeros
        streams = [
            int.from_bytes(layers[i].tag.xor(ivs[i], zeros), "big") for i in range(hops - 1)
        ]
        # Sphinx filler: what hop l−1 must see at the tail of T (``fs.filler``, in ints).
        phi = 0
        for i, stream in enumerate(streams):
            phi = (phi << 128) ^ (stream & ((1 << (128 * (i + 1))) - 1))
        tail = 128 * (hops - 1)
        tag_array = (int.from_bytes(tags[-1] + padding, "big") << tail) | phi
        body_bits = 8 * (self._size - TAG_LEN)
        for i in range(hops - 2, -1, -1):
            tag_array = (int.from_bytes(tags[i], "big") << body_bits) | (
                (tag_array ^ streams[i]) >> 128
            )
        return iv, tag_array.to_bytes(self._size, "big"), message


class BackwardOnion:
    """The source's view of a backward path: removes every layer that was added on it.

    ``hop_keys`` lists the layers in the order they were added (the destination's keys
    first, then the backward relays in path order); ``unwrap`` removes the last first.
    """

    __slots__ = ("_layers",)

    def __init__(self, hop_keys: Sequence[HopKeys]) -> None:
        self._layers = tuple(LayerCiphers(keys) for keys in reversed(hop_keys))

    def __repr__(self) -> str:
        return f"BackwardOnion(hops={len(self._layers)})"

    def unwrap(self, iv: bytes, payload: bytes) -> bytes:
        for layer in self._layers:
            iv, payload = layer.remove_layer(iv, payload)
        return payload


def build_forward(
    profile: Profile,
    hop_keys: Sequence[HopKeys],
    iv: bytes,
    message: bytes,
    padding: bytes,
    max_hops: int,
) -> tuple[bytes, bytes, bytes]:
    """One-off ``ForwardOnion(profile, hop_keys, max_hops).wrap(iv, message, padding)``."""
    return ForwardOnion(profile, hop_keys, max_hops).wrap(iv, message, padding)


def open_backward(hop_keys: Sequence[HopKeys], iv: bytes, payload: bytes) -> bytes:
    """One-off ``BackwardOnion(hop_keys).unwrap(iv, payload)``."""
    return BackwardOnion(hop_keys).unwrap(iv, payload)

"""Data-payload onion layers (HORNET §4.4.2) in the two profiles.

PAPER profile, per hop with keys from s:
    ADD_LAYER(IV, O)    = (AES-CTR_enc(IV, O), PRP(IV))          # source, backward relays
    REMOVE_LAYER(IV, O) = (IV' = PRP⁻¹(IV), AES-CTR_enc(IV', O))  # forward relays, ends
The IV is replaced at every hop, so it identifies nothing across links.

HARDENED profile (default): each forward layer is ONE AES-GCM call under the hop's gcm
key (a key no CTR layer uses) and IV', over the tag array and the payload together. The
tag array T (r·16 bytes) travels between AHDR and O and shifts like the AHDR. Hop i
splits what arrives as T = tag ‖ rest and opens
    T' ‖ O' = AES-GCM-open_gcm(nonce = IV'[0:12], (rest ‖ 0^16 ‖ O) ‖ tag)
so the decryption of (rest ‖ 0^16) is the shifted array it passes on, and the GCM tag
covers every bit of rest and O. With the CHDR's IV bound through the nonce and the AHDR
by its MAC, every bit of a forward packet is checked at the next relay, and T looks
fresh on every link (GCM's keystream X depends on IV').
The source seals inside out (the last hop first): hop i's plaintext is T_{i+1} ‖ O_{i+1},
and T_{i+1}'s last block equals X_i's last block, so that block's ciphertext is the zero
block the relay shifts in. A Sphinx-style filler over the X_i makes that hold at every
hop, and random padding makes the last hop's view of T random too. A corrupt first
relay can therefore mark no bit of a packet for a corrupt destination (Kuhn et al.,
S&P 2020): the next honest relay drops it.
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
# GCM (SP 800-38D) with a 96-bit nonce: J0 = nonce ‖ 1, and plaintext block j is
# encrypted with counter inc32^(j+1)(J0), so the keystream X starts at nonce ‖ 2.
_GCM_FIRST_COUNTER = (2).to_bytes(4, "big")


def gcm_keystream_counter(nonce: bytes) -> bytes:
    """The CTR block at which AES-GCM's keystream for ``nonce`` starts (nonce ‖ 2)."""
    return nonce[:GCM_NONCE_LEN] + _GCM_FIRST_COUNTER


class LayerCiphers:
    """One hop's cached cipher contexts: a circuit's keys never change, so an endpoint
    builds these once and every packet costs only ``update`` calls (no ``Cipher(...)``)."""

    __slots__ = ("enc", "gcm", "gcm_stream", "prp", "tag")

    def __init__(self, keys: HopKeys) -> None:
        self.prp = crypto.AesBlock(keys.prp)
        self.enc = crypto.AesCtr(keys.enc)
        self.gcm = crypto.AesGcm(keys.gcm)
        self.gcm_stream = crypto.AesCtr(keys.gcm)  # GCM's own keystream, for the filler
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
        # IV' of every hop (the IV after its PRP⁻¹), innermost first; iv ends as IV_0.
        ivs = [b""] * hops
        for i in range(hops - 1, -1, -1):
            ivs[i] = iv
            iv = layers[i].prp.encrypt(iv)
        # Hop i's keystream X_i over T's r·16 bytes (GCM's own, under its gcm key and
        # IV'), in big-endian integers: its low blocks feed the filler.
        zeros = self._zeros
        streams = [
            int.from_bytes(
                layers[i].gcm_stream.xor(gcm_keystream_counter(ivs[i]), zeros), "big"
            )
            for i in range(hops)
        ]
        # Sphinx filler: what hop l−1 must see at the tail of T (``fs.filler``, in ints).
        phi = 0
        for i, stream in enumerate(streams[:-1]):
            phi = (phi << 128) ^ (stream & ((1 << (128 * (i + 1))) - 1))
        # The last hop's rest is padding ‖ φ; its plaintext T_l is whatever encrypts to
        # rest ‖ 0^16. Then inside out: hop i seals T_{i+1} ‖ O_{i+1}, whose ciphertext
        # starts with rest_i ‖ 0^16 (the filler guarantees the zero block).
        size = self._size
        rest_len = size - TAG_LEN
        rest = (int.from_bytes(padding, "big") << (128 * (hops - 1))) | phi
        plain_tags = ((rest << 128) ^ streams[-1]).to_bytes(size, "big")
        tags = b""
        for i in range(hops - 1, -1, -1):
            sealed = layers[i].gcm.seal(ivs[i][:GCM_NONCE_LEN], plain_tags + message, None)
            tags = sealed[-TAG_LEN:] + sealed[:rest_len]
            message = sealed[size:-TAG_LEN]
            plain_tags = tags
        return iv, tags, message


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

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
from hornet.core.fs import HopKeys, filler
from hornet.core.params import TAG_LEN, Profile
from hornet.errors import LocalProtocolError

GCM_NONCE_LEN = 12


def add_layer(keys: HopKeys, iv: bytes, payload: bytes) -> tuple[bytes, bytes]:
    """ADD_LAYER (paper): returns (new IV, payload with one more layer)."""
    out = crypto.aes_ctr_xor(keys.enc, iv, payload)
    return crypto.AesBlock(keys.prp).encrypt(iv), out


def remove_layer(keys: HopKeys, iv: bytes, payload: bytes) -> tuple[bytes, bytes]:
    """REMOVE_LAYER (paper): returns (previous IV, payload with one layer less)."""
    prev = crypto.AesBlock(keys.prp).decrypt(iv)
    return prev, crypto.aes_ctr_xor(keys.enc, prev, payload)


def build_forward(
    profile: Profile,
    hop_keys: Sequence[HopKeys],
    iv: bytes,
    message: bytes,
    padding: bytes,
    max_hops: int,
) -> tuple[bytes, bytes, bytes]:
    """Wrap ``message`` for the forward path. Returns (IV_0, tag array T_0, payload O_0).

    ``iv`` is the innermost IV (random, from the caller); ``padding`` is
    (r − l)·16 random bytes for the hardened tag array (empty for the paper profile).
    """
    hops = len(hop_keys)
    if profile is Profile.PAPER:
        for keys in reversed(hop_keys):
            iv, message = add_layer(keys, iv, message)
        return iv, b"", message
    if len(padding) != (max_hops - hops) * TAG_LEN:
        raise LocalProtocolError("tag-array padding has the wrong length")
    tags: list[bytes] = []
    ivs: list[bytes] = []  # IV' each hop uses for its layer (the IV after its PRP⁻¹)
    for keys in reversed(hop_keys):
        sealed = crypto.AesGcm(keys.enc).seal(iv[:GCM_NONCE_LEN], message)
        message, tag = sealed[:-TAG_LEN], sealed[-TAG_LEN:]
        tags.append(tag)
        ivs.append(iv)
        iv = crypto.AesBlock(keys.prp).encrypt(iv)
    tags.reverse()
    ivs.reverse()
    size = max_hops * TAG_LEN
    streams = [
        crypto.aes_ctr_stream(keys.tag, size, iv=layer_iv)
        for keys, layer_iv in zip(hop_keys, ivs, strict=True)
    ]
    tag_array = tags[-1] + padding + filler(streams, TAG_LEN, max_hops)
    for i in range(hops - 2, -1, -1):
        tag_array = tags[i] + crypto.xor_bytes(
            tag_array[: size - TAG_LEN], streams[i][: size - TAG_LEN]
        )
    return iv, tag_array, message


def open_backward(hop_keys: Sequence[HopKeys], iv: bytes, payload: bytes) -> bytes:
    """The source removes every backward layer: relays' (last first), then the sender's.

    ``hop_keys`` lists the destination's keys first, then the backward relays in path
    order, i.e. the order in which the layers were added.
    """
    for keys in reversed(hop_keys):
        iv, payload = remove_layer(keys, iv, payload)
    return payload

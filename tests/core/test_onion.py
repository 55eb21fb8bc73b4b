"""Data-payload onion layers (``hornet/core/onion.py``, HORNET §4.4.2): a tampered
payload never reaches the destination's application, and the destination keys its GCM
and CTR layers apart."""

from __future__ import annotations

import pytest
from core_kit import backward_path, forward_path

from hornet.core.params import CHDR_LEN, Params, Profile
from hornet.core.relay import Drop, DropReason
from hornet.errors import IntegrityError
from hornet.testing.sim import SimNetwork, open_session


def test_tampered_payload_is_dropped_or_rejected_end_to_end(net: SimNetwork) -> None:
    source, dest = open_session(net, forward_path(3), backward_path(3))
    packet = bytearray(source.seal(b"attack at dawn", 2, net.rng).packet)
    packet[-100] ^= 0x5A  # a corrupt first relay XORs a pattern into the payload
    trip = net.send(source.keys.first_hop, bytes(packet), 2)
    if net.params.profile is Profile.HARDENED:
        # The next relay's tag check fails: the destination never sees the packet.
        assert isinstance(trip.final, Drop) and trip.final.reason is DropReason.INTEGRITY
        assert len(trip.hops) == 1
    else:
        with pytest.raises(IntegrityError):
            dest.receive(trip.delivered)


def test_the_destination_keys_its_gcm_and_ctr_layers_apart() -> None:
    """SPEC §3.3 and §5.4 byte for byte, with an independent AES: one s'_D, two modes.

    The destination removes its forward layer with AES-GCM and adds its backward layer
    with AES-CTR, both under keys from s'_D. GCM must use gcm = AES_s(8), CTR enc = AES_s(6),
    and GCM must not open under enc: no key serves both modes.
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from hornet.core.e2e import ReplayWindow, e2e_aead, open_frame

    net = SimNetwork(4, Params(profile=Profile.HARDENED), seed=0x6C5)
    p = net.params
    source, dest = open_session(net, [0, 1], [2, 3])
    trip = net.deliver(source.seal(b"two modes", 2, net.rng), 2)
    s = trip.delivered.session_secret
    ecb = Cipher(algorithms.AES(s), modes.ECB()).encryptor()
    derived = ecb.update(b"".join(i.to_bytes(16, "big") for i in range(1, 9)))
    prp, enc, gcm = derived[64:80], derived[80:96], derived[112:128]
    prp_ecb = Cipher(algorithms.AES(prp), modes.ECB())

    # Forward: what D received, opened as §5.4 says, under gcm and not under enc.
    packet = trip.hops[-1].packet
    ahdr_end = CHDR_LEN + p.ahdr_len
    iv = prp_ecb.decryptor().update(packet[2:CHDR_LEN])
    tag = packet[ahdr_end : ahdr_end + 16]
    rest = packet[ahdr_end + 16 : ahdr_end + p.tag_array_len]
    sealed = rest + bytes(16) + packet[ahdr_end + p.tag_array_len :] + tag
    opened = AESGCM(gcm).decrypt(iv[:12], sealed, None)
    assert opened[p.tag_array_len :] == trip.delivered.message
    with pytest.raises(InvalidTag):
        AESGCM(enc).decrypt(iv[:12], sealed, None)

    # Backward: D's layer is CTR under enc from the arriving IV, PRP(IV) leaving.
    out = dest.seal(b"back", net.rng)
    iv_out = out.packet[2:CHDR_LEN]
    iv_in = prp_ecb.decryptor().update(iv_out)
    layer = out.packet[ahdr_end + p.tag_array_len :]
    message = Cipher(algorithms.AES(enc), modes.CTR(iv_in)).encryptor().update(layer)
    frame = open_frame(e2e_aead(s, backward=True), message, ReplayWindow())
    assert frame.body == b"back"
    assert gcm != enc

"""The tagging attack of Kuhn, Beck and Strufe (S&P 2020) on the hardened profile.

The circuit is R0 → R1 → R2 → D. R0 (the first relay) and D (the destination) are
corrupt and collude; R1 and R2 are honest. R0 processes each packet as it should, then
marks what it forwards: it XORs a 128-bit mark into the slot of the tag array T that
will reach D as D's tag, or flips one bit anywhere in the packet. D knows its own keys:
it computes the tag it expected, XORs it with the tag that arrived, and calls the
result the mark; it then undoes the mark and reads the message.

The hardened profile (SPEC.md §5.4) must stop this at R1: every hop's AES-GCM covers
its payload, its tag and, as associated data, the rest of T, so no bit of a marked
packet passes the next honest relay. Everything here goes through the public core API;
the attackers are ordinary ``Relay`` objects whose owners also read their own secrets.
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hornet.core import crypto
from hornet.core.chdr import TYPE_DATA_NESTED
from hornet.core.crypto import SecretKey
from hornet.core.e2e import DestinationSession, SourceSession
from hornet.core.fs import fs_open
from hornet.core.params import CHDR_LEN, FS_LEN, TAG_LEN, Params
from hornet.core.relay import Deliver, Drop, DropReason, Forward, Relay
from hornet.core.rendezvous import RendezvousDestination, RendezvousSource
from hornet.testing.sim import SimNetwork

NOW = 5
PAYLOAD = 512
MARKS = 50
#: Path: R0 (corrupt), R1 and R2 (honest), D (corrupt); one backward relay.
FORWARD, BACKWARD = [0, 1, 2, 3], [4]
#: D's tag sits in slot (3 − 1) of the T that R0 forwards to R1.
D_SLOT = 2


def _circuit(seed: int) -> tuple[SimNetwork, SourceSession, list[Relay]]:
    net = SimNetwork(5, Params(), seed=seed)
    source = SourceSession(net.setup(FORWARD, BACKWARD, now=NOW), PAYLOAD)
    return net, source, [net.relays[i] for i in FORWARD]


def _leaving_first_relay(source: SourceSession, r0: Relay, message: bytes) -> bytes:
    """A fresh packet from the source, as the corrupt R0 forwards it after honest work."""
    out = source.seal(message, NOW, random.Random(message))
    result = r0.process(out.packet, NOW)
    assert isinstance(result, Forward)
    return result.packet


def _through_honest_relays(packet: bytes, honest: list[Relay]) -> bytes | Drop:
    """Run R1 and R2; return what R2 sends to D, or the first drop."""
    for relay in honest:
        result = relay.process(packet, NOW)
        if isinstance(result, Drop):
            return result
        assert isinstance(result, Forward)
        packet = result.packet
    return packet


def _gcm_tag_candidates(dest: Relay, packet: bytes) -> list[bytes]:
    """The corrupt D recomputes the tag it expects, without checking the one that came.

    It opens its own FS, derives every per-hop key from s, decrypts its layer with the
    CTR stream under each key (GCM's counter starts at nonce ‖ 2) and re-seals the
    plaintext under each key, with no associated data and with the rest of T.
    """
    p = dest.params
    ahdr_end = CHDR_LEN + p.ahdr_len
    fs = packet[CHDR_LEN : CHDR_LEN + FS_LEN]
    opened = fs_open(dest.epoch_keys(p.epoch_of(NOW)).prp, fs)
    keys = crypto.derive_keys(opened.s, 16)
    prp_key = keys[4]  # AES_s(5), SPEC.md §3.3
    iv = crypto.AesBlock(prp_key).decrypt(packet[2:CHDR_LEN])
    nonce = iv[:12]
    rest = packet[ahdr_end + TAG_LEN : ahdr_end + p.tag_array_len]
    ciphertext = packet[ahdr_end + p.tag_array_len :]
    tags = []
    for key in keys:
        counter = nonce + (2).to_bytes(4, "big")
        plain = Cipher(algorithms.AES(key), modes.CTR(counter)).encryptor().update(ciphertext)
        for aad in (None, rest):
            tags.append(AESGCM(key).encrypt(nonce, plain, aad)[-TAG_LEN:])
    return tags


def test_a_mark_in_the_destinations_tag_slot_never_reaches_it() -> None:
    """0 of 50 marks are recovered: R1 drops every marked packet."""
    net, source, (r0, r1, r2, dest) = _circuit(seed=0x7A6)
    rng = random.Random(0x7A6)
    ahdr_end = CHDR_LEN + net.params.ahdr_len
    slot = ahdr_end + D_SLOT * TAG_LEN
    recovered, read, drops = 0, 0, []
    for n in range(MARKS):
        mark = rng.randbytes(TAG_LEN)
        packet = bytearray(_leaving_first_relay(source, r0, f"message {n}".encode()))
        packet[slot : slot + TAG_LEN] = crypto.xor_bytes(packet[slot : slot + TAG_LEN], mark)
        at_dest = _through_honest_relays(bytes(packet), [r1, r2])
        if isinstance(at_dest, Drop):
            drops.append(at_dest.reason)
            continue
        arrived = at_dest[ahdr_end : ahdr_end + TAG_LEN]
        guesses = {crypto.xor_bytes(arrived, tag) for tag in _gcm_tag_candidates(dest, at_dest)}
        if mark not in guesses:
            continue
        recovered += 1
        # D removes the mark and processes the packet as an honest destination would.
        unmarked = at_dest[:ahdr_end] + crypto.xor_bytes(arrived, mark) + at_dest[ahdr_end + 16 :]
        delivered = dest.process(unmarked, NOW)
        assert isinstance(delivered, Deliver)
        session = DestinationSession(net.params, delivered, PAYLOAD)
        if session.receive(delivered) == f"message {n}".encode():
            read += 1
    assert (recovered, read) == (0, 0), f"{recovered}/{MARKS} marks recovered, {read} read"
    assert drops == [DropReason.INTEGRITY] * MARKS


def test_the_unmarked_packets_of_the_same_circuit_are_delivered() -> None:
    """The control: without a mark, the same path delivers every packet to D."""
    net, source, (r0, r1, r2, dest) = _circuit(seed=0x7A6)
    for n in range(5):
        at_dest = _through_honest_relays(_leaving_first_relay(source, r0, b"%d" % n), [r1, r2])
        assert isinstance(at_dest, bytes)
        delivered = dest.process(at_dest, NOW)
        assert isinstance(delivered, Deliver)
        assert DestinationSession(net.params, delivered, PAYLOAD).receive(delivered) == b"%d" % n


def _bits(net: SimNetwork) -> dict[str, list[int]]:
    """Bit positions R0 flips: all of CHDR and T, a spread sample of AHDR and O."""
    p = net.params
    ahdr_end = CHDR_LEN + p.ahdr_len
    tags_end = ahdr_end + p.tag_array_len
    packet_bits = 8 * p.data_packet_len(PAYLOAD)
    return {
        "chdr": list(range(8 * CHDR_LEN)),
        "ahdr": list(range(8 * CHDR_LEN, 8 * ahdr_end, 7)),
        "tags": list(range(8 * ahdr_end, 8 * tags_end)),
        "payload": [*range(8 * tags_end, packet_bits, 11), packet_bits - 1],
    }


def test_every_flipped_bit_is_dropped_at_the_next_honest_relay() -> None:
    net, source, (r0, r1, _, _) = _circuit(seed=0xF11B)
    passed: dict[str, list[int]] = {}
    for part, bits in _bits(net).items():
        for bit in bits:
            packet = bytearray(_leaving_first_relay(source, r0, b"flip %d" % bit))
            packet[bit // 8] ^= 1 << (7 - bit % 8)
            result = r1.process(bytes(packet), NOW)
            if not isinstance(result, Drop) or result.reason is DropReason.REPLAY:
                passed.setdefault(part, []).append(bit)
    counts = {part: len(bits) for part, bits in _bits(net).items()}
    assert counts["tags"] == 8 * net.params.tag_array_len
    assert passed == {}, {part: f"{len(b)}/{counts[part]} passed R1" for part, b in passed.items()}


@pytest.mark.parametrize(
    ("max_hops", "length"),
    [(1, 1), (2, 1), (2, 2), (3, 2), (7, 1), (7, 4), (7, 7), (16, 2), (16, 16)],
)
def test_every_hop_checks_every_bit_of_the_tag_array_it_receives(
    max_hops: int, length: int
) -> None:
    """For any r and path length, each forward hop (the destination included) drops a
    packet with any one bit of its T flipped: the source's filler, padding and inside-out
    sealing make every hop's view of T authenticated, not only its own tag."""
    net = SimNetwork(length + 1, Params(max_hops=max_hops), seed=max_hops * 100 + length)
    source = SourceSession(net.setup(list(range(length)), [length], now=NOW), 1024)
    trip = net.deliver(source.seal(b"every hop", NOW, net.rng), NOW)
    assert isinstance(trip.final, Deliver) and len(trip.hops) == length
    ahdr_end = CHDR_LEN + net.params.ahdr_len
    for hop in trip.hops:
        relay = net.by_id[hop.node_id]
        for bit in range(8 * ahdr_end, 8 * (ahdr_end + net.params.tag_array_len)):
            packet = bytearray(hop.packet)
            packet[bit // 8] ^= 1 << (bit % 8)
            result = relay.process(bytes(packet), NOW)
            assert result == Drop(DropReason.INTEGRITY), (hop.node_id.hex(), bit)


def test_nested_packets_check_every_bit_of_t_up_to_the_rendezvous_point() -> None:
    """S → R0 → R1 → RP (splice) → D's backward relay: every forward hop of a nested
    packet, RP included, drops it with any one bit of its T flipped."""
    net = SimNetwork(6, Params(), seed=0x4E5)
    rng = random.Random(0x4E5)
    rp = 2
    d_keys = net.setup([3, rp], [4], now=NOW, endpoint=b"dest\x00\x00\x00\x01", rendezvous=True)
    dest = RendezvousDestination(d_keys, SecretKey.from_rng(rng), PAYLOAD)
    s_keys = net.setup([0, 1, rp], [5], now=NOW, rendezvous=True)
    source = RendezvousSource(s_keys, dest.descriptor(), rng)
    trip = net.deliver(source.seal(b"nested", NOW, rng), NOW)
    assert dest.receive(trip.exit_packet).data == b"nested"
    nested = [hop for hop in trip.hops if hop.packet[0] == TYPE_DATA_NESTED]
    assert [hop.node_id for hop in nested] == [net.relays[i].node_id for i in (0, 1, rp)]
    ahdr_end = CHDR_LEN + net.params.nested_ahdr_len
    for hop in nested:
        for bit in range(8 * ahdr_end, 8 * (ahdr_end + net.params.tag_array_len)):
            packet = bytearray(hop.packet)
            packet[bit // 8] ^= 1 << (bit % 8)
            result = net.by_id[hop.node_id].process(bytes(packet), NOW)
            assert result == Drop(DropReason.INTEGRITY), (hop.node_id.hex(), bit)

"""Forwarding segments and the FS payload (``hornet/core/fs.py``, HORNET Alg. 1–2)."""

from __future__ import annotations

import pytest
from core_kit import R, setup_request

from hornet.core import crypto
from hornet.core.fs import (
    HopKeys,
    Route,
    add_fs,
    fs_create,
    fs_open,
    init_fs_payload,
    retrieve_fses,
)
from hornet.core.params import C
from hornet.core.setup import complete_setup
from hornet.errors import IntegrityError
from hornet.testing.sim import SimNetwork


def test_fs_seals_all_32_bytes_as_one_block() -> None:
    prp = crypto.Prp256(bytes(range(16)))
    fs = fs_create(prp, bytes(16), Route(b"nexthop1"), 1234)
    opened = fs_open(prp, fs)
    assert opened.s == bytes(16) and opened.route.next_hop == b"nexthop1" and opened.exp == 1234
    # Flipping a bit in either half changes the other half of the plaintext too.
    for index in (0, 31):
        flipped = bytearray(fs)
        flipped[index] ^= 1
        plain = prp.decrypt(bytes(flipped))
        assert plain[:16] != bytes(16) and plain[16:] != prp.decrypt(fs)[16:]


def test_retrieve_fses_recovers_what_relays_added() -> None:
    for hops in range(1, R + 1):
        keys = [HopKeys(bytes([i]) * 16) for i in range(hops)]
        fses = [bytes([0xF0 + i]) * 32 for i in range(hops)]
        payload = init_fs_payload(b"seed" * 4, R)
        for k, fs in zip(keys, fses, strict=True):
            payload = add_fs(k, fs, payload)
            assert len(payload) == R * C
        assert retrieve_fses(payload, b"seed" * 4, keys, R) == fses
        with pytest.raises(IntegrityError):
            retrieve_fses(payload[:-1] + b"\x00", b"seed" * 4, keys, R)


def test_flipped_fs_payload_fails_at_the_source(net: SimNetwork) -> None:
    request = setup_request(net, 3, 3)
    tampered = bytearray(request.packet)
    # Block 0 of P survives every ADD_FS (each drops the last block) and is MACed.
    tampered[-R * C + 5] ^= 0x01
    trip = net.send(request.first_hop, bytes(tampered), 0)
    with pytest.raises(IntegrityError):
        complete_setup(request.pending, trip.exit_packet, net.rng)

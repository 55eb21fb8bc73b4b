"""Shared pieces of the core tests: the profiles, the path length r and setup requests
over a ``SimNetwork`` of 2r + 1 relays (forward paths use relays 0..r−1, backward
paths relays r..2r−1)."""

from __future__ import annotations

from hornet.core.params import Profile
from hornet.core.setup import SetupRequest, build_setup
from hornet.testing.sim import SOURCE_ID, SimNetwork

PROFILES = [Profile.PAPER, Profile.HARDENED]
R = 7


def forward_path(length: int) -> list[int]:
    return list(range(length))


def backward_path(length: int) -> list[int]:
    return list(range(R, R + length))


def setup_request(net: SimNetwork, forward: int, backward: int, exp: int = 600) -> SetupRequest:
    return build_setup(
        net.params,
        [net.spec(i) for i in forward_path(forward)],
        [net.spec(i) for i in backward_path(backward)],
        SOURCE_ID,
        exp,
        net.rng,
    )

"""The ``net`` fixture of the core tests: one ``SimNetwork`` of 2r + 1 relays per profile
and test module."""

from __future__ import annotations

import pytest
from core_kit import PROFILES, R

from hornet.core.params import Params
from hornet.testing.sim import SimNetwork


@pytest.fixture(scope="module", params=PROFILES, ids=lambda p: p.value)
def net(request: pytest.FixtureRequest) -> SimNetwork:
    return SimNetwork(2 * R + 1, Params(max_hops=R, profile=request.param))

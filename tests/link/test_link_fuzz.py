"""Untrusted bytes into every link entry point raise only RemoteProtocolError (or are dropped)."""

from __future__ import annotations

import contextlib
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from link_kit import KEYS, A, B, Sim, directory

from hornet.core.crypto import SecretKey
from hornet.errors import RemoteProtocolError
from hornet.link.channel import (
    TYPE_ACT_ONE,
    TYPE_ACT_THREE,
    TYPE_ACT_TWO,
    TYPE_DATA_FROM_INITIATOR,
    TYPE_DATA_FROM_RESPONDER,
)
from hornet.link.endpoint import LinkEndpoint
from hornet.link.noise import Initiator, Responder

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TYPES = (TYPE_ACT_ONE, TYPE_ACT_TWO, TYPE_ACT_THREE, TYPE_DATA_FROM_INITIATOR,
         TYPE_DATA_FROM_RESPONDER)
#: Arbitrary bytes, and bytes that start with a valid type byte and have a plausible length.
DATAGRAMS = st.one_of(
    st.binary(max_size=120),
    st.builds(lambda t, body: bytes((t,)) + body, st.sampled_from(TYPES),
              st.one_of(st.binary(min_size=50, max_size=50), st.binary(min_size=66, max_size=66),
                        st.binary(max_size=80))),
)


def _established() -> Sim:
    sim = Sim()
    sim.add(A)
    sim.add(B)
    sim.send(A, b"hello", B)
    sim.run(1.0)
    return sim


def _feed(endpoint: LinkEndpoint, datagrams: list[bytes], source: tuple[str, int]) -> None:
    for datagram in datagrams:
        with contextlib.suppress(RemoteProtocolError):
            endpoint.open(datagram, source, 0.5)
        endpoint.datagrams_to_send()


@FUZZ
@given(st.lists(DATAGRAMS, min_size=1, max_size=4))
def test_arbitrary_datagrams_into_a_fresh_responder(datagrams: list[bytes]) -> None:
    endpoint = LinkEndpoint(KEYS[B], directory, random.Random(1))
    _feed(endpoint, datagrams, A)
    endpoint.tick(100.0)


@FUZZ
@given(st.lists(DATAGRAMS, min_size=1, max_size=4))
def test_arbitrary_datagrams_into_an_initiator_awaiting_act_two(datagrams: list[bytes]) -> None:
    endpoint = LinkEndpoint(KEYS[A], directory, random.Random(1))
    assert endpoint.seal(b"queued", B, 0.0) is None
    _feed(endpoint, datagrams, B)
    endpoint.tick(100.0)


@FUZZ
@given(st.lists(DATAGRAMS, min_size=1, max_size=4))
def test_arbitrary_datagrams_into_established_sessions(datagrams: list[bytes]) -> None:
    sim = _established()
    _feed(sim.endpoints[B], datagrams, A)
    _feed(sim.endpoints[A], datagrams, B)
    sim.send(A, b"still works", B)
    sim.run(1.0)
    assert sim.received[B][-1] == (b"still works", A)


@FUZZ
@given(st.binary(max_size=80), st.binary(max_size=80))
def test_arbitrary_acts_into_the_noise_classes(first: bytes, third: bytes) -> None:
    responder = Responder(KEYS[B], SecretKey(b"\x22" * 32))
    with contextlib.suppress(RemoteProtocolError):
        responder.read_act_one(first)
    initiator = Initiator(KEYS[A], KEYS[B].public_key, SecretKey(b"\x12" * 32))
    initiator.act_one()
    with contextlib.suppress(RemoteProtocolError):
        initiator.read_act_two(first)
    genuine = Responder(KEYS[B], SecretKey(b"\x22" * 32))
    genuine.read_act_one(Initiator(KEYS[A], KEYS[B].public_key, SecretKey(b"\x12" * 32)).act_one())
    genuine.act_two()
    with contextlib.suppress(RemoteProtocolError):
        genuine.read_act_three(third)


@FUZZ
@given(st.binary(min_size=25, max_size=80), st.sampled_from(TYPES[3:]))
def test_well_framed_forged_data_is_rejected(body: bytes, kind: int) -> None:
    sim = _established()
    forged = bytes((kind,)) + body[1:]
    try:
        packet = sim.endpoints[B].open(forged, A, sim.now)
    except RemoteProtocolError:
        return
    raise AssertionError(f"forged datagram accepted: {packet!r}")

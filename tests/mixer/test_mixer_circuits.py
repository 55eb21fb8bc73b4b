"""HORNET circuits through the mixer: the paid CIRCUIT request and the mixer's relay.

Sans-IO tests drive ``MixerCore`` with real setup packets; the trio tests run a whole
HORNET network (``MemoryNetwork``) next to the onion-message hub (``MemoryHub``) under
the autojump clock: relays, an echo destination, the mixer with its relay, and clients.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from mixer_kit import Kit, make_config, make_kit

from hornet.circuit.circuit import Circuit, SetupTimeoutError
from hornet.client import Entry, open_circuit
from hornet.core import crypto
from hornet.core.chdr import TYPE_SETUP
from hornet.core.params import Params
from hornet.core.relay import node_id_of
from hornet.core.setup import HopSpec, build_setup
from hornet.directory.model import relay_info
from hornet.errors import LocalProtocolError, RequestRefusedError
from hornet.mixer.actions import CircuitRequest, Transmit
from hornet.mixer.client import MixerClient
from hornet.mixer.config import MixerConfig
from hornet.mixer.entry import EntryRelay, circuit_entry, relay_keys, serve_entry_relay
from hornet.mixer.protocol import Prices, Status
from hornet.mixer.requests import CircuitEntry
from hornet.mixer.service import MixerService
from hornet.mixer.session import MixerReply, MixerSession, Wallet
from hornet.mixer.transport import MemoryHub
from hornet.testing.local import LocalNetwork, local_network
from hornet.testing.memnet import MemoryNetwork
from hornet.testing.tap import TapNetwork
from hornet.transport.udp import Address, unix_now

PARAMS = Params()
CIRCUIT_PRICE = 2


def _entry_of(master: bytes) -> CircuitEntry:
    return circuit_entry(relay_keys(master), PARAMS)


def _circuit_config(**overrides: Any) -> MixerConfig:
    prices = Prices(message=1, scid_register=2, scid_renew=1, hints=0,
                    circuit_open=CIRCUIT_PRICE)
    return make_config(prices=prices, **overrides)


# --------------------------------------------------------------------------------------
# Sans-IO: the core's side of CIRCUIT


def _setup_packet(kit: Kit, *, exp: float | None = None) -> bytes:
    """A real P➊ whose first hop is the kit's mixer relay."""
    rng = kit.rng
    assert kit.entry is not None
    mixer = HopSpec(node_id_of(kit.entry.public_key), kit.entry.public_key)
    others = [crypto.SecretKey.from_rng(rng).public_key for _ in range(3)]
    relay, dest, back = (HopSpec(node_id_of(k), k) for k in others)
    # EXP a multiple of 10 s (SPEC.md §7.2), at or after ``exp``.
    coarse = -(-int(exp if exp is not None else kit.now + 60) // 10) * 10
    request = build_setup(PARAMS, [mixer, relay, dest], [back, mixer], b"\xfe\x04" + bytes(6),
                          coarse, rng, key_epoch=PARAMS.epoch_of(kit.now))
    return request.packet


def _circuit_call(kit: Kit, session: MixerSession,
                  setup: bytes) -> tuple[MixerReply, list[CircuitRequest]]:
    _, outgoing = session.circuit_request(setup, kit.rng)
    actions = kit.core.handle(session.node_id, outgoing.message, kit.now, kit.rng)
    actions += kit.core.flush(kit.now)
    circuits = [a for a in actions if isinstance(a, CircuitRequest)]
    for action in actions:
        if isinstance(action, Transmit) and action.peer == session.node_id:
            reply = session.receive(action.message)
            assert isinstance(reply, MixerReply)
            return reply, circuits
    raise AssertionError("the mixer did not answer")


def test_info_names_the_relay_key_only_when_the_mixer_has_a_relay(tmp_path: Path) -> None:
    without = make_kit(tmp_path / "a", config=_circuit_config())
    info = without.core.info(without.now)
    assert info.prices.circuit_open is None and info.relay_key is None
    with_relay = make_kit(tmp_path / "b", config=_circuit_config(), entry=_entry_of)
    info = with_relay.core.info(with_relay.now)
    assert info.prices.circuit_open == CIRCUIT_PRICE
    assert with_relay.entry is not None and info.relay_key == with_relay.entry.public_key
    assert info.relay_key == relay_keys(with_relay.master).node_key.public_key


def test_the_relay_key_is_stable_and_not_the_lightning_key(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=_circuit_config(), entry=_entry_of)
    keys = relay_keys(kit.master)
    assert relay_keys(kit.master).local_secret == keys.local_secret
    assert keys.node_key.public_key != kit.mixer_id
    assert keys.local_secret.hex() not in repr(keys)
    assert keys.node_key.secret_bytes().hex() not in repr(keys)


def test_a_paid_circuit_request_hands_out_exactly_its_setup(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=_circuit_config(), entry=_entry_of)
    session = kit.funded_session()
    before = session.wallet.balance
    setup = _setup_packet(kit)
    reply, circuits = _circuit_call(kit, session, setup)
    assert reply.error is None
    assert [c.setup for c in circuits] == [setup]
    assert circuits[0].paid_value == CIRCUIT_PRICE
    assert session.wallet.balance == before - CIRCUIT_PRICE
    assert kit.core.statistics()["request_circuit"] == 1


def test_a_replayed_circuit_request_is_answered_from_the_cache_and_injects_nothing(
        tmp_path: Path) -> None:
    """The attack: record a paid CIRCUIT request and send the same bytes again, to the
    running mixer and to the mixer restarted on the same stores. Each replay gets the
    cached OK; none hands the setup out again."""
    kit = make_kit(tmp_path, config=_circuit_config(), entry=_entry_of)
    session = kit.funded_session()
    setup = _setup_packet(kit)
    _, outgoing = session.circuit_request(setup, kit.rng)

    def replay() -> tuple[int, int]:
        actions = kit.core.handle(session.node_id, outgoing.message, kit.now, kit.rng)
        actions += kit.core.flush(kit.now)
        answers = sum(1 for a in actions if isinstance(a, Transmit) and a.peer == session.node_id)
        return answers, sum(1 for a in actions if isinstance(a, CircuitRequest))

    assert replay() == (1, 1)  # the request itself: answered, its setup handed out
    assert replay() == (1, 0)  # the same bytes again
    kit.restart()
    assert replay() == (1, 0)  # after a restart
    assert kit.core.statistics()["circuit_retries_answered_from_cache"] == 1


@pytest.mark.parametrize(("mangle", "status"), [
    (lambda s: s[:-1], Status.MALFORMED),
    (lambda s: bytes((TYPE_SETUP + 1,)) + s[1:], Status.MALFORMED),
    (lambda s: s[:1] + bytes((s[1] + 1,)) + s[2:], Status.MALFORMED),
    (lambda s: s[:6] + bytes((s[6] ^ 0x80,)) + s[7:], Status.MALFORMED),  # key epoch
])
def test_a_setup_the_relay_would_drop_is_refused_before_anything_is_charged(
        tmp_path: Path, mangle: Callable[[bytes], bytes], status: Status) -> None:
    kit = make_kit(tmp_path, config=_circuit_config(), entry=_entry_of)
    session = kit.funded_session()
    before = session.wallet.balance
    reply, circuits = _circuit_call(kit, session, mangle(_setup_packet(kit)))
    assert isinstance(reply.error, RequestRefusedError) and reply.error.status == status
    assert circuits == []
    assert session.wallet.balance == before  # the unspent credentials came back


def test_expired_and_overlong_circuits_are_refused(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=_circuit_config(circuit_max_lifetime_s=120.0),
                   entry=_entry_of)
    session = kit.funded_session()
    reply, circuits = _circuit_call(kit, session, _setup_packet(kit, exp=kit.now - 10))
    assert reply.error is not None and reply.error.status == Status.MALFORMED
    reply, circuits = _circuit_call(kit, session, _setup_packet(kit, exp=kit.now + 130))
    assert reply.error is not None and reply.error.status == Status.TOO_EARLY
    reply, circuits = _circuit_call(kit, session, _setup_packet(kit, exp=kit.now + 110))
    assert reply.error is None and len(circuits) == 1


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=64),
                 st.binary(min_size=PARAMS.setup_packet_len, max_size=PARAMS.setup_packet_len),
                 st.builds(lambda exp, rest: bytes((TYPE_SETUP, PARAMS.max_hops))
                           + exp.to_bytes(4, "big") + rest,
                           st.integers(0, 2**32 - 1),
                           st.binary(min_size=PARAMS.setup_packet_len - 6,
                                     max_size=PARAMS.setup_packet_len - 6))))
def test_any_setup_bytes_are_accepted_or_refused_with_a_status(data: bytes) -> None:
    entry = CircuitEntry(b"\x02" * 33, PARAMS)
    try:
        entry.check_setup(data, 1_750_000_000.0, 600.0)
    except Exception as exc:
        assert type(exc).__name__ == "_Refused", exc
        assert getattr(exc, "status", None) in (Status.MALFORMED, Status.TOO_EARLY)
    else:
        assert len(data) == PARAMS.setup_packet_len and data[0] == TYPE_SETUP


def test_a_circuit_request_without_a_relay_is_unsupported(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, config=_circuit_config())
    session = kit.funded_session()
    assert session.info is not None
    session.info = attrs.evolve(session.info, prices=Prices(circuit_open=1),
                                relay_key=b"\x02" * 33)
    kit.entry = _entry_of(kit.master)  # only to build a well-formed packet
    reply, circuits = _circuit_call(kit, session, _setup_packet(kit))
    assert reply.error is not None and reply.error.status == Status.UNSUPPORTED
    assert circuits == []


def test_the_session_refuses_to_pay_a_mixer_without_circuits(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    session = kit.funded_session()
    with pytest.raises(LocalProtocolError):
        session.circuit_request(b"\x01" * 10, kit.rng)


# --------------------------------------------------------------------------------------
# The whole thing: HORNET network, mixer, relay, clients


async def echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(b"echo:" + message)


@attrs.define
class World:
    kit: Kit
    mem: TapNetwork
    hub: MemoryHub
    net: LocalNetwork
    entry: EntryRelay
    service: MixerService
    nursery: trio.Nursery
    rng: random.Random

    async def client(self, wallet: Wallet | None = None, *, funded: int = 8) -> MixerClient:
        key = crypto.SecretKey.from_rng(self.rng)
        chosen = wallet if wallet is not None else Wallet(self.kit.core.listing(unix_now()))
        client = MixerClient.create(self.hub.attach(key.public_key), key, chosen, rng=self.rng)
        await self.nursery.start(client.run)
        await client.get_info()
        issuance_k = self.kit.config.credential_params.issuance_k
        for _ in range(funded // issuance_k):
            voucher = self.kit.payments.mint(issuance_k, self.rng)
            assert await client.buy(voucher) == issuance_k
        assert wallet is not None or client.wallet.balance == funded
        return client

    def client_sources(self) -> set[Address]:
        """Sockets that sent something and are neither relays nor the destination."""
        listed = {r.address for r in self.net.directory}
        return {s.source for s in self.mem.log} - listed


@asynccontextmanager
async def world(tmp_path: Path, **config: object) -> AsyncIterator[World]:
    rng = random.Random(11)
    mem = TapNetwork(MemoryNetwork())
    hub = MemoryHub(capacity=64)
    kit = make_kit(tmp_path, config=_circuit_config(**config), entry=_entry_of)
    keys = relay_keys(kit.master)
    sock = await mem.bind(("127.0.0.1", 0))
    mixer_relay = relay_info(keys, sock.address)
    async with local_network(4, service=echo, network=mem, seed=5,
                             extra_relays=[mixer_relay]) as net, trio.open_nursery() as nursery:
        entry: EntryRelay = await nursery.start(
            lambda task_status: serve_entry_relay(keys, net.directory, sock.address, sock=sock,
                                                  state=tmp_path / "relay.state.sqlite",
                                                  task_status=task_status))
        service = MixerService(kit.core, hub.attach(kit.mixer_id), clock=unix_now,
                               rng=kit.rng, on_circuit=entry.submit,
                               storage_threads=False)  # autojump clock
        await nursery.start(service.serve)
        try:
            yield World(kit, mem, hub, net, entry, service, nursery, rng)
        finally:
            nursery.cancel_scope.cancel()


async def test_a_paid_circuit_through_the_mixer_carries_messages_both_ways(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with world(tmp_path) as w:
        client = await w.client()
        async with client.open_circuit(w.net.directory, w.net.service_id, hops=3,
                                       network=w.mem) as circuit:
            for i in range(4):
                await circuit.send(b"appointment %d" % i)
                assert await circuit.receive() == b"echo:appointment %d" % i
            big = bytes(range(256)) * 20  # several fragments, both ways
            await circuit.send(big)
            assert await circuit.receive() == b"echo:" + big
        stats = w.entry.statistics()
        assert stats["setups_paid"] == stats["setups_injected"] == 1
        assert stats["dropped_unpaid_setup"] == 0  # P➋ from a relay passed the gate
        assert stats.relay.forwarded > 8  # the data went through the mixer's relay
        # every datagram the client sent went to the mixer's relay, and nowhere else
        (source,) = w.client_sources()
        assert w.mem.destinations_of(source) == {w.entry.address}
        # the destination heard only from relays other than the mixer's
        assert w.net.service is not None
        senders = w.mem.sources_to(w.net.service.node.address)
        assert senders and w.entry.address not in senders and source not in senders
        assert client.wallet.balance == 8 - CIRCUIT_PRICE
        assert w.service.statistics()["request_circuit"] == 1
        assert w.net.service is not None and w.net.service.acceptor.accepted == 1


async def test_an_unpaid_setup_sent_straight_to_the_mixer_relay_is_dropped_and_counted(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with world(tmp_path) as w:
        relay = w.net.directory.get(w.entry.node_id)
        assert relay is not None
        with pytest.raises(SetupTimeoutError):
            async with open_circuit(w.net.directory, w.net.service_id, network=w.mem,
                                    entry=Entry(relay), attempts=2, setup_timeout=1.0):
                raise AssertionError("an unpaid circuit opened")
        stats = w.entry.statistics()
        # The first attempt's setup, then the second attempt's race (one path per
        # relay of the first): every one of them dropped, none forwarded.
        assert stats["dropped_unpaid_setup"] >= 2
        assert stats["setups_injected"] == 0
        assert stats.relay.forwarded == 0


async def test_a_stale_price_is_refused_as_insufficient_value_and_costs_nothing(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with world(tmp_path) as w:
        client = await w.client()
        info = client.session.info
        assert info is not None
        client.session.info = attrs.evolve(  # the mixer raised its price since this INFO
            info, prices=attrs.evolve(info.prices, circuit_open=CIRCUIT_PRICE - 1))
        with pytest.raises(RequestRefusedError) as refused:
            async with client.open_circuit(w.net.directory, w.net.service_id, network=w.mem):
                raise AssertionError("an underpaid circuit opened")
        assert refused.value.status == Status.INSUFFICIENT_VALUE
        assert client.wallet.balance == 8
        assert w.service.statistics()["refused_insufficient_value"] == 1
        assert w.entry.statistics()["setups_injected"] == 0


async def test_credentials_restored_from_a_backup_are_refused_as_a_double_spend(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with world(tmp_path) as w:
        first = await w.client()
        backup = Wallet(first.wallet.listing,
                        credentials=list(first.wallet.credentials),
                        fingerprints=dict(first.wallet.fingerprints))
        async with first.open_circuit(w.net.directory, w.net.service_id,
                                      network=w.mem) as circuit:
            await circuit.send(b"ping")
            assert await circuit.receive() == b"echo:ping"
        second = await w.client(backup, funded=0)
        with pytest.raises(RequestRefusedError) as refused:
            async with second.open_circuit(w.net.directory, w.net.service_id, network=w.mem):
                raise AssertionError("a double spend opened a circuit")
        assert refused.value.status == Status.DOUBLE_SPEND
        assert w.service.statistics()["refused_double_spend"] == 1
        assert w.entry.statistics()["setups_injected"] == 1


async def test_renewing_the_circuit_before_exp_pays_again(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with world(tmp_path) as w:
        client = await w.client(funded=16)
        async with client.open_circuit(w.net.directory, w.net.service_id, network=w.mem,
                                       lifetime=10) as circuit:
            first_exp = circuit.exp
            for i in range(20):  # 60 s of traffic: several EXP periods
                await circuit.send(b"tick %d" % i)
                assert await circuit.receive() == b"echo:tick %d" % i
                await trio.sleep(3)
            renewals = w.entry.statistics()["setups_injected"] - 1
            assert circuit.exp > first_exp + 20
        assert renewals >= 2
        assert client.wallet.balance == 16 - CIRCUIT_PRICE * (renewals + 1)
        assert client.statistics()["circuits_paid"] == renewals + 1


async def test_a_client_needs_the_mixer_relay_in_its_directory(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with world(tmp_path) as w:
        client = await w.client(funded=0)
        others = [r for r in w.net.directory if r.node_id != w.entry.node_id]
        directory = attrs.evolve(w.net.directory, relays=tuple(others))
        with pytest.raises(LocalProtocolError, match="not in the directory"):
            async with client.open_circuit(directory, w.net.service_id, network=w.mem):
                raise AssertionError("unreachable")

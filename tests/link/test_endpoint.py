"""The link endpoint state machine over a simulated lossy network (virtual time)."""

from __future__ import annotations

import random

import pytest
from link_kit import CLIENT, KEYS, A, B, C, Sim, directory

from hornet.core.crypto import SecretKey
from hornet.errors import (
    IntegrityError,
    LocalProtocolError,
    RateLimitedError,
    ReplayError,
    UnknownSessionError,
)
from hornet.link.channel import (
    DATA_OVERHEAD,
    TYPE_ACT_ONE,
    TYPE_ACT_THREE,
    TYPE_ACT_TWO,
    TYPE_DATA_FROM_INITIATOR,
    TYPE_DATA_FROM_RESPONDER,
    ChannelSession,
)
from hornet.link.endpoint import Address, LinkEndpoint
from hornet.link.noise import Initiator
from hornet.link.peers import LinkConfig, source_of

PACKET = bytes(range(256)) * 4


def _packets(n: int, size: int = 64) -> list[bytes]:
    return [i.to_bytes(4, "big") * (size // 4) for i in range(n)]


def test_relays_handshake_then_packets_flow_both_ways() -> None:
    sim = Sim()
    sim.add(A)
    sim.add(B)
    sim.send(A, PACKET, B)
    sim.run(1.0)
    assert sim.received[B] == [(PACKET, A)]
    sim.send(B, b"reply", A)
    sim.run(1.0)
    assert sim.received[A] == [(b"reply", B)]
    assert sim.endpoints[A].statistics().handshakes_completed == 1
    assert sim.endpoints[B].statistics().handshakes_completed == 1
    assert sim.errors == {}


def test_data_datagram_adds_exactly_the_documented_overhead() -> None:
    sim = Sim()
    sim.add(A)
    sim.add(B)
    sim.send(A, b"first", B)
    sim.run(1.0)
    sealed = sim.endpoints[A].seal(PACKET, B, sim.now)
    assert sealed is not None
    assert len(sealed) == len(PACKET) + DATA_OVERHEAD == len(PACKET) + 25
    assert sealed[0] == TYPE_DATA_FROM_INITIATOR
    assert PACKET[:64] not in sealed


def test_wire_carries_exact_bolt8_acts_behind_one_type_byte() -> None:
    sim = Sim()
    sim.add(A)
    sim.add(B)
    sim.send(A, b"x", B)
    sim.run(1.0)
    kinds = [(d[0], len(d)) for d, _, _ in sim.wire]
    assert kinds[:3] == [(TYPE_ACT_ONE, 51), (TYPE_ACT_TWO, 51), (TYPE_ACT_THREE, 67)]
    assert kinds[3] == (TYPE_DATA_FROM_RESPONDER, DATA_OVERHEAD)  # the confirmation
    assert kinds[4] == (TYPE_DATA_FROM_INITIATOR, 1 + DATA_OVERHEAD)


def test_client_with_fresh_static_key_connects_and_relay_answers() -> None:
    sim = Sim()
    client = sim.add(CLIENT, client=True)
    sim.add(A)
    sim.send(CLIENT, b"setup", A)
    sim.run(1.0)
    assert sim.received[A] == [(b"setup", CLIENT)]
    sim.send(A, b"backward", CLIENT)
    sim.run(1.0)
    assert sim.received[CLIENT] == [(b"backward", A)]
    # The relay learned a static key the directory does not list.
    (session,) = sim.endpoints[A]._peers[CLIENT].sessions()
    assert session.remote_static not in {k.public_key for k in KEYS.values()}
    assert client.identity is None


def test_client_links_use_unrelated_static_keys() -> None:
    sim = Sim()
    sim.add(CLIENT, client=True)
    sim.add(A)
    sim.add(B)
    sim.send(CLIENT, b"1", A)
    sim.send(CLIENT, b"2", B)
    sim.run(1.0)
    (sa,) = sim.endpoints[A]._peers[CLIENT].sessions()
    (sb,) = sim.endpoints[B]._peers[CLIENT].sessions()
    assert sa.remote_static != sb.remote_static


def test_relay_holds_packets_for_a_client_until_it_connects() -> None:
    sim = Sim()
    sim.add(CLIENT, client=True)
    sim.add(A)
    sim.send(A, b"early", CLIENT)  # no key for a client: A can only wait
    assert sim.endpoints[A].statistics().queued == 1
    sim.endpoints[CLIENT].connect(A, sim.now)
    sim.flush(CLIENT)
    sim.run(1.0)
    assert sim.received[CLIENT] == [(b"early", A)]


def test_queue_for_an_unreachable_client_is_dropped_after_the_handshake_timeout() -> None:
    sim = Sim()
    sim.add(A)
    sim.send(A, b"lost", CLIENT)
    sim.run(30.0)
    stats = sim.endpoints[A].statistics()
    assert stats.queued == 0 and stats.peers == 0
    assert stats.dropped["queue_no_handshake"] == 1


def test_handshake_completes_under_30_percent_loss_with_reordering() -> None:
    for seed in range(20):
        sim = Sim(loss=0.3, jitter=0.05, duplicate=0.1, seed=seed)
        sim.add(A)
        sim.add(B)
        sim.send(A, b"hello", B)
        sim.run(12.0)
        if sim.endpoints[A].is_established(B):
            assert sim.received[B] in ([], [(b"hello", A)])
        else:  # ten seconds of 30% loss can defeat a handshake, but rarely
            assert sim.endpoints[A].statistics().dropped["handshake_timeout"] == 1
    completed = 0
    for seed in range(20):
        sim = Sim(loss=0.3, jitter=0.05, seed=seed)
        sim.add(A)
        sim.add(B)
        sim.send(A, b"hello", B)
        sim.run(12.0)
        completed += sim.endpoints[A].is_established(B) and sim.endpoints[B].is_established(A)
    assert completed >= 18


def test_lost_act_three_is_retransmitted_and_confirmed() -> None:
    sim = Sim()
    sim.add(A)
    sim.add(B)
    lost: list[bytes] = []

    def drop_first_act_three(data: bytes, _s: object, _d: object) -> bool:
        if data[0] == TYPE_ACT_THREE and not lost:
            lost.append(data)
            return False
        return True

    sim.filter = drop_first_act_three
    sim.send(A, b"queued", B)
    sim.run(0.1)
    assert not sim.endpoints[A].is_established(B)  # unconfirmed: still queued
    sim.run(2.0)
    assert sim.received[B] == [(b"queued", A)]
    assert sim.endpoints[A].is_established(B)


def test_lost_confirmation_is_answered_again_on_repeated_act_three() -> None:
    sim = Sim()
    sim.add(A)
    sim.add(B)
    dropped: list[bytes] = []

    def drop_first_confirmation(data: bytes, _s: object, _d: object) -> bool:
        if data[0] == TYPE_DATA_FROM_RESPONDER and len(data) == DATA_OVERHEAD and not dropped:
            dropped.append(data)
            return False
        return True

    sim.filter = drop_first_confirmation
    sim.send(A, b"queued", B)
    sim.run(2.0)
    assert dropped
    assert sim.received[B] == [(b"queued", A)]


def test_duplicated_datagrams_are_delivered_once() -> None:
    sim = Sim(duplicate=1.0, jitter=0.02)
    sim.add(A)
    sim.add(B)
    packets = _packets(50)
    for packet in packets:
        sim.send(A, packet, B)
    sim.run(2.0)
    assert sorted(p for p, _ in sim.received[B]) == sorted(packets)
    assert sim.errors["ReplayError"] >= 50


def test_replayed_datagram_raises_replay_error() -> None:
    sim = Sim()
    sim.add(A)
    b = sim.add(B)
    sim.send(A, b"first", B)
    sim.run(1.0)
    sealed = sim.endpoints[A].seal(PACKET, B, sim.now)
    assert sealed is not None
    assert b.open(sealed, A, sim.now) == PACKET
    with pytest.raises(ReplayError):
        b.open(sealed, A, sim.now)


def test_tampered_datagram_raises_integrity_error_and_changes_nothing() -> None:
    sim = Sim()
    sim.add(A)
    b = sim.add(B)
    sim.send(A, b"first", B)
    sim.run(1.0)
    sealed = sim.endpoints[A].seal(PACKET, B, sim.now)
    assert sealed is not None
    for position in (1, 5, 9, 100, len(sealed) - 1):  # counter, body, tag
        forged = bytearray(sealed)
        forged[position] ^= 0x01
        with pytest.raises((IntegrityError, ReplayError)):
            b.open(bytes(forged), A, sim.now)
    assert b.open(sealed, A, sim.now) == PACKET


def test_datagram_from_another_address_is_not_accepted() -> None:
    sim = Sim()
    sim.add(A)
    b = sim.add(B)
    sim.send(A, b"first", B)
    sim.run(1.0)
    sealed = sim.endpoints[A].seal(PACKET, B, sim.now)
    assert sealed is not None
    with pytest.raises(UnknownSessionError):
        b.open(sealed, CLIENT, sim.now)


def test_wrong_responder_key_never_completes_and_drops_the_queue() -> None:
    wrong = SecretKey(b"\x77" * 32).public_key
    sim = Sim()
    a = LinkEndpoint(KEYS[A], lambda addr: wrong if addr == B else directory(addr),
                     random.Random(1))
    sim.endpoints[A] = a
    sim.add(B)
    sim.send(A, b"secret", B)
    sim.run(30.0)
    assert sim.received[B] == []
    assert not a.is_established(B)
    assert a.statistics().dropped == {"handshake_timeout": 1, "queue_handshake_failed": 1}
    assert sim.errors["IntegrityError"] >= 1  # B could not read any act one
    assert sim.endpoints[B].statistics().half_open == 0


def test_relay_address_with_a_key_other_than_the_directorys_is_rejected() -> None:
    sim = Sim()
    sim.add(B)
    impostor = LinkEndpoint(SecretKey(b"\x78" * 32), directory, random.Random(2))
    sim.endpoints[A] = impostor  # sits at A's address with another key
    sim.send(A, b"x", B)
    sim.run(1.0)
    assert sim.errors["LinkAuthenticationError"] >= 1
    assert not sim.endpoints[B].is_established(A)
    assert sim.received[B] == []


def test_queue_behind_a_handshake_is_bounded_and_drops_newest() -> None:
    sim = Sim(config=LinkConfig(max_queue=4))
    sim.add(A)
    sim.add(B)
    packets = _packets(10)
    for packet in packets:
        sim.send(A, packet, B)
    assert sim.endpoints[A].statistics().dropped["queue_full"] == 6
    sim.run(1.0)
    assert [p for p, _ in sim.received[B]] == packets[:4]


def test_half_open_handshakes_are_bounded_per_responder() -> None:
    b = LinkEndpoint(KEYS[B], directory, random.Random(3), LinkConfig(max_half_open=8))
    rng = random.Random(4)
    for i in range(20):
        initiator = Initiator(SecretKey.from_rng(rng), KEYS[B].public_key, SecretKey.from_rng(rng))
        b.open(bytes((TYPE_ACT_ONE,)) + initiator.act_one(), ("10.9.0.1", i + 1), 0.0)
    stats = b.statistics()
    assert stats.half_open == 8 and stats.peers == 8
    assert stats.dropped["half_open_evicted"] == 12
    b.tick(11.0)
    assert b.statistics().half_open == 0 and b.statistics().peers == 0


def test_act_one_flood_is_rate_limited() -> None:
    config = LinkConfig(handshake_rate=10.0, handshake_burst=5.0)
    b = LinkEndpoint(KEYS[B], directory, random.Random(3), config)
    rng = random.Random(5)
    limited = 0
    for i in range(10):
        initiator = Initiator(SecretKey.from_rng(rng), KEYS[B].public_key, SecretKey.from_rng(rng))
        try:
            b.open(bytes((TYPE_ACT_ONE,)) + initiator.act_one(), ("10.9.0.2", i + 1), 0.0)
        except RateLimitedError:
            limited += 1
    assert limited == 5


def test_duplicate_act_one_is_answered_with_the_stored_act_two() -> None:
    b = LinkEndpoint(KEYS[B], directory, random.Random(3))
    initiator = Initiator(KEYS[A], KEYS[B].public_key, SecretKey(b"\x09" * 32))
    act_one = bytes((TYPE_ACT_ONE,)) + initiator.act_one()
    b.open(act_one, A, 0.0)
    first = b.datagrams_to_send()
    b.open(act_one, A, 0.5)
    assert b.datagrams_to_send() == first


def test_client_endpoint_accepts_no_handshakes() -> None:
    client = LinkEndpoint(None, directory, random.Random(3))
    initiator = Initiator(KEYS[A], KEYS[B].public_key, SecretKey(b"\x09" * 32))
    with pytest.raises(UnknownSessionError):
        client.open(bytes((TYPE_ACT_ONE,)) + initiator.act_one(), A, 0.0)
    with pytest.raises(LocalProtocolError):
        client.connect(CLIENT, 0.0)


def test_rekey_keeps_traffic_flowing_without_loss() -> None:
    config = LinkConfig(rekey_after_time=20.0, reject_after_time=30.0, idle_timeout=30.0)
    sim = Sim(config=config, jitter=0.005)
    sim.add(A)
    sim.add(B)
    packets = _packets(200)
    for packet in packets:
        sim.send(A, packet, B)
        sim.run(0.5)
    sim.run(1.0)
    assert [p for p, _ in sim.received[B]] == packets
    assert sim.endpoints[A].statistics().handshakes_completed >= 4
    assert sim.endpoints[A].statistics().sessions <= 3


def test_message_limit_forces_a_rekey_before_the_hard_limit() -> None:
    config = LinkConfig(rekey_after_messages=10, reject_after_messages=40)
    sim = Sim(config=config)
    sim.add(A)
    sim.add(B)
    packets = _packets(100)
    for packet in packets:
        sim.send(A, packet, B)
        sim.run(0.05)
    sim.run(1.0)
    assert [p for p, _ in sim.received[B]] == packets
    assert sim.endpoints[A].statistics().handshakes_completed >= 5


def test_idle_peer_is_forgotten() -> None:
    sim = Sim()
    sim.add(A)
    sim.add(B)
    sim.send(A, b"x", B)
    sim.run(1.0)
    sim.run(200.0)
    assert sim.endpoints[A].statistics().peers == 0
    assert sim.endpoints[B].statistics().peers == 0
    sim.send(A, b"again", B)  # a new handshake, transparently
    sim.run(1.0)
    assert sim.received[B][-1] == (b"again", A)


def test_restarted_relay_is_reached_again_through_a_fresh_handshake() -> None:
    sim = Sim()
    sim.add(A)
    sim.add(B)
    sim.send(A, b"before", B)
    sim.run(1.0)
    sim.add(B)  # B restarts: all link state lost
    sim.send(A, b"lost", B)  # sealed under the old session: B cannot read it
    sim.run(1.0)
    assert sim.errors["UnknownSessionError"] == 1
    sim.send(A, b"after", B)
    sim.run(1.0)
    assert sim.received[B][-1] == (b"after", A)


def test_a_held_client_link_is_rekeyed_while_idle_and_released_after_the_hold() -> None:
    sim = Sim()
    sim.add(CLIENT, client=True)
    sim.add(A)
    sim.endpoints[CLIENT].connect(A, sim.now, hold=600.0)
    sim.flush(CLIENT)
    sim.run(500.0)  # no traffic at all, several session lifetimes
    sim.send(A, b"backward, late", CLIENT)  # A cannot open a link to a client itself
    sim.run(1.0)
    assert sim.received[CLIENT] == [(b"backward, late", A)]
    assert sim.endpoints[CLIENT].statistics().handshakes_completed >= 4
    sim.run(400.0)  # past the hold: the idle link expires like any other
    assert sim.endpoints[CLIENT].statistics().peers == 0
    sim.send(A, b"too late", CLIENT)
    sim.run(30.0)
    assert sim.received[CLIENT] == [(b"backward, late", A)]


def test_an_unheld_idle_client_link_expires_and_the_relay_cannot_reach_the_client() -> None:
    sim = Sim()
    sim.add(CLIENT, client=True)
    sim.add(A)
    sim.endpoints[CLIENT].connect(A, sim.now)
    sim.flush(CLIENT)
    sim.run(500.0)
    sim.send(A, b"backward, late", CLIENT)
    sim.run(30.0)
    assert sim.received[CLIENT] == []
    assert sim.endpoints[A].statistics().dropped["queue_no_handshake"] == 1


def test_a_refreshed_link_reaches_a_restarted_relay_again() -> None:
    sim = Sim()
    sim.add(CLIENT, client=True)
    sim.add(A)
    sim.send(CLIENT, b"before", A)
    sim.run(1.0)
    sim.add(A)  # A restarts and cannot tell the client, which has no key A could use
    sim.send(CLIENT, b"lost", A)
    sim.run(1.0)
    assert sim.errors["UnknownSessionError"] == 1
    sim.endpoints[CLIENT].refresh(A, sim.now)  # what the client does after a setup timeout
    sim.flush(CLIENT)
    sim.run(1.0)
    sim.send(CLIENT, b"after", A)
    sim.run(1.0)
    assert [p for p, _ in sim.received[A]] == [b"before", b"after"]


def test_a_refresh_keeps_the_old_session_until_the_new_one_is_confirmed() -> None:
    sim = Sim()
    sim.add(CLIENT, client=True)
    sim.add(A)
    sim.send(CLIENT, b"before", A)
    sim.run(1.0)
    sim.filter = lambda data, _s, _d: data[0] not in (TYPE_ACT_ONE, TYPE_ACT_TWO)  # a flood
    sim.endpoints[CLIENT].refresh(A, sim.now)  # the new handshake cannot get through
    sim.flush(CLIENT)
    sim.run(1.0)
    sim.send(CLIENT, b"during", A)
    sim.run(1.0)
    assert [p for p, _ in sim.received[A]] == [b"before", b"during"]


def test_simultaneous_open_leaves_both_directions_working() -> None:
    sim = Sim()
    sim.add(A)
    sim.add(B)
    sim.send(A, b"a->b", B)
    sim.send(B, b"b->a", A)
    sim.run(1.0)
    sim.send(A, b"a->b 2", B)
    sim.send(B, b"b->a 2", A)
    sim.run(1.0)
    assert [p for p, _ in sim.received[B]] == [b"a->b", b"a->b 2"]
    assert [p for p, _ in sim.received[A]] == [b"b->a", b"b->a 2"]


def test_three_relays_keep_separate_sessions() -> None:
    sim = Sim()
    for address in (A, B, C):
        sim.add(address)
    sim.send(A, b"to b", B)
    sim.send(A, b"to c", C)
    sim.run(1.0)
    assert sim.received[B] == [(b"to b", A)] and sim.received[C] == [(b"to c", A)]
    sealed = sim.endpoints[A].seal(b"for b only", B, sim.now)
    assert sealed is not None
    with pytest.raises(IntegrityError):  # C holds a session with A, but another one
        sim.endpoints[C].open(sealed, A, sim.now)


def test_endpoint_repr_and_statistics_hold_no_secrets() -> None:
    sim = Sim()
    a = sim.add(A)
    sim.add(B)
    sim.send(A, b"x", B)
    sim.run(1.0)
    text = repr(a) + repr(a.statistics()) + repr(a._peers[B].sessions())
    assert KEYS[A].secret_bytes().hex() not in text
    (session,) = a._peers[B].sessions()
    remote = KEYS[B].public_key.hex()
    assert repr(session) == f"ChannelSession(initiator, remote_static={remote}, sent=1)"


# -- one host against the peer table ---------------------------------------------------------

ATTACKER_HOST = "10.66.0.1"


class _HandshakeFlood:
    """Full BOLT 8 handshakes into ``target`` from many ports of one host, each followed
    by one authenticated datagram (so every attacker entry is as recently active as the
    victims'), as fast as the responder's handshake rate allows."""

    def __init__(self, sim: Sim, target: Address, seed: int) -> None:
        self.sim = sim
        self.target = target
        self.rng = random.Random(seed)
        self.replies: dict[Address, list[bytes]] = {}
        self.done = 0
        self.refused = 0

    def capture(self, datagram: bytes, source: Address, destination: Address) -> bool:
        if destination[0] != ATTACKER_HOST:
            return True
        self.replies.setdefault(destination, []).append(datagram)
        return False  # the attacker's own replies never travel the simulated network

    def handshake(self, port: int) -> None:
        sim, rng = self.sim, self.rng
        address = (ATTACKER_HOST, port)
        noise = Initiator(SecretKey.from_rng(rng), KEYS[self.target].public_key,
                          SecretKey.from_rng(rng))
        before = sim.errors["RateLimitedError"]
        sim.deliver(bytes((TYPE_ACT_ONE,)) + noise.act_one(), address, self.target)
        if sim.errors["RateLimitedError"] > before:
            self.refused += 1
            return
        (act_two,) = self.replies.pop(address)
        noise.read_act_two(act_two[1:])
        act_three, keys = noise.act_three()
        sim.deliver(bytes((TYPE_ACT_THREE,)) + act_three, address, self.target)
        session = ChannelSession(keys, initiator=True, created=sim.now)
        sim.deliver(session.seal(b"attacker"), address, self.target)
        self.done += 1


def test_4200_handshakes_from_one_host_do_not_evict_live_relay_and_client_links() -> None:
    """The attack: 4200 complete handshakes from one IP address (4200 ports) within the
    responder's handshake rate (500/s), while a relay link (A ↔ B) and a client link
    (CLIENT ↔ B) carry echo traffic. B echoes every packet it receives; the echo ratio
    of each link must stay 1.00 during the attack and in the second after it."""
    sim = Sim()
    sim.add(A)
    sim.add(B)
    sim.add(CLIENT, client=True)
    flood = _HandshakeFlood(sim, B, seed=9)
    sim.filter = flood.capture

    def exchange(tick: int) -> int:
        """Three packets from each victim to B, and B's echoes: how many were sent each."""
        for peer in (A, CLIENT):
            for i in range(3):
                sim.send(peer, f"{tick}.{i}".encode(), B)
        sim.run(0.05)
        for packet, source in sim.received[B]:
            sim.send(B, packet, source)  # the echo
        sim.received[B].clear()
        sim.run(0.05)
        return 3

    def ratios(ticks: range) -> dict[Address, float]:
        for peer in (A, CLIENT):
            sim.received[peer].clear()
        sent = sum(exchange(tick) for tick in ticks)
        sim.run(1.0)
        return {peer: len(sim.received[peer]) / sent for peer in (A, CLIENT)}

    assert ratios(range(1)) == {A: 1.0, CLIENT: 1.0}  # both links up before the attack
    port = 1024
    sim.received[A].clear()
    sim.received[CLIENT].clear()
    during_sent = 0
    for tick in range(1, 90):  # 50 handshakes per 0.1 s: the 500/s rate, for 8.4 s
        for _ in range(50):
            if flood.done < 4200:
                flood.handshake(port)
                port += 1
        during_sent += exchange(tick)
    sim.run(1.0)
    during = {peer: len(sim.received[peer]) / during_sent for peer in (A, CLIENT)}
    after = ratios(range(90, 100))
    assert flood.done == 4200 and flood.refused == 0  # the attack stayed within the rate
    assert (during, after) == ({A: 1.0, CLIENT: 1.0}, {A: 1.0, CLIENT: 1.0})
    b = sim.endpoints[B]
    assert b.statistics().peers <= 64 + 2  # the attacker's quota and the two victims
    assert b.statistics().dropped["peer_evicted_source"] == 4200 - 64
    assert b.statistics().handshakes_completed == 4200 + 2  # no victim had to reconnect


def _act_one(rng: random.Random, responder: Address = B) -> bytes:
    noise = Initiator(SecretKey.from_rng(rng), KEYS[responder].public_key,
                      SecretKey.from_rng(rng))
    return bytes((TYPE_ACT_ONE,)) + noise.act_one()


def test_client_churn_from_many_hosts_evicts_idle_clients_first_and_never_a_relay() -> None:
    config = LinkConfig(max_peers=8, max_peers_per_source=2)
    sim = Sim(config=config)
    sim.add(A)
    sim.add(B)
    sim.add(CLIENT, client=True)
    idle = ("10.0.0.8", 5000)
    sim.add(idle, client=True)
    for peer in (A, CLIENT, idle):
        sim.send(peer, b"hello", B)
    sim.run(1.0)
    b = sim.endpoints[B]
    rng = random.Random(12)
    for i in range(40):  # half-open handshakes from 40 hosts, while CLIENT keeps talking
        b.open(_act_one(rng), (f"10.77.0.{i}", 4000), sim.now)
        sim.send(CLIENT, b"still here", B)
        sim.run(0.05)
    assert b.statistics().peers == 8 + 1  # eight client peers and the relay A
    assert b.is_established(A) and b.is_established(CLIENT)
    assert not b.is_established(idle)  # the least recently active client went first
    sim.send(A, b"relay", B)
    sim.run(0.1)
    assert sim.received[B][-1] == (b"relay", A)


def test_one_source_is_held_to_its_quotas_of_peers_and_half_open_handshakes() -> None:
    config = LinkConfig(max_peers_per_source=6, max_half_open_per_source=3)
    b = LinkEndpoint(KEYS[B], directory, random.Random(3), config)
    rng = random.Random(13)
    for port in range(20):
        b.open(_act_one(rng), ("192.0.2.50", port), 0.0)
    stats = b.statistics()
    assert stats.half_open == 3 and stats.peers == 3
    assert stats.dropped["half_open_evicted_source"] == 17
    b.open(_act_one(rng), ("192.0.2.51", 1), 0.0)  # another host is not affected
    assert b.statistics().half_open == 4


def test_ipv6_sources_are_grouped_by_their_64_bit_prefix() -> None:
    assert source_of(("2001:db8:1:2::1", 1)) == source_of(("2001:db8:1:2:ffff::9", 2))
    assert source_of(("2001:db8:1:2::1", 1)) != source_of(("2001:db8:1:3::1", 1))
    assert source_of(("::ffff:192.0.2.7", 1)) == source_of(("192.0.2.7", 9)) == "192.0.2.7"
    assert source_of(("fe80::1%eth0", 1)) == source_of(("fe80::2", 1))


def test_a_client_handshake_flood_does_not_starve_relay_handshakes() -> None:
    config = LinkConfig(handshake_rate=10.0, handshake_burst=5.0)
    b = LinkEndpoint(KEYS[B], directory, random.Random(3), config)
    rng = random.Random(14)
    limited = 0
    for i in range(10):  # clients exhaust their bucket
        try:
            b.open(_act_one(rng), (f"10.88.0.{i}", 1), 0.0)
        except RateLimitedError:
            limited += 1
    assert limited == 5
    relay = Initiator(KEYS[A], KEYS[B].public_key, SecretKey.from_rng(rng))
    b.open(bytes((TYPE_ACT_ONE,)) + relay.act_one(), A, 0.0)  # relays have their own
    assert [d[0] for d, address in b.datagrams_to_send() if address == A] == [TYPE_ACT_TWO]


def test_a_quota_of_one_peer_per_source_replaces_that_peer_cleanly() -> None:
    config = LinkConfig(max_peers=2, max_peers_per_source=1)
    b = LinkEndpoint(KEYS[B], directory, random.Random(3), config)
    rng = random.Random(15)
    for i in range(6):  # each new one evicts the last: the source quota, then the table
        b.open(_act_one(rng), (f"10.99.0.{i // 2}", 7000 + i), float(i))
    stats = b.statistics()
    assert stats.peers == 2 and stats.half_open == 2
    b.tick(100.0)  # everything half open expires and is forgotten without error
    assert b.statistics().peers == 0

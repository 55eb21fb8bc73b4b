"""Relay admission (hornet.node.admission) and the relay's two queues, in memory."""

from __future__ import annotations

import contextlib
import math
import random
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest
import trio

from hornet.core import puzzle
from hornet.core.chdr import TYPE_DATA, TYPE_SETUP
from hornet.core.crypto import SecretKey
from hornet.core.params import Params
from hornet.core.relay import Deliver, Drop, DropReason, Forward, Relay, node_id_of
from hornet.core.setup import HopSpec, build_setup, coarse_exp
from hornet.directory.model import Directory, NodeKeys, relay_info
from hornet.errors import ConfigError
from hornet.node.admission import (
    Admission,
    DifficultyPolicy,
    Limits,
    SolutionMemory,
    TokenBucket,
    Verdict,
    solution_span,
)
from hornet.node.relay import RelayNode
from hornet.testing.memnet import MemoryNetwork
from hornet.transport.kernel_filter import attach_socket_filter, link_filter_program
from hornet.transport.link import LinkSocket, with_link
from hornet.transport.udp import UdpNetwork

PARAMS = Params()
SETUP_LEN = PARAMS.setup_packet_len
RELAY = ("10.0.0.1", 7000)
CLIENT = ("192.0.2.9", 40000)


def _setup(seed: int) -> bytes:
    rng = random.Random(seed)
    key = SecretKey.from_rng(rng)
    hop = HopSpec(node_id_of(key.public_key), key.public_key)
    return build_setup(PARAMS, [hop, hop], [hop], b"\xfe\x04" + bytes(6), 1_000_010, rng).packet


def _data() -> bytes:
    return bytes((TYPE_DATA, PARAMS.max_hops)) + bytes(PARAMS.data_packet_len(512) - 2)


def test_token_bucket_gives_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=5.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.1) and not bucket.take(0.1)  # 0.1 s at 10/s: one token
    assert bucket.take(100.0)  # refills, but never beyond the burst
    assert sum(bucket.take(100.0) for _ in range(10)) == 4


def test_setups_and_data_have_separate_per_neighbour_buckets() -> None:
    limits = Limits(setup_rate=1.0, setup_burst=3.0, data_rate=1.0, data_burst=100.0)
    admission = Admission(limits, SETUP_LEN, [RELAY])
    setup = _setup(1)
    verdicts = [admission.admit(setup, CLIENT, 0.0) for _ in range(5)]
    assert verdicts == [Verdict.SETUP] * 3 + [Verdict.SETUP_RATE_LIMITED] * 2
    # The same neighbour's data still flows: its data bucket is untouched.
    assert [admission.admit(_data(), CLIENT, 0.0) for _ in range(100)] == [Verdict.DATA] * 100
    assert admission.admit(_data(), CLIENT, 0.0) is Verdict.RATE_LIMITED
    # Another client has buckets of its own.
    assert admission.admit(setup, ("192.0.2.10", 40000), 0.0) is Verdict.SETUP


def test_directory_relays_get_the_relay_setup_rate_and_no_puzzle() -> None:
    limits = Limits(setup_rate=1.0, setup_burst=1.0, relay_setup_burst=50.0, setup_capacity=1.0)
    admission = Admission(limits, SETUP_LEN, [RELAY])
    unsolved = _setup(2)
    assert all(admission.admit(unsolved, RELAY, 0.0) is Verdict.SETUP for _ in range(50))
    assert admission.admit(unsolved, RELAY, 0.0) is Verdict.SETUP_RATE_LIMITED
    assert admission.policy.rate(0.0) == 0.0  # relays' setups do not load the policy


def test_malformed_datagrams_are_refused_before_any_bucket() -> None:
    admission = Admission(Limits(), SETUP_LEN)
    for junk in [b"", b"\x01" * 17, b"\x07" + bytes(600), bytes((TYPE_SETUP, 7)) + bytes(100)]:
        assert admission.admit(junk, CLIENT, 0.0) is Verdict.MALFORMED
    assert admission.neighbours == 0


def test_the_client_neighbour_table_is_a_bounded_lru() -> None:
    admission = Admission(Limits(max_neighbours=8, data_burst=1.0), SETUP_LEN, [RELAY])
    first = ("192.0.2.1", 1)
    assert admission.admit(_data(), first, 0.0) is Verdict.DATA
    assert admission.admit(_data(), first, 0.0) is Verdict.RATE_LIMITED
    for port in range(2, 100):
        admission.admit(_data(), ("192.0.2.1", port), 0.0)
    admission.admit(_data(), RELAY, 0.0)
    assert admission.neighbours == 8 + 1  # 8 clients (LRU) and the directory relay
    assert admission.admit(_data(), first, 0.0) is Verdict.DATA  # evicted: a new bucket


def test_difficulty_is_zero_within_capacity_and_rises_with_the_rate() -> None:
    policy = DifficultyPolicy(capacity=100.0, base=8, maximum=20, window=2.0)
    now = 0.0
    for _ in range(500):  # 50 setups/s for 10 s: half the capacity
        now += 0.02
        assert policy.observe(now) == 0
    for _ in range(40_000):  # 10 000 setups/s for 4 s: 100 × capacity
        now += 0.0001
        required = policy.observe(now)
    assert math.isclose(policy.rate(now), 10_000, rel_tol=0.2)
    assert required == 8 + math.ceil(math.log2(policy.rate(now) / 100.0)) == 15
    assert policy.peak == 15
    capped = DifficultyPolicy(capacity=100.0, base=8, maximum=12, window=2.0)
    assert all(capped.observe(i * 0.0001) <= 12 for i in range(40_000))
    assert capped.peak == 12


def test_difficulty_decays_to_zero_after_the_flood_stops() -> None:
    policy = DifficultyPolicy(capacity=100.0, base=8, maximum=20, window=2.0)
    now = 0.0
    for _ in range(40_000):
        now += 0.0001
        policy.observe(now)
    assert policy.required(now) > 0
    # rate · e^(-t/window) < capacity once t > window · ln(rate / capacity) ≈ 9.2 s
    assert policy.required(now + 8.0) > 0
    assert policy.required(now + 10.0) == 0


def test_under_load_only_setups_with_a_solved_puzzle_are_admitted() -> None:
    limits = Limits(setup_capacity=10.0, setup_rate=1e9, setup_burst=1e9, puzzle_base=4)
    admission = Admission(limits, SETUP_LEN, [RELAY])
    unsolved = _setup(3)
    now = 0.0
    verdicts = []
    for _ in range(2000):  # 1000 setups/s from one client: 100 × capacity
        now += 0.001
        verdicts.append(admission.admit(unsolved, CLIENT, now))
    assert verdicts[0] is Verdict.SETUP and verdicts[-1] is Verdict.PUZZLE
    required = admission.policy.required(now)
    assert required == 4 + math.ceil(math.log2(admission.policy.rate(now) / 10.0))
    assert admission.admit(puzzle.solve(_setup(4), required - 1), CLIENT, now) is Verdict.PUZZLE
    assert admission.admit(puzzle.solve(_setup(5), required), CLIENT, now) is Verdict.SETUP


def test_limits_are_validated_with_the_field_named() -> None:
    assert Limits.from_mapping({"setup_rate": 5, "other": "ignored"}).setup_rate == 5
    bad_values: list[tuple[str, object]] = [
        ("setup_rate", 0),
        ("data_rate", "fast"),
        ("queue", 1.5),
        ("setup_burst", True),
    ]
    for name, value in bad_values:
        with pytest.raises(ConfigError, match=f"relay.json: {name}"):
            Limits.from_mapping({name: value}, where="relay.json")
    with pytest.raises(ConfigError, match="puzzle_base"):
        Limits(puzzle_base=21, puzzle_max=20)


class _RecordingCore:
    """Stands in for the core: records the order packets reach it, forwards nothing."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.cached_circuits = 0

    def process(self, packet: bytes, now: float) -> Forward | Deliver:
        self.seen.append(packet[0])
        return Forward(b"\xee" * 8, packet)  # an unknown next hop: counted, not sent


async def test_the_worker_serves_data_before_queued_setups_and_bounds_both_queues() -> None:
    rng = random.Random(5)
    keys = NodeKeys.generate(rng)
    mem = MemoryNetwork()
    sock = await mem.bind(("127.0.0.1", 0))
    directory = Directory((relay_info(keys, sock.address),))
    node = RelayNode(keys, directory, sock, limits=Limits(setup_queue=8, queue=64))
    core = _RecordingCore()
    node.core = core  # type: ignore[assignment]
    setup = _setup(6)
    for i in range(20):  # a setup flood from 20 clients, then data on a circuit
        node._admit(setup, ("192.0.2.1", 1000 + i))
    for _ in range(40):
        node._admit(_data(), CLIENT)
    assert node.statistics().dropped == {"setup_queue_full": 12}
    assert node.statistics().queued == 8 + 40
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node._work_loop)
        with trio.fail_after(5):
            while len(core.seen) < 48:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    # Data first: 32 data packets, 2 setups, the other 8 data packets, then the setups.
    assert core.seen[:32] == [TYPE_DATA] * 32
    assert core.seen.index(TYPE_DATA, 32) <= 34
    assert core.seen[-6:] == [TYPE_SETUP] * 6
    assert node.statistics().dropped["unknown_next_hop"] == 48


# -- the kernel filter -------------------------------------------------------------------

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="socket filters are a Linux feature"
)


@linux_only
def test_the_kernel_filter_keeps_only_datagrams_shaped_like_link_datagrams() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(0.2)
        assert attach_socket_filter(receiver, link_filter_program(100, 2000))
        kept = [
            b"\x11" + bytes(50),  # act one
            b"\x12" + bytes(50),  # act two
            b"\x13" + bytes(66),  # act three
            b"\x21" + bytes(24),  # keepalive
            b"\x22" + bytes(24 + 100),  # the smallest packet
            b"\x21" + bytes(24 + 2000),  # the largest
        ]
        dropped = [
            b"\x11" + bytes(51),
            b"\x13" + bytes(50),
            b"\x21" + bytes(24 + 99),
            b"\x21" + bytes(24 + 2001),
            b"\x01" + bytes(600),  # a bare HORNET packet
            b"",
        ]
        for datagram in dropped + kept:
            sender.sendto(datagram, receiver.getsockname())
        received = []
        with contextlib.suppress(TimeoutError):
            while True:
                received.append(receiver.recv(4096))
        assert sorted(received) == sorted(kept)
    finally:
        receiver.close()
        sender.close()


@linux_only
async def test_a_relay_on_a_link_socket_gets_the_kernel_filter_and_others_do_not() -> None:
    keys = NodeKeys.generate(random.Random(8))
    directory = Directory((relay_info(keys, ("127.0.0.1", 1)),))
    udp = with_link(await UdpNetwork().bind(("127.0.0.1", 0)), keys.node_key, directory)
    memory = with_link(await MemoryNetwork().bind(("127.0.0.1", 0)), keys.node_key, directory)
    bare = await UdpNetwork().bind(("127.0.0.1", 0))
    try:
        assert RelayNode(keys, directory, udp).kernel_filter
        assert not RelayNode(keys, directory, udp, kernel_filter=False).kernel_filter
        assert not RelayNode(keys, directory, memory).kernel_filter
        assert not RelayNode(keys, directory, bare).kernel_filter  # no link layer
        # Garbage never reaches the filtered relay's socket; a datagram shaped like a
        # link datagram does (and the link layer refuses it: no session).
        assert isinstance(udp, LinkSocket)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.sendto(b"\x00garbage" * 50, udp.address)
        probe.sendto(b"\x21" + bytes(24 + PARAMS.data_packet_len(512)), udp.address)
        probe.close()
        with trio.move_on_after(0.2) as scope:
            await udp.receive()
        assert scope.cancelled_caught
        assert udp.statistics().dropped == {"unknown_session": 1}
    finally:
        for sock in (udp, memory, bare):
            sock.close()


def test_a_rate_too_large_for_a_float_is_a_config_error() -> None:
    # Found by the config fuzz target: math.isfinite(10**400) raises OverflowError.
    from hornet.errors import ConfigError

    with pytest.raises(ConfigError, match="data_rate"):
        Limits.from_mapping({"data_rate": 10**400})


# -- one solved puzzle, one ECDH -----------------------------------------------------------


def test_a_solved_puzzle_sent_6000_times_from_1000_ports_forces_at_most_one_ecdh() -> None:
    """The attack: solve one 20-bit puzzle on a setup whose body is garbage (its Sphinx
    HMAC fails, so the core never records its X), then send that packet again and again
    from many source ports while the relay demands puzzles. Every copy the admission
    lets through costs the core an ECDH before the HMAC fails."""
    rng = random.Random(11)
    params = Params()
    now = 1_700_000_000.0
    epoch = params.epoch_of(now)
    core = Relay(SecretKey.from_rng(rng), rng.randbytes(32), params)
    hop = HopSpec(core.node_id, core.setup_public_key(epoch))
    exp = coarse_exp(now, 600)
    packet = build_setup(params, [hop, hop], [hop], b"\xfe\x04" + bytes(6), exp, rng,
                         key_epoch=epoch).packet
    body = puzzle.MIN_PACKET_LEN + 40  # in the Sphinx routing info, after X
    garbage = packet[:body] + bytes((packet[body] ^ 1,)) + packet[body + 1 :]
    attack = puzzle.solve(garbage, 20)
    assert isinstance(core.process(attack, now), Drop)  # garbage indeed (ECDH, then HMAC)

    admission = Admission(Limits(), SETUP_LEN, [RELAY], solution_span_s=solution_span(params))
    # Load: 600 unsolved setups in one second from 300 other ports make it demand puzzles.
    flood = _setup(12)
    for i in range(600):
        admission.admit(flood, ("198.51.100.7", 2000 + i // 2), i / 600)
    assert admission.policy.required(1.0) > 0

    ecdhs = 0
    verdicts: Counter[str] = Counter()
    for i in range(6000):  # 6 copies from each of 1000 ports, within each port's burst
        t = 1.0 + i / 1000
        verdict = admission.admit(attack, ("203.0.113.5", 10_000 + i % 1000), t)
        verdicts[verdict] += 1
        if verdict is Verdict.SETUP:
            result = core.process(attack, now + t)
            assert isinstance(result, Drop) and result.reason is DropReason.INTEGRITY
            ecdhs += 1
    assert admission.policy.required(7.0) > 0  # puzzles were demanded throughout
    assert verdicts[Verdict.SETUP] == ecdhs <= 1, verdicts
    assert verdicts[Verdict.PUZZLE_REUSED] >= 5999
    # A fresh solved setup still gets in.
    assert admission.admit(puzzle.solve(_setup(13), 20), CLIENT, 8.0) is Verdict.SETUP


def test_solutions_are_remembered_for_at_least_the_span_and_at_most_twice_it() -> None:
    memory = SolutionMemory(span=670.0, capacity=1000)
    assert memory.memory_bytes == 0  # nothing allocated until a puzzle is checked
    x = b"\x02" + bytes(range(32))
    assert not memory.check_and_add(x, 100.0)
    assert memory.check_and_add(x, 769.0)
    assert not memory.check_and_add(b"\x03" + bytes(32), 770.0)  # the first swap
    assert memory.check_and_add(x, 1439.0)  # still in the previous filter
    assert not memory.check_and_add(x, 1440.0)  # the second swap forgot it
    assert solution_span(Params()) == 600 + 10 + 2 * 30


def test_the_admission_policy_is_sans_io() -> None:
    # The policy takes its clock as a parameter; sockets, the kernel filter and trio
    # belong to hornet.transport and hornet.node.relay.
    import ast
    import subprocess

    import hornet.node.admission as admission

    tree = ast.parse(Path(admission.__file__).read_text())
    imported = {alias.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for alias in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    io = {"trio", "socket", "ctypes", "time", "random", "os", "struct", "sys"}
    assert not {name.split(".")[0] for name in imported} & io
    assert not {name for name in imported if name.startswith("hornet.transport")}
    code = (
        "import sys, hornet.node.admission\n"
        "print(','.join(sorted(n for n in sys.modules"
        " if n.split('.')[0] in {'trio', 'ctypes'} or n.startswith('hornet.transport'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

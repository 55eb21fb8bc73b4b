"""The two engines (``hornet/core/engine.py``): one protocol, the same bytes, the same drops.

- Selection: the native engine is active when built, ``HORNET_ENGINE=python`` forces the
  reference, ``hornet info`` and ``--version`` say which one runs; without cargo the
  package still builds, as pure Python, with one notice.
- Golden vectors: each engine's relays replay every hop of every vector file, and the
  generator (whose sources seal through the active engine) reproduces the files.
- Differential fuzzing: the same packets (valid ones recorded from a run of the protocol,
  mutants of them, and garbage) go to twin relays, one per engine, with the same keys and
  the same clock; every decision must be equal (next hop and packet bytes, delivered
  message and session secret, drop reason), and so must the cache sizes. The default run
  feeds a few thousand inputs; the ``fuzz`` marker runs a million or more::

      HORNET_DIFF_INPUTS=1000000 .venv/bin/python -m pytest -m fuzz \\
          tests/core/test_engine.py -k differential_fuzz -s

  (``HORNET_DIFF_INPUTS`` sets the count; the test prints the count and the outcomes.)
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from externals import require
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hornet.core import engine
from hornet.core.ahdr import create_ahdr
from hornet.core.chdr import data_chdr
from hornet.core.crypto import SecretKey
from hornet.core.onion import ForwardOnion
from hornet.core.params import C, Params, Profile
from hornet.core.relay import Deliver, Drop, Forward, Relay
from hornet.core.rendezvous import Descriptor, RendezvousDestination, RendezvousSource
from hornet.core.replay import DataReplayFilter
from hornet.errors import HornetError, IntegrityError, LocalProtocolError
from hornet.link.channel import ChannelSession, NativeChannelSession
from hornet.link.noise import TransportKeys
from hornet.testing.sim import SimNetwork, open_session

NATIVE = engine.native is not None


@pytest.fixture
def native_engine() -> None:
    """Skip without a Rust toolchain; with one, the extension must have been built."""
    require("cargo")
    assert NATIVE, "cargo is installed but hornet._native was not built: reinstall"


needs_native = pytest.mark.usefixtures("native_engine")
VECTORS = Path(__file__).resolve().parents[1] / "vectors"
NOW = 1.0
RELAYS = 12
DEST_ID = b"dest\x00\x00\x00\x01"
#: Clock readings the inputs are processed at: inside the circuits' lifetime, at the
#: tolerated-skew edge of EXP (600 + 30), in the next key epoch, past every live epoch.
TIMES = (1.0, 300.5, 629.0, 629.999, 630.0, 3599.5, 3600.0, 4269.0, 4300.0, 9000.0)


# --------------------------------------------------------------------------------------
# Selection


@needs_native
def test_the_native_engine_is_built_and_active_where_cargo_is() -> None:
    assert engine.available() == ("native", "python")
    forced = os.environ.get("HORNET_ENGINE") == "python"
    assert engine.active() == ("python" if forced else "native")


def _hornet(*args: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "HORNET_ENGINE"} | env
    out = subprocess.run(
        [sys.executable, "-m", "hornet.cli", *args],
        capture_output=True,
        text=True,
        check=True,
        env=environ,
    )
    return out.stdout


def test_hornet_info_names_the_active_engine_and_the_variable_forces_python() -> None:
    default = "native" if NATIVE else "python"
    assert f"engine: {default} " in _hornet("info")
    assert "engine: python " in _hornet("info", HORNET_ENGINE="python")
    assert "engine: python " in _hornet("--version", HORNET_ENGINE="python")


def test_without_cargo_the_package_builds_as_pure_python_with_one_notice(
    tmp_path: Path,
) -> None:
    """``pip wheel .`` with no cargo on PATH (build isolation fetches setuptools from the
    package index, as any install does)."""
    repo = Path(__file__).resolve().parents[2]
    path = os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "cargo").exists()
    )
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path), str(repo)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": path, "PIP_NO_INPUT": "1"},
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (out.stdout + out.stderr).count("hornet: cargo not found") == 1
    (wheel,) = tmp_path.glob("hornet_onion-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "hornet/core/relay.py" in names
    assert not [n for n in names if n.startswith("hornet/_native") and not n.endswith(".pyi")]


def test_unknown_or_missing_engines_are_refused() -> None:
    with pytest.raises(Exception, match="unknown engine"):
        engine.use("turbo")
    if not NATIVE:
        with pytest.raises(Exception, match="not built"):
            engine.use("native")


def test_unsafe_code_is_confined_to_the_system_call_shim_and_no_primitive_is_hand_written() -> None:
    """The crate denies ``unsafe`` everywhere but ``io.rs`` (recvmmsg / sendmmsg, poll,
    eventfd), where every ``unsafe`` block follows a ``SAFETY:`` comment saying why it is
    sound; every primitive comes from a vetted crate named in Cargo.toml."""
    crate = Path(__file__).resolve().parents[2] / "native"
    lib = (crate / "src" / "lib.rs").read_text()
    assert "#![deny(unsafe_code)]" in lib
    shim = "io.rs"
    for path in (crate / "src").glob("*.rs"):
        lines = path.read_text().splitlines()
        code = [line for line in lines if not line.lstrip().startswith("//")]
        if path.name != shim:
            unsafe = [line for line in code if "unsafe" in line and "(unsafe_code)" not in line]
            assert not unsafe, path
            continue
        assert "#![allow(unsafe_code)]" in code
        for i, line in enumerate(lines):
            if "unsafe {" in line and not line.lstrip().startswith("//"):
                above = lines[max(0, i - 4) : i]
                assert any("SAFETY:" in text for text in above), f"{path.name}:{i + 1}"
    manifest = (crate / "Cargo.toml").read_text()
    for dependency in ("aes", "ctr", "hmac", "sha2", "ring", "pyo3", "libc"):
        assert f"\n{dependency} = " in manifest
    assert (crate / "Cargo.lock").exists()


@needs_native
def test_native_objects_hide_their_keys_and_raise_hornet_errors() -> None:
    assert engine.native is not None
    key = bytes(range(32))
    gcm = engine.native.Aes256Gcm(key)
    assert key.hex() not in repr(gcm) and "hidden" in repr(gcm)
    sealed = gcm.seal(bytes(12), b"payload", b"ad")
    assert gcm.open(bytes(12), sealed, b"ad") == b"payload"
    for forged in (sealed[:-1] + bytes([sealed[-1] ^ 1]), sealed[:10], b""):
        with pytest.raises(IntegrityError):
            gcm.open(bytes(12), forged, b"ad")
    with pytest.raises(IntegrityError):
        gcm.open(bytes(12), sealed, b"other ad")
    with pytest.raises(LocalProtocolError):
        engine.native.Aes256Gcm(bytes(16))
    net = SimNetwork(4, Params(), seed=3, engine="python")
    keys = net.setup([0, 1], [2])
    onion = engine.forward_onion(Profile.HARDENED, keys.forward_keys, 7, engine="native")
    assert "hops=2" in repr(onion)
    assert all(k.enc.hex() not in repr(onion) for k in keys.forward_keys)
    with pytest.raises(LocalProtocolError):
        onion.wrap(bytes(16), b"m", bytes(16))  # padding must be (7 - 2) * 16 bytes
    relay = Relay(SecretKey(bytes(31) + b"\x01"), bytes(32), engine="native")
    assert "cached_circuits" in repr(relay._fast)


# --------------------------------------------------------------------------------------
# Golden vectors, per engine


def _relays(doc: dict[str, Any], section: dict[str, Any], name: str) -> dict[str, Relay]:
    params = Params(max_hops=doc["max_hops"], profile=Profile(doc["profile"]))
    return {
        entry["node_id"]: Relay(
            SecretKey(bytes.fromhex(entry["secret_key"])),
            bytes.fromhex(entry["local_secret"]),
            params,
            engine=name,
        )
        for entry in section["relays"]
    }


def _expected(result: Forward | Deliver | Drop) -> dict[str, str]:
    if isinstance(result, Forward):
        return {
            "action": "forward",
            "next_hop": result.next_hop.hex(),
            "packet": result.packet.hex(),
        }
    if isinstance(result, Deliver):
        return {
            "action": "deliver",
            "circuit_id": result.circuit_id.hex(),
            "reply_hop": result.reply_hop.hex(),
            "message": result.message.hex(),
        }
    return {"action": "drop", "reason": result.reason.value}


def _trips(doc: dict[str, Any]) -> list[tuple[dict[str, Any], list[list[dict[str, Any]]]]]:
    plain = [doc[s]["hops"] for s in ("setup", "data_forward", "data_backward")]
    rv = doc["rendezvous"]
    names = ("destination_setup", "source_setup", "source_to_destination", "destination_to_source")
    return [(doc, plain), (rv, [rv[n]["hops"] for n in names])]


@needs_native
@pytest.mark.parametrize("name", ["native", "python"])
@pytest.mark.parametrize("path", sorted(VECTORS.glob("hornet-*.json")), ids=lambda p: p.name)
def test_each_engine_replays_every_golden_vector_byte_for_byte(path: Path, name: str) -> None:
    doc = json.loads(path.read_text())
    hops_checked = 0
    for section, trips in _trips(doc):
        relays = _relays(doc, section, name)
        for hops in trips:
            for hop in hops:
                result = relays[hop["node_id"]].process(bytes.fromhex(hop["packet_in"]), doc["now"])
                assert _expected(result) == hop["out"]
                hops_checked += 1
    assert hops_checked >= 20


@needs_native
@pytest.mark.parametrize("name", ["native", "python"])
def test_the_generator_reproduces_the_vectors_with_each_engine(name: str) -> None:
    sys.path.insert(0, str(VECTORS))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(VECTORS))
    before = engine.active()
    engine.use(name)  # the sources' onions and the relays come from this engine
    try:
        documents = generate.documents()
    finally:
        engine.use(before)
    for file_name, doc in documents.items():
        assert (VECTORS / file_name).read_text() == json.dumps(doc, indent=1) + "\n"


@needs_native
@pytest.mark.parametrize("profile", list(Profile))
def test_native_source_and_sink_onions_match_the_reference(profile: Profile) -> None:
    net = SimNetwork(8, Params(profile=profile), seed=3, engine="python")
    keys = net.setup([0, 1, 2], [3, 4])
    rng = random.Random(5)
    for size in (1, 64, 1024):
        message, iv = rng.randbytes(size), rng.randbytes(16)
        padding = rng.randbytes(
            net.params.tag_array_len - 3 * 16 if profile.value == "hardened" else 0
        )
        onions = [
            engine.forward_onion(profile, keys.forward_keys, net.params.max_hops, engine=name)
            for name in ("python", "native")
        ]
        assert onions[0].wrap(iv, message, padding) == onions[1].wrap(iv, message, padding)
        backs = [
            engine.backward_onion(keys.backward_layer_keys, engine=name)
            for name in ("python", "native")
        ]
        assert backs[0].unwrap(iv, message) == backs[1].unwrap(iv, message)


# --------------------------------------------------------------------------------------
# Differential fuzzing


def _link_pair(name: str) -> tuple[ChannelSession, ChannelSession]:
    keys = TransportKeys(bytes([1]) * 32, bytes([2]) * 32, b"", b"", b"")
    back = TransportKeys(bytes([2]) * 32, bytes([1]) * 32, b"", b"", b"")
    cls = NativeChannelSession if name == "native" else ChannelSession
    return (
        cls(keys, initiator=True, created=0.0, limit=1 << 20),
        cls(back, initiator=False, created=0.0),
    )


def _outcome(call: Callable[[], bytes]) -> tuple[str, bytes | str]:
    try:
        return "ok", call()
    except HornetError as exc:
        return type(exc).__name__, str(exc)


@needs_native
@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_differential_link_sessions_agree_on_datagrams_windows_and_errors(seed: int) -> None:
    """Same keys, same packets: the same datagrams out, and on the receiving side the same
    plaintext or the same error for replays, reordering past the window, forgeries,
    short datagrams and jumps of the counter (up to 2^20, the sender's limit)."""
    rng = random.Random(seed)
    (py_send, py_recv), (na_send, na_recv) = _link_pair("python"), _link_pair("native")
    sent: list[bytes] = []
    kinds: Counter[str] = Counter()
    for _ in range(300):
        roll = rng.random()
        if roll < 0.5 or not sent:
            if rng.random() < 0.05:  # jump ahead: counters far past the window
                jump = rng.choice((1, 1023, 1024, 1025, 5000))
                py_send.sent = na_send.sent = min(py_send.sent + jump, (1 << 20) - 1)
            packet = rng.randbytes(rng.randrange(0, 64))
            both = [s.seal(packet) for s in (py_send, na_send)]
            assert both[0] == both[1] and py_send.sent == na_send.sent
            sent.append(both[0])
            datagram = both[0]
        elif roll < 0.75:
            datagram = rng.choice(sent)  # a replay or a late arrival
        elif roll < 0.9:
            forged = bytearray(rng.choice(sent))
            forged[rng.randrange(len(forged))] ^= 1 << rng.randrange(8)
            datagram = bytes(forged)
        else:
            datagram = rng.randbytes(rng.randrange(0, 30))
        expected = _outcome(lambda d=datagram: py_recv.open(d))
        assert _outcome(lambda d=datagram: na_recv.open(d)) == expected
        assert na_recv._fast.top == py_recv.top
        kinds[expected[0]] += 1
    assert kinds["ok"] > 0 and kinds["ReplayError"] > 0 and kinds["IntegrityError"] > 0
    with pytest.raises(LocalProtocolError):
        NativeChannelSession(
            TransportKeys(bytes(32), bytes(32), b"", b"", b""),
            initiator=True,
            created=0.0,
            limit=1 << 40,
        )
    exhausted = _link_pair("native")[0]
    exhausted.sent = 1 << 20
    with pytest.raises(LocalProtocolError):
        exhausted.seal(b"x")


@needs_native
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    bits_per_packet=st.sampled_from([24, 64, 200, 2000]),
    max_bytes_kib=st.sampled_from([2, 3, 7, 64]),
    max_windows=st.integers(2, 3),
)
def test_differential_replay_filters_agree_while_slices_grow_and_hit_the_bound(
    seed: int, bits_per_packet: int, max_bytes_kib: int, max_windows: int
) -> None:
    assert engine.native is not None
    args = (10, 60, max_windows, bits_per_packet, max(max_windows, max_bytes_kib) << 10)
    python = DataReplayFilter(*args[:3], bits_per_packet=args[3], max_bytes=args[4])
    native = engine.native.DataReplayFilter(*args)
    rng = random.Random(seed)
    recent: list[tuple[bytes, int]] = []
    now, verdicts, grown = 0.0, Counter[bool](), 0
    for _ in range(600):
        now += rng.choice((0.0, 0.0, 0.5, 1.0, 10.0))
        if recent and rng.random() < 0.2:  # a replay, within its EXP or not
            value, exp = rng.choice(recent)
        else:
            value, exp = rng.randbytes(16), rng.choice((600, 610, 650, 1300))
        recent = [*recent[-50:], (value, exp)]
        verdict = python.seen(value, exp, now, 30)
        assert native.seen(value, exp, now, 30) == verdict
        assert native.memory_bytes == python.memory_bytes
        verdicts[verdict] += 1
        grown += python.memory_bytes > len(python._windows) << 7  # a window has 2+ slices
    assert verdicts[True] > 0 and verdicts[False] > 0
    if bits_per_packet < 2000:
        assert grown > 0  # slices grew (and, with a small max_bytes, hit the bound)


class Twins:
    """One recorded world per profile, and twin relays (one set per engine) to feed.

    ``small_filter``: the hardened profile's replay filter at its smallest (1 KiB slices
    of 42 packets, two windows, 7 KiB in all), so that slices grow, hit the memory bound
    and give false positives within a short run: both engines must agree on each.
    """

    def __init__(self, profile: Profile, cache_size: int, small_filter: bool = False) -> None:
        self.params = Params(profile=profile)
        self.seeds = _record(self.params)
        self.cache_size = cache_size
        self.small_filter = small_filter
        self.reset()

    def reset(self) -> None:
        self.relays: list[list[Relay]] = []
        for name in ("python", "native"):
            net = SimNetwork(RELAYS, self.params, seed=11, cache_size=self.cache_size)
            self.relays.append(
                [
                    Relay(
                        relay.node_key,
                        secret,
                        self.params,
                        cache_size=self.cache_size,
                        data_filter=DataReplayFilter(10, 120, 2, max_bytes=7 << 10)
                        if self.small_filter
                        else None,
                        engine=name,
                    )
                    for relay, secret in zip(net.relays, net.secrets, strict=True)
                ]
            )

    def feed(self, index: int, packet: bytes, now: float, outcomes: Counter[str]) -> None:
        python, native = (relays[index % RELAYS] for relays in self.relays)
        expected, got = python.process(packet, now), native.process(packet, now)
        assert type(got) is type(expected), (packet.hex(), now, expected, got)
        assert got == expected, (packet.hex(), now)
        if isinstance(expected, Deliver):
            assert isinstance(got, Deliver)
            assert got.session_secret == expected.session_secret
        assert native.cached_circuits == python.cached_circuits
        assert native.replay_memory_bytes == python.replay_memory_bytes
        key = type(expected).__name__
        outcomes[f"Drop.{expected.reason.name}" if isinstance(expected, Drop) else key] += 1


def _record(params: Params) -> list[tuple[int, bytes]]:
    """Every (relay index, packet) one run of the protocol makes: setups, data both ways
    on 1-, 3- and r-hop circuits, and a rendezvous with nested packets both ways."""
    net = SimNetwork(RELAYS, params, seed=11, engine="python")
    index = {relay.node_id: i for i, relay in enumerate(net.relays)}
    seeds: list[tuple[int, bytes]] = []
    send = net.send

    def recording(first_hop: bytes, packet: bytes, now: float) -> Any:
        trip = send(first_hop, packet, now)
        seeds.extend((index[hop.node_id], hop.packet) for hop in trip.hops)
        return trip

    net.send = recording  # type: ignore[method-assign]
    rng, r = net.rng, params.max_hops
    pairs = [
        open_session(net, [1, 2, 3], [4, 5, 6], 512),
        open_session(net, [7], [8], 512),
        open_session(net, list(range(1, r + 1)), list(range(r, 0, -1)), 512),
    ]
    for source, dest in pairs:
        for i in range(2):
            net.deliver(source.seal(b"data %d" % i, NOW, rng), NOW)
            net.deliver(dest.seal(b"reply %d" % i, rng), NOW)
        # A nested header on a circuit whose end is no rendezvous point: dropped there
        # (ROUTE), after a valid journey through the relays before it.
        keys = source.keys
        hops = len(keys.forward_keys)
        header = create_ahdr(
            keys.forward_keys, keys.forward_fses, rng.randbytes((2 * r - hops) * C), slots=2 * r
        )
        onion = ForwardOnion(params.profile, keys.forward_keys, r)
        iv, tags, payload = onion.wrap(
            rng.randbytes(16),
            rng.randbytes(512),
            rng.randbytes(params.tag_array_len - hops * 16)
            if params.profile is Profile.HARDENED
            else b"",
        )
        net.send(keys.first_hop, data_chdr(r, iv, nested=True) + header + tags + payload, NOW)
    d_keys = net.setup([9, 0], [10, 11], endpoint=DEST_ID, rendezvous=True)
    rv_dest = RendezvousDestination(d_keys, SecretKey.from_rng(rng), 1024)
    descriptor = Descriptor.decode(params, rv_dest.descriptor().encode())
    s_keys = net.setup([3, 2, 0], [5, 6], rendezvous=True)
    rv_source = RendezvousSource(s_keys, descriptor, rng)
    first = net.deliver(rv_source.seal(b"hello D", NOW, rng), NOW)
    opened = rv_dest.receive(first.exit_packet)
    net.deliver(rv_dest.seal(opened.connection, b"answer", NOW, rng), NOW)
    net.deliver(rv_source.seal(b"again", NOW, rng), NOW)
    return seeds


_TWINS: dict[tuple[Profile, int, bool], Twins] = {}
#: (profile, cache size, small replay filter) of the twin relay sets the fuzzer feeds.
CONFIGS = [(p, c, False) for p in Profile for c in (1024, 2, 0)] + [
    (Profile.HARDENED, 1024, True),
    (Profile.HARDENED, 0, True),
]


def twins(profile: Profile, cache_size: int, small_filter: bool) -> Twins:
    key = (profile, cache_size, small_filter)
    if key not in _TWINS:
        _TWINS[key] = Twins(*key)
    return _TWINS[key]


def mutate(rng: random.Random, seeds: list[tuple[int, bytes]]) -> tuple[int, bytes]:
    """A valid packet, a mutant of one (same length half the time), or garbage."""
    index, packet = rng.choice(seeds)
    roll = rng.random()
    if roll < 0.15:
        return index, packet  # valid (and, the second time, a replay)
    if roll < 0.25:
        head = rng.choice((b"", packet[:1], packet[:2], packet[:18]))
        return rng.randrange(RELAYS), head + rng.randbytes(rng.randrange(0, len(packet) + 40))
    data = bytearray(packet)
    for _ in range(1 + int(rng.expovariate(0.8))):
        if not data:
            break
        op = rng.randrange(7)
        at = rng.randrange(len(data)) if rng.random() < 0.5 else rng.randrange(min(len(data), 400))
        if op == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[at] = rng.randrange(256)
        elif op == 2:
            span = rng.choice((1, 16, 32, 48, 112))
            data[at : at + span] = rng.randbytes(len(data[at : at + span]))
        elif op == 3:
            del data[at:]
        elif op == 4:
            data += rng.randbytes(rng.choice((1, 16, 48)))
        elif op == 5:  # another packet's bytes over a range (AHDRs, tag arrays, IVs)
            _, other = rng.choice(seeds)
            end = min(len(data), len(other), at + rng.choice((16, 48, 112, 336, 1024)))
            data[at:end] = other[at:end]
        else:
            data[0] = rng.choice((1, 2, 3, rng.randrange(256)))
    return (index if rng.random() < 0.9 else rng.randrange(RELAYS)), bytes(data)


def run_differential(seed: int, count: int, outcomes: Counter[str]) -> None:
    rng = random.Random(seed)
    world = twins(*CONFIGS[seed % len(CONFIGS)])
    now = rng.choice(TIMES)
    for _ in range(count):
        if rng.random() < 0.05:
            now = rng.choice(TIMES)
        index, packet = mutate(rng, world.seeds)
        world.feed(index, packet, now, outcomes)
        outcomes["inputs"] += 1
    if rng.random() < 0.1:
        world.reset()  # fresh caches and filters now and then: valid packets pass again


@needs_native
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(seed=st.integers(0, 2**32 - 1))
def test_differential_engines_agree_on_every_input(seed: int) -> None:
    outcomes: Counter[str] = Counter()
    run_differential(seed, 20, outcomes)
    assert outcomes["inputs"] == 20


@needs_native
def test_differential_inputs_reach_every_decision() -> None:
    outcomes: Counter[str] = Counter()
    for seed in range(24):
        run_differential(seed, 100, outcomes)
    for decision in (
        "Forward",
        "Deliver",
        "Drop.MALFORMED",
        "Drop.INTEGRITY",
        "Drop.EXPIRED",
        "Drop.REPLAY",
        "Drop.ROUTE",
    ):
        assert outcomes[decision] > 0, outcomes


@needs_native
@pytest.mark.fuzz
def test_differential_fuzz_a_million_inputs() -> None:
    total = int(os.environ.get("HORNET_DIFF_INPUTS", "1000000"))
    outcomes: Counter[str] = Counter()
    batch = 500

    @settings(
        max_examples=max(1, total // batch),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(seed=st.integers(0, 2**63))
    def run(seed: int) -> None:
        run_differential(seed, batch, outcomes)

    run()
    print(
        json.dumps(
            {
                "differential_inputs": outcomes["inputs"],
                "divergences": 0,
                "outcomes": dict(sorted(outcomes.items())),
            }
        )
    )
    assert outcomes["inputs"] >= total - total % batch

"""Replays across SIGKILL and restart (SPEC.md §7.5): a relay process started through the
CLI with a state file is killed, restarted, and sent recorded setup and data packets.

The test plays every other part itself, with plain sockets and the sans-IO core: the
source, and a next hop D (a core ``Relay`` behind a UDP socket at D's directory address).
What the relay forwards to D is what it accepted.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from restart_kit import setup_through

from hornet.core.e2e import SourceSession
from hornet.core.relay import Forward, Relay
from hornet.core.setup import complete_setup
from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file
from hornet.node.state import RelayState

QUIET = 0.5  # seconds to wait for something that should not arrive


def _bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _receive(sock: socket.socket, timeout: float) -> bytes | None:
    sock.settimeout(timeout)
    try:
        return sock.recv(65536)
    except TimeoutError:
        return None


class World:
    def __init__(self, tmp_path: Path) -> None:
        rng = random.Random(5)
        self.rng = rng
        self.relay_keys, self.d_keys = NodeKeys.generate(rng), NodeKeys.generate(rng)
        self.d_sock, self.source_sock = _bound(), _bound()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            relay_port = probe.getsockname()[1]
        self.relay_address = ("127.0.0.1", relay_port)
        self.directory = Directory(
            (
                relay_info(self.relay_keys, self.relay_address),
                relay_info(self.d_keys, self.d_sock.getsockname()),
            )
        )
        self.params = self.directory.params
        self.d = Relay(self.d_keys.node_key, self.d_keys.local_secret, self.params)
        self.config = tmp_path / "relay.json"
        self.state = tmp_path / "relay.state.sqlite"
        write_key_file(tmp_path / "relay.key", self.relay_keys)
        self.directory.write(tmp_path / "directory.json")
        self.config.write_text(
            json.dumps(
                {
                    "key_file": "relay.key",
                    "directory": "directory.json",
                    "listen": f"127.0.0.1:{relay_port}",
                    "state": self.state.name,
                    "link": False,  # replay the HORNET packets themselves, not link datagrams
                }
            )
        )
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hornet.cli", "relay", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening" in line, self.proc.stderr.read() if self.proc.stderr else line

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def to_relay(self, packet: bytes) -> None:
        self.source_sock.sendto(packet, self.relay_address)

    def circuit(self) -> tuple[bytes, SourceSession]:
        """A setup round trip S → relay → D → relay → S; returns P➊ and the session."""
        request = setup_through(
            self.directory, self.relay_keys, self.d_keys, self.source_sock.getsockname(), self.rng
        )
        self.to_relay(request.packet)
        at_d = _receive(self.d_sock, 10)
        assert at_d is not None, "the relay did not forward a fresh setup"
        answer = self.d.process(at_d, time.time())
        assert isinstance(answer, Forward)
        self.d_sock.sendto(answer.packet, self.relay_address)
        reply = _receive(self.source_sock, 10)
        assert reply is not None
        keys = complete_setup(request.pending, reply, self.rng)
        return request.packet, SourceSession(keys, 512)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.stop()
        w.d_sock.close()
        w.source_sock.close()


def test_no_replay_is_accepted_after_sigkill_and_restart(world: World) -> None:
    world.start()
    setup, session = world.circuit()
    data = [session.seal(b"recorded %d" % i, time.time(), world.rng).packet for i in range(5)]
    for packet in data:
        world.to_relay(packet)
        assert _receive(world.d_sock, 5) is not None  # fresh data is forwarded
    # Replays to the running relay: refused.
    for packet in (setup, *data):
        world.to_relay(packet)
    assert _receive(world.d_sock, QUIET) is None

    world.kill()  # no shutdown code runs
    world.start()
    replays_accepted = 0
    for packet in (setup, *data):
        world.to_relay(packet)
        if _receive(world.d_sock, QUIET) is not None:
            replays_accepted += 1
    assert replays_accepted == 0
    # The restarted relay still serves new circuits.
    _, fresh = world.circuit()
    world.to_relay(fresh.seal(b"after restart", time.time(), world.rng).packet)
    assert _receive(world.d_sock, 5) is not None
    generations = RelayState(world.state)  # opening it again bumps it once more
    assert generations.generation == 3
    generations.close()

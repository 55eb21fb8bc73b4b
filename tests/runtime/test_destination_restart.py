"""Replays into a destination after SIGKILL and restart (SPEC.md §7.5).

The destination is a real process (``destination_app.py``: ``hornet.serve`` with an
application that logs every command it executes). The test plays the source and the
relay R in front of the destination with the sans-IO core and plain sockets, so it sees
the wire between R and the destination: every packet R sends there is recorded. After
the destination is killed and restarted from the same key and state files, the
recorded packets (the setup, the HELLO, the commands) are sent to it again from R's
address, as an attacker on that link would.
"""

from __future__ import annotations

import json
import random
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from restart_kit import QUIET, Process, bound, drain, free_port, receive, setup_through

from hornet.core.chdr import TYPE_SETUP
from hornet.core.e2e import SourceSession
from hornet.core.params import Params
from hornet.core.relay import Forward, Relay
from hornet.core.setup import CircuitKeys, complete_setup
from hornet.core.stream import Stream, StreamFrame
from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file
from hornet.errors import HornetError

APP = Path(__file__).with_name("destination_app.py")
PAYLOAD = Params().default_payload_size  # serve()'s default payload class
COMMANDS = (b"PUT balance=100", b"TRANSFER 50 to mallory")


class DestinationWorld:
    def __init__(self, tmp_path: Path) -> None:
        self.rng = random.Random(23)
        self.r_keys, self.d_keys = NodeKeys.generate(self.rng), NodeKeys.generate(self.rng)
        self.r_sock = bound()
        self.d_address = ("127.0.0.1", free_port())
        self.directory = Directory(
            (
                relay_info(self.r_keys, self.r_sock.getsockname()),
                relay_info(self.d_keys, self.d_address),
            )
        )
        self.params = self.directory.params
        self.r = Relay(self.r_keys.node_key, self.r_keys.local_secret, self.params)
        write_key_file(tmp_path / "dest.key", self.d_keys)
        self.directory.write(tmp_path / "directory.json")
        self.log = tmp_path / "executed.log"
        self.log.touch()
        self.state = tmp_path / "dest.key.state.sqlite"
        self.process = Process(
            [
                sys.executable,
                str(APP),
                str(tmp_path / "dest.key"),
                str(tmp_path / "directory.json"),
                str(self.d_address[1]),
                str(self.state),
                str(self.log),
            ],
            ready="listening",
        )
        self.wire: list[bytes] = []  # every packet R sent to the destination

    def executed(self) -> list[str]:
        return self.log.read_text().splitlines()

    def statistics(self) -> dict[str, Any]:
        """The destination's relay counters: ``delivered`` and ``dropped`` by reason."""
        self.process.signal(signal.SIGUSR1)
        return json.loads(self.process.readline())  # type: ignore[no-any-return]

    def to_destination(self, packet: bytes) -> None:
        """What R forwards, on the wire R → destination (recorded)."""
        result = self.r.process(packet, time.time())
        assert isinstance(result, Forward) and result.next_hop == self.d_keys.node_id
        self.wire.append(result.packet)
        self.r_sock.sendto(result.packet, self.d_address)

    def from_destination(self, timeout: float = 10) -> bytes:
        """The destination's next packet, after R (R → source)."""
        packet = receive(self.r_sock, timeout)
        assert packet is not None, "the destination did not answer"
        result = self.r.process(packet, time.time())
        assert isinstance(result, Forward)
        return result.packet

    def circuit(self) -> tuple[CircuitKeys, SourceSession, Stream]:
        """Setup round trip S → R → D → R → S, then the HELLO handshake (datagram mode)."""
        request = setup_through(
            self.directory, self.r_keys, self.d_keys, ("127.0.0.1", 9), self.rng
        )
        self.to_destination(request.packet)
        keys = complete_setup(request.pending, self.from_destination(), self.rng)
        session = SourceSession(keys, PAYLOAD)
        stream = Stream(self.rng.randbytes(16), session.max_init_message, reliable=False)
        self.send(session, stream.hello_frame())
        answer = StreamFrame.decode(session.open(self.from_destination()))
        assert answer.kind == stream.hello_frame().kind
        return keys, session, stream

    def send(self, session: SourceSession, frame: StreamFrame) -> None:
        self.to_destination(session.seal(frame.encode(), time.time(), self.rng).packet)

    def command(self, session: SourceSession, stream: Stream, command: bytes) -> bytes:
        stream.queue_message(command)
        (frame,) = stream.frames_to_send(time.time())
        self.send(session, frame)
        return StreamFrame.decode(session.open(self.from_destination())).data


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DestinationWorld]:
    w = DestinationWorld(tmp_path)
    try:
        yield w
    finally:
        w.process.stop()
        w.r_sock.close()


def test_a_destination_answers_no_replay_after_sigkill_and_restart(
    world: DestinationWorld,
) -> None:
    world.process.start()
    keys, session, stream = world.circuit()
    for command in COMMANDS:
        assert world.command(session, stream, command) == b"done: " + command
    assert world.executed() == [c.decode() for c in COMMANDS]
    recorded = list(world.wire)  # setup, HELLO, the commands

    world.process.kill()
    world.process.start()
    answers = []
    for packet in recorded:
        world.r_sock.sendto(packet, world.d_address)
        answers += drain(world.r_sock, QUIET)
    # Wait until the destination has decided on every replay (a slow machine must not
    # turn a late answer into a pass), then collect anything it still sent.
    deadline = time.monotonic() + 20
    while (stats := world.statistics())["delivered"] + sum(stats["dropped"].values()) < len(
        recorded
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    answers += drain(world.r_sock, QUIET)
    re_executed = len(world.executed()) - len(COMMANDS)
    setup_replies = sum(1 for a in answers if a[0] == TYPE_SETUP)
    # A reply to a replayed packet would be sealed under the pre-crash session key with
    # sequence numbers starting again at 0: a GCM (key, nonce) pair used before.
    auditor = SourceSession(keys, PAYLOAD)
    reused_key_replies = 0
    for answer in answers:
        after_r = world.r.process(answer, time.time())
        if answer[0] != TYPE_SETUP and isinstance(after_r, Forward):
            try:
                auditor.open(after_r.packet)
            except HornetError:
                continue
            reused_key_replies += 1
    print(
        f"re_executed={re_executed} setup_replies={setup_replies} "
        f"replies_under_pre_crash_key={reused_key_replies} answers={len(answers)}"
    )
    assert (re_executed, setup_replies, reused_key_replies, len(answers)) == (0, 0, 0, 0)
    # The replayed setup met its persisted tag; no recorded data packet's FS opens under
    # the new generation, so no DestinationSession was ever created for them.
    assert stats["delivered"] == 0
    assert stats["dropped"] == {"replay": 1, "integrity": len(recorded) - 1}

    # The restarted destination serves new circuits, and runs each command once.
    _, fresh, fresh_stream = world.circuit()
    assert world.command(fresh, fresh_stream, b"GET balance") == b"done: GET balance"
    assert world.executed() == [*(c.decode() for c in COMMANDS), "GET balance"]

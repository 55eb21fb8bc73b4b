"""Helpers for the replay-after-restart attacks: plain UDP sockets and node processes."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from collections.abc import Sequence

from hornet.core.setup import HopSpec, SetupRequest, build_setup, coarse_exp
from hornet.directory.model import Directory, NodeKeys, endpoint_id

QUIET = 0.5  # seconds to wait for something that should not arrive


def bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def receive(sock: socket.socket, timeout: float) -> bytes | None:
    sock.settimeout(timeout)
    try:
        return sock.recv(65536)
    except TimeoutError:
        return None


def setup_through(
    directory: Directory,
    relay: NodeKeys,
    destination: NodeKeys,
    source: tuple[str, int],
    rng: random.Random,
) -> SetupRequest:
    """P➊ for the path relay → destination, back through the relay to ``source``, under
    the directory's setup keys of the current key epoch (a 60 s circuit)."""
    now = time.time()
    params = directory.params
    epoch = params.epoch_of(now)

    def spec(keys: NodeKeys) -> HopSpec:
        info = directory.get(keys.node_id)
        assert info is not None
        key = info.setup_key(epoch)
        assert key is not None
        return HopSpec(keys.node_id, key)

    return build_setup(
        params,
        [spec(relay), spec(destination)],
        [spec(relay)],
        endpoint_id(source),
        coarse_exp(now, 60),
        rng,
        key_epoch=epoch,
    )


def drain(sock: socket.socket, timeout: float = QUIET) -> list[bytes]:
    """Everything that arrives on ``sock`` until it has been quiet for ``timeout`` s."""
    out = []
    while (data := receive(sock, timeout)) is not None:
        out.append(data)
    return out


class Process:
    """A node process that prints one line containing ``ready`` once it serves."""

    def __init__(self, argv: Sequence[str], ready: str) -> None:
        self.argv = list(argv)
        self.ready = ready
        self.proc: subprocess.Popen[str] | None = None
        self.first_lines: list[str] = []

    def start(self, lines: int = 1) -> list[str]:
        """Start it; returns its first ``lines`` lines of output (the last one says ready)."""
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        got = [self.proc.stdout.readline() for _ in range(lines)]
        if self.ready not in got[-1]:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"did not start: {got!r} {err}")
        return got

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def readline(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        return self.proc.stdout.readline()

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

"""What an operator sees: log lines (text or JSON), one INFO line per circuit, the
periodic counters line, Prometheus metrics and ``hornet status``."""

from __future__ import annotations

import json
import logging
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

import hornet
from hornet import cli
from hornet.circuit.circuit import Circuit
from hornet.cli.logs import JsonFormatter
from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file
from hornet.node.metrics import Reporter, Snapshot
from hornet.testing.memnet import MemoryNetwork

KEYS = NodeKeys.generate(random.Random(5))
OTHER = NodeKeys.generate(random.Random(6))


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(message)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.getMessage()))


async def test_each_circuit_setup_logs_one_info_line_and_is_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    records = _Records()
    logger = logging.getLogger("hornet")
    logger.addHandler(records)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        mem = MemoryNetwork()
        async with hornet.local_network(4, service=_echo, network=mem, seed=7) as net:
            for _ in range(2):
                async with hornet.open_circuit(
                    net.directory, net.service_id, hops=3, network=mem
                ) as circuit:
                    await circuit.send(b"ping")
                    assert await circuit.receive() == b"ping"
            setups = sum(node.statistics().setups for node in net.relays)
            snapshots = [Snapshot.of(node, 0.0) for node in net.relays]
    finally:
        logger.removeHandler(records)
        logger.setLevel(previous)
    accepted = [m for name, m in records.lines if m.startswith("circuit setup accepted")]
    # Two circuits of three relays (and the destination) each, one line per setup.
    assert setups >= 6
    assert len(accepted) == setups + net.service.node.statistics().setups  # type: ignore[union-attr]
    assert sum(s.setups for s in snapshots) == setups
    connections = [m for name, m in records.lines if m.startswith("connection accepted")]
    assert len(connections) == 2
    # The lines name no node, circuit or address.
    for message in accepted:
        assert not any(node.node_id.hex() in message for node in net.relays)
        assert "127.0.0.1" not in message


def test_json_log_lines_are_one_object_each() -> None:
    record = logging.LogRecord("hornet.relay", logging.INFO, __file__, 1, "x %d", (5,), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "info" and line["logger"] == "hornet.relay"
    assert line["message"] == "x 5" and line["time"].endswith("+00:00")


def _relay_files(tmp: Path, metrics_port: int) -> tuple[Path, int]:
    port = _free_port(socket.SOCK_DGRAM)
    write_key_file(tmp / "node.key", KEYS)
    Directory(
        (relay_info(KEYS, ("127.0.0.1", port)), relay_info(OTHER, ("127.0.0.1", port + 1)))
    ).write(tmp / "directory.json")
    config = {
        "key_file": "node.key",
        "directory": "directory.json",
        "listen": f"127.0.0.1:{port}",
        "link": False,  # so that garbage reaches the relay's admission, not a kernel filter
        "metrics": f"127.0.0.1:{metrics_port}",
    }
    (tmp / "relay.json").write_text(json.dumps(config))
    return tmp / "relay.json", port


def test_a_relay_serves_metrics_logs_counters_and_status_prints_them(tmp_path: Path) -> None:
    metrics_port = _free_port(socket.SOCK_STREAM)
    config, port = _relay_files(tmp_path, metrics_port)
    args = ["--log-format", "json", "relay", "--config", str(config), "--stats-interval", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hornet.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
        assert f"http://127.0.0.1:{metrics_port}/metrics" in proc.stdout.readline()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(5):
                sender.sendto(b"not a hornet packet", ("127.0.0.1", port))
        time.sleep(2.5)  # a snapshot and a counters line have been taken since
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'hornet_dropped_total{reason="malformed"} 5.0' in text
        assert f'hornet_node_info{{node_id="{KEYS.node_id.hex()}"}}' in text
        for name in ("forwarded_total", "delivered_total", "setups_total", "handshakes_total"):
            assert f"hornet_{name} 0.0" in text
        assert 'hornet_queue_depth{queue="data"} 0.0' in text
        assert "hornet_directory_age_seconds" in text

        status = subprocess.run(
            [sys.executable, "-m", "hornet.cli", "status", f"127.0.0.1:{metrics_port}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert KEYS.node_id.hex() in status.stdout
        assert "dropped     5 (malformed 5)" in status.stdout
        as_json = subprocess.run(
            [sys.executable, "-m", "hornet.cli", "status", f"127.0.0.1:{metrics_port}", "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert json.loads(as_json.stdout)["dropped"] == {"malformed": 5}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in err.strip().splitlines()]
    counters = [line["message"] for line in lines if line["logger"] == "hornet.counters"]
    assert counters and any("dropped=5 (malformed:5)" in line for line in counters)
    assert any("SIGTERM, stopping" in line["message"] for line in lines)


def test_status_of_an_address_with_no_node_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = _free_port(socket.SOCK_STREAM)
    assert cli.main(["status", f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hornet status: cannot read") and len(err.strip().splitlines()) == 1


async def test_metrics_on_a_port_in_use_is_a_bind_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        mem = MemoryNetwork()
        async with hornet.local_network(1, network=mem, seed=1) as net:
            reporter = Reporter(net.relays[0])
            with pytest.raises(hornet.errors.BindError, match="cannot serve metrics"):
                await reporter.run(taken.getsockname())

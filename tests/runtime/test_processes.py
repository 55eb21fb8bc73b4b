"""Real loopback UDP: relays in separate processes started through the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import hornet
from hornet.circuit.circuit import Circuit
from hornet.directory.model import Directory, NodeKeys, load_key_file, relay_info, write_key_file
from hornet.node.destination import serve

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def process_network(
    tmp_path: Path,
) -> Iterator[tuple[Directory, NodeKeys, list[subprocess.Popen[str]]]]:
    """Four relays as OS processes (``hornet relay --config``) and a service's keys."""
    import random

    rng = random.Random(11)
    keys = [NodeKeys.generate(rng) for _ in range(5)]
    infos = [relay_info(k, ("127.0.0.1", _free_port())) for k in keys]
    directory = Directory(tuple(infos))
    directory.write(tmp_path / "directory.json")
    procs = []
    for i, (k, info) in enumerate(zip(keys[:4], infos[:4], strict=True)):
        write_key_file(tmp_path / f"relay{i}.key", k)
        config = tmp_path / f"relay{i}.json"
        config.write_text(
            json.dumps(
                {
                    "key_file": f"relay{i}.key",
                    "directory": "directory.json",
                    "listen": f"127.0.0.1:{info.address[1]}",
                }
            )
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "hornet.cli", "relay", "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
    try:
        yield directory, keys[4], procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def test_circuit_through_relay_processes(
    process_network: tuple[Directory, NodeKeys, list[subprocess.Popen[str]]],
    tmp_path: Path,
) -> None:
    directory, service_keys, procs = process_network

    async def echo(circuit: Circuit) -> None:
        async for message in circuit:
            await circuit.send(b"echo:" + message)

    address = directory.get(service_keys.node_id)
    assert address is not None
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve(
                service_keys,
                directory,
                address.address,
                echo,
                state=tmp_path / "service.state.sqlite",
                task_status=task_status,
            )
        )
        with trio.fail_after(30):
            async with hornet.open_circuit(directory, service_keys.node_id, hops=2) as circuit:
                for i in range(20):
                    await circuit.send(b"m%d" % i + bytes(900))
                for i in range(20):
                    assert await circuit.receive() == b"echo:m%d" % i + bytes(900)
        nursery.cancel_scope.cancel()
    # Graceful shutdown: SIGINT, exit 0, no traceback.
    for proc in procs:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


def test_relay_creates_its_key_file_with_mode_0600(tmp_path: Path) -> None:
    Directory(()).write(tmp_path / "directory.json")
    (tmp_path / "relay.json").write_text(
        json.dumps(
            {
                "key_file": "new.key",
                "directory": "directory.json",
                "listen": f"127.0.0.1:{_free_port()}",
            }
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hornet.cli", "relay", "--config", str(tmp_path / "relay.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and "listening" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert (tmp_path / "new.key").stat().st_mode & 0o777 == 0o600
    load_key_file(tmp_path / "new.key")


@pytest.mark.parametrize(
    ("config", "directory", "message"),
    [
        (None, None, "cannot read config"),
        ("{not json", None, "is not JSON"),
        ('{"key_file": "k", "directory": "d.json"}', None, "'listen' is required"),
        ('{"key_file": "k", "directory": "d.json", "listen": "x"}', None, "listen: expected"),
        (
            '{"key_file": "k", "directory": "d.json", "listen": "127.0.0.1:1"}',
            "{}",
            "not a hornet directory",
        ),
        (
            '{"key_file": "k", "directory": "d.json", "listen": "127.0.0.1:1"}',
            '{"hornet_directory": 1, "relays": [{"node_id": "00", "public_key": "02", '
            '"address": "a:1"}]}',
            "node_id: expected 8 bytes",
        ),
    ],
)
def test_bad_configuration_gives_a_clear_message_and_nonzero_exit(
    tmp_path: Path, config: str | None, directory: str | None, message: str
) -> None:
    if config is not None:
        (tmp_path / "relay.json").write_text(config)
    if directory is not None:
        (tmp_path / "d.json").write_text(directory)
    out = subprocess.run(
        [sys.executable, "-m", "hornet.cli", "relay", "--config", str(tmp_path / "relay.json")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_standalone_and_exits_zero(path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()

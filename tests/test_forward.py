"""TCP over circuits from the command line: an HTTP server behind ``hornet serve
--forward`` (listed, or ``--hidden`` behind a rendezvous descriptor), and a real HTTP
client fetching a page through ``hornet connect``. Every node is its own process."""

from __future__ import annotations

import functools
import http.server
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file

PAGE = b"<html><body>" + b"hornet " * 5000 + b"</body></html>"  # 35 KB: many packets


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def web(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_bytes(PAGE)
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _start(args: list[str], procs: list[subprocess.Popen[str]], expect: str) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hornet.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if expect not in line:
        proc.kill()
        raise AssertionError((line, proc.communicate(timeout=10)))
    return line


@pytest.mark.parametrize("hidden", [False, True], ids=["listed", "hidden"])
def test_a_page_is_fetched_through_hornet_connect_and_serve(
    tmp_path: Path, web: int, hidden: bool
) -> None:
    rng = random.Random(80)
    nodes = [NodeKeys.generate(rng) for _ in range(5)]  # 4 relays and the destination
    ports = [_free_port(socket.SOCK_DGRAM) for _ in nodes]
    listed = len(nodes) - (1 if hidden else 0)  # a hidden destination is in no directory
    Directory(
        tuple(
            relay_info(k, ("127.0.0.1", p))
            for k, p in zip(nodes[:listed], ports[:listed], strict=True)
        )
    ).write(tmp_path / "directory.json")
    procs: list[subprocess.Popen[str]] = []
    try:
        for i, (keys, port) in enumerate(zip(nodes, ports, strict=True)):
            write_key_file(tmp_path / f"n{i}.key", keys)
            config = {"key_file": f"n{i}.key", "directory": "directory.json"}
            (tmp_path / f"n{i}.json").write_text(
                json.dumps({**config, "listen": f"127.0.0.1:{port}"})
            )
        for i in range(4):
            _start(["relay", "--config", str(tmp_path / f"n{i}.json")], procs, "listening")
        metrics = _free_port(socket.SOCK_STREAM)
        served = json.loads((tmp_path / "n4.json").read_text())
        (tmp_path / "n4.json").write_text(
            json.dumps({**served, "metrics": f"127.0.0.1:{metrics}"})
        )
        serve = ["serve", "--config", str(tmp_path / "n4.json"), "--forward", f"127.0.0.1:{web}"]
        if hidden:
            descriptor = tmp_path / "service.descriptor"
            serve += ["--hidden", "--descriptor", str(descriptor)]
            _start(serve, procs, "descriptor written")
            destination = str(descriptor)
        else:
            _start(serve, procs, "forwarding to")
            destination = nodes[4].node_id.hex()
        local = _free_port(socket.SOCK_STREAM)
        connect = ["connect", destination, "--listen", f"127.0.0.1:{local}"]
        connect += ["--directory", str(tmp_path / "directory.json")]
        _start(connect, procs, "forwarding")
        for _ in range(2):  # two connections, two circuits
            response = httpx.get(f"http://127.0.0.1:{local}/index.html", timeout=30)
            assert response.status_code == 200 and response.content == PAGE
        missing = httpx.get(f"http://127.0.0.1:{local}/absent", timeout=30)
        assert missing.status_code == 404
        if not hidden:  # a listed destination serves its metrics as a relay does
            assert "destination metrics on" in procs[4].stdout.readline()  # type: ignore[union-attr]
            time.sleep(1.5)  # the metrics are a snapshot taken every second
            text = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=10).text
            delivered = re.search(r"^hornet_delivered_total (\S+)$", text, re.MULTILINE)
            assert delivered is not None and float(delivered[1]) > 0, text
            assert "hornet_directory_age_seconds" in text
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        outputs = [p.communicate(timeout=max(1.0, deadline - time.monotonic())) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert not any("Traceback" in err for _, err in outputs), outputs

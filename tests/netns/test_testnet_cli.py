"""``hornet testnet``: builds the namespace network from the command line, and leaves
nothing behind (no namespace, no process, no work directory) however it ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from externals import require


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hornet.cli", "testnet", "--relays", "3", "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _assert_gone(info: dict[str, Any]) -> None:
    assert not set(info["namespaces"]) & _namespaces()
    pids = [r["pid"] for r in info["relays"]] + [info["destination"]["pid"]]
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _alive(pid)]
    assert not Path(info["workdir"]).exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_testnet_serves_until_a_signal_then_removes_everything(signum: int) -> None:
    require("netns")
    proc = _start("--hidden", "--loss", "0.01", "--delay", "5-10")
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info["namespaces"]) <= _namespaces()
        assert all(_alive(r["pid"]) for r in info["relays"])
        assert _alive(info["destination"]["pid"])
        assert Path(info["hidden_descriptor"]).exists()
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_gone(info)


def test_testnet_runs_a_command_in_a_client_host_and_cleans_up_when_it_fails() -> None:
    require("netns")
    # The command crosses the switch to the destination, then fails on purpose.
    script = (
        "import subprocess, sys; "
        "subprocess.run([sys.executable, '-m', 'hornet.testing.roles', 'client', "
        "'--directory', sys.argv[1], '--to', sys.argv[2], '--messages', '5', "
        "'--out', sys.argv[3]], check=True); "
        "print('REPORT', open(sys.argv[3]).read().strip()); sys.exit(3)"
    )
    proc = _start("--", sys.executable, "-c", script, "{directory}", "{destination}",
                  "{workdir}/report.json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    info = json.loads(out.splitlines()[0])
    report = json.loads(out.split("REPORT ", 1)[1].splitlines()[0])
    assert report["received"] == 5 and report["error"] is None
    _assert_gone(info)

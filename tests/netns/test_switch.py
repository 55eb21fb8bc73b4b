"""The user-space switch (``hornet.testing.switch``): the delay and loss a testnet gets
where the kernel has no netem. Real namespaces and UDP between two hosts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from externals import require

from hornet.testing.netns import Testnet

ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7000))
print("up", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""

PROBE = """
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[3]))
rtts, count = [], int(sys.argv[2])
for i in range(count):
    start = time.monotonic()
    s.sendto(i.to_bytes(4, "big") + bytes(1000), (sys.argv[1], 7000))
    try:
        while True:
            data, _ = s.recvfrom(2048)
            if int.from_bytes(data[:4], "big") == i:
                rtts.append(time.monotonic() - start)
                break
    except TimeoutError:
        pass
print(json.dumps({"rtts": rtts, "count": count}))
"""


def _probe(net: Testnet, count: int, timeout: float = 1.0) -> dict[str, list[float] | int]:
    server, client = net.hosts
    echo = net.run(server, [sys.executable, "-c", ECHO], name="echo")
    while "up" not in net.log("echo"):
        assert echo.poll() is None
    out = subprocess.run(
        ["ip", "netns", "exec", client.namespace, sys.executable, "-c", PROBE,
         server.address, str(count), str(timeout)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    result: dict[str, list[float] | int] = json.loads(out.stdout)
    return result


def test_the_switch_delays_each_hop_when_netem_is_missing() -> None:
    require("netns")
    with Testnet(2, delay_ms=(40.0, 60.0)) as net:
        if net.delay == "netem":
            pytest.skip("this kernel has netem: the user-space switch is not used")
        assert net.delay == net.impairment == "userspace"
        result = _probe(net, 20)
    rtts = result["rtts"]
    assert isinstance(rtts, list) and len(rtts) == 20  # UDP crosses it (checksums valid)
    # Two crossings of the switch per round trip, each 40-60 ms.
    assert min(rtts) >= 0.080 and sorted(rtts)[len(rtts) // 2] < 0.2, rtts


def test_the_switch_drops_its_share_of_frames() -> None:
    require("netns")
    with Testnet(2, loss=0.3, delay_ms=(1.0, 2.0)) as net:
        if net.delay == "netem":
            pytest.skip("this kernel has netem: the user-space switch is not used")
        result = _probe(net, 300, timeout=0.1)
    rtts = result["rtts"]
    assert isinstance(rtts, list)
    # Each round trip survives two 30 % draws: about 49 % come back.
    assert 0.35 <= len(rtts) / 300 <= 0.63, len(rtts)

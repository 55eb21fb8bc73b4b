"""Small helpers of the benchmarks that run processes: free ports and CPU time."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_udp_ports(count: int) -> list[int]:
    """``count`` distinct UDP ports on 127.0.0.1 that were free a moment ago (all held
    at once while they are picked, so none repeats)."""
    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
    ports = [int(s.getsockname()[1]) for s in socks]
    for sock in socks:
        sock.close()
    return ports


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (``/proc/pid/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


__all__ = ["free_udp_ports", "process_cpu_seconds"]

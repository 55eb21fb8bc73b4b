"""A hornet network on a ``Testnet``: relays, a destination and clients, one per host.

``HornetCluster(net, relays=5)`` puts relay i on host i (``hornet relay`` on port
``PORT``), the destination on the next host, and leaves the remaining hosts for clients
and hidden destinations. ``start()`` writes the keys, the directory and the relay configs
into the testnet's work directory and waits until every process says it listens.
Relays can be killed (``kill_relay``, SIGKILL by default) and restarted with the same
key and replay state (``restart_relay``). With ``ipv6=True`` (on a ``Testnet(ipv6=True)``)
every node listens on its host's IPv6 address, and the destination and the clients use
the payload class for IPv6's 1280-byte minimum (``payload_size``).
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Final

from hornet.core.params import IPV6_MIN_MTU
from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file
from hornet.testing.netns import Host, Testnet, TestnetError

PORT: Final = 9000
READY_TIMEOUT_S: Final = 30.0


class HornetCluster:
    def __init__(
        self, net: Testnet, relays: int, *, destination: bool = True, ipv6: bool = False
    ) -> None:
        if relays + (1 if destination else 0) > len(net.hosts):
            raise TestnetError("not enough hosts for the relays and the destination")
        self.net = net
        self.ipv6 = ipv6
        self.relay_hosts = net.hosts[:relays]
        self.dest_host: Host | None = net.hosts[relays] if destination else None
        self.free_hosts = net.hosts[relays + (1 if destination else 0):]
        self.dir = net.workdir
        rng = secrets.SystemRandom()
        self.keys = [NodeKeys.generate(rng) for _ in range(relays + (1 if destination else 0))]
        self.relays: dict[int, subprocess.Popen[bytes]] = {}
        self.dest: subprocess.Popen[bytes] | None = None
        self._starts: dict[int, int] = {}
        self.directory_path = self.dir / "directory.json"

    @property
    def directory(self) -> Directory:
        return Directory.load(self.directory_path)

    @property
    def dest_id(self) -> bytes:
        return self.keys[len(self.relay_hosts)].node_id

    def relay_id(self, index: int) -> bytes:
        return self.keys[index].node_id

    def listen(self, host: Host) -> str:
        """``host:port`` (or ``[host]:port``) where a node on ``host`` listens."""
        return f"[{host.address6}]:{PORT}" if self.ipv6 else f"{host.address}:{PORT}"

    @property
    def payload_size(self) -> int | None:
        """The payload class the destination and clients use (None: the default)."""
        return self.directory.params.max_payload(IPV6_MIN_MTU, ipv6=True) if self.ipv6 else None

    def _hosts(self) -> list[Host]:
        return [*self.relay_hosts, *([self.dest_host] if self.dest_host else [])]

    def start(self) -> None:
        entries = [
            relay_info(k, (h.address6 if self.ipv6 else h.address, PORT))
            for k, h in zip(self.keys, self._hosts(), strict=True)
        ]
        Directory(tuple(entries)).write(self.directory_path)
        for i, host in enumerate(self._hosts()):
            write_key_file(self.dir / f"key{i}.json", self.keys[i])
            config = {
                "key_file": f"key{i}.json",
                "directory": "directory.json",
                "listen": self.listen(host),
                "state": f"state{i}.sqlite",
            }
            (self.dir / f"relay{i}.json").write_text(json.dumps(config))
        for i in range(len(self.relay_hosts)):
            self.restart_relay(i, wait=False)
        if self.dest_host is not None:
            i = len(self.relay_hosts)
            self.dest = self.net.python(self.dest_host, [
                "-m", "hornet.testing.roles", "dest", "--key", str(self.dir / f"key{i}.json"),
                "--directory", str(self.directory_path),
                "--listen", self.listen(self.dest_host),
                *(["--payload-size", str(self.payload_size)] if self.payload_size else []),
            ], name="dest")
        for i in range(len(self.relay_hosts)):
            self.wait_for(f"relay{i}-{self._starts[i]}", "listening")
        if self.dest is not None:
            self.wait_for("dest", "ready")

    def wait_for(self, name: str, word: str, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while word not in self.net.log(name):
            if time.monotonic() > deadline:
                raise TestnetError(f"{name} did not say {word!r}: {self.net.log(name)[-2000:]}")
            time.sleep(0.05)

    def kill_relay(self, index: int, sig: int = signal.SIGKILL) -> None:
        process = self.relays.pop(index)
        process.send_signal(sig)
        process.wait(timeout=10)

    def restart_relay(self, index: int, *, wait: bool = True) -> None:
        self._starts[index] = self._starts.get(index, 0) + 1
        name = f"relay{index}-{self._starts[index]}"
        self.relays[index] = self.net.python(self.relay_hosts[index], [
            "-m", "hornet.cli", "relay", "--config", str(self.dir / f"relay{index}.json"),
        ], name=name)
        if wait:
            self.wait_for(name, "listening")

    def client(
        self, host: Host, name: str, *, role: str = "client", to: str | None = None,
        **options: Any,
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a ``roles`` client process on ``host``; returns it and its report path."""
        out = self.dir / f"{name}.json"
        argv = ["-m", "hornet.testing.roles", role, "--directory", str(self.directory_path),
                "--to", to or self.dest_id.hex(), "--out", str(out)]
        if self.payload_size:
            options.setdefault("payload_size", self.payload_size)
        for key, value in options.items():
            flag = f"--{key.replace('_', '-')}"
            argv += [flag] if value is True else [flag, str(value)]
        return self.net.python(host, argv, name=name), out

    @staticmethod
    def report(process: subprocess.Popen[bytes], out: Path, timeout: float) -> dict[str, Any]:
        """Wait for a client process and read its JSON report."""
        process.wait(timeout=timeout)
        if not out.exists():
            raise TestnetError(f"the client wrote no report (exit {process.returncode})")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


__all__ = ["PORT", "HornetCluster"]

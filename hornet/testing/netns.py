"""Hosts as Linux network namespaces on one bridge: hornet's multi-host test network.

In the spirit of Tor's chutney. ``Testnet(n)`` builds ``n`` hosts, each a network
namespace with one interface ``eth0`` (address ``10.77.0.<i+1>/24``, MTU 1500 by
default), cabled by veth pairs to a bridge that lives in a namespace of its own (the
*switch*), so nothing is added to the caller's namespace and two testnets never share an
interface. ``run(host, argv)`` starts a process inside a host; ``close()`` (or leaving
the ``with`` block, even on an exception) kills every process it started and deletes
every namespace it made.

Impairments:
- loss and delay: ``netem`` on each host's ``eth0`` where the kernel has it. Without
  netem, a delay is made by a user-space switch (``hornet.testing.switch``, a process in
  the switch namespace that takes the bridge's place and applies the loss too), and loss
  alone by an nftables rule on the bridge (``numgen random mod 1000 < N drop``).
  ``impairment`` ("netem", "userspace", "nftables" or "none") says how the loss was
  made and ``delay`` ("netem", "userspace" or "none") how the delay was.
- ``drop_fragments()``: an nftables rule on the bridge drops every IPv4 fragment, as many
  NATs and firewalls do (kernel bridge only).

With ``ipv6=True`` each host's ``eth0`` also gets ``fd77::<i+1>/64`` (``address6``).

``fragments_created()`` reads each host's ``FragCreates`` (``/proc/net/snmp`` is per
namespace): the IP fragments its processes made. Requires root, ``ip`` (iproute2) and,
for the nftables rules, ``nft``. Namespace names start with ``hnt-<pid>-``;
``remove_stale()`` deletes those left by a process that no longer exists.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final

import attrs

from hornet.errors import HornetError

PREFIX: Final = "hnt-"
SUBNET: Final = "10.77.0"
SUBNET6: Final = "fd77::"


class TestnetError(HornetError):
    """The test network could not be built (missing tool, no privilege)."""


@attrs.frozen
class Host:
    index: int
    namespace: str
    address: str  # IPv4 of its eth0
    address6: str  # IPv6 (unique local) of its eth0, configured with ``ipv6=True``


def missing_tools() -> list[str]:
    """What this machine lacks to build a testnet (empty when it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if shutil.which("ip") is None:
        missing.append("ip (iproute2)")
    return missing


def _run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(  # noqa: S603  (argv built here from fixed words)
        list(argv), input=stdin, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise TestnetError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")
    return result.stdout


def remove_stale() -> list[str]:
    """Delete ``hnt-<pid>-*`` namespaces whose creating process is gone."""
    removed = []
    for line in _run(["ip", "netns", "list"], check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if not name.startswith(PREFIX) or len(parts) < 3 or not parts[1].isdigit():
            continue
        try:
            os.kill(int(parts[1]), 0)
            continue  # its owner still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        _run(["ip", "netns", "del", name], check=False)
        removed.append(name)
    return removed


class Testnet:
    """``n`` hosts on one bridge (see the module doc). Use it as a context manager."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        hosts: int,
        *,
        mtu: int = 1500,
        loss: float = 0.0,
        delay_ms: tuple[float, float] = (0.0, 0.0),
        workdir: str | Path | None = None,
        tag: str | None = None,
        ipv6: bool = False,
    ) -> None:
        if not 1 <= hosts <= 200:
            raise TestnetError("a testnet has 1 to 200 hosts")
        if not 0 <= loss < 1:
            raise TestnetError("loss must be in [0, 1)")
        self.mtu = mtu
        self.loss = loss
        self.delay_ms = delay_ms
        self.ipv6 = ipv6
        self.tag = tag or f"{os.getpid()}-{os.urandom(2).hex()}"
        self.switch = f"{PREFIX}{self.tag}-sw"
        self.hosts = tuple(
            Host(i, f"{PREFIX}{self.tag}-h{i}", f"{SUBNET}.{i + 1}", f"{SUBNET6}{i + 1:x}")
            for i in range(hosts)
        )
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="hornet-testnet-"))
        self._namespaces: list[str] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        #: How loss and delay were made: "netem", "userspace", "nftables" (loss only) or
        #: "none"; and how the delay was: "netem", "userspace" or "none".
        self.impairment = "none"
        self.delay = "none"
        self._rules: list[str] = []

    def __repr__(self) -> str:
        return f"Testnet(hosts={len(self.hosts)}, tag={self.tag!r}, mtu={self.mtu})"

    # -- building ----------------------------------------------------------------------
    def __enter__(self) -> Testnet:
        missing = missing_tools()
        if missing:
            raise TestnetError("a testnet needs " + ", ".join(missing))
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ns(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)

    def _build(self) -> None:
        sw = self.switch
        self._ns(sw)
        _run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", sw, "link", "set", "br0", "mtu", str(self.mtu), "up"])
        for host in self.hosts:
            self._ns(host.namespace)
            port = f"p{host.index}"
            _run(["ip", "-n", sw, "link", "add", port, "mtu", str(self.mtu), "type", "veth",
                  "peer", "name", "eth0", "netns", host.namespace])
            _run(["ip", "-n", sw, "link", "set", port, "master", "br0", "up"])
            ns = ["ip", "-n", host.namespace]
            _run([*ns, "link", "set", "lo", "up"])
            _run([*ns, "link", "set", "eth0", "mtu", str(self.mtu), "up"])
            _run([*ns, "addr", "add", f"{host.address}/24", "dev", "eth0"])
            if self.ipv6:  # nodad: usable at once, no duplicate-address probe to wait for
                _run([*ns, "-6", "addr", "add", f"{host.address6}/64", "dev", "eth0", "nodad"])
        if self.loss or any(self.delay_ms):
            self._impair()

    def _impair(self) -> None:
        low, high = self.delay_ms
        netem = ["netem"]
        if self.loss:
            netem += ["loss", f"{self.loss * 100:g}%"]
        if high:
            netem += ["delay", f"{(low + high) / 2:g}ms", f"{(high - low) / 2:g}ms"]
        try:
            for host in self.hosts:
                _run(["tc", "-n", host.namespace, "qdisc", "add", "dev", "eth0", "root", *netem])
            self.impairment = "netem"
            self.delay = "netem" if high else "none"
            return
        except (TestnetError, FileNotFoundError):
            for host in self.hosts:
                _run(["tc", "-n", host.namespace, "qdisc", "del", "dev", "eth0", "root"],
                     check=False)
        if high:
            self._userspace_switch()
        elif self.loss:
            self._add_rule(f"numgen random mod 1000 < {round(self.loss * 1000)} counter drop")
            self.impairment = "nftables"

    def _userspace_switch(self) -> None:
        """Take the ports off the bridge and start ``hornet.testing.switch`` on them."""
        ports = [f"p{host.index}" for host in self.hosts]
        for port in ports:
            _run(["ip", "-n", self.switch, "link", "set", port, "nomaster"])
        low, high = self.delay_ms
        log = (self.workdir / "switch.log").open("ab")
        self._logs.append(log)
        process = subprocess.Popen(  # noqa: S603  (argv built here)
            ["ip", "netns", "exec", self.switch, sys.executable,  # noqa: S607
             "-m", "hornet.testing.switch", "--ports", ",".join(ports),
             "--loss", f"{self.loss:g}", "--delay", f"{low:g}-{high:g}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._processes.append(process)
        deadline = time.monotonic() + 30
        while "ready" not in self.log("switch"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise TestnetError(f"the user-space switch did not start: {self.log('switch')}")
            time.sleep(0.05)
        self.impairment = self.delay = "userspace"

    def _add_rule(self, rule: str) -> None:
        """An nftables rule on the bridge's forward hook (every host-to-host frame)."""
        if self.delay == "userspace":
            raise TestnetError("nftables rules need the kernel bridge, not the user-space switch")
        if shutil.which("nft") is None:
            raise TestnetError("nftables rules need `nft` (apt-get install nftables)")
        self._rules.append(rule)
        body = "\n".join(f"  {r}" for r in self._rules)
        script = (
            "table bridge hornet_testnet\ndelete table bridge hornet_testnet\n"
            "table bridge hornet_testnet {\n chain impair {\n"
            "  type filter hook forward priority 0; policy accept;\n"
            f"{body}\n }}\n}}\n"
        )
        _run(["ip", "netns", "exec", self.switch, "nft", "-f", "-"], stdin=script)

    def drop_fragments(self) -> None:
        """From now on the bridge drops every IPv4 fragment (first, middle and last)."""
        self._add_rule("ip frag-off & 0x3fff != 0 counter drop")

    def rule_counters(self) -> str:
        """The bridge's nftables rules with their counters (for reports)."""
        return _run(["ip", "netns", "exec", self.switch, "nft", "list", "ruleset"], check=False)

    # -- processes ---------------------------------------------------------------------
    def run(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        name: str,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside ``host``; its output goes to ``<workdir>/<name>.log``."""
        log = (self.workdir / f"{name}.log").open("ab")
        self._logs.append(log)
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        process = subprocess.Popen(  # noqa: S603  (the caller's own command)
            ["ip", "netns", "exec", host.namespace, *argv],  # noqa: S607  (ip from PATH)
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
        )
        self._processes.append(process)
        return process

    def python(self, host: Host, args: Sequence[str], *, name: str) -> subprocess.Popen[bytes]:
        """``run`` this interpreter with ``args`` (e.g. ``["-m", "hornet.cli", ...]``)."""
        return self.run(host, [sys.executable, *args], name=name)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def fragments_created(self) -> dict[str, int]:
        """Each host's ``FragCreates`` counters (IPv4, and IPv6 ``Ip6FragCreates``):
        fragments made by its processes."""
        out = {}
        for host in self.hosts:
            text = _run(["ip", "netns", "exec", host.namespace, "cat", "/proc/net/snmp"])
            lines = [line.split() for line in text.splitlines() if line.startswith("Ip:")]
            names, values = lines[0], lines[1]
            count = int(values[names.index("FragCreates")])
            text6 = _run(["ip", "netns", "exec", host.namespace, "cat", "/proc/net/snmp6"],
                         check=False)
            for line in text6.splitlines():
                if line.startswith("Ip6FragCreates"):
                    count += int(line.split()[1])
            out[host.namespace] = count
        return out

    # -- teardown ----------------------------------------------------------------------
    def close(self) -> None:
        """Kill every process started here and delete every namespace made here."""
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        for process in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self._processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        for name in reversed(self._namespaces):
            _run(["ip", "netns", "del", name], check=False)
        self._namespaces.clear()
        if self._own_workdir and not os.environ.get("HORNET_TESTNET_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)


__all__ = ["Host", "Testnet", "TestnetError", "missing_tools", "remove_stale"]

"""``hornet testnet``: a namespace test network from the command line (root, ``ip``).

    hornet testnet [--relays 5] [--hidden] [--clients 1] [--loss 0.02] [--delay 20-50]
                   [--mtu 1500] [--duration S] [--json] [-- COMMAND ...]

Builds a ``hornet.testing.netns.Testnet`` (hosts as network namespaces on one switch),
starts ``--relays`` relays (``hornet relay``), an echoing destination and, with
``--hidden``, an echoing hidden destination (its newest descriptor in
``<workdir>/descriptor.hex``), each a process in its own host, and leaves ``--clients``
hosts free. It prints how to reach the network (``--json``: one JSON object), then
serves until SIGINT, SIGTERM or ``--duration`` seconds; with ``COMMAND`` it runs that
command in the first client host instead and exits with its exit code. In COMMAND,
``{directory}``, ``{destination}`` (its node id), ``{descriptor}`` (the hidden
destination's descriptor file) and ``{workdir}`` stand for this network's.

Cleanup: whatever way it ends (a signal, the command's end, a process that failed to
start, an exception), every process it started is killed and every namespace it made is
deleted (``Testnet.close``); the work directory too unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from hornet.testing.cluster import PORT, HornetCluster
from hornet.testing.netns import Host, Testnet, TestnetError, missing_tools, remove_stale

READY_TIMEOUT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--relays", type=int, default=5, help="relays (default 5, at least 3)")
    parser.add_argument("--hidden", action="store_true", help="also run a hidden destination")
    parser.add_argument("--clients", type=int, default=1, help="free client hosts (default 1)")
    parser.add_argument("--loss", type=float, default=0.0, help="frame loss share, [0, 0.5]")
    parser.add_argument("--delay", default="0-0", metavar="LOW-HIGH",
                        help="one-way delay per hop in milliseconds (default none)")
    parser.add_argument("--mtu", type=int, default=1500, help="link MTU (default 1500)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: at SIGINT/SIGTERM)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("command_argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                        help="run this in the first client host, then stop")


class _Stop(Exception):
    """SIGINT or SIGTERM arrived: leave through the cleanup."""


def _stop(signum: int, frame: FrameType | None) -> None:
    for other in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the cleanup
        signal.signal(other, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def _check(args: argparse.Namespace) -> tuple[float, float] | str:
    """The parsed delay, or what is wrong with the arguments."""
    try:
        low, high = (float(x) for x in args.delay.split("-"))
    except ValueError:
        return "--delay must be LOW-HIGH milliseconds, e.g. 20-50"
    if not 0 <= low <= high <= 10_000:
        return "--delay must satisfy 0 <= LOW <= HIGH <= 10000"
    if args.relays < 3 or args.relays > 100:
        return "--relays must be in [3, 100]"
    if not 0 <= args.clients <= 50:
        return "--clients must be in [0, 50]"
    if not 0 <= args.loss <= 0.5:
        return "--loss must be in [0, 0.5]"
    if not 1280 <= args.mtu <= 65535:
        return "--mtu must be in [1280, 65535]"
    if args.command_argv[:1] == ["--"]:
        args.command_argv = args.command_argv[1:]
    if args.command_argv and args.clients < 1:
        return "a COMMAND needs --clients >= 1"
    return low, high


def _wait_ready(net: Testnet, process: subprocess.Popen[bytes], name: str, word: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while word not in net.log(name):
        if process.poll() is not None:
            raise TestnetError(f"{name} exited ({process.returncode}): {net.log(name)[-500:]}")
        if time.monotonic() > deadline:
            raise TestnetError(f"{name} did not start: {net.log(name)[-500:]}")
        time.sleep(0.05)


def _describe(
    net: Testnet, cluster: HornetCluster, hidden: bool, clients: list[Host]
) -> dict[str, Any]:
    assert cluster.dest_host is not None and cluster.dest is not None
    return {
        "workdir": str(net.workdir),
        "directory": str(cluster.directory_path),
        "impairment": net.impairment,
        "delay": net.delay,
        "relays": [{"namespace": h.namespace, "address": f"{h.address}:{PORT}",
                    "node_id": cluster.relay_id(i).hex(), "pid": cluster.relays[i].pid}
                   for i, h in enumerate(cluster.relay_hosts)],
        "destination": {"namespace": cluster.dest_host.namespace,
                        "address": f"{cluster.dest_host.address}:{PORT}",
                        "node_id": cluster.dest_id.hex(), "pid": cluster.dest.pid},
        "hidden_descriptor": str(net.workdir / "descriptor.hex") if hidden else None,
        "client_namespaces": [h.namespace for h in clients],
        "namespaces": [net.switch, *(h.namespace for h in net.hosts)],
    }


def _print_human(info: dict[str, Any]) -> None:
    print(f"testnet up: {len(info['relays'])} relays, impairment {info['impairment']}, "
          f"delay {info['delay']}; work directory {info['workdir']}")
    for relay in info["relays"]:
        print(f"  relay {relay['node_id']} at {relay['address']} ({relay['namespace']})")
    dest = info["destination"]
    print(f"  destination {dest['node_id']} at {dest['address']} (echoes)")
    if info["hidden_descriptor"]:
        print(f"  hidden destination: descriptor in {info['hidden_descriptor']}")
    targets = [dest["node_id"]] + ([f"@{info['hidden_descriptor']}"]
                                   if info["hidden_descriptor"] else [])
    for namespace in info["client_namespaces"]:
        for target in targets:
            print(f"  a client: ip netns exec {namespace} {sys.executable} -m "
                  f"hornet.testing.roles client --directory {info['directory']} "
                  f"--to {target} --out report.json")
    print("stop with Ctrl-C (or SIGTERM): every process and namespace is removed", flush=True)


def run(args: argparse.Namespace) -> int:
    """The command (see the module doc). Exit codes: 0 stopped, 2 bad arguments or
    missing tools, 1 the network could not be built, else COMMAND's code."""
    checked = _check(args)
    if isinstance(checked, str):
        print(f"hornet testnet: {checked}", file=sys.stderr)
        return 2
    missing = missing_tools()
    if missing:
        print(f"hornet testnet: needs {', '.join(missing)}", file=sys.stderr)
        return 2
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    hosts = args.relays + 1 + (1 if args.hidden else 0) + args.clients
    try:
        remove_stale()
        workdir = Path(tempfile.mkdtemp(prefix="hornet-testnet-")) if args.keep else None
        with Testnet(hosts, mtu=args.mtu, loss=args.loss, delay_ms=checked,
                     workdir=workdir) as net:
            cluster = HornetCluster(net, args.relays)
            cluster.start()
            free = list(cluster.free_hosts)
            if args.hidden:
                host = free.pop(0)
                process = net.python(host, [
                    "-m", "hornet.testing.roles", "hidden", "--directory",
                    str(cluster.directory_path), "--descriptor-out",
                    str(net.workdir / "descriptor.hex"),
                ], name="hidden")
                _wait_ready(net, process, "hidden", "ready")
            info = _describe(net, cluster, args.hidden, free)
            if args.json:
                print(json.dumps(info), flush=True)
            else:
                _print_human(info)
            if args.command_argv:
                fields = {"directory": info["directory"], "workdir": info["workdir"],
                          "destination": info["destination"]["node_id"],
                          "descriptor": info["hidden_descriptor"] or ""}
                argv = [word.format(**fields) for word in args.command_argv]
                command = net.run(free[0], argv, name="command")
                code = command.wait()
                sys.stdout.write(net.log("command"))
                return code
            deadline = None if args.duration is None else time.monotonic() + args.duration
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        return 0
    except _Stop:
        return 0
    except TestnetError as exc:
        print(f"hornet testnet: {exc}", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


__all__ = ["add_arguments", "run"]

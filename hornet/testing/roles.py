"""The processes of a test network: ``python -m hornet.testing.roles ROLE ...``.

Relays run as ``hornet relay``; these are the other roles, each a separate process:

- ``dest``: a destination listed in the directory (``hornet.serve``) that echoes.
- ``hidden``: a hidden destination (``serve_rendezvous``) that echoes; it writes its
  descriptor (hex) to ``--descriptor-out`` each time it publishes one.
- ``client``: opens one reliable circuit with the default bind, sends ``--messages``
  numbered messages every ``--interval`` seconds and checks the echoes; writes a JSON
  report to ``--out``: delivered and in-order counts, losses, reorders, the open's
  latency and every stall (a gap between echoes longer than ``STALL_S``). With
  ``--peers-out`` it writes, once open, the relay addresses it sends to (its first
  forward and last backward relay), so a test can kill a relay on its path. To a hidden
  destination (``--to @file``) the circuit follows the newest descriptor in the file
  (``fetch_descriptor``) through its rebuilds and renewals. With ``--reopen`` a failed
  circuit is replaced by a new one (the target re-read); what the old one had not
  delivered counts as lost.
- ``opens``: opens ``--count`` short circuits one after another (one echo each) and
  reports failed opens and setup latencies.

Each prints ``ready`` once it serves (or has opened its circuit).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final

import trio

from hornet.circuit.circuit import Circuit, CircuitError, single_error
from hornet.client import open_circuit
from hornet.core.rendezvous import Descriptor
from hornet.directory.model import Directory, load_key_file, parse_address
from hornet.errors import HornetError
from hornet.node.destination import serve, serve_rendezvous
from hornet.testing.tap import TapNetwork
from hornet.transport.udp import UdpNetwork

#: A gap between two echoes longer than this is a stall.
STALL_S: Final = 1.0
_STAMP = struct.Struct(">Id")  # message number, send time


async def echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(message)


async def _dest(args: argparse.Namespace) -> None:
    keys = load_key_file(args.key)
    directory = Directory.load(args.directory)
    listen = parse_address(args.listen)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve(
            keys, directory, listen, echo, state=f"{args.key}.state.sqlite",
            payload_size=args.payload_size, task_status=task_status
        ))
        print("ready", flush=True)


async def _hidden(args: argparse.Namespace) -> None:
    directory = Directory.load(args.directory)
    async with trio.open_nursery() as nursery:
        out = Path(args.descriptor_out)
        await nursery.start(lambda task_status: serve_rendezvous(
            directory, echo, lifetime=args.lifetime, renew_every=args.renew_every,
            rp=bytes.fromhex(args.rp) if args.rp else None,
            on_descriptor=lambda descriptor: _publish(out, descriptor),
            task_status=task_status,
        ))
        print("ready", flush=True)


def _publish(path: Path, descriptor: Descriptor) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(descriptor.encode().hex())
    tmp.replace(path)


def _fetcher(directory: Directory, text: str) -> Callable[[], Awaitable[Descriptor]] | None:
    """For ``@file``: reads the newest descriptor the hidden destination wrote there."""
    if not text.startswith("@"):
        return None

    async def fetch() -> Descriptor:
        target = _target(directory, text)
        assert isinstance(target, Descriptor)
        return target

    return fetch


def _target(directory: Directory, text: str) -> bytes | Descriptor:
    if text.startswith("@"):
        return Descriptor.decode(directory.params, bytes.fromhex(Path(text[1:]).read_text()))
    return bytes.fromhex(text)


async def _client(args: argparse.Namespace) -> dict[str, Any]:
    directory = Directory.load(args.directory)
    report: dict[str, Any] = {"sent": 0, "received": 0, "in_order": 0, "reordered": 0,
                              "duplicates": 0, "stalls_s": [], "error": None, "rebuilds": 0,
                              "reopens": 0, "reopen_errors": [], "rebuild_s": []}
    seen: set[int] = set()
    newest = [-1]
    tap = TapNetwork(UdpNetwork())
    start = trio.current_time()
    deadline = start + args.messages * args.interval + args.drain
    last = [start]
    while True:
        try:
            async with open_circuit(
                directory, _target(directory, args.to), hops=args.hops, network=tap,
                fetch_descriptor=_fetcher(directory, args.to), payload_size=args.payload_size,
            ) as circuit:
                report.setdefault("open_s", trio.current_time() - start)
                if args.peers_out:
                    peers = sorted({f"{h}:{p}" for h, p in (s.destination for s in tap.log)})
                    Path(args.peers_out).write_text(json.dumps(peers))
                print("ready", flush=True)
                try:
                    await _stream(circuit, args, report, seen, newest, last, deadline)
                finally:
                    report["rebuilds"] += circuit.rebuilds
                    report["rebuild_s"] += [round(x, 3) for x in circuit.rebuild_seconds]
            break
        except (HornetError, BaseExceptionGroup) as exc:
            error = f"{type(exc).__name__}: {exc!r}"[:2000]
            done = report["sent"] >= args.messages or trio.current_time() >= deadline
            if not args.reopen or done:
                report["error"] = error
                break
            report["reopens"] += 1  # a hidden destination moved on: fetch its descriptor
            report["reopen_errors"].append(error[:200])
            await trio.sleep(1.0)
    report["lost"] = report["sent"] - report["received"]
    report["newest"] = newest[0]  # the highest message number echoed
    return report


async def _stream(
    circuit: Circuit, args: argparse.Namespace, report: dict[str, Any], seen: set[int],
    newest: list[int], last: list[float], deadline: float,
) -> None:
    """Send the remaining numbered messages and check their echoes (``_client``)."""
    padding = bytes(max(0, args.size - _STAMP.size))
    done = trio.Event()

    async def sender() -> None:
        while report["sent"] < args.messages:
            await circuit.send(_STAMP.pack(report["sent"], time.time()) + padding)
            report["sent"] += 1
            await trio.sleep(args.interval)

    async def receiver() -> None:
        async for message in circuit:
            now = trio.current_time()
            if now - last[0] > STALL_S:
                report["stalls_s"].append(round(now - last[0], 3))
            last[0] = now
            number, _ = _STAMP.unpack_from(message)
            if number in seen:
                report["duplicates"] += 1
                continue
            seen.add(number)
            report["received"] += 1
            if number > newest[0]:
                report["in_order"] += 1
                newest[0] = number
            else:
                report["reordered"] += 1
            if len(seen) == args.messages:
                done.set()
                return
        raise CircuitError("the destination closed the circuit")

    with single_error():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            nursery.start_soon(receiver)
            with trio.move_on_at(deadline):
                await done.wait()
            nursery.cancel_scope.cancel()


async def _opens(args: argparse.Namespace) -> dict[str, Any]:
    directory = Directory.load(args.directory)
    latencies: list[float] = []
    errors: list[str] = []
    for _ in range(args.count):
        start = trio.current_time()
        try:
            async with open_circuit(
                directory, _target(directory, args.to), hops=args.hops, linger=0.5,
                payload_size=args.payload_size,
            ) as circuit:
                latencies.append(trio.current_time() - start)
                await circuit.send(b"ping")
                with trio.fail_after(5):
                    await circuit.receive()
        except (HornetError, trio.TooSlowError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        await trio.sleep(args.interval)
    return {"opens": args.count, "failed_opens": len(errors), "errors": errors,
            "setup_s": [round(x, 4) for x in latencies]}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hornet.testing.roles")
    sub = parser.add_subparsers(dest="role", required=True)
    dest = sub.add_parser("dest")
    dest.add_argument("--key", required=True)
    dest.add_argument("--directory", required=True)
    dest.add_argument("--listen", required=True)
    dest.add_argument("--payload-size", type=int, default=None)
    hidden = sub.add_parser("hidden")
    hidden.add_argument("--directory", required=True)
    hidden.add_argument("--descriptor-out", required=True)
    hidden.add_argument("--lifetime", type=float, default=600.0)
    hidden.add_argument("--renew-every", type=float, default=None)
    hidden.add_argument("--rp", default=None, help="pin the rendezvous point (node id hex)")
    for name in ("client", "opens"):
        role = sub.add_parser(name)
        role.add_argument("--directory", required=True)
        role.add_argument("--to", required=True, help="node id (hex) or @descriptor-file")
        role.add_argument("--hops", type=int, default=3)
        role.add_argument("--interval", type=float, default=0.05)
        role.add_argument("--out", required=True)
        role.add_argument("--payload-size", type=int, default=None)
    client = sub.choices["client"]
    client.add_argument("--messages", type=int, default=100)
    client.add_argument("--size", type=int, default=200)
    client.add_argument("--drain", type=float, default=30.0)
    client.add_argument("--peers-out", default=None)
    client.add_argument("--reopen", action="store_true",
                        help="when the circuit fails, re-read --to and open a new one")
    sub.choices["opens"].add_argument("--count", type=int, default=10)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.role == "dest":
        trio.run(_dest, args)
    elif args.role == "hidden":
        trio.run(_hidden, args)
    else:
        report = trio.run(_client if args.role == "client" else _opens, args)
        Path(args.out).write_text(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

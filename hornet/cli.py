"""The ``hornet`` command line.

Each subcommand is a small function taking parsed arguments and returning an exit
code. User errors (bad files, bad arguments) print one clear line on stderr and exit
non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from hornet import __version__
from hornet.circuit import single_error
from hornet.directory import (
    Directory,
    NodeKeys,
    load_or_create_key,
    parse_address,
    write_key_file,
)
from hornet.errors import ConfigError, HornetError


def _cmd_keygen(args: argparse.Namespace) -> int:
    """Write a new node key file (JSON, mode 0600) and print its public key."""
    path = Path(args.out)
    if path.exists() and not args.force:
        print(f"hornet keygen: {path} exists (use --force to overwrite)", file=sys.stderr)
        return 2
    keys = NodeKeys.generate(secrets.SystemRandom())
    write_key_file(path, keys)
    print(keys.node_key.public_key.hex())
    return 0


def _load_config(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {path} is not JSON: line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a JSON object")
    return data


def _cmd_relay(args: argparse.Namespace) -> int:
    """Run one relay until interrupted (config: key_file, directory, listen)."""
    config = _load_config(args.config)
    for field in ("key_file", "directory", "listen"):
        if not isinstance(config.get(field), str):
            raise ConfigError(f"config {args.config}: '{field}' must be a string")
    base = Path(args.config).resolve().parent
    keys = load_or_create_key(base / config["key_file"])
    directory = Directory.load(base / config["directory"])
    listen = parse_address(config["listen"], where=f"config {args.config}: listen")
    if directory.get(keys.node_id) is None:
        print(
            f"hornet relay: note: node {keys.node_id.hex()} is not in the directory",
            file=sys.stderr,
        )
    loss = float(config.get("loss", 0.0))

    async def run() -> None:
        from hornet.node.relay import serve_relay

        with single_error():
            async with trio.open_nursery() as nursery:
                node = await nursery.start(
                    lambda task_status: serve_relay(
                        keys, directory, listen, loss=loss, task_status=task_status
                    )
                )
                print(
                    f"relay {node.node_id.hex()} listening on {listen[0]}:{node.address[1]}",
                    flush=True,
                )

    try:
        with single_error():
            trio.run(run)
    except KeyboardInterrupt:
        pass  # graceful shutdown: trio cancelled the relay, which closed its socket
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from hornet.demo import run_demo

    if args.mixer:
        from hornet.mixer.demo import run_mixer_demo

        return trio.run(run_mixer_demo, print)
    return trio.run(run_demo, args.relays, args.hops, args.rendezvous)


def _cmd_bench(args: argparse.Namespace) -> int:
    from hornet.bench_e2e import main as bench_main

    argv = ["--json"] if args.json else []
    argv += ["--packets", str(args.packets), "--circuits", str(args.circuits)]
    return bench_main([*argv, "--payload", str(args.payload)])


def _cmd_mixer(args: argparse.Namespace) -> int:
    from hornet.mixer.service import mixer_main

    return mixer_main(args.config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hornet",
        description="hornet: anonymous duplex circuits over HORNET onion routing (Sphinx/BOLT 4).",
    )
    parser.add_argument("--version", action="version", version=f"hornet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    keygen = sub.add_parser("keygen", help="create a node key file (mode 0600)")
    keygen.add_argument("--out", required=True, help="path of the key file to write")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing file")
    keygen.set_defaults(func=_cmd_keygen)

    relay = sub.add_parser("relay", help="run a long-lived relay (see --config)")
    relay.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help='JSON: {"key_file": path (created on first start, mode 0600), '
        '"directory": path, "listen": "host:port"}; paths relative to FILE',
    )
    relay.set_defaults(func=_cmd_relay)

    demo = sub.add_parser(
        "demo", help="start a local network, open a duplex circuit, exchange messages, exit"
    )
    demo.add_argument(
        "--relays",
        type=int,
        default=5,
        metavar="N",
        help="relays to start on 127.0.0.1 (default 5)",
    )
    demo.add_argument(
        "--hops", type=int, default=3, metavar="N", help="relays on each path (default 3)"
    )
    demo.add_argument(
        "--rendezvous",
        action="store_true",
        help="reach a hidden destination through a rendezvous point",
    )
    demo.add_argument(
        "--mixer",
        action="store_true",
        help="the onion-message mixer demo (client, LSP, mixer, watchtower)",
    )
    demo.set_defaults(func=_cmd_demo)

    bench = sub.add_parser("bench", help="benchmarks: 'e2e' (relays as OS processes)")
    bench.add_argument("which", choices=["e2e"], help="which benchmark")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument(
        "--packets", type=int, default=20000, help="data packets per run (default 20000)"
    )
    bench.add_argument(
        "--circuits",
        type=int,
        default=10000,
        help="setups before the second relay RSS reading (default 10000)",
    )
    bench.add_argument(
        "--payload", type=int, default=1024, help="HORNET payload size in bytes (default 1024)"
    )
    bench.set_defaults(func=_cmd_bench)

    mixer = sub.add_parser("mixer", help="run the onion-message mixer service")
    mixer.add_argument("--config", required=True, metavar="FILE", help="mixer config file")
    mixer.set_defaults(func=_cmd_mixer)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except (HornetError, OSError) as exc:
        print(f"hornet {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "main"]

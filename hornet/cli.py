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
from hornet.core import engine
from hornet.directory import (
    Directory,
    NodeKeys,
    load_key_file,
    load_or_create_key,
    parse_address,
    relay_info,
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
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {path} is not JSON: line {exc.lineno}") from None
    except (ValueError, RecursionError):  # not UTF-8, nested too deep, number too long
        raise ConfigError(f"config {path} is not usable JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a JSON object")
    return data


def _cmd_relay(args: argparse.Namespace) -> int:
    """Run one relay until interrupted (config: key_file, directory, listen; optional
    state, state_sync, loss and the admission limits)."""
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
    loss = config.get("loss", 0.0)
    if isinstance(loss, bool) or not isinstance(loss, int | float) or not 0 <= loss < 1:
        raise ConfigError(f"config {args.config}: 'loss' must be a number in [0, 1)")
    link = config.get("link", True)  # link encryption between neighbours (docs/spec-link.md)
    if not isinstance(link, bool):
        raise ConfigError(f"config {args.config}: 'link' must be true or false")
    # Admission limits (issue #5): per-neighbour setup/data rates, queues, puzzle policy.
    from hornet.node.admission import Limits

    limits = Limits.from_mapping(config, where=f"config {args.config}")
    # Replay state across restarts (SPEC.md §7.5): next to the key file by default.
    from hornet.node.state import RelayState

    state_path = config.get("state", config["key_file"] + ".state.sqlite")
    state_sync = config.get("state_sync", "normal")
    if not isinstance(state_path, str) or not isinstance(state_sync, str):
        raise ConfigError(f"config {args.config}: 'state' and 'state_sync' must be strings")
    state = RelayState(base / state_path, sync=state_sync)

    async def run() -> None:
        from hornet.node.relay import serve_relay

        with single_error():
            async with trio.open_nursery() as nursery:
                node = await nursery.start(
                    lambda task_status: serve_relay(
                        keys,
                        directory,
                        listen,
                        loss=loss,
                        limits=limits,
                        state=state,
                        link=link,
                        task_status=task_status,
                    )
                )
                print(
                    f"relay {node.node_id.hex()} listening on {listen[0]}:{node.address[1]}"
                    + ("" if link else " (link encryption off)"),
                    flush=True,
                )

    try:
        with single_error():
            trio.run(run)
    except KeyboardInterrupt:
        pass  # graceful shutdown: trio cancelled the relay, which closed its socket
    finally:
        state.close()
    return 0


def _cmd_entry(args: argparse.Namespace) -> int:
    """Print this relay's directory entry: identity key, address and setup keys for the
    current and following key epochs (SPEC.md §7.1). Publish it before each epoch."""
    config = _load_config(args.config)
    for field in ("key_file", "listen"):
        if not isinstance(config.get(field), str):
            raise ConfigError(f"config {args.config}: '{field}' must be a string")
    base = Path(args.config).resolve().parent
    keys = load_key_file(base / config["key_file"])
    address = parse_address(
        args.address or config["listen"], where=f"config {args.config}: listen"
    )
    params = Directory.load(base / config["directory"]).params if "directory" in config else None
    if not 1 <= args.epochs <= 1000:
        raise ConfigError("--epochs must be in [1, 1000]")
    print(json.dumps(relay_info(keys, address, params, epochs=args.epochs).to_json(), indent=1))
    return 0


def _cmd_mixer_entry(args: argparse.Namespace) -> int:
    """Print a mixer's directory listing: its node id, credential configuration and issuer
    keys for the coming credential epochs (docs/spec-mixer.md §3.5). Add it to the
    directory's "mixers" list before each epoch, as relays publish their setup keys."""
    import time

    from hornet.mixer.core import derive_issuer_key, mixer_listing
    from hornet.mixer.service import KEYS_FILE, load_config_file, load_or_create_keys

    try:
        config = load_config_file(args.config)
        if config.state_dir is None:
            raise ConfigError("state_dir is required")
        if not 1 <= args.epochs <= 1000:
            raise ConfigError("--epochs must be in [1, 1000]")
    except ConfigError as exc:
        print(f"hornet mixer-entry: {args.config}: {exc}", file=sys.stderr)
        return 2
    folder = Path(config.state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    node_key, master = load_or_create_keys(folder / KEYS_FILE)
    listing = mixer_listing(config.credential_params, node_key.public_key,
                            lambda epoch: derive_issuer_key(master, epoch), time.time(),
                            epochs=args.epochs)
    print(json.dumps(listing.to_json(), indent=1))
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
    argv += [] if args.link else ["--no-link"]
    argv += ["--rounds", str(args.rounds)]
    argv += [] if args.engine is None else ["--engine", args.engine]
    return bench_main([*argv, "--payload", str(args.payload)])


def _cmd_info(args: argparse.Namespace) -> int:
    print(f"hornet {__version__}")
    print(engine.describe())
    print("engines available: " + ", ".join(engine.available()))
    print("HORNET_ENGINE=python forces the Python reference engine")
    return 0


def _cmd_mixer(args: argparse.Namespace) -> int:
    from hornet.mixer.service import mixer_main

    return mixer_main(args.config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hornet",
        description="hornet: anonymous duplex circuits over HORNET onion routing (Sphinx/BOLT 4).",
    )
    parser.add_argument(
        "--version", action="version", version=f"hornet {__version__} ({engine.describe()})"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", help="print the version and the active data-plane engine")
    info.set_defaults(func=_cmd_info)

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
        '"directory": path, "listen": "host:port", optional "link": false to turn '
        'link encryption off, "state": path of the replay state (default '
        '<key_file>.state.sqlite), "state_sync": "normal" or "full", and the admission '
        "limits}; paths relative to FILE",
    )
    relay.set_defaults(func=_cmd_relay)

    entry = sub.add_parser(
        "relay-entry",
        help="print a relay's directory entry with its setup keys for the coming key epochs",
    )
    entry.add_argument("--config", required=True, metavar="FILE", help="the relay's config")
    entry.add_argument(
        "--epochs", type=int, default=2, metavar="N", help="key epochs from now (default 2)"
    )
    entry.add_argument(
        "--address", default=None, metavar="HOST:PORT", help="public address (default: listen)"
    )
    entry.set_defaults(func=_cmd_entry)

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
    bench.add_argument(
        "--no-link",
        dest="link",
        action="store_false",
        help="HORNET chain without link encryption only (default: with and without, "
        "reporting link_cost)",
    )
    bench.add_argument(
        "--rounds", type=int, default=3, help="rounds the chains take turns in (default 3)"
    )
    bench.add_argument(
        "--engine",
        choices=["native", "python"],
        default=None,
        help="data-plane engine of every process (default: the active one)",
    )
    bench.set_defaults(func=_cmd_bench)

    mixer = sub.add_parser("mixer", help="run the onion-message mixer service")
    mixer.add_argument("--config", required=True, metavar="FILE", help="mixer config file")
    mixer.set_defaults(func=_cmd_mixer)

    mixer_entry = sub.add_parser(
        "mixer-entry",
        help="print a mixer's directory listing with its issuer keys for the coming "
        "credential epochs",
    )
    mixer_entry.add_argument("--config", required=True, metavar="FILE",
                             help="the mixer's config file")
    mixer_entry.add_argument(
        "--epochs", type=int, default=2, metavar="N",
        help="credential epochs from now (default 2: current and next)")
    mixer_entry.set_defaults(func=_cmd_mixer_entry)
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

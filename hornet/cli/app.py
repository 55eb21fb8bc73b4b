"""The ``hornet`` command line.

Each subcommand is a small function taking parsed arguments and returning an exit
code. User errors (bad files, bad arguments) print one clear line on stderr and exit
non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hornet import __version__
from hornet.cli.commands import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    MAX_BENCH_PAYLOAD,
    MIN_BENCH_PAYLOAD,
    _address,
    cmd_authority,
    cmd_bench,
    cmd_connect,
    cmd_demo,
    cmd_entry,
    cmd_info,
    cmd_keygen,
    cmd_mixer,
    cmd_mixer_entry,
    cmd_relay,
    cmd_serve,
    cmd_status,
)
from hornet.cli.lifecycle import int_in
from hornet.cli.logs import FORMATS, LEVELS, configure_logging
from hornet.core import engine
from hornet.core.params import MAX_MAX_HOPS
from hornet.errors import ConfigError, HornetError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hornet",
        description="hornet: anonymous duplex circuits over HORNET onion routing (Sphinx/BOLT 4).",
    )
    parser.add_argument(
        "--version", action="version", version=f"hornet {__version__} ({engine.describe()})"
    )
    parser.add_argument(
        "--log-level", choices=LEVELS, default="info", help="log threshold (default info)"
    )
    parser.add_argument(
        "--log-format", choices=FORMATS, default="text", help="log lines on stderr (default text)"
    )
    # The same options after the command name (``hornet relay --log-level debug``).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", choices=LEVELS, default=argparse.SUPPRESS)
    common.add_argument("--log-format", choices=FORMATS, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser(
        "info", parents=[common], help="print the version and the active data-plane engine"
    )
    info.set_defaults(func=cmd_info)

    keygen = sub.add_parser("keygen", parents=[common], help="create a node key file (mode 0600)")
    keygen.add_argument("--out", required=True, help="path of the key file to write")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing file")
    keygen.set_defaults(func=cmd_keygen)

    relay = sub.add_parser("relay", parents=[common], help="run a long-lived relay (see --config)")
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
    relay.add_argument(
        "--metrics",
        type=_address,
        default=None,
        metavar="HOST:PORT",
        help='serve Prometheus metrics there (default: the config\'s "metrics", or none)',
    )
    relay.add_argument(
        "--stats-interval",
        type=int_in(0, 86_400),
        default=60,
        metavar="S",
        help="log a counters line every S seconds (default 60, 0: never)",
    )
    relay.add_argument(
        "--reload-interval",
        type=int_in(1, 86_400),
        default=10,
        metavar="S",
        help="check the directory file for changes every S seconds (default 10; SIGHUP: now)",
    )
    relay.set_defaults(func=cmd_relay)

    authority = sub.add_parser(
        "authority", parents=[common], help="directory authorities: 'init' a key, 'serve'"
    )
    actions = authority.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser("init", parents=[common], help="create an authority key (0600)")
    init.add_argument("--out", required=True, metavar="FILE", help="the key file to create")
    serve = actions.add_parser("serve", parents=[common], help="run an authority over HTTP")
    serve.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help='JSON: {"key_file", "listen": "host:port", "state_dir", optional "params", '
        '"validity_s" (3600), "publish_interval_s" (600)}; paths relative to FILE',
    )
    authority.set_defaults(func=cmd_authority)

    serve = sub.add_parser(
        "serve", parents=[common], help="a destination forwarding circuits to a TCP service"
    )
    serve.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="a relay's config (key_file, directory or authorities, listen)",
    )
    serve.add_argument(
        "--forward", required=True, type=_address, metavar="HOST:PORT", help="the TCP service"
    )
    serve.add_argument(
        "--hidden", action="store_true", help="reachable only through a rendezvous descriptor"
    )
    serve.add_argument(
        "--descriptor",
        metavar="FILE",
        help="with --hidden: where the descriptor is written (with authorities in the"
        " config, it is also published to them)",
    )
    serve.add_argument(
        "--lifetime",
        type=int_in(30, 3600),
        default=600,
        metavar="S",
        help="with --hidden: each descriptor's lifetime (default 600; renewed at 80%%)",
    )
    serve.add_argument(
        "--reload-interval",
        type=int_in(1, 86_400),
        default=10,
        metavar="S",
        help="directory check / refresh interval (default 10)",
    )
    serve.set_defaults(func=cmd_serve)

    connect = sub.add_parser(
        "connect", parents=[common], help="forward a local TCP port through circuits"
    )
    connect.add_argument(
        "destination",
        metavar="DESTINATION",
        help="a node id (16 hex digits), a hidden service's name (64 hex digits, with"
        " --authorities) or a descriptor file",
    )
    connect.add_argument(
        "--listen", required=True, type=_address, metavar="HOST:PORT", help="local TCP address"
    )
    connect.add_argument("--directory", metavar="FILE", help="a directory file")
    connect.add_argument(
        "--authorities",
        metavar="FILE",
        help='JSON {"urls", "keys", "threshold", "cache"} (as a relay\'s "authorities")',
    )
    connect.add_argument(
        "--hops", type=int_in(1, MAX_MAX_HOPS), default=3, metavar="N", help="relays each way"
    )
    connect.set_defaults(func=cmd_connect)

    status = sub.add_parser(
        "status", parents=[common], help="print a running node's counters (from its metrics)"
    )
    status.add_argument("address", type=_address, metavar="HOST:PORT", help="its metrics address")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--timeout", type=int_in(1, 600), default=5, metavar="S", help="seconds (default 5)"
    )
    status.set_defaults(func=cmd_status)

    entry = sub.add_parser(
        "relay-entry",
        parents=[common],
        help="print a relay's directory entry with its setup keys for the coming key epochs",
    )
    entry.add_argument("--config", required=True, metavar="FILE", help="the relay's config")
    entry.add_argument(
        "--epochs",
        type=int_in(1, 1000),
        default=2,
        metavar="N",
        help="key epochs from now (default 2)",
    )
    entry.add_argument(
        "--address", default=None, metavar="HOST:PORT", help="public address (default: listen)"
    )
    entry.set_defaults(func=cmd_entry)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="start a local network, open a duplex circuit, exchange messages, exit",
    )
    demo.add_argument(
        "--relays",
        type=int_in(1, 64),
        default=5,
        metavar="N",
        help="relays to start on 127.0.0.1 (default 5)",
    )
    demo.add_argument(
        "--hops",
        type=int_in(1, MAX_MAX_HOPS),
        default=3,
        metavar="N",
        help="relays on each path (default 3)",
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
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser(
        "bench", parents=[common], help="benchmarks: 'e2e' (relays as OS processes)"
    )
    bench.add_argument("which", choices=["e2e"], help="which benchmark")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument(
        "--packets",
        type=int_in(1, 10**8),
        default=20000,
        help="data packets per run (default 20000)",
    )
    bench.add_argument(
        "--circuits",
        type=int_in(1, 10**7),
        default=10000,
        help="setups before the second relay RSS reading (default 10000)",
    )
    bench.add_argument(
        "--payload",
        type=int_in(MIN_BENCH_PAYLOAD, MAX_BENCH_PAYLOAD),
        default=1024,
        help="HORNET payload size in bytes (default 1024)",
    )
    bench.add_argument(
        "--no-link",
        dest="link",
        action="store_false",
        help="HORNET chain without link encryption only (default: with and without, "
        "reporting link_cost)",
    )
    bench.add_argument(
        "--rounds",
        type=int_in(1, 1000),
        default=3,
        help="rounds the chains take turns in (default 3)",
    )
    bench.add_argument(
        "--engine",
        choices=["native", "python"],
        default=None,
        help="data-plane engine of every process (default: the active one)",
    )
    bench.set_defaults(func=cmd_bench)

    mixer = sub.add_parser("mixer", parents=[common], help="run the onion-message mixer service")
    mixer.add_argument("--config", required=True, metavar="FILE", help="mixer config file")
    mixer.set_defaults(func=cmd_mixer)

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
    mixer_entry.set_defaults(func=cmd_mixer_entry)

    from hornet.testing import testnet_cli

    testnet = sub.add_parser(
        "testnet", parents=[common], help="a test network in network namespaces (root)"
    )
    testnet_cli.add_arguments(testnet)
    testnet.set_defaults(func=testnet_cli.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    configure_logging(args.log_level, args.log_format)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"hornet {args.command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (HornetError, OSError) as exc:
        print(f"hornet {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK  # interrupted before the command's own handling began


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "main"]

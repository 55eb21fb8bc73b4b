"""The ``hornet`` command line.

Each subcommand is a small function taking parsed arguments and returning an exit
code. User errors (bad files, bad arguments) print one clear line on stderr and exit
non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import trio

from hornet import __version__
from hornet._lifecycle import int_in, interruptible, run_service
from hornet._logging import FORMATS, LEVELS, configure_logging
from hornet.core import engine
from hornet.core.circuit import E2E_OVERHEAD
from hornet.core.params import MAX_MAX_HOPS, Params
from hornet.core.stream import HEADER_LEN
from hornet.directory import (
    Directory,
    NodeKeys,
    load_or_create_key,
    parse_address,
    relay_info,
    write_key_file,
)
from hornet.errors import ConfigError, HornetError
from hornet.node.config import RelayConfig

# The e2e benchmark's payload: the first frame (the backward AHDR in a stream frame, in
# an end-to-end frame) must fit, and a data packet must fit in one UDP datagram.
MIN_BENCH_PAYLOAD: Final = Params().ahdr_len + HEADER_LEN + E2E_OVERHEAD
MAX_BENCH_PAYLOAD: Final = 60_000

EXIT_OK: Final = 0  # success, or stopped by SIGINT/SIGTERM
EXIT_FAILURE: Final = 1  # a runtime failure (a peer, the network, the disk)
EXIT_CONFIG: Final = 2  # a bad config, key or directory file, or bad arguments
REPUBLISH_S: Final = 60  # a hidden service re-sends its descriptor to the authorities


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


def _cmd_relay(args: argparse.Namespace) -> int:
    """Run one relay until SIGINT or SIGTERM (config: ``hornet.node.config``)."""
    config = RelayConfig.load(args.config)
    assert config.listen is not None
    keys = load_or_create_key(config.key_file)
    listen = config.listen
    directory_path = config.directory
    if directory_path is not None:
        directory = Directory.load(directory_path)
        directory_since = directory_path.stat().st_mtime
        config.check_path_mtu(directory.params)
        if directory.get(keys.node_id) is None:
            print(
                f"hornet relay: note: node {keys.node_id.hex()} is not in the directory",
                file=sys.stderr,
            )
    from hornet.authority.client import DirectoryClient, publish_forever
    from hornet.node.state import RelayState

    authorities = config.authorities
    client = None
    if authorities is not None:
        client = DirectoryClient(
            authorities.urls,
            authorities.keys,
            authorities.threshold,
            cache=authorities.cache,
            refresh_s=args.reload_interval,
        )
    state = RelayState(config.state, sync=config.state_sync)
    metrics = config.metrics if args.metrics is None else args.metrics

    async def run() -> None:
        from hornet.node.metrics import Reporter
        from hornet.node.relay import serve_relay
        from hornet.node.reload import watch_directory
        from hornet.transport import UdpNetwork

        nonlocal directory, directory_since
        if client is not None:
            directory = await client.fetch()
            directory_since = client.fetched_at
            config.check_path_mtu(directory.params)
        async with trio.open_nursery() as nursery:
            node = await nursery.start(
                lambda task_status: serve_relay(
                    keys,
                    directory,
                    listen,
                    loss=config.loss,
                    limits=config.limits,
                    state=state,
                    link=config.link,
                    native_loop=None if config.native_loop else False,
                    network=UdpNetwork(path_mtu=config.path_mtu),
                    task_status=task_status,
                )
            )
            node.directory_since = directory_since
            reporter = Reporter(node, log_every=args.stats_interval)
            await nursery.start(reporter.run, metrics)
            if directory_path is not None:
                await nursery.start(
                    lambda task_status: watch_directory(
                        [node],
                        directory_path,
                        interval=args.reload_interval,
                        task_status=task_status,
                    )
                )
            if client is not None and authorities is not None:
                public = config.public_address or (listen[0], node.address[1])
                nursery.start_soon(
                    publish_forever, authorities.urls, keys, public, directory.params
                )
                nursery.start_soon(
                    partial(client.run, node.replace_directory, on_refresh=node.directory_fetched)
                )
            print(
                f"relay {node.node_id.hex()} listening on {listen[0]}:{node.address[1]}"
                + ("" if config.link else " (link encryption off)"),
                flush=True,
            )
            if reporter.address is not None:
                host, port = reporter.address
                print(f"relay metrics on http://{host}:{port}/metrics", flush=True)

    try:
        run_service(run, name="relay")
    finally:
        state.close()
    return 0


def _cmd_entry(args: argparse.Namespace) -> int:
    """Print this relay's directory entry: identity key, address and setup keys for the
    current and following key epochs (SPEC.md §7.1). The key is created on first use."""
    config = RelayConfig.load(args.config, need_directory=False)
    if args.address is not None:
        address = parse_address(args.address, where="--address")
    elif config.listen is not None:
        address = config.listen
    else:
        raise ConfigError(f"config {args.config}: 'listen' is required (or give --address)")
    keys = load_or_create_key(config.key_file)
    params = Directory.load(config.directory).params if config.directory is not None else None
    print(json.dumps(relay_info(keys, address, params, epochs=args.epochs).to_json(), indent=1))
    return 0


def _cmd_mixer_entry(args: argparse.Namespace) -> int:
    """Print a mixer's directory listing: its node id, credential configuration and issuer
    keys for the coming credential epochs (docs/spec-mixer.md §3.5). Add it to the
    directory's "mixers" list before each epoch, as relays publish their setup keys."""
    import time

    from hornet.mixer.engine import mixer_listing
    from hornet.mixer.keys import derive_issuer_key
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


def _cmd_authority(args: argparse.Namespace) -> int:
    """``authority init``: create an authority key; ``authority serve``: run one."""
    from hornet.authority import AuthorityKey

    if args.action == "init":
        path = Path(args.out)
        if path.exists():
            raise ConfigError(f"{path} exists: an authority key is never overwritten")
        key = AuthorityKey.generate(secrets.SystemRandom())
        key.write(path)
        print(key.public.hex())
        return 0
    from hornet.authority.service import AuthorityConfig, serve_authority

    config = AuthorityConfig.load(args.config)
    authority = config.authority()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(
                lambda task_status: serve_authority(
                    authority,
                    config.listen,
                    state_dir=config.state_dir,
                    publish_interval_s=config.publish_interval_s,
                    task_status=task_status,
                )
            )
            print(
                f"authority {authority.key.public.hex()} listening on http://{host}:{port}",
                flush=True,
            )

    run_service(run, name="authority")
    return 0


async def _directory_source(config: RelayConfig, refresh_s: float) -> tuple[Directory, Any]:
    """The directory a command starts from, and the DirectoryClient (or None) that keeps
    it fresh: from the authorities when configured, else from the file."""
    from hornet.authority.client import DirectoryClient

    if config.authorities is None:
        assert config.directory is not None
        return Directory.load(config.directory), None
    auth = config.authorities
    client = DirectoryClient(
        auth.urls, auth.keys, auth.threshold, cache=auth.cache, refresh_s=refresh_s
    )
    return await client.fetch(), client


def _cmd_serve(args: argparse.Namespace) -> int:
    """A destination that forwards each circuit to a local TCP service."""
    from hornet.forward import forward_handler

    config = RelayConfig.load(args.config)
    assert config.listen is not None
    listen = config.listen
    keys = load_or_create_key(config.key_file)
    handler = forward_handler(args.forward)

    async def run() -> None:
        from hornet.authority.client import publish_forever
        from hornet.node.metrics import Reporter
        from hornet.node.reload import watch_directory
        from hornet.node.service import serve, serve_rendezvous
        from hornet.node.state import RelayState

        directory, client = await _directory_source(config, args.reload_interval)
        # The destination's replay state (SPEC.md §7.5), kept with its key file.
        state = RelayState(config.state, sync=config.state_sync)
        async with contextlib.AsyncExitStack() as stack, trio.open_nursery() as nursery:
            stack.callback(state.close)
            if args.hidden:
                urls = config.authorities.urls if config.authorities is not None else None
                await _serve_hidden(
                    nursery, directory, handler, args, serve_rendezvous, keys.node_key, urls
                )
                return
            info = await nursery.start(
                lambda task_status: serve(
                    keys,
                    directory,
                    listen,
                    handler,
                    state=state,
                    link=config.link,
                    task_status=task_status,
                )
            )
            node = info.node
            file_path = config.directory
            if file_path is not None:
                node.directory_since = file_path.stat().st_mtime
                nursery.start_soon(
                    lambda: watch_directory([node], file_path, interval=args.reload_interval)
                )
            if client is not None and config.authorities is not None:
                public = config.public_address or (listen[0], node.address[1])
                nursery.start_soon(
                    publish_forever, config.authorities.urls, keys, public, directory.params
                )
                nursery.start_soon(
                    partial(client.run, node.replace_directory, on_refresh=node.directory_fetched)
                )
                node.directory_since = client.fetched_at
            reporter = Reporter(node, log_every=60)
            await nursery.start(reporter.run, config.metrics)
            print(
                f"destination {node.node_id.hex()} listening on {listen[0]}:{node.address[1]},"
                f" forwarding to {args.forward[0]}:{args.forward[1]}",
                flush=True,
            )
            if reporter.address is not None:
                host, port = reporter.address
                print(f"destination metrics on http://{host}:{port}/metrics", flush=True)

    run_service(run, name="serve")
    return 0


async def _serve_hidden(
    nursery: trio.Nursery,
    directory: Directory,
    handler: Any,
    args: argparse.Namespace,
    serve_rendezvous: Any,
    service_key: Any,
    authorities: Sequence[str] | None,
) -> None:
    """Run rendezvous destinations one after another: each is published (to the
    authorities, signed by the node key, whose x-only public key names the service;
    and/or to the descriptor file), replaced at 80% of its lifetime, and serves until
    it expires."""
    from hornet.authority.client import publish_descriptor
    from hornet.authority.descriptor import service_name

    if args.descriptor is None and authorities is None:
        raise ConfigError(
            "--hidden needs --descriptor FILE or authorities in the config (where the "
            "descriptor is published)"
        )
    lifetime = float(args.lifetime)
    name = service_name(service_key).hex()

    async def one(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.move_on_after(lifetime):
            await serve_rendezvous(
                directory, handler, hops=2, lifetime=lifetime, task_status=task_status
            )

    from hornet.circuit import CircuitError

    while True:
        for attempt in range(3):  # a relay on the rendezvous path may be down: another path
            try:
                descriptor = await nursery.start(one)
                break
            except CircuitError:
                if attempt == 2:
                    raise
        if authorities is not None:
            accepted = await publish_descriptor(authorities, service_key, descriptor)
            print(
                f"hidden destination: service {name}: descriptor published to {accepted}"
                f" of {len(authorities)} authorities",
                flush=True,
            )
        if args.descriptor is not None:
            path = Path(args.descriptor)
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(descriptor.encode().hex() + "\n")
            temporary.replace(path)
            print(f"hidden destination: descriptor written to {path}", flush=True)
        renew_at = trio.current_time() + lifetime * 0.8
        if authorities is None:
            await trio.sleep_until(renew_at)
            continue
        # Published again every REPUBLISH_S (a fifth of the lifetime if shorter) until
        # renewal, so an authority that was down or lost its state holds it again soon.
        every = min(REPUBLISH_S, lifetime / 5)
        while trio.current_time() + every < renew_at:
            await trio.sleep(every)
            await publish_descriptor(authorities, service_key, descriptor)
        await trio.sleep_until(renew_at)


def _cmd_connect(args: argparse.Namespace) -> int:
    """Forward a local TCP port through circuits to a destination."""
    from hornet.core.rendezvous import Descriptor
    from hornet.forward import serve_connect
    from hornet.node.config import AuthoritiesConfig, load_json_config

    if (args.directory is None) == (args.authorities is None):
        raise ConfigError("give one of --directory FILE and --authorities FILE")
    source: Any
    auth = None
    if args.directory is not None:
        source = Directory.load(args.directory)
    else:
        from hornet.authority.client import DirectoryClient

        base = Path(args.authorities).resolve().parent
        auth = AuthoritiesConfig.parse(
            load_json_config(args.authorities), base, f"config {args.authorities}"
        )
        source = DirectoryClient(auth.urls, auth.keys, auth.threshold, cache=auth.cache)
    text = args.destination
    node_id: bytes | None = None
    service: bytes | None = None
    descriptor_bytes = b""
    hexadecimal = all(c in "0123456789abcdefABCDEF" for c in text)
    if len(text) == 16 and hexadecimal:
        node_id = bytes.fromhex(text)
    elif len(text) == 64 and hexadecimal:
        if args.authorities is None:
            raise ConfigError("a hidden service named by its key is found with --authorities")
        service = bytes.fromhex(text)
    else:
        try:
            descriptor_bytes = bytes.fromhex(Path(text).read_text(encoding="utf-8").strip())
        except (OSError, ValueError, UnicodeDecodeError):
            raise ConfigError(
                f"destination {text!r}: neither a node id (16 hex digits), a service name"
                " (64 hex digits) nor a descriptor file"
            ) from None

    async def run() -> None:
        directory = source if isinstance(source, Directory) else await source.fetch()
        destination: Any
        if node_id is not None:
            destination = node_id
        elif service is not None:
            from hornet.authority.client import DescriptorSource

            assert auth is not None
            finder = DescriptorSource(auth.urls, service, directory.params)
            await finder.fetch()  # fails now, with its reason, if no authority has it
            destination = finder.get
        else:
            try:
                destination = Descriptor.decode(directory.params, descriptor_bytes)
            except HornetError:
                raise ConfigError(f"destination {text}: not a usable descriptor") from None
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(
                lambda task_status: serve_connect(
                    source, destination, args.listen, hops=args.hops, task_status=task_status
                )
            )
            print(f"forwarding {host}:{port} to {args.destination}", flush=True)

    run_service(run, name="connect")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    """Read a running node's metrics and print them for a person (or as JSON)."""
    from hornet._status import fetch_status, render_status

    status = fetch_status(args.address, timeout=args.timeout)
    print(json.dumps(status, indent=1) if args.json else render_status(status))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from hornet.demo import run_demo

    with interruptible():
        if args.mixer:
            from hornet.mixer.demo import run_mixer_demo

            return trio.run(run_mixer_demo, print)
        return trio.run(run_demo, args.relays, args.hops, args.rendezvous)
    return 0  # interrupted


def _cmd_bench(args: argparse.Namespace) -> int:
    from hornet.bench_e2e import main as bench_main

    argv = ["--json"] if args.json else []
    argv += ["--packets", str(args.packets), "--circuits", str(args.circuits)]
    argv += [] if args.link else ["--no-link"]
    argv += ["--rounds", str(args.rounds)]
    argv += [] if args.engine is None else ["--engine", args.engine]
    with interruptible():
        return bench_main([*argv, "--payload", str(args.payload)])
    return 0  # interrupted


def _cmd_info(args: argparse.Namespace) -> int:
    print(f"hornet {__version__}")
    print(engine.describe())
    print("engines available: " + ", ".join(engine.available()))
    print("HORNET_ENGINE=python forces the Python reference engine")
    return 0


def _cmd_mixer(args: argparse.Namespace) -> int:
    from hornet.mixer.service import mixer_main

    return mixer_main(args.config)


def _address(text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    info.set_defaults(func=_cmd_info)

    keygen = sub.add_parser("keygen", parents=[common], help="create a node key file (mode 0600)")
    keygen.add_argument("--out", required=True, help="path of the key file to write")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing file")
    keygen.set_defaults(func=_cmd_keygen)

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
    relay.set_defaults(func=_cmd_relay)

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
    authority.set_defaults(func=_cmd_authority)

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
    serve.set_defaults(func=_cmd_serve)

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
    connect.set_defaults(func=_cmd_connect)

    status = sub.add_parser(
        "status", parents=[common], help="print a running node's counters (from its metrics)"
    )
    status.add_argument("address", type=_address, metavar="HOST:PORT", help="its metrics address")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--timeout", type=int_in(1, 600), default=5, metavar="S", help="seconds (default 5)"
    )
    status.set_defaults(func=_cmd_status)

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
    entry.set_defaults(func=_cmd_entry)

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
    demo.set_defaults(func=_cmd_demo)

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
    bench.set_defaults(func=_cmd_bench)

    mixer = sub.add_parser("mixer", parents=[common], help="run the onion-message mixer service")
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

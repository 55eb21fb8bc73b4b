"""The bodies of the ``hornet`` subcommands (internal: ``hornet.cli.app`` parses the
command line and calls them). Each returns the process exit code."""


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
from hornet.cli.lifecycle import interruptible, run_service
from hornet.core import engine
from hornet.core.e2e import E2E_OVERHEAD
from hornet.core.params import Params
from hornet.core.stream import HEADER_LEN
from hornet.directory.model import (
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


def cmd_keygen(args: argparse.Namespace) -> int:
    """Write a new node key file (JSON, mode 0600) and print its public key."""
    path = Path(args.out)
    if path.exists() and not args.force:
        print(f"hornet keygen: {path} exists (use --force to overwrite)", file=sys.stderr)
        return 2
    keys = NodeKeys.generate(secrets.SystemRandom())
    write_key_file(path, keys)
    print(keys.node_key.public_key.hex())
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
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
    from hornet.directory.fetch import DirectoryClient, publish_forever
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
        from hornet.transport.udp import UdpNetwork

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


def cmd_entry(args: argparse.Namespace) -> int:
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


def cmd_mixer_entry(args: argparse.Namespace) -> int:
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


def cmd_authority(args: argparse.Namespace) -> int:
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
    from hornet.directory.fetch import DirectoryClient

    if config.authorities is None:
        assert config.directory is not None
        return Directory.load(config.directory), None
    auth = config.authorities
    client = DirectoryClient(
        auth.urls, auth.keys, auth.threshold, cache=auth.cache, refresh_s=refresh_s
    )
    return await client.fetch(), client


def cmd_serve(args: argparse.Namespace) -> int:
    """A destination that forwards each circuit to a local TCP service."""
    from hornet.cli.forward import forward_handler

    config = RelayConfig.load(args.config)
    assert config.listen is not None
    listen = config.listen
    keys = load_or_create_key(config.key_file)
    handler = forward_handler(args.forward)

    async def run() -> None:
        from hornet.directory.fetch import publish_forever
        from hornet.node.destination import serve, serve_rendezvous
        from hornet.node.metrics import Reporter
        from hornet.node.reload import watch_directory
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
    from hornet.directory.descriptor import service_name
    from hornet.directory.fetch import publish_descriptor

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

    from hornet.circuit.circuit import CircuitError

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


def cmd_connect(args: argparse.Namespace) -> int:
    """Forward a local TCP port through circuits to a destination."""
    from hornet.cli.forward import serve_connect
    from hornet.core.rendezvous import Descriptor
    from hornet.node.config import AuthoritiesConfig, load_json_config

    if (args.directory is None) == (args.authorities is None):
        raise ConfigError("give one of --directory FILE and --authorities FILE")
    source: Any
    auth = None
    if args.directory is not None:
        source = Directory.load(args.directory)
    else:
        from hornet.directory.fetch import DirectoryClient

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
            from hornet.directory.fetch import DescriptorSource

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


def cmd_status(args: argparse.Namespace) -> int:
    """Read a running node's metrics and print them for a person (or as JSON)."""
    from hornet.cli.status import fetch_status, render_status

    status = fetch_status(args.address, timeout=args.timeout)
    print(json.dumps(status, indent=1) if args.json else render_status(status))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hornet.cli.demo import run_demo

    with interruptible():
        if args.mixer:
            from hornet.cli.mixer_demo import run_mixer_demo

            return trio.run(run_mixer_demo, print)
        return trio.run(run_demo, args.relays, args.hops, args.rendezvous)
    return 0  # interrupted


def cmd_bench(args: argparse.Namespace) -> int:
    from hornet.cli.bench import main as bench_main

    argv = ["--json"] if args.json else []
    argv += ["--packets", str(args.packets), "--circuits", str(args.circuits)]
    argv += [] if args.link else ["--no-link"]
    argv += ["--rounds", str(args.rounds)]
    argv += [] if args.engine is None else ["--engine", args.engine]
    with interruptible():
        return bench_main([*argv, "--payload", str(args.payload)])
    return 0  # interrupted


def cmd_info(args: argparse.Namespace) -> int:
    print(f"hornet {__version__}")
    print(engine.describe())
    print("engines available: " + ", ".join(engine.available()))
    print("HORNET_ENGINE=python forces the Python reference engine")
    return 0


def cmd_mixer(args: argparse.Namespace) -> int:
    from hornet.mixer.service import mixer_main

    return mixer_main(args.config)


def _address(text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None

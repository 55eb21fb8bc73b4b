"""The mixer as a trio service, and ``mixer_main`` (``hornet mixer --config FILE``).

Strategy (trio's ``serve_listeners`` shape, trio-websocket's wrapping of a sans-IO
core): a reader task moves messages from the transport into a bounded channel
(full: drop and count); the processor task takes every message already waiting (up
to ``max_batch``), feeds each to ``MixerCore.handle``, then calls ``flush`` once (one
group commit for the whole burst) and ``poll``, and performs the resulting actions.
When idle it sleeps until ``core.next_wakeup()``: an SCID deadline or the moment a
queued message may leave, so SCIDs expire on time and queues drain at the peers'
rates. ``task_status.started()`` is called once the reader runs.

Storage: the machine's storage actions (a group commit, a paid request, a credential
redemption, SCID expiry) run in worker threads (``trio.to_thread.run_sync``), at most
``max_commits`` at once, so an fsync never stalls the event loop; their results come
back to the processor, which feeds them to ``MixerCore.storage_done``. With every
slot busy the processor waits, the inbound channel fills and the reader drops.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sqlite3
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio

from hornet.core import crypto
from hornet.core.params import Params
from hornet.credentials.payments import VoucherPayments
from hornet.credentials.store import SqliteSpentStore
from hornet.credentials.transcript import Rng
from hornet.directory.document import sign_mixer_listing
from hornet.directory.fetch import DirectoryClient, publish_forever
from hornet.directory.model import Directory, check_key_permissions
from hornet.errors import ConfigError, HornetError, LocalProtocolError
from hornet.mixer.actions import Action, CircuitRequest, StorageAction, StorageResult, Transmit
from hornet.mixer.config import MixerConfig, parse_config
from hornet.mixer.core import MixerStatistics
from hornet.mixer.engine import MixerEngine
from hornet.mixer.entry import EntryRelay, circuit_entry, relay_keys, serve_entry_relay
from hornet.mixer.metrics import MixerMetrics
from hornet.mixer.network import PeerNetwork
from hornet.mixer.state import ScidStore, SpendLedger
from hornet.mixer.transport import Transport
from hornet.node.config import AuthoritiesConfig
from hornet.node.state import RelayState

KEYS_FILE = "mixer-keys.json"
SPENT_DB = "credentials.sqlite"
SCID_DB = "mixer.sqlite"
RELAY_STATE_DB = "relay.state.sqlite"  # the co-hosted relay's replay state (SPEC.md §7.5)


@attrs.frozen
class MixerServiceStatistics(Mapping[str, int]):
    """A snapshot of a running mixer: the machine's counters and gauges, the service's
    own counters, and the storage work in flight. Reads as a mapping of counters."""

    mixer: MixerStatistics
    service: Mapping[str, int]
    commits_in_flight: int
    inbound_queued: int

    def _merged(self) -> dict[str, int]:
        return {**self.mixer.counters, **self.service}

    def __getitem__(self, name: str) -> int:
        return self._merged()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._merged())

    def __len__(self) -> int:
        return len(self._merged())


class MixerService:
    """Runs a ``MixerEngine`` over a ``Transport``; its storage work runs in worker
    threads, at most ``max_commits`` at once.

    ``storage_threads=False`` runs each storage action on the trio thread instead (in
    its own task, still through the same actions and results): for tests under trio's
    autojump clock, which would count a wait for a worker thread as idle time."""

    def __init__(self, mixer: MixerEngine, transport: Transport, *,
                 clock: Callable[[], float] = time.time, rng: Rng | None = None,
                 inbound_queue: int = 256, max_commits: int = 4,
                 on_circuit: Callable[[CircuitRequest], None] | None = None,
                 metrics: MixerMetrics | None = None, storage_threads: bool = True) -> None:
        if transport.node_id != mixer.node_key.public_key:
            raise LocalProtocolError("the transport must carry the mixer's node id")
        if max_commits < 1:
            raise LocalProtocolError("max_commits must be at least 1")
        self.mixer = mixer
        self.core = mixer.machine
        self.transport = transport
        self.clock = clock
        self.rng: Rng = rng if rng is not None else secrets.SystemRandom()
        self.inbound_queue = inbound_queue
        self.on_circuit = on_circuit
        self.metrics = metrics
        self.storage_threads = storage_threads
        self.stats: Counter[str] = Counter()
        self._commit_slots = trio.CapacityLimiter(max_commits)
        self._results: list[StorageResult] = []
        self._deferred: list[Action] = []
        self._wake: trio.MemorySendChannel[tuple[bytes, bytes]] | None = None
        self._inbound: trio.MemoryReceiveChannel[tuple[bytes, bytes]] | None = None
        if isinstance(transport, PeerNetwork):
            transport.on_change = self._connectivity

    def _connectivity(self, node_id: bytes, online: bool) -> None:
        """The transport's connection to ``node_id`` came up or went down (mailboxes)."""
        if self.metrics is not None:
            self.metrics.peer_connection(online)
        if not online:
            self.core.peer_offline(node_id)
            return
        self._deferred += self.core.peer_online(node_id, self.clock())
        self._poke()

    def _poke(self) -> None:
        """Wake the processor: an empty sender. If the channel is full, the processor
        is busy and will see the new work anyway."""
        if (self._deferred or self._results) and self._wake is not None:
            with contextlib.suppress(trio.WouldBlock):
                self._wake.send_nowait((b"", b""))

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled."""
        send, receive = trio.open_memory_channel[tuple[bytes, bytes]](self.inbound_queue)
        self._wake = send
        self._inbound = receive
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._reader, send)
            task_status.started()
            await self._processor(receive, nursery)

    async def _reader(self, send: trio.MemorySendChannel[tuple[bytes, bytes]]) -> None:
        while True:
            item = await self.transport.receive()
            try:
                send.send_nowait(item)
            except trio.WouldBlock:
                self.stats["dropped_inbound_full"] += 1

    def _trio_deadline(self, wake: float | None) -> float:
        if wake is None:
            return float("inf")
        return trio.current_time() + max(0.0, wake - self.clock())

    async def _processor(self, receive: trio.MemoryReceiveChannel[tuple[bytes, bytes]],
                         nursery: trio.Nursery) -> None:
        core = self.core
        max_batch = core.config.max_batch
        while True:
            actions: list[Action] = []
            with trio.move_on_at(self._trio_deadline(core.next_wakeup(self.clock()))):
                peer, message = await receive.receive()
                if peer:
                    actions += core.handle(peer, message, self.clock(), self.rng)
                for _ in range(max_batch - 1):
                    try:
                        peer, message = receive.receive_nowait()
                    except trio.WouldBlock:
                        break
                    if peer:
                        actions += core.handle(peer, message, self.clock(), self.rng)
            now = self.clock()
            results, self._results = self._results, []
            for result in results:
                actions += core.storage_done(result, now)
            actions += self._deferred
            self._deferred = []
            actions += core.flush(now)
            actions += core.poll(now)
            for action in actions:
                await self._perform(action, nursery)
            if self.metrics is not None:
                self._observe()

    async def _perform(self, action: Action, nursery: trio.Nursery) -> None:
        if isinstance(action, Transmit):
            await self.transport.send(action.peer, action.message)
        elif isinstance(action, CircuitRequest):
            if self.on_circuit is not None:
                self.on_circuit(action)
            else:
                self.stats["circuit_requests_unhandled"] += 1
        else:
            # Bounded: with max_commits in flight, the processor waits here, the inbound
            # channel fills, and the reader drops (and counts) what does not fit.
            await self._commit_slots.acquire_on_behalf_of(action)
            nursery.start_soon(self._commit, action)

    async def _commit(self, action: StorageAction) -> None:
        try:
            started = time.perf_counter()
            if self.storage_threads:
                result = await trio.to_thread.run_sync(self.mixer.storage.execute, action)
            else:
                result = self.mixer.storage.execute(action)
            if self.metrics is not None:
                self.metrics.commit_latency(type(action).__name__,
                                            time.perf_counter() - started)
        finally:
            self._commit_slots.release_on_behalf_of(action)
        self._results.append(result)
        self._poke()

    def _observe(self) -> None:
        assert self.metrics is not None
        stats = self.statistics()
        mixer = stats.mixer
        self.metrics.observe(stats, queues={
            "outgoing": mixer.queued, "outgoing_bytes": mixer.queued_bytes,
            "awaiting_commit": mixer.pending, "commits_in_flight": stats.commits_in_flight,
            "inbound": stats.inbound_queued,
        })

    def statistics(self) -> MixerServiceStatistics:
        inbound = self._inbound.statistics().current_buffer_used if self._inbound else 0
        return MixerServiceStatistics(
            mixer=self.core.statistics(), service=dict(self.stats),
            commits_in_flight=int(self._commit_slots.borrowed_tokens),
            inbound_queued=inbound)


# --------------------------------------------------------------------------------------
# Building a mixer from a state directory


@attrs.define
class MixerState:
    """A mixer's keys and open stores; ``close`` releases them."""

    core: MixerEngine
    spent: SqliteSpentStore
    scids: ScidStore
    payments: VoucherPayments
    master_secret: bytes = attrs.field(repr=False, default=b"")

    def close(self) -> None:
        self.scids.close()
        self.payments.close()
        self.spent.close()


def load_or_create_keys(path: Path) -> tuple[crypto.SecretKey, bytes]:
    """The node key and master secret in ``path`` (JSON, mode 0600), created if absent."""
    if not path.exists():
        rng = secrets.SystemRandom()
        key = crypto.SecretKey.from_rng(rng)
        body = json.dumps({"type": "hornet-mixer-keys", "node_secret": key.secret_bytes().hex(),
                           "master_secret": secrets.token_bytes(32).hex(),
                           "node_id": key.public_key.hex()})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(body + "\n")
    check_key_permissions(path, path.stat().st_mode)
    try:
        data = json.loads(path.read_text())
        node_secret = bytes.fromhex(data["node_secret"])
        master = bytes.fromhex(data["master_secret"])
        key = crypto.SecretKey(node_secret)
    except (ValueError, KeyError, TypeError, RecursionError, HornetError) as exc:
        raise ConfigError(f"{path} is not a mixer key file") from exc
    if len(master) != 32:
        raise ConfigError(f"{path}: master_secret must be 32 bytes")
    return key, master


def open_mixer(config: MixerConfig, state_dir: str | Path, *, now: float,
               relay_params: Params | None = None) -> MixerState:
    """Open (or create) a mixer's state in ``state_dir``: keys, spent serials,
    vouchers and SCIDs. A restart with the same directory keeps all of them.

    ``relay_params`` (the HORNET network's parameters) enables circuits: the core then
    knows its relay (``relay_keys(state.master_secret)``, run by ``serve_entry_relay``)
    and offers ``prices.circuit_open``."""
    folder = Path(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    key, master = load_or_create_keys(folder / KEYS_FILE)
    spent = SqliteSpentStore(folder / SPENT_DB, synchronous=config.synchronous)
    payments = VoucherPayments(folder / SPENT_DB)
    scids = ScidStore(folder / SCID_DB, synchronous=config.synchronous)
    entry = None if relay_params is None else circuit_entry(relay_keys(master), relay_params)
    core = MixerEngine.create(config, key, master, ledger=SpendLedger(spent),
                              payments=payments, scid_store=scids, now=now, entry=entry)
    return MixerState(core, spent, scids, payments, master)


# --------------------------------------------------------------------------------------
# Command line


def open_relay_state(config: MixerConfig) -> RelayState:
    """The co-hosted relay's replay state, in the mixer's state directory (SPEC.md §7.5),
    committed as durably as the mixer's own stores (``synchronous``)."""
    assert config.state_dir is not None
    return RelayState(Path(config.state_dir) / RELAY_STATE_DB,
                      sync="normal" if config.synchronous == "NORMAL" else "full")


def load_config_file(path: str | Path) -> MixerConfig:
    """Read a TOML (``.toml``) or JSON (anything else) config file (spec §8)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file ({exc.__class__.__name__})") from exc
    data: Any
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"syntax error: {exc}") from exc
    except (ValueError, RecursionError) as exc:  # a number over 4300 digits, nested too deep
        raise ConfigError(f"unusable config file ({exc.__class__.__name__})") from exc
    # Paths in the file are relative to the file's folder, wherever the command runs.
    base = path.resolve().parent
    authorities = None
    if isinstance(data, dict) and "authorities" in data:
        data = dict(data)
        authorities = AuthoritiesConfig.parse(data.pop("authorities"), base, "config")
    config = parse_config(data, authorities=authorities)
    return attrs.evolve(
        config,
        state_dir=None if config.state_dir is None else str(base / config.state_dir),
        relay_directory=(
            None if config.relay_directory is None else str(base / config.relay_directory)
        ),
    )


def signed_listing(core: MixerEngine, relay_id: bytes) -> Callable[[float], dict[str, Any]]:
    """``publish_forever``'s ``extra`` for the mixer's relay ``relay_id``: the mixer's
    listing at each upload's time (issuer keys of the current and coming credential
    epochs), signed by the mixer's node key for that relay."""
    def extra(now: float) -> dict[str, Any]:
        return {"mixer": sign_mixer_listing(core.node_key, core.listing(now), relay_id,
                                            secrets.token_bytes(32))}
    return extra


async def _run(config: MixerConfig, out: Callable[[str], None]) -> None:
    assert config.state_dir is not None
    hornet_directory = None
    authorities = config.authorities
    directory_client = None
    if authorities is not None:
        directory_client = DirectoryClient(authorities.urls, authorities.keys,
                                           authorities.threshold, cache=authorities.cache)
        hornet_directory = await directory_client.fetch()
    elif config.relay_directory is not None:
        hornet_directory = Directory.load(config.relay_directory)
    elif config.prices.circuit_open is not None:
        print("hornet mixer: note: prices.circuit_open needs a [relay] section; "
              "circuits are not offered", file=sys.stderr)
    state = open_mixer(config, config.state_dir, now=time.time(),
                       relay_params=None if hornet_directory is None else hornet_directory.params)
    try:
        directory = {p.node_id: p.address for p in config.peers if p.address is not None}
        network = PeerNetwork(state.core.node_key, directory=directory, listen=config.listen,
                              persistent=list(directory),
                              channel_peers={node for _, node in config.channels})
        with (trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
              contextlib.ExitStack() as stack):
            async with trio.open_nursery() as nursery:
                await nursery.start(network.serve)
                on_circuit = None
                relay_listen = config.relay_listen
                if hornet_directory is not None and relay_listen is not None:
                    keys = relay_keys(state.master_secret)
                    relay_state = open_relay_state(config)
                    stack.callback(relay_state.close)
                    entry: EntryRelay = await nursery.start(
                        lambda task_status: serve_entry_relay(
                            keys, hornet_directory, relay_listen, state=relay_state,
                            setup_queue=config.relay_setup_queue, link=config.relay_link,
                            task_status=task_status))
                    on_circuit = entry.submit
                    if directory_client is not None and authorities is not None:
                        public = config.relay_public_address or (relay_listen[0],
                                                                 entry.address[1])
                        nursery.start_soon(partial(
                            publish_forever, authorities.urls, keys, public,
                            hornet_directory.params,
                            extra=signed_listing(state.core, keys.node_id)))
                        nursery.start_soon(partial(
                            directory_client.run, entry.replace_directory,
                            on_refresh=entry.node.directory_fetched))
                metrics = None
                if config.metrics is not None:
                    metrics = MixerMetrics(state.core.node_key.public_key)
                    await nursery.start(metrics.serve, config.metrics)
                service = MixerService(state.core, network, inbound_queue=config.inbound_queue,
                                       max_commits=config.max_commits, on_circuit=on_circuit,
                                       metrics=metrics)
                await nursery.start(service.serve)
                host, port = network.address
                out(f"hornet mixer: node {state.core.node_key.public_key.hex()} listening"
                    f" on tcp {host}:{port} (BOLT 8), state in {config.state_dir}")
                if metrics is not None and metrics.address is not None:
                    out(f"hornet mixer: metrics on http://{metrics.address[0]}:"
                        f"{metrics.address[1]}/metrics")
                if on_circuit is not None:
                    assert hornet_directory is not None
                    listed = hornet_directory.get(entry.node_id)
                    out(f"hornet mixer: relay {entry.node_id.hex()} listening on udp "
                        f"{entry.address[0]}:{entry.address[1]}, directory entry "
                        f"{json.dumps(entry.info.to_json())}")
                    if authorities is not None:
                        out(f"hornet mixer: publishing the relay's entry and the mixer's "
                            f"listing to {len(authorities.urls)} authorities")
                    elif listed is None or listed.public_key != entry.info.public_key:
                        print(f"hornet mixer: note: relay {entry.node_id.hex()} is not in "
                              f"{config.relay_directory}", file=sys.stderr, flush=True)
                async for signum in signals:
                    out(f"hornet mixer: {signal.Signals(signum).name}, stopping")
                    nursery.cancel_scope.cancel()
                    break
    finally:
        state.close()


def _print_flush(line: str) -> None:
    print(line, flush=True)


def mixer_main(config_path: str) -> int:
    """Run a mixer from ``config_path`` until SIGINT/SIGTERM. Exit codes: 0 after a signal,
    2 for a bad configuration, 1 for a runtime failure (one line on stderr, no traceback)."""
    try:
        config = load_config_file(config_path)
        if config.state_dir is None:
            raise ConfigError("state_dir is required")
    except ConfigError as exc:
        print(f"hornet mixer: {config_path}: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(_run, config, _print_flush)
    except KeyboardInterrupt:
        return 0
    except ConfigError as exc:
        print(f"hornet mixer: {config_path}: {exc}", file=sys.stderr)
        return 2
    except (HornetError, OSError, sqlite3.Error) as exc:
        print(f"hornet mixer: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def mint_voucher(config_path: str, amount: int) -> str:
    """Operator helper: mint a voucher code worth ``amount`` units in the mixer's
    state directory; returns the code (hex) to hand to a buyer out of band."""
    config = load_config_file(config_path)
    if config.state_dir is None:
        raise ConfigError("state_dir is required")
    Path(config.state_dir).mkdir(parents=True, exist_ok=True)
    payments = VoucherPayments(Path(config.state_dir) / SPENT_DB)
    try:
        return payments.mint(amount, secrets.SystemRandom()).hex()
    finally:
        payments.close()


__all__ = [
    "RELAY_STATE_DB",
    "MixerService",
    "MixerServiceStatistics",
    "MixerState",
    "load_config_file",
    "load_or_create_keys",
    "mint_voucher",
    "mixer_main",
    "open_mixer",
    "open_relay_state",
    "signed_listing",
]

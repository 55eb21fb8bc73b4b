"""``hornet.local_network(n)``: a whole HORNET network on 127.0.0.1, in one call.

Starts ``n`` relays and one destination service (when ``service`` is given) on real UDP
sockets (or on a ``MemoryNetwork`` for tests), writes their directory to a JSON file,
and yields a ``LocalNetwork``. Tests, examples and ``hornet demo`` use it. The keys are
made for the one run, so every node's replay state (SPEC.md §7.5) lives in a temporary
directory removed on exit. Every node
speaks the link layer (docs/spec-link.md) unless ``link=False``: the sockets are bound
first (the directory needs their ports) and ``serve_relay`` wraps each under its node key.
"""

from __future__ import annotations

import random
import secrets
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from hornet.circuit.circuit import single_error
from hornet.core.params import Params
from hornet.directory.model import Directory, NodeKeys, RelayInfo, relay_info
from hornet.node.destination import Handler, ServiceInfo, serve
from hornet.node.relay import RelayNode, serve_relay
from hornet.transport.udp import DatagramSocket, Network, UdpNetwork


@attrs.frozen
class LocalNetwork:
    """A running ``local_network``: its directory (also written to ``directory_path``),
    its relays' ``RelayNode``s, the destination ``service`` (if any) and every node's
    keys (the service's last)."""

    directory: Directory
    directory_path: Path
    relays: tuple[RelayNode, ...]
    service: ServiceInfo | None
    keys: tuple[NodeKeys, ...] = attrs.field(repr=False)

    @property
    def service_id(self) -> bytes:
        """The destination service's node id (``open_circuit``'s ``destination``).

        Raises:
            LookupError: the network runs no service.
        """
        if self.service is None:
            raise LookupError("this local network runs no service")
        return self.service.node.node_id

    def relay(self, node_id: bytes) -> RelayNode:
        """The running relay with id ``node_id``.

        Raises:
            LookupError: no relay of this network has that id.
        """
        for node in self.relays:
            if node.node_id == node_id:
                return node
        raise LookupError(node_id.hex())


@asynccontextmanager
async def local_network(
    n: int = 5,
    *,
    service: Handler | None = None,
    params: Params | None = None,
    network: Network | None = None,
    loss: float = 0.0,
    seed: int | None = None,
    directory_path: str | Path | None = None,
    extra_relays: Sequence[RelayInfo] = (),
    link: bool = True,
    native_loop: bool | None = None,
) -> AsyncIterator[LocalNetwork]:
    """Run ``n`` relays (and a ``service`` destination) on 127.0.0.1 until the block exits.

    An async context manager, for examples and tests: every node gets fresh keys and a
    state file in a temporary directory, removed on exit.

    Args:
        n: relays to run.
        service: a destination's handler (as for ``serve``); None runs no destination.
        params: the network's parameters (default ``Params()``).
        network: where to bind (default: ``UdpNetwork()``; tests pass in-memory ones).
        loss: every relay drops this share of arriving packets (fault injection).
        seed: makes keys deterministic (tests only); None draws them from the OS.
        directory_path: where to write the directory file (default: in the temporary
            directory).
        extra_relays: listed in the directory too, but run by the caller (e.g. an
            onion-message mixer's relay).
        link: link encryption (then clients must use the same ``link``).
        native_loop: False keeps the relays' data plane on the trio receive task on the
            native engine too (``serve_relay``).

    Yields:
        The running ``LocalNetwork``.

    Raises:
        BindError: a relay cannot listen on its port.
    """
    network = network or UdpNetwork()
    rng: Any = random.Random(seed) if seed is not None else secrets.SystemRandom()  # noqa: S311
    count = n + (1 if service is not None else 0)
    keys = tuple(NodeKeys.generate(rng) for _ in range(count))
    sockets: list[DatagramSocket] = []
    try:
        for _ in keys:
            sockets.append(await network.bind(("127.0.0.1", 0)))
        directory = Directory(
            (
                *(relay_info(k, s.address) for k, s in zip(keys, sockets, strict=True)),
                *extra_relays,
            ),
            params or Params(),
        )
        with tempfile.TemporaryDirectory(prefix="hornet-") as tmp:
            path = Path(directory_path) if directory_path else Path(tmp) / "directory.json"
            directory.write(path)
            with single_error():
                async with trio.open_nursery() as nursery:
                    relays: list[RelayNode] = []
                    for i, (k, s) in enumerate(zip(keys[:n], sockets[:n], strict=True)):
                        node: RelayNode = await nursery.start(
                            _relay_task,
                            k,
                            directory,
                            s,
                            loss,
                            link,
                            Path(tmp) / f"relay{i}.state",
                            native_loop,
                        )
                        relays.append(node)
                    info: ServiceInfo | None = None
                    if service is not None:
                        info = await nursery.start(
                            _service_task,
                            keys[n],
                            directory,
                            sockets[n],
                            service,
                            link,
                            Path(tmp) / "service.state",
                        )
                    try:
                        yield LocalNetwork(directory, path, tuple(relays), info, keys)
                    finally:
                        nursery.cancel_scope.cancel()
    finally:
        for sock in sockets:
            sock.close()


async def _relay_task(
    keys: NodeKeys,
    directory: Directory,
    sock: DatagramSocket,
    loss: float,
    link: bool,
    state: Path,
    native_loop: bool | None,
    task_status: trio.TaskStatus[RelayNode] = trio.TASK_STATUS_IGNORED,
) -> None:
    await serve_relay(
        keys,
        directory,
        sock.address,
        sock=sock,
        loss=loss,
        link=link,
        state=state,
        native_loop=native_loop,
        task_status=task_status,
    )


async def _service_task(
    keys: NodeKeys,
    directory: Directory,
    sock: DatagramSocket,
    handler: Handler,
    link: bool,
    state: Path,
    task_status: trio.TaskStatus[ServiceInfo] = trio.TASK_STATUS_IGNORED,
) -> None:
    await serve(
        keys,
        directory,
        sock.address,
        handler,
        sock=sock,
        link=link,
        state=state,
        task_status=task_status,
    )

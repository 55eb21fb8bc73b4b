"""TCP over circuits: ``hornet serve --forward`` and ``hornet connect --listen``.

Like Tor's HiddenServicePort: the destination side (``forward_handler``) connects each
new circuit to a local TCP service; the client side (``serve_connect``) accepts local
TCP connections and opens one circuit per connection. Bytes are copied both ways in
chunks of at most ``CHUNK`` bytes (a circuit message may be larger: the reliable stream
fragments it); when either side ends, the connection ends on both: a TCP close ends the
circuit (the peer's ``async for`` over it finishes), and a finished circuit closes the
TCP connection. Every queue is the circuit's own bounded window or TCP's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from hornet.circuit.circuit import Circuit, CircuitError
from hornet.client import open_circuit
from hornet.core.rendezvous import Descriptor
from hornet.directory.model import Address, Directory
from hornet.errors import HornetError

log = logging.getLogger("hornet.cli.forward")

CHUNK: Final = 16 * 1024


async def splice(circuit: Circuit, stream: trio.abc.Stream) -> None:
    """Copy bytes both ways until one side ends; then end the other."""

    async def tcp_to_circuit(cancel: trio.CancelScope) -> None:
        while data := await stream.receive_some(CHUNK):
            await circuit.send(bytes(data))
        cancel.cancel()

    async def circuit_to_tcp(cancel: trio.CancelScope) -> None:
        async for message in circuit:
            await stream.send_all(message)
        cancel.cancel()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tcp_to_circuit, nursery.cancel_scope)
            nursery.start_soon(circuit_to_tcp, nursery.cancel_scope)
    except* (CircuitError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
        log.info("forwarded connection ended: %s", group.exceptions[0])
    finally:
        await stream.aclose()


def forward_handler(target: Address) -> Callable[[Circuit], Awaitable[None]]:
    """A destination handler that connects each circuit to the TCP service at ``target``."""

    async def handle(circuit: Circuit) -> None:
        try:
            stream = await trio.open_tcp_stream(*target)
        except OSError as exc:
            log.warning("cannot reach %s:%d for a circuit: %s", *target, exc.strerror)
            return
        await splice(circuit, stream)

    return handle


async def serve_connect(
    directory: Directory | object,
    destination: bytes | Descriptor | Callable[[], Awaitable[Descriptor]],
    listen: Address,
    *,
    hops: int = 3,
    task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept TCP connections on ``listen`` and forward each over its own circuit to
    ``destination``: a node id, a rendezvous descriptor, or an async function giving the
    hidden service's current descriptor (``DescriptorSource.get``: asked per connection,
    so connections follow the service's renewed descriptors). Reports the bound address."""
    listeners = await trio.open_tcp_listeners(listen[1], host=listen[0])

    async def one(stream: trio.SocketStream) -> None:
        try:
            target = destination if isinstance(destination, bytes | Descriptor) else (
                await destination()
            )
            async with open_circuit(directory, target, hops=hops) as circuit:  # type: ignore[arg-type]
                await splice(circuit, stream)
        except* HornetError as group:
            log.warning("no circuit for a connection: %s", group.exceptions[0])
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        bound = listeners[0].socket.getsockname()
        await nursery.start(trio.serve_listeners, one, listeners)
        task_status.started((str(bound[0]), int(bound[1])))


__all__ = ["CHUNK", "forward_handler", "serve_connect", "splice"]

"""The duplex circuit a user holds, at either end (trio).

``Circuit`` wraps the sans-IO ``Stream`` (reliability, ordering, fragmentation, flow
control) around a *link*: whatever seals a stream frame into a HORNET packet for the
current underlying circuit (a ``SourceSession``, a ``DestinationSession``, or the
rendezvous equivalents). The link can be swapped while the circuit runs, which is how
the client renews a circuit before EXP or rebuilds it over another path after a relay
died; unacknowledged fragments are then resent over the new link.

One pump task per circuit turns stream state into packets: it wakes when the user
queues data, a frame arrives, or a retransmission falls due. Timeouts belong to the
caller: wrap ``send``/``receive`` in ``trio.fail_after``.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Protocol

import trio

from hornet.core.e2e import Outgoing
from hornet.core.stream import FrameKind, Stream, StreamFrame, StreamStatistics
from hornet.errors import (
    CircuitError,
    DescriptorExpiredError,
    HornetError,
    NoPathError,
    RemoteProtocolError,
    SetupTimeoutError,
    StaleDirectoryError,
)
from hornet.transport.udp import unix_now


class PathSealer(Protocol):
    """Seals one stream frame into one packet on the current underlying circuit."""

    @property
    def exp(self) -> int: ...

    def seal(self, body: bytes, now: float) -> Outgoing: ...


class _Changed:
    """Wakes every task waiting for the circuit's state to change. A condition variable
    without the lock: trio runs one task at a time, so checks cannot race."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self._armed = False  # a task may be waiting on _event

    def notify_all(self) -> None:
        if self._armed:  # (per packet: skip the new Event when nobody waits)
            self._event.set()
            self._event = trio.Event()
            self._armed = False

    async def wait(self) -> None:
        self._armed = True
        await self._event.wait()


class Signal:
    """A level-triggered wake-up for one waiter: ``set`` from anywhere, ``wait`` re-arms."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = trio.Event()


YIELD_EVERY = 16
REBUILD_HISTORY = 64

#: Called when the stream stalls (a fragment exhausted its retries): returns a new link,
#: or raises ``CircuitError`` if none can be built.
Rebuild = Callable[[], Awaitable[PathSealer]]
SendPacket = Callable[[Outgoing], Awaitable[None]]


class Circuit:
    """A duplex circuit: ``await send(data)``, ``await receive()``, ``async for``.

    ``open_circuit`` gives one to a client, and ``serve`` / ``serve_rendezvous`` hand
    one to the handler per connection. Timeouts are the caller's: wrap ``send`` and
    ``receive`` in ``trio.fail_after``. Iterating (``async for message in circuit``)
    ends quietly when the peer closes the circuit, and raises ``CircuitError`` when it
    breaks.
    """

    def __init__(
        self,
        stream: Stream,
        link: PathSealer,
        send_packet: SendPacket,
        *,
        rebuild: Rebuild | None = None,
    ) -> None:
        self._stream = stream
        self._link = link
        self._send_packet = send_packet
        self._rebuild = rebuild
        self._wake = Signal()
        self._changed = _Changed()
        self._error: CircuitError | None = None
        self._closed = False
        self._calls = 0
        self.rebuilds = 0
        #: Seconds each of the latest rebuilds took, from the stall to the new link.
        self.rebuild_seconds: deque[float] = deque(maxlen=REBUILD_HISTORY)
        self.bad_frames = 0

    def __repr__(self) -> str:
        mode = "reliable" if self._stream.reliable else "datagram"
        return f"Circuit({mode}, exp={self._link.exp})"

    # -- the user's API ----------------------------------------------------------------
    @property
    def max_datagram(self) -> int:
        """The largest message (bytes) one packet carries: the limit in datagram mode."""
        return self._stream.max_fragment

    @property
    def exp(self) -> int:
        """EXP (Unix seconds) of the underlying circuit in use now; renewals move it."""
        return self._link.exp

    async def send(self, data: bytes) -> None:
        """Queue one message. Waits while the send queue is full (flow control).

        In datagram mode the packet leaves from here, without a hop to the pump task.

        Args:
            data: the message: up to 1 MiB in reliable mode, ``max_datagram`` bytes in
                datagram mode.

        Raises:
            CircuitError: the circuit is closed or broken (path lost, peer gone).
            LocalProtocolError: ``data`` is too large for the mode.
        """
        stream = self._stream
        if stream.can_queue:
            await self._checkpoint()
        while not stream.can_queue:
            self._check()
            await self._changed.wait()
        self._check()
        stream.queue_message(bytes(data))
        if stream.reliable:
            self._wake.set()
            return
        try:
            for frame in stream.frames_to_send(trio.current_time()):
                await self._send_packet(self._link.seal(frame.encode(), unix_now()))
        except HornetError as exc:
            await self.fail(exc if isinstance(exc, CircuitError) else CircuitError(str(exc)))
            self._check()

    async def receive(self) -> bytes:
        """The next message, in order (reliable mode), or the next datagram to arrive.

        Returns:
            The message's bytes.

        Raises:
            CircuitError: the circuit is done: closed by either end, or broken.
        """
        stream = self._stream
        if stream.has_message():
            await self._checkpoint()
        while not stream.has_message():
            self._check(receiving=True)
            await self._changed.wait()
        message = stream.next_message()
        if stream.wants_to_send:
            self._wake.set()  # an ACK is due: the window reopened
        return message

    async def _checkpoint(self) -> None:
        """A cancellation point on every call, a schedule point on every
        ``YIELD_EVERY``-th: a loop of ``send`` or ``receive`` that never has to wait still
        lets other tasks run, without paying a trip through the scheduler per packet."""
        self._calls += 1
        if self._calls % YIELD_EVERY:
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            await trio.lowlevel.checkpoint()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            try:
                yield await self.receive()
            except CircuitError:
                if self._error is None or isinstance(self._error, _PeerClosed):
                    return
                raise

    async def drain(self) -> None:
        """Wait until the peer acknowledged everything sent so far (reliable mode).

        Raises:
            CircuitError: the circuit closed or broke first.
        """
        await trio.lowlevel.checkpoint()
        while not self._stream.idle:
            self._check()
            await self._changed.wait()

    def statistics(self) -> StreamStatistics:
        """The stream's counters now (fragments sent, resent and received, duplicates,
        queue depths and the retransmission timeout), as a frozen record."""
        return self._stream.statistics()

    def _check(self, *, receiving: bool = False) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise CircuitError("circuit closed")
        if receiving and self._stream.closed_by_peer:
            raise _PeerClosed("the peer closed the circuit")

    # -- driven by the runtime ---------------------------------------------------------
    def replace_path(self, link: PathSealer) -> None:
        self._link = link
        self._stream.rewind(trio.current_time())
        self._wake.set()

    def frame_received(self, frame: StreamFrame) -> None:
        """Feed one authenticated frame from the current or a previous link.

        A frame the stream refuses (the peer broke the stream protocol) is dropped and
        counted in ``bad_frames``: it runs inside a packet loop, which must not fail.
        """
        if frame.kind is FrameKind.HELLO:
            return
        try:
            self._stream.receive_frame(frame, trio.current_time())
        except RemoteProtocolError:
            self.bad_frames += 1
            return
        if self._stream.wants_to_send:
            self._wake.set()
        self._changed.notify_all()

    async def fail(self, error: CircuitError) -> None:
        self._error = self._error or error
        self._changed.notify_all()
        await trio.lowlevel.checkpoint()

    async def pump(self) -> None:
        """Send what the stream wants sent, until cancelled, failed or closed."""
        try:
            while self._error is None and not self._closed:
                now = trio.current_time()
                for frame in self._stream.frames_to_send(now):
                    await self._send_packet(self._link.seal(frame.encode(), unix_now()))
                if self._stream.stalled:
                    await self._on_stall()
                    continue
                self._changed.notify_all()
                deadline = self._stream.next_deadline()
                with trio.move_on_at(deadline if deadline is not None else math.inf):
                    await self._wake.wait()
        except HornetError as exc:
            await self.fail(exc if isinstance(exc, CircuitError) else CircuitError(str(exc)))

    async def _on_stall(self) -> None:
        if self._rebuild is None:
            await self.fail(CircuitError("the peer stopped acknowledging: path broken"))
            return
        self.rebuilds += 1
        began = trio.current_time()
        link = await self._rebuild()
        self.rebuild_seconds.append(trio.current_time() - began)
        self.replace_path(link)

    async def close_path(self) -> None:
        """Tell the peer we are done (best effort: one CLOSE frame), and stop."""
        if self._closed:
            return
        try:
            frame = self._stream.close_frame()
            await self._send_packet(self._link.seal(frame.encode(), unix_now()))
        except HornetError:
            pass
        self._closed = True
        self._changed.notify_all()
        self._wake.set()  # the pump sees the close and ends


class _PeerClosed(CircuitError):
    pass


@contextlib.contextmanager
def single_error() -> Iterator[None]:
    """Re-raise a nursery's lone exception as itself, not as a one-item group.

    The runtime's context managers hide nurseries; their users expect ``NoPathError``
    (or their own exception from the ``async with`` body), not an ``ExceptionGroup``.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


# The circuit errors live in ``hornet.errors``; they stay importable from here too.
__all__ = [
    "Circuit",
    "CircuitError",
    "DescriptorExpiredError",
    "NoPathError",
    "PathSealer",
    "SetupTimeoutError",
    "Signal",
    "StaleDirectoryError",
    "single_error",
]

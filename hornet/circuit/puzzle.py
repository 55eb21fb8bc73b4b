"""Setup puzzles at the source: escalate on timeouts, solve off the event loop.

A relay under a setup flood drops client setups whose puzzle (``hornet.core.puzzle``)
is below the difficulty it currently requires, and never says so: a relay does not tell
the network why it dropped a packet. So the source cannot learn the difficulty; it
escalates instead. Each ``Endpoint`` (one per ``open_circuit``, shared by its renewals
and rebuilds) has a ``PuzzleEscalation``, which keeps a level per entry relay (a bounded
LRU) in ``levels`` (default 0, 8, 12, 16, 20 bits): every setup sent to that relay
carries a puzzle of the current level (``run``); a setup that times out moves the relay
one level up, so the caller's next attempt (``open_circuit``'s ``attempts``, a rebuild,
the next setup on the endpoint) pays more; a reply keeps the level. The level fades,
one down for every ``fade_s`` seconds since it was set, so a client stops paying soon
after a flood ends.
One setup per attempt, as without puzzles: the number of setups and the time to give up
on a dead relay do not change.

Solving costs about 2^d BLAKE2b calls (benchmarks/RESULTS.md gives their time). Puzzles above
``INLINE_MAX`` bits are solved in a worker thread (``trio.to_thread.run_sync``) so the
event loop keeps serving the circuits it already has.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

import trio

from hornet.circuit.circuit import SetupTimeoutError
from hornet.core import puzzle
from hornet.errors import LocalProtocolError

T = TypeVar("T")

DEFAULT_LEVELS: Final = (0, 8, 12, 16, 20)
#: Puzzles up to this many bits (~2^10 hashes, under a millisecond) are solved inline.
INLINE_MAX: Final = 10
DEFAULT_FADE_S: Final = 30.0
DEFAULT_MEMORY: Final = 1024


async def solve_setup(packet: bytes, difficulty: int, start: int = 0) -> bytes:
    """``packet`` with a puzzle of ``difficulty`` bits (a worker thread above INLINE_MAX)."""
    if difficulty <= INLINE_MAX:
        return puzzle.solve(packet, difficulty, start)
    return await trio.to_thread.run_sync(
        puzzle.solve, packet, difficulty, start, abandon_on_cancel=True
    )


class PuzzleEscalation:
    """Escalating puzzle difficulty per entry relay (see the module docstring)."""

    def __init__(
        self,
        levels: Sequence[int] = DEFAULT_LEVELS,
        *,
        fade_s: float = DEFAULT_FADE_S,
        memory: int = DEFAULT_MEMORY,
    ) -> None:
        levels = tuple(levels)
        if not levels or list(levels) != sorted(levels) or levels[0] < 0:
            raise LocalProtocolError("puzzle levels must be non-empty, ascending, >= 0")
        if levels[-1] > puzzle.MAX_DIFFICULTY or fade_s <= 0 or memory < 1:
            raise LocalProtocolError("puzzle levels too high, or bad fade/memory")
        self.levels = levels
        self.fade_s = fade_s
        self.memory = memory
        self._levels: OrderedDict[bytes, tuple[int, float]] = OrderedDict()

    def __repr__(self) -> str:
        return f"PuzzleEscalation(levels={self.levels}, remembered={len(self._levels)})"

    def start_level(self, entry: bytes, now: float) -> int:
        """The index in ``levels`` of the puzzle the next setup to ``entry`` carries."""
        remembered = self._levels.get(entry)
        if remembered is None:
            return 0
        index, stamp = remembered
        return max(0, index - int(max(0.0, now - stamp) // self.fade_s))

    def _remember(self, entry: bytes, index: int, now: float) -> None:
        self._levels[entry] = (index, now)
        self._levels.move_to_end(entry)
        if len(self._levels) > self.memory:
            self._levels.popitem(last=False)

    def worked(self, entry: bytes, index: int, now: float) -> None:
        """A setup with the puzzle of level ``index`` got a reply through ``entry``."""
        self._remember(entry, index, now)

    def timed_out(self, entry: bytes, index: int, now: float) -> None:
        """A setup with the puzzle of level ``index`` got no reply: one level up."""
        self._remember(entry, min(index + 1, len(self.levels) - 1), now)

    async def run(self, entry: bytes, attempt: Callable[[int], Awaitable[T]]) -> T:
        """``await attempt(d)``: one setup through ``entry`` with a puzzle of d bits, d
        the entry's current level. A ``SetupTimeoutError`` raises the level for the next
        attempt and propagates (naming d when it is not 0)."""
        index = self.start_level(entry, trio.current_time())
        difficulty = self.levels[index]
        try:
            result = await attempt(difficulty)
        except SetupTimeoutError as exc:
            self.timed_out(entry, index, trio.current_time())
            if difficulty:
                raise SetupTimeoutError(f"{exc} (puzzle of {difficulty} bits)") from None
            raise
        self.worked(entry, index, trio.current_time())
        return result


__all__ = ["DEFAULT_LEVELS", "PuzzleEscalation", "solve_setup"]

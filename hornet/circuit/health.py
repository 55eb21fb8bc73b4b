"""Which relays a source should avoid: failures remembered with exponential back-off.

The directory lists relays that may be down. A source remembers every relay on a path
that failed (a setup with no reply, a circuit that went silent) and avoids it for
``base · 2^(failures − 1)`` seconds (at most ``cap``); once that passes, the relay is a
candidate again, so a relay that came back is retried, and a relay that is still dead
fails again and waits twice as long. A relay on a path that worked is cleared at once.

Pure state with ``now`` passed in (no clock); bounded to ``memory`` relays (the least
recently failed forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Final

import attrs

DEFAULT_BASE_S: Final = 5.0
DEFAULT_CAP_S: Final = 300.0
DEFAULT_MEMORY: Final = 4096


@attrs.define
class _Record:
    failures: int
    until: float


class RelayHealth:
    """Failed relays and their back-off (see the module doc)."""

    def __init__(
        self, *, base: float = DEFAULT_BASE_S, cap: float = DEFAULT_CAP_S,
        memory: int = DEFAULT_MEMORY,
    ) -> None:
        self.base = base
        self.cap = cap
        self.memory = memory
        self._records: OrderedDict[bytes, _Record] = OrderedDict()

    def __repr__(self) -> str:
        return f"RelayHealth(remembered={len(self._records)})"

    def failed(self, relays: Iterable[bytes], now: float) -> None:
        """The relays of a path that failed: back each one off (again)."""
        for node_id in relays:
            record = self._records.pop(node_id, None)
            failures = 1 if record is None else record.failures + 1
            delay = min(self.cap, self.base * 2 ** min(failures - 1, 30))
            self._records[node_id] = _Record(failures, now + delay)
            if len(self._records) > self.memory:
                self._records.popitem(last=False)

    def worked(self, relays: Iterable[bytes]) -> None:
        """The relays of a path that worked: forget their failures."""
        for node_id in relays:
            self._records.pop(node_id, None)

    def backing_off(self, now: float) -> dict[bytes, float]:
        """Relays to avoid at ``now``, each with the time its back-off ends."""
        return {n: r.until for n, r in self._records.items() if r.until > now}

    def failures(self, node_id: bytes) -> int:
        record = self._records.get(node_id)
        return 0 if record is None else record.failures


__all__ = ["RelayHealth"]

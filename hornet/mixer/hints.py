"""Path hints: how close each of the mixer's links is to its onion-message limit.

Strategy (docs/spec-mixer.md §6): for every network peer the mixer reports two rows,
one per direction. Outgoing utilisation compares what the mixer sent to the peer (a
decayed rate) with the peer's published limit, and counts a filling queue; incoming
utilisation compares what the peer sent us with the allowance we grant it (after
backpressure). Each list is sorted least-loaded first: that order is the ranked list
of paths a client should prefer for its next hop after the mixer (outgoing) and for
the hop in front of the mixer in its reply paths (incoming). Anonymous client
connections are never listed.

Invariants: pure data and codecs; decoders raise only ``MalformedInputError``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

import attrs

from hornet.errors import LocalProtocolError, MalformedInputError

NODE_ID_LEN: Final = 33
ENTRY_LEN: Final = NODE_ID_LEN + 2 + 1 + 4 + 2 + 2
MAX_ENTRIES: Final = 255
#: Utilisation is carried in permille, saturating at this value (6553.5 %).
MAX_PERMILLE: Final = 0xFFFF


class Direction(IntEnum):
    OUTGOING = 0
    INCOMING = 1


#: Profile ids on the wire (index into this tuple).
PROFILE_IDS: Final = ("other", "cln", "eclair", "lnd", "ldk", "hornet", "unlimited")


def profile_id(name: str) -> int:
    return PROFILE_IDS.index(name) if name in PROFILE_IDS else 0


@attrs.frozen
class PeerHint:
    """One link: ``node_id(33) ‖ u16 utilisation‰ ‖ u8 profile ‖ u32 messages/s ×1000 ‖
    u16 allowance‰ ‖ u16 queue fill‰``.

    ``rate`` is the link's limit in messages per second (byte limits converted at
    1403 bytes per message); ``allowance`` is the backpressure factor (incoming rows;
    1.0 otherwise); ``queue`` the fill of the outgoing queue (outgoing rows).
    """

    node_id: bytes
    utilisation: float
    profile: str
    rate: float
    allowance: float = 1.0
    queue: float = 0.0

    def __attrs_post_init__(self) -> None:
        if len(self.node_id) != NODE_ID_LEN:
            raise LocalProtocolError("hint node id must be 33 bytes")

    @staticmethod
    def _permille(value: float) -> int:
        return max(0, min(MAX_PERMILLE, round(value * 1000)))

    def encode(self) -> bytes:
        return b"".join((
            self.node_id,
            self._permille(self.utilisation).to_bytes(2, "big"),
            bytes((profile_id(self.profile),)),
            max(0, min(0xFFFFFFFF, round(self.rate * 1000))).to_bytes(4, "big"),
            self._permille(self.allowance).to_bytes(2, "big"),
            self._permille(self.queue).to_bytes(2, "big"),
        ))

    @classmethod
    def decode(cls, data: bytes) -> PeerHint:
        if len(data) != ENTRY_LEN:
            raise MalformedInputError("hint entry has the wrong length")
        profile = data[NODE_ID_LEN + 2]
        if profile >= len(PROFILE_IDS):
            raise MalformedInputError("unknown hint profile")
        o = NODE_ID_LEN
        return cls(
            node_id=bytes(data[:o]),
            utilisation=int.from_bytes(data[o : o + 2], "big") / 1000,
            profile=PROFILE_IDS[profile],
            rate=int.from_bytes(data[o + 3 : o + 7], "big") / 1000,
            allowance=int.from_bytes(data[o + 7 : o + 9], "big") / 1000,
            queue=int.from_bytes(data[o + 9 : o + 11], "big") / 1000,
        )


@attrs.frozen
class Hints:
    """``u64 generated_at_ms ‖ u8 n_out ‖ n_out entries ‖ u8 n_in ‖ n_in entries``,
    each list least-loaded first."""

    generated_at: float
    outgoing: tuple[PeerHint, ...]
    incoming: tuple[PeerHint, ...]

    def __attrs_post_init__(self) -> None:
        if len(self.outgoing) > MAX_ENTRIES or len(self.incoming) > MAX_ENTRIES:
            raise LocalProtocolError("too many hint entries")

    def best_outgoing(self, count: int = 1) -> tuple[bytes, ...]:
        """Node ids of the ``count`` least-loaded next hops after the mixer."""
        return tuple(h.node_id for h in self.outgoing[:count])

    def best_incoming(self, count: int = 1) -> tuple[bytes, ...]:
        """Node ids of the ``count`` least-loaded peers to put in front of the mixer."""
        return tuple(h.node_id for h in self.incoming[:count])

    def utilisation(self, node_id: bytes, direction: Direction) -> float | None:
        rows = self.outgoing if direction == Direction.OUTGOING else self.incoming
        for row in rows:
            if row.node_id == node_id:
                return row.utilisation
        return None

    def encode(self) -> bytes:
        parts = [int(self.generated_at * 1000).to_bytes(8, "big"), bytes((len(self.outgoing),))]
        parts += [h.encode() for h in self.outgoing]
        parts.append(bytes((len(self.incoming),)))
        parts += [h.encode() for h in self.incoming]
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Hints:
        data = bytes(data)
        if len(data) < 10:
            raise MalformedInputError("hints truncated")
        generated = int.from_bytes(data[:8], "big") / 1000
        offset = 8
        lists: list[tuple[PeerHint, ...]] = []
        for _ in range(2):
            if offset >= len(data):
                raise MalformedInputError("hints truncated")
            count = data[offset]
            offset += 1
            end = offset + count * ENTRY_LEN
            if end > len(data):
                raise MalformedInputError("hints truncated")
            lists.append(tuple(
                PeerHint.decode(data[i : i + ENTRY_LEN]) for i in range(offset, end, ENTRY_LEN)
            ))
            offset = end
        if offset != len(data):
            raise MalformedInputError("trailing bytes after hints")
        return cls(generated, lists[0], lists[1])


def rank(rows: list[PeerHint], limit: int) -> tuple[PeerHint, ...]:
    """Least-loaded first (ties broken by the larger limit, then node id), at most ``limit``."""
    rows.sort(key=lambda h: (h.utilisation, -h.rate, h.node_id))
    return tuple(rows[:limit])


__all__ = ["Direction", "Hints", "PeerHint", "rank"]

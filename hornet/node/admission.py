"""What a relay lets in, before any cryptography: per-neighbour limits and setup puzzles.

Sans-IO (``now`` is a parameter, no clock of its own), used by ``hornet.node.relay``'s
receive task on every datagram. ``Admission.admit(packet, source, now)`` returns one of
``DATA`` / ``SETUP`` (queue it) or a drop reason (count it, answer nothing).

Rules, in the order they are applied:
1. Shape: a datagram shorter than a CHDR, of an unknown type, or a setup of the wrong size
   is ``malformed`` (the core would say the same, after a queue slot and a task switch).
2. Per-neighbour token buckets, one for setups and one for data: a setup costs the relay
   an ECDH, a data packet a few symmetric operations, so a client gets
   ``setup_rate`` setups/s (default 20) beside ``data_rate`` packets/s (50 000).
   Neighbours listed in the directory (relays forwarding many clients' setups) get
   ``relay_setup_rate``. Over-limit: ``setup_rate_limited`` / ``rate_limited``. The
   table of client neighbours is a bounded LRU; relays have their own entries.
3. Setup puzzles (``hornet.core.puzzle``), only for setups from clients (sources not in
   the directory; the entry relay is the only hop that sees the puzzle):
   ``DifficultyPolicy`` measures the rate of client setups that passed rule 2 and asks
   for difficulty 0 while it is within ``setup_capacity``, and
   ``puzzle_base + ceil(log2(rate / capacity))`` bits (at most ``puzzle_max``) above
   it. The rate is an exponentially decaying average (time constant ``rate_window_s``),
   so the difficulty falls back to 0 some seconds after a flood stops. Unsolved:
   ``puzzle`` (one BLAKE2b call instead of an ECDH).
4. One solution, one ECDH: the X (Sphinx ephemeral key) of every client setup admitted
   under a puzzle goes into ``SolutionMemory``, and a setup whose X is already there is
   ``puzzle_reused``. The core's replay filter cannot do this: it records X only after
   the Sphinx HMAC verified, so a solved puzzle on a garbage body would buy an ECDH per
   copy. X is remembered for at least as long as a setup can pass the core's EXP check
   (``solution_span``), so a copy arriving later costs no ECDH either.
The clients never learn the difficulty (a relay does not say why it dropped a packet):
they escalate on timeouts (``hornet.circuit.puzzle``).

Before all of this, in the kernel, a relay's link socket carries a socket filter that
keeps only datagrams shaped like link datagrams (``hornet.transport.kernel_filter``).
The clock, the sockets and the queues belong to the caller (``hornet.node.relay``).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from hornet.core import puzzle
from hornet.core.chdr import TYPE_DATA, TYPE_DATA_NESTED, TYPE_SETUP
from hornet.core.params import CHDR_LEN, EXP_GRANULARITY_S, Params
from hornet.core.ratelimit import TokenBucket
from hornet.core.replay import BloomFilter
from hornet.errors import (
    ConfigError,
    MalformedInputError,
    PuzzleError,
    PuzzleReusedError,
    RateLimitedError,
    SetupRateLimitedError,
)

Address = tuple[str, int]


class Verdict:
    """What the receive task does with a datagram: queue it as ``DATA`` or ``SETUP``, or
    drop it and count the reason. A drop verdict is the ``reason`` of the error that
    describes it (``hornet.errors``, rule 5), the counter's name. Plain strings, not an
    enum: this runs for every datagram, and an enum's ``.value`` costs a descriptor
    call."""

    DATA: Final = "data"
    SETUP: Final = "setup"
    MALFORMED: Final = MalformedInputError.reason
    RATE_LIMITED: Final = RateLimitedError.reason
    SETUP_RATE_LIMITED: Final = SetupRateLimitedError.reason
    PUZZLE: Final = PuzzleError.reason
    PUZZLE_REUSED: Final = PuzzleReusedError.reason


def _rate(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    message = f"{attribute.name} must be a positive number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(message)
    try:
        finite = math.isfinite(value)  # an int too large for a float overflows here
    except OverflowError:
        raise ConfigError(message) from None
    if not finite or value <= 0:
        raise ConfigError(message)


def _count(minimum: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{attribute.name} must be an integer >= {minimum}")

    return check


@attrs.frozen
class Limits:
    """A relay's admission limits (relay config keys of the same names, all optional)."""

    data_rate: float = attrs.field(default=50_000.0, validator=_rate)  # packets/s each
    data_burst: float = attrs.field(default=5_000.0, validator=_rate)
    setup_rate: float = attrs.field(default=20.0, validator=_rate)  # per client
    setup_burst: float = attrs.field(default=40.0, validator=_rate)
    relay_setup_rate: float = attrs.field(default=2_000.0, validator=_rate)  # per relay
    relay_setup_burst: float = attrs.field(default=500.0, validator=_rate)
    # client setups/s before puzzles: a bounded share of one core (benchmarks/RESULTS.md)
    setup_capacity: float = attrs.field(default=200.0, validator=_rate)
    puzzle_base: int = attrs.field(default=8, validator=_count(0))  # bits once loaded
    puzzle_max: int = attrs.field(default=20, validator=_count(0))
    rate_window_s: float = attrs.field(default=2.0, validator=_rate)  # rate time constant
    queue: int = attrs.field(default=1024, validator=_count(1))  # data packets waiting
    setup_queue: int = attrs.field(default=64, validator=_count(1))  # each one an ECDH
    max_neighbours: int = attrs.field(default=4096, validator=_count(1))

    def __attrs_post_init__(self) -> None:
        if not self.puzzle_base <= self.puzzle_max <= puzzle.MAX_DIFFICULTY:
            raise ConfigError(f"puzzle_base <= puzzle_max <= {puzzle.MAX_DIFFICULTY} is required")

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any], *, where: str = "config") -> Limits:
        """The limits named in ``config`` (other keys are ignored); ``ConfigError`` names
        the field of a bad value."""
        names = {field.name for field in attrs.fields(Limits)}
        chosen = {name: config[name] for name in names if name in config}
        try:
            return cls(**chosen)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


class Neighbour:
    """One neighbour's two buckets."""

    __slots__ = ("data", "is_relay", "setup")

    def __init__(self, limits: Limits, now: float, *, is_relay: bool) -> None:
        self.is_relay = is_relay
        self.data = TokenBucket(limits.data_rate, limits.data_burst, now)
        if is_relay:
            self.setup = TokenBucket(limits.relay_setup_rate, limits.relay_setup_burst, now)
        else:
            self.setup = TokenBucket(limits.setup_rate, limits.setup_burst, now)


class DifficultyPolicy:
    """The puzzle difficulty a relay requires of client setups, from their arrival rate.

    ``observe(now)`` counts one arrival and returns the difficulty required now. The rate
    is an exponentially weighted average with time constant ``window``: after a burst at
    rate R stops, it falls below ``capacity`` within ``window · ln(R / capacity)`` s.
    """

    def __init__(
        self, capacity: float, *, base: int = 8, maximum: int = 20, window: float = 2.0
    ) -> None:
        self.capacity = capacity
        self.base = base
        self.maximum = maximum
        self.window = window
        self._rate = 0.0
        self._stamp: float | None = None
        self.peak = 0  # the highest difficulty required so far

    def rate(self, now: float) -> float:
        """The measured arrival rate (setups/s) at ``now``."""
        if self._stamp is None:
            return 0.0
        return self._rate * math.exp(-max(0.0, now - self._stamp) / self.window)

    def observe(self, now: float) -> int:
        self._rate = self.rate(now) + 1.0 / self.window
        self._stamp = now
        return self.required(now)

    def required(self, now: float) -> int:
        """The difficulty in bits that a client setup must carry at ``now``."""
        load = self.rate(now) / self.capacity
        if load <= 1.0:
            return 0
        bits = min(self.maximum, self.base + math.ceil(math.log2(load)))
        self.peak = max(self.peak, bits)
        return bits


_SOLUTION_PERSON: Final = b"hornet-solution"


def solution_span(params: Params) -> float:
    """How long a setup stays acceptable to the core (SPEC.md §7.2): from the earliest
    time its EXP passes the lifetime check (EXP − longest lifetime − rounding − skew) to
    the time it expires (EXP + skew). A solution remembered this long buys one ECDH."""
    return float(params.max_lifetime_s + EXP_GRANULARITY_S + 2 * params.max_skew_s)


class SolutionMemory:
    """The setups (by X) admitted under a puzzle, each remembered for at least ``span`` s.

    Two Bloom filters (``hornet.core.replay``), the current one and the previous one,
    swapped every ``span`` seconds: an entry lives between ``span`` and ``2·span``. The
    key is BLAKE2b-128 of X, so the probes are pseudo-random whatever X the sender
    chose. Memory is two filters of ``capacity`` entries at ``fp_rate`` (3.6 MB each at
    the defaults), allocated on first use. Past ``capacity`` entries in a span the
    false-positive rate rises, so more fresh setups are refused; a reused solution is
    still never admitted twice within ``span``.
    """

    __slots__ = ("_filters", "_since", "capacity", "fp_rate", "span")

    def __init__(self, span: float, capacity: int = 1_000_000, fp_rate: float = 1e-6) -> None:
        BloomFilter(1, fp_rate)  # validate now
        if span <= 0 or capacity < 1:
            raise ConfigError("solution memory: span > 0 and capacity >= 1 are required")
        self.span = span
        self.capacity = capacity
        self.fp_rate = fp_rate
        self._filters: tuple[BloomFilter, BloomFilter] | None = None
        self._since = -math.inf

    @property
    def memory_bytes(self) -> int:
        return 0 if self._filters is None else sum(f.memory_bytes for f in self._filters)

    def check_and_add(self, ephemeral_key: bytes, now: float) -> bool:
        """Remember ``ephemeral_key``; True if it was remembered already."""
        filters = self._filters
        if filters is None:
            filters = (BloomFilter(self.capacity, self.fp_rate),
                       BloomFilter(self.capacity, self.fp_rate))
            self._since = now
        elif now - self._since >= self.span:
            current, previous = filters
            previous.clear()
            filters = (previous, current)
            self._since = now
        self._filters = filters
        key = hashlib.blake2b(ephemeral_key, digest_size=16, person=_SOLUTION_PERSON).digest()
        current, previous = filters
        if key in previous:
            return True
        return current.check_and_add(key)


class Admission:
    """The relay's admission decision for one datagram (see the module's rules)."""

    def __init__(
        self,
        limits: Limits,
        setup_packet_len: int,
        relay_addresses: Iterable[Address] = (),
        *,
        solution_span_s: float | None = None,
    ) -> None:
        """``solution_span_s``: how long solved setups are remembered (default:
        ``solution_span`` of the default ``Params``)."""
        self.limits = limits
        self.setup_packet_len = setup_packet_len
        self.relay_addresses = frozenset(relay_addresses)
        self.policy = DifficultyPolicy(
            limits.setup_capacity,
            base=limits.puzzle_base,
            maximum=limits.puzzle_max,
            window=limits.rate_window_s,
        )
        self.solutions = SolutionMemory(
            solution_span(Params()) if solution_span_s is None else solution_span_s
        )
        self._clients: OrderedDict[Address, Neighbour] = OrderedDict()
        self._relays: dict[Address, Neighbour] = {}

    @property
    def neighbours(self) -> int:
        return len(self._clients) + len(self._relays)

    def set_relays(self, relay_addresses: Iterable[Address]) -> None:
        """A new directory: these addresses get the relays' limits from now on."""
        self.relay_addresses = frozenset(relay_addresses)
        for address in [a for a in self._relays if a not in self.relay_addresses]:
            del self._relays[address]

    def _neighbour(self, source: Address, now: float) -> Neighbour:
        if source in self.relay_addresses:
            relay = self._relays.get(source)
            if relay is None:
                relay = self._relays[source] = Neighbour(self.limits, now, is_relay=True)
            return relay
        clients = self._clients
        client = clients.get(source)
        if client is None:
            client = clients[source] = Neighbour(self.limits, now, is_relay=False)
            if len(clients) > self.limits.max_neighbours:
                clients.popitem(last=False)
        else:
            clients.move_to_end(source)
        return client

    def admit(self, packet: bytes, source: Address, now: float) -> str:
        """Queue (``DATA``/``SETUP``) or drop (any other verdict) one datagram."""
        if len(packet) < CHDR_LEN:
            return Verdict.MALFORMED
        kind = packet[0]
        if kind in (TYPE_DATA, TYPE_DATA_NESTED):
            if self._neighbour(source, now).data.take(now):
                return Verdict.DATA
            return Verdict.RATE_LIMITED
        if kind != TYPE_SETUP or len(packet) != self.setup_packet_len:
            return Verdict.MALFORMED
        neighbour = self._neighbour(source, now)
        if not neighbour.setup.take(now):
            return Verdict.SETUP_RATE_LIMITED
        if neighbour.is_relay:
            return Verdict.SETUP
        required = self.policy.observe(now)
        if required:
            if not puzzle.check(packet, required):
                return Verdict.PUZZLE
            if self.solutions.check_and_add(packet[puzzle.X_OFFSET:puzzle.MIN_PACKET_LEN], now):
                return Verdict.PUZZLE_REUSED
        return Verdict.SETUP


__all__ = [
    "Admission",
    "DifficultyPolicy",
    "Limits",
    "Neighbour",
    "SolutionMemory",
    "Verdict",
    "solution_span",
]

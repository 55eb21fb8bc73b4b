"""Fuzz targets for every hornet entry point that reads bytes from the network.

One module, two drivers: the hypothesis suite (``tests/fuzz``) and the atheris
harnesses (``fuzz/fuzz_<name>.py``) both feed byte strings to the same ``Target``
objects defined here, so they test the same calls with the same invariants.

Rules:
1. A target owns a deterministic *world* (relays, sessions, endpoints, a mixer...)
   built from a fixed seed, and the valid inputs (``seeds``) recorded while that world
   ran its protocol. Rebuilding the world gives the same keys, so the seeds stay valid.
2. ``Target.feed(data)`` hands one byte string to every entry point the target covers.
   Some targets read a selector from the first byte (which relay processes the packet,
   which mode wraps the bytes into an otherwise valid message); the encoding is the
   same for the seeds, the mutator and atheris.
3. Invariant: an entry point returns, or raises a ``RemoteProtocolError`` (for
   network bytes) or a ``HornetError`` (for local config files). ``Relay.process`` and
   ``MixerCore.handle`` never raise at all. Anything else is a *crash*; a
   ``LocalProtocolError`` out of a network parser is a *contract* violation. Both are
   ``Violation``s, with the input in hex so they can be replayed.
4. Memory: ``Target.check_bounds`` checks every cache, table and filter the world
   holds against its configured bound; ``FuzzRun`` samples the process RSS.
5. Counting is honest: ``inputs`` are calls of ``feed``; ``distinct`` counts inputs not
   fed before, as the entry points see them (``Target.canonical``; a 16-byte BLAKE2b
   digest in a Bloom filter, so a rare false positive under-counts); ``calls`` counts
   per entry-point function.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import math
import os
import random
import resource
import shutil
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from hornet.errors import HornetError, LocalProtocolError, RemoteProtocolError

# --------------------------------------------------------------------------------------
# Violations


class Violation(AssertionError):
    """An entry point broke the fuzz invariant on ``data`` (an AssertionError, so that
    pytest and hypothesis report it as a test failure)."""

    def __init__(self, kind: str, target: str, entry: str, data: bytes, detail: str) -> None:
        """An entry point broke the fuzz invariant on ``data``."""
        self.kind = kind  # "crash", "contract" or "bounds"
        self.all: list[Violation] = [self]  # every violation the same input caused
        self.target = target
        self.entry = entry
        self.data = data
        self.detail = detail
        head = data[:4096].hex()
        more = f"... ({len(data)} bytes)" if len(data) > 4096 else ""
        super().__init__(
            f"{kind} in {target}/{entry}: {detail}\ninput ({len(data)} bytes): {head}{more}"
        )

    def signature(self) -> str:
        """kind:entry:exception type and place, without the message (groups repeats)."""
        return f"{self.kind}:{self.entry}:{self.detail.split(': ', 1)[0][:160]}"


def where(exc: BaseException) -> str:
    """Exception type and the innermost hornet frame (file:line), for crash signatures."""
    frames = traceback.extract_tb(exc.__traceback__)
    inner = next((f for f in reversed(frames) if "/hornet/" in f.filename), None)
    place = f" at {Path(inner.filename).name}:{inner.lineno}" if inner else ""
    return f"{type(exc).__name__}{place}: {str(exc)[:200]}"


# --------------------------------------------------------------------------------------
# Mutation engine

#: Mutation operators. Each takes (data, a, b, blob, other) and returns new bytes.
OPS: Final = (
    "flip",  # flip bit a
    "set",  # byte at a := b
    "truncate",  # keep a bytes
    "extend",  # append blob
    "insert",  # insert blob at a
    "delete",  # delete (b % 64) + 1 bytes at a
    "overwrite",  # write blob at a (same length)
    "randomize_tail",  # everything from a on := pseudo-random bytes from blob
    "splice",  # data[:a] + other[b:]
    "integer",  # write an interesting big-endian integer at a, width from b
    "copy",  # copy a range of data over another place
    "zero",  # zero (b % 64) + 1 bytes at a
    "dictionary",  # write dictionary token (b) at a
)
_SAME_LENGTH_OPS: Final = (
    "flip",
    "set",
    "overwrite",
    "randomize_tail",
    "integer",
    "copy",
    "zero",
    "dictionary",
)
_INTERESTING: Final = (
    0,
    1,
    2,
    0x7F,
    0x80,
    0xFC,
    0xFD,
    0xFE,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0xFFFFFFFF,
    0x100000000,
    1 << 63,
    (1 << 64) - 1,
)
_WIDTHS: Final = (1, 2, 4, 8)
#: Tokens every target's dictionary starts with: BigSize markers, TLV-ish prefixes, the
#: compressed generator point (a valid curve point), an all-0xff non-point.
BASE_DICTIONARY: Final = (
    b"\x00",
    b"\xff",
    b"\xfd\x00\xfd",
    b"\xfe\x00\x01\x00\x00",
    b"\xff" + bytes(8),
    bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
    b"\xff" * 33,
    bytes(32),
    b"\x02\x0c",
    b"\x04\x21",
)


def _stream(blob: bytes, salt: int, length: int) -> bytes:
    """``length`` pseudo-random bytes derived from ``blob`` (deterministic)."""
    return hashlib.shake_128(blob + salt.to_bytes(8, "big")).digest(max(0, length))


def apply_op(
    data: bytes,
    op: str,
    a: int,
    b: int,
    blob: bytes,
    other: bytes,
    dictionary: Sequence[bytes] = BASE_DICTIONARY,
) -> bytes:
    """Apply one mutation operator (see ``OPS``). Positions wrap around the length."""
    n = len(data)
    if op == "flip":
        if not n:
            return blob[:1]
        bit = a % (n * 8)
        out = bytearray(data)
        out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)
    if op == "set":
        if not n:
            return bytes((b & 0xFF,))
        out = bytearray(data)
        out[a % n] = b & 0xFF
        return bytes(out)
    if op == "truncate":
        return data[: a % (n + 1)]
    if op == "extend":
        return data + blob
    if op == "insert":
        pos = a % (n + 1)
        return data[:pos] + blob + data[pos:]
    if op == "delete":
        pos = a % (n + 1)
        return data[:pos] + data[pos + b % 64 + 1 :]
    if op == "overwrite":
        if not n:
            return blob
        pos = a % n
        return (data[:pos] + blob + data[pos + len(blob) :])[:n]
    if op == "randomize_tail":
        pos = a % (n + 1)
        return data[:pos] + _stream(blob, a, n - pos)
    if op == "splice":
        return data[: a % (n + 1)] + other[b % (len(other) + 1) :]
    if op == "integer":
        width = _WIDTHS[b % len(_WIDTHS)]
        value = _INTERESTING[(b // len(_WIDTHS)) % len(_INTERESTING)] % (1 << (8 * width))
        pos = a % (n + 1)
        return data[:pos] + value.to_bytes(width, "big") + data[pos + width :]
    if op == "copy":
        if not n:
            return data
        start = a % n
        chunk = data[start : start + b % 64 + 1]
        pos = (a // 7 + b) % n
        return data[:pos] + chunk + data[pos + len(chunk) :]
    if op == "zero":
        pos = a % (n + 1)
        count = min(b % 64 + 1, n - pos)
        return data[:pos] + bytes(count) + data[pos + count :]
    if op == "dictionary":
        token = dictionary[b % len(dictionary)]
        pos = a % (n + 1)
        return data[:pos] + token + data[pos + len(token) :]
    raise ValueError(f"unknown mutation operator {op!r}")


class Mutator:
    """Generates inputs from seeds with a seeded PRNG: raw random bytes, seed-prefixed
    random bytes, and 1–6 stacked mutations of a seed (or of the previous mutant)."""

    def __init__(
        self,
        seeds: Sequence[bytes],
        rng: random.Random,
        *,
        max_len: int,
        dictionary: Sequence[bytes] = (),
        structured: Callable[[random.Random], bytes | None] | None = None,
    ) -> None:
        self.seeds = list(seeds) or [b""]
        self.structured = structured
        self.rng = rng
        self.max_len = max_len
        self.dictionary = tuple(dictionary) or BASE_DICTIONARY
        self._last = self.seeds[0]

    def raw(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.3:
            return rng.randbytes(rng.randrange(0, 9))
        if roll < 0.6:
            return rng.randbytes(rng.randrange(0, 200))
        seed = rng.choice(self.seeds)
        if roll < 0.85:
            # A seed's exact length with its first few bytes: passes the length gates.
            keep = rng.choice((1, 2, 3, 18, 19, 35, 37))
            return seed[:keep] + rng.randbytes(max(0, len(seed) - keep))
        return rng.randbytes(rng.randrange(0, self.max_len + 1))

    def mutate(self, data: bytes) -> bytes:
        rng = self.rng
        # Half the time keep the length: fixed-size formats then get past their length
        # checks and the mutation lands in the fields behind them.
        same_length = len(data) if rng.random() < 0.5 else None
        for _ in range(min(6, 1 + int(rng.expovariate(0.9)))):
            op = rng.choice(_SAME_LENGTH_OPS if same_length is not None else OPS)
            blob = rng.randbytes(rng.choice((1, 1, 2, 4, 8, 16, 33, 64)))
            a = rng.randrange(0, 1 << 20)
            # Positions near the start, where the headers are, twice as often.
            if rng.random() < 0.5 and data:
                a = rng.randrange(0, min(len(data), 96))
            data = apply_op(
                data,
                op,
                a,
                rng.randrange(0, 1 << 16),
                blob,
                rng.choice(self.seeds),
                self.dictionary,
            )
        if same_length is not None:
            data = data[:same_length] + bytes(max(0, same_length - len(data)))
        return data[: self.max_len]

    def stream(self) -> Iterator[bytes]:
        while True:
            yield self.next()

    def next(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if self.structured is not None and rng.random() < 0.25:
            made = self.structured(rng)
            if made is not None:
                self._last = made
                return made
        if roll < 0.12:
            out = self.raw()
        elif roll < 0.3:
            out = self.mutate(self._last)
        else:
            out = self.mutate(rng.choice(self.seeds))
        self._last = out
        return out


# --------------------------------------------------------------------------------------
# Distinct-input counting


class SeenFilter:
    """A Bloom filter over BLAKE2b-128 digests: has this byte string been fed before?"""

    def __init__(self, capacity: int, fp_rate: float = 1e-6) -> None:
        capacity = max(capacity, 1000)
        self.m = math.ceil(-capacity * math.log(fp_rate) / math.log(2) ** 2)
        self.k = max(1, round(self.m / capacity * math.log(2)))
        self._bits = bytearray((self.m + 7) // 8)

    def add(self, data: bytes) -> bool:
        """Record ``data``; True if it was new (never a false "new")."""
        digest = hashlib.blake2b(data, digest_size=16).digest()
        h1 = int.from_bytes(digest[:8], "big")
        h2 = int.from_bytes(digest[8:], "big") | 1
        new = False
        bits, m = self._bits, self.m
        for i in range(self.k):
            p = (h1 + i * h2) % m
            if not bits[p >> 3] >> (p & 7) & 1:
                new = True
                bits[p >> 3] |= 1 << (p & 7)
        return new


# --------------------------------------------------------------------------------------
# Targets


class Target:
    """One group of entry points and the world they run in (see the module rules)."""

    name: str = ""
    #: The functions (qualified names) every input is fed to.
    entry_points: tuple[str, ...] = ()
    #: Raised by these entry points on bad bytes without being a violation.
    allowed: tuple[type[BaseException], ...] = ()
    #: Raised by these entry points on bad bytes and reported as a contract violation
    #: (None: LocalProtocolError and any other HornetError outside ``allowed``).
    contract: tuple[type[BaseException], ...] | None = None
    #: Longest input the mutators make (raised to the longest seed + 256 at build time).
    max_len: int = 4096
    #: Rebuild the world every this many inputs (stateful targets; 0: never).
    reset_every: int = 0
    #: Outcomes the seeds must produce on a fresh world: proof that the valid inputs
    #: reach the deep code paths (None: every entry point returns normally once).
    deep: tuple[str, ...] | None = None

    def __init__(self) -> None:
        if not self.allowed:
            self.allowed = (RemoteProtocolError,)
        self._contract = (
            (LocalProtocolError, HornetError) if self.contract is None else (self.contract)
        )
        self.calls: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self._seeds: list[bytes] = []
        self._fed_since_reset = 0
        self.build()
        # Room for every seed and some growth, whatever max_len the class guessed.
        self.max_len = max(self.max_len, max(map(len, self._seeds), default=0) + 256)

    # -- to override ----------------------------------------------------------------
    def build(self) -> None:
        """(Re)build the world; record ``self._seeds`` the first time."""

    def feed_one(self, data: bytes) -> None:
        """Feed ``data`` to every entry point (through ``self.call``)."""
        raise NotImplementedError

    def check_bounds(self) -> dict[str, int]:
        """Check every bounded structure; return their sizes (raise ``Violation``)."""
        return {}

    def dictionary(self) -> list[bytes]:
        """Tokens the mutator writes into inputs (like a libFuzzer dictionary)."""
        return []

    def structured(self, rng: random.Random) -> bytes | None:
        """A format-aware mutant, if the target knows how to make one (else None)."""
        return None

    def canonical(self, data: bytes) -> bytes:
        """The input as the entry points see it, for distinct counting: a selector byte
        is reduced to the choice it makes, so two inputs that differ only in unused
        selector bits count once."""
        return data

    # -- shared ---------------------------------------------------------------------
    def seeds(self) -> list[bytes]:
        return list(self._seeds)

    def deep_outcomes(self) -> tuple[str, ...]:
        if self.deep is not None:
            return self.deep
        return tuple(f"{entry}:ok" for entry in self.entry_points)

    def feed(self, data: bytes) -> None:
        """Feed one input. Every entry point sees it even if an earlier one broke the
        invariant; then the first ``Violation`` is raised (``.all`` holds every one)."""
        data = bytes(data)
        if self.reset_every and self._fed_since_reset >= self.reset_every:
            self.check_bounds()
            self.build()
            self._fed_since_reset = 0
        self._fed_since_reset += 1
        self._pending: list[Violation] = []
        self.feed_one(data)
        if self._pending:
            first = self._pending[0]
            first.all = list(self._pending)
            raise first

    def call(
        self, entry: str, data: bytes, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        """Call one entry point; classify what it raised. Returns its result or None."""
        self.calls[entry] += 1
        try:
            result = fn(*args, **kwargs)
        except self.allowed as exc:
            self.outcomes[f"{entry}:{type(exc).__name__}"] += 1
            return None
        except self._contract as exc:
            self._pending.append(Violation("contract", self.name, entry, data, where(exc)))
            self._pending[-1].__cause__ = exc
            return None
        except Exception as exc:
            self._pending.append(Violation("crash", self.name, entry, data, where(exc)))
            self._pending[-1].__cause__ = exc
            return None
        self.outcomes[f"{entry}:ok"] += 1
        return result

    def violation(self, kind: str, entry: str, data: bytes, detail: str) -> Violation:
        return Violation(kind, self.name, entry, data, detail)

    def bound(self, what: str, size: int, limit: int, sizes: dict[str, int]) -> None:
        sizes[what] = size
        if size > limit:
            raise self.violation("bounds", what, b"", f"{what} = {size} exceeds its bound {limit}")


# --------------------------------------------------------------------------------------
# Running a target


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; peak RSS elsewhere)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class FuzzRun:
    """Counts, timing, memory and violations of one run of one target."""

    def __init__(
        self,
        target: Target,
        *,
        expected: int,
        driver: str,
        keep_going: bool = False,
        progress: Callable[[dict[str, Any]], None] | None = None,
        progress_every: int = 25_000,
    ) -> None:
        self.target = target
        self.driver = driver
        self.expected = expected
        self.keep_going = keep_going
        self.progress = progress
        self.progress_every = progress_every
        self.seen = SeenFilter(2 * expected + 1000)
        self.inputs = 0
        self.distinct = 0
        self.violations: Counter[str] = Counter()
        self.reproducers: dict[str, str] = {}
        self.started = time.monotonic()
        self.rss_start = rss_mb()
        self.rss_at_10pct: float | None = None
        self.bounds: dict[str, int] = {}
        #: Driver-specific counts, copied into the summary (e.g. hypothesis examples).
        self.extra: dict[str, Any] = {}

    def feed(self, data: bytes) -> bool:
        """Feed one input; True if it was distinct. Raises ``Violation`` unless keep_going."""
        data = bytes(data)
        new = self.seen.add(self.target.canonical(data))
        self.inputs += 1
        self.distinct += new
        try:
            self.target.feed(data)
        except Violation as exc:
            if not self.keep_going:
                raise
            for violation in exc.all:
                sig = violation.signature()
                self.violations[sig] += 1
                if sig not in self.reproducers and len(self.reproducers) < 50:
                    self.reproducers[sig] = data.hex()
        if self.rss_at_10pct is None and self.inputs >= max(1, self.expected // 10):
            self.rss_at_10pct = rss_mb()
        if self.progress is not None and self.inputs % self.progress_every == 0:
            self.progress(self.summary(final=False))
        return new

    def finish(self) -> dict[str, Any]:
        try:
            self.bounds = self.target.check_bounds()
        except Violation as exc:
            if not self.keep_going:
                raise
            self.violations[exc.signature()] += 1
        summary = self.summary(final=True)
        if self.progress is not None:
            self.progress(summary)
        return summary

    def summary(self, *, final: bool) -> dict[str, Any]:
        seconds = time.monotonic() - self.started
        rss_now = rss_mb()
        return {
            "target": self.target.name,
            "driver": self.driver,
            "entry_points": list(self.target.entry_points),
            "status": "done" if final else "running",
            "expected_inputs": self.expected,
            "inputs": self.inputs,
            "distinct_inputs": self.distinct,
            "calls": dict(sorted(self.target.calls.items())),
            "seconds": round(seconds, 1),
            "inputs_per_s": round(self.inputs / seconds, 1) if seconds > 0 else None,
            "crashes": sum(n for s, n in self.violations.items() if s.startswith("crash")),
            "contract_violations": sum(
                n for s, n in self.violations.items() if s.startswith("contract")
            ),
            "bounds_violations": sum(
                n for s, n in self.violations.items() if s.startswith("bounds")
            ),
            "violations": dict(self.violations),
            "reproducers": self.reproducers,
            "rss_mb": {
                "start": round(self.rss_start, 1),
                "at_10pct": None if self.rss_at_10pct is None else round(self.rss_at_10pct, 1),
                "end": round(rss_now, 1),
                "peak": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            "bounds": self.bounds,
            "outcomes": dict(self.target.outcomes.most_common(40)),
            **self.extra,
        }


def prng_inputs(target: Target, seed: int) -> Iterator[bytes]:
    """Every seed once, then an endless stream from ``Mutator``."""
    yield from target.seeds()
    yield from mutator_for(target, seed).stream()


def mutator_for(target: Target, seed: int) -> Mutator:
    return Mutator(
        target.seeds(),
        random.Random(seed),  # noqa: S311  (reproducible)
        max_len=target.max_len,
        dictionary=dictionary_of(target),
        structured=target.structured,
    )


def dictionary_of(target: Target) -> list[bytes]:
    """The shared tokens and the target's own."""
    return list(BASE_DICTIONARY) + target.dictionary()


def write_progress(path: str | os.PathLike[str]) -> Callable[[dict[str, Any]], None]:
    """A progress callback that rewrites ``path`` with the latest summary (atomically)."""
    target = Path(path)

    def write(summary: dict[str, Any]) -> None:
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
        tmp.replace(target)

    return write


_SCRATCH: list[Path] = []


def scratch_dir(prefix: str) -> Path:
    """A private temporary directory for a world's files (SQLite stores, config files),
    removed by ``remove_scratch`` or at exit."""
    path = Path(tempfile.mkdtemp(prefix=f"hornet-fuzz-{prefix}-"))
    if not _SCRATCH:
        atexit.register(remove_scratch)
    _SCRATCH.append(path)
    return path


def remove_scratch(path: Path | None = None) -> None:
    """Remove one scratch directory (default: all of them)."""
    for old in [p for p in _SCRATCH if path is None or p == path]:
        shutil.rmtree(old, ignore_errors=True)
        _SCRATCH.remove(old)

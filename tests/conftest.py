"""Shared fixtures.

Official BOLT 4 vectors are read from ``../shared/vectors`` beside the repository
(or from ``$HORNET_SHARED_VECTORS``). When they are absent, tests that need them
are skipped with a reason that says so plainly, and the run prints a warning line.

Every other external thing a test needs (a PostgreSQL server, npm, a Rust toolchain,
root with network namespaces) is named in ``externals.EXTERNAL``: the run's header says
which are present, and a test that needs a missing one calls ``externals.require(name)``,
which skips with a reason naming the thing and how to get it. ``.ci/run`` provides all
of them.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest
from externals import EXTERNAL, SHARED_VECTORS

REPO = Path(__file__).resolve().parent.parent
GOLDEN_VECTORS = REPO / "tests" / "vectors"


def pytest_configure(config: pytest.Config) -> None:
    # A shell that starts the suite in the background without job control (`cmd &` in a
    # script) ignores SIGINT, and the relay processes the tests start inherit that; the
    # tests stop them with SIGINT, so give them the default disposition back.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if SHARED_VECTORS.is_dir():
        lines = [f"hornet: official BOLT 4 vectors from {SHARED_VECTORS}"]
    else:
        lines = [
            f"hornet: WARNING official BOLT 4 vectors NOT FOUND at {SHARED_VECTORS}; "
            "the tests that replay them are SKIPPED"
        ]
    found = [name for name, (present, _) in EXTERNAL.items() if present()]
    missing = [name for name in EXTERNAL if name not in found]
    lines.append(
        f"hornet: external test needs present: {', '.join(found) or 'none'}; "
        f"missing (their tests skip): {', '.join(missing) or 'none'}"
    )
    return lines


@pytest.fixture
def rng() -> random.Random:
    """A seeded RNG: the core takes randomness as a parameter, tests make it repeatable."""
    return random.Random(0x484F524E4554)  # "HORNET"

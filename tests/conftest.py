"""Shared fixtures.

Official BOLT 4 vectors are read from ``../shared/vectors`` beside the repository
(or from ``$HORNET_SHARED_VECTORS``). When they are absent, tests that need them
are skipped with a reason that says so plainly, and the run prints a warning line.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_VECTORS = Path(os.environ.get("HORNET_SHARED_VECTORS", REPO.parent / "shared" / "vectors"))
GOLDEN_VECTORS = REPO / "tests" / "vectors"


def pytest_report_header(config: pytest.Config) -> str:
    if SHARED_VECTORS.is_dir():
        return f"hornet: official BOLT 4 vectors from {SHARED_VECTORS}"
    return (
        f"hornet: WARNING official BOLT 4 vectors NOT FOUND at {SHARED_VECTORS}; "
        "the tests that replay them are SKIPPED"
    )


def load_bolt04_vector(name: str) -> Any:
    """Load ``bolt04/<name>`` from the shared vectors, or skip saying they are missing."""
    path = SHARED_VECTORS / "bolt04" / name
    if not path.is_file():
        pytest.skip(f"official BOLT 4 vector {path} is not present: vector test NOT run")
    return json.loads(path.read_text())


@pytest.fixture
def rng() -> random.Random:
    """A seeded RNG: the core takes randomness as a parameter, tests make it repeatable."""
    return random.Random(0x484F524E4554)  # "HORNET"

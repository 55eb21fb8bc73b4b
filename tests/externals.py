"""The external things some tests need, and how a test asks for one.

A test that needs one calls ``require(name)``: when the thing is missing the test is
skipped with a reason that names it and says how to get it. ``.ci/run`` provides all of
them, and the run's header (tests/conftest.py) lists which are present.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# Lightning's official BOLT 4 vectors: ../shared/vectors beside the repository.
SHARED_VECTORS = Path(os.environ.get("HORNET_SHARED_VECTORS", REPO.parent / "shared" / "vectors"))


def load_bolt04_vector(name: str) -> Any:
    """Load ``bolt04/<name>`` from the shared vectors, or skip saying they are missing."""
    path = SHARED_VECTORS / "bolt04" / name
    if not path.is_file():
        pytest.skip(f"official BOLT 4 vector {path} is not present: vector test NOT run")
    return json.loads(path.read_text())



def _has_netns() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False)
    return probe.returncode == 0


# name -> (is it present?, what it is and how to get it)
EXTERNAL: dict[str, tuple[Callable[[], bool], str]] = {
    "postgresql": (
        lambda: bool(os.environ.get("HORNET_TEST_POSTGRES_DSN")),
        "a PostgreSQL server: as root on Debian run "
        "`export HORNET_TEST_POSTGRES_DSN=$(sh scripts/start_postgres.sh)`, or point "
        "HORNET_TEST_POSTGRES_DSN at any server",
    ),
    "npm": (
        lambda: shutil.which("npm") is not None and shutil.which("node") is not None,
        "Node.js and npm (`apt-get install nodejs npm`), for the LDK interop tests",
    ),
    "cargo": (
        lambda: shutil.which("cargo") is not None,
        "a Rust toolchain with cargo (https://rustup.rs or `apt-get install cargo`), "
        "for the native engine",
    ),
    "netns": (
        _has_netns,
        "root and `ip netns` from iproute2 (`apt-get install iproute2`), "
        "for the multi-host namespace tests",
    ),
    "nftables": (
        lambda: _has_netns() and shutil.which("nft") is not None,
        "root, `ip netns` and `nft` (`apt-get install iproute2 nftables`), for the "
        "namespace tests that drop IP fragments or inject loss on the bridge",
    ),
}


def require(name: str) -> None:
    """Skip the calling test, naming the missing thing and how to get it."""
    present, what = EXTERNAL[name]
    if not present():
        pytest.skip(f"needs {what}; not found here, so this test did NOT run")

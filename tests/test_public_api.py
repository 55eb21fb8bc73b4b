"""The package root is an API that tools can see: ``dir(hornet)`` lists it, every name
resolves, and mypy sees real types (not ``Any``) although the runtime loads lazily."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import hornet


def test_dir_lists_the_whole_api_and_every_name_resolves() -> None:
    names = dir(hornet)
    for name in hornet.__all__:
        assert name in names
        value = getattr(hornet, name)
        if name != "__version__":
            assert getattr(value, "__module__", "").startswith("hornet"), name


def test_importing_the_root_does_not_load_the_runtime() -> None:
    code = "import hornet, sys; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mypy_sees_real_types_at_the_root(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    names = ["open_circuit", "serve", "serve_relay", "local_network", "NodeKeys", "Circuit"]
    probe.write_text("import hornet\n" + "".join(f"reveal_type(hornet.{n})\n" for n in names))
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         str(probe)],
        capture_output=True, text=True, check=False,
    )
    revealed = [line for line in out.stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == len(names), out.stdout
    for line in revealed:
        assert '"Any"' not in line, line

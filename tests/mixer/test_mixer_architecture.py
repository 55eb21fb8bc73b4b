"""The mixer's protocol modules are sans-IO, like hornet.core (STYLE.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hornet.mixer

MIXER = Path(hornet.mixer.__file__).resolve().parent
SANS_IO = ["config", "core", "hints", "peer", "protocol", "ratelimit", "scid", "session", "state"]
IO_MODULES = {"trio", "socket", "asyncio", "selectors", "time", "random", "secrets", "os"}
CRYPTO_LIBS = {"cryptography", "coincurve"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module.startswith("hornet.mixer."):
                names.add(node.module)
    return names


def test_sans_io_modules_import_no_io_clock_or_randomness() -> None:
    offenders = {
        name: sorted(_imports(MIXER / f"{name}.py") & IO_MODULES)
        for name in SANS_IO
        if _imports(MIXER / f"{name}.py") & IO_MODULES
    }
    assert offenders == {}


def test_sans_io_modules_do_not_import_the_trio_layers() -> None:
    trio_layers = {f"hornet.mixer.{m}" for m in ("transport", "network", "node", "service",
                                                 "client", "entry", "demo")}
    for name in SANS_IO:
        assert not _imports(MIXER / f"{name}.py") & trio_layers, name


def test_no_mixer_module_imports_a_crypto_library() -> None:
    assert [p.name for p in MIXER.glob("*.py") if _imports(p) & CRYPTO_LIBS] == []


def test_importing_the_sans_io_modules_does_not_load_trio() -> None:
    code = (
        "import sys, importlib\n"
        f"for m in {SANS_IO!r}: importlib.import_module('hornet.mixer.' + m)\n"
        "print(','.join(sorted(n for n in sys.modules if n.split('.')[0] == 'trio')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

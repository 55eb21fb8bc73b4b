"""Layering rules that keep the core sans-IO (see SPEC.md §Conventions, STYLE.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hornet

PACKAGE = Path(hornet.__file__).resolve().parent
CRYPTO_LIBS = {"cryptography", "coincurve"}
#: The modules allowed to import a crypto library: the primitives, and the credential
#: group's point arithmetic on libsecp256k1.
CRYPTO_MODULES = {"core/crypto.py", "credentials/group.py"}
IO_MODULES = {"trio", "socket", "asyncio", "selectors", "time", "random", "secrets", "os"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_allowed_modules_import_crypto_libraries() -> None:
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if _imports(path) & CRYPTO_LIBS
    }
    assert importers - CRYPTO_MODULES == set()


def test_core_modules_import_no_io_clock_or_randomness() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_imports(path) & IO_MODULES)
        for path in (PACKAGE / "core").rglob("*.py")
        if _imports(path) & IO_MODULES
    }
    assert offenders == {}


def test_importing_the_core_does_not_load_trio() -> None:
    # ``socket`` is not checked at run time: coincurve's asn1crypto imports it. Our own
    # modules are held to "no socket" by the static test above.
    code = (
        "import sys, pkgutil, importlib, hornet.core\n"
        "for m in pkgutil.walk_packages(hornet.core.__path__, 'hornet.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "import hornet.sphinx\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in {'trio', 'asyncio'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_core_does_not_depend_on_upper_layers() -> None:
    upper = {"hornet.node", "hornet.client", "hornet.transport", "hornet.cli", "hornet.testing"}
    for path in (PACKAGE / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not any(node.module.startswith(u) for u in upper), (path, node.module)

"""hornet.link is sans-IO like hornet.core: no I/O, clock, randomness or crypto library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hornet.link

LINK = Path(hornet.link.__file__).resolve().parent
FORBIDDEN = {"trio", "socket", "asyncio", "selectors", "time", "random", "secrets", "os",
             "cryptography", "coincurve"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module.startswith(("hornet.transport", "hornet.node", "hornet.client")):
                names.add(node.module)
    return names


def test_link_modules_import_no_io_clock_randomness_or_crypto_library() -> None:
    offenders = {
        path.name: sorted(
            n for n in _imports(path) if n in FORBIDDEN or n.startswith("hornet.")
        )
        for path in LINK.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_hornet_link_does_not_load_trio() -> None:
    code = (
        "import sys, hornet.link\n"
        "print(','.join(sorted(n for n in sys.modules if n.split('.')[0] in {'trio', 'asyncio'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

"""The mixer's protocol modules are sans-IO, like hornet.core (STYLE.md), and the
machine (``MixerCore``) reaches no storage, socket, clock or randomness module even
through the hornet modules it imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hornet.mixer

MIXER = Path(hornet.mixer.__file__).resolve().parent
SANS_IO = ["actions", "config", "core", "hints", "keys", "peel", "peer", "protocol", "ratelimit",
           "requests", "riders", "routing", "scid", "session"]
#: Synchronous storage: SQLite and the executor of the machine's storage actions.
BLOCKING = ["state", "storage", "engine"]
TRIO_LAYERS = ["transport", "network", "node", "service", "client", "entry", "metrics"]
#: What the machine may not reach, directly or through any hornet module it imports.
FORBIDDEN = {"sqlite3", "psycopg", "threading", "socket", "trio", "time", "random",
             "secrets", "os"}
#: The package root reads HORNET_ENGINE from os.environ once, at import; it is loaded as
#: the parent of every hornet module and is not part of the machine.
ROOT_EXEMPT = {"os"}
HORNET = MIXER.parent
MAX_LINES = 600
IO_MODULES = {"trio", "socket", "asyncio", "selectors", "time", "random", "secrets", "os",
              "sqlite3", "psycopg", "threading"}
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


def test_sans_io_modules_do_not_import_the_storage_or_trio_layers() -> None:
    layers = {f"hornet.mixer.{m}" for m in BLOCKING + TRIO_LAYERS}
    for name in SANS_IO:
        assert not _imports(MIXER / f"{name}.py") & layers, name


def test_storage_modules_use_no_trio_clock_or_randomness() -> None:
    banned = {"trio", "socket", "time", "random", "secrets"}
    for name in BLOCKING:
        imported = _imports(MIXER / f"{name}.py")
        assert not imported & banned, name
        assert not imported & {f"hornet.mixer.{m}" for m in TRIO_LAYERS}, name


def test_every_mixer_module_has_a_layer() -> None:
    modules = {p.stem for p in MIXER.glob("*.py")} - {"__init__"}
    assert modules == set(SANS_IO + BLOCKING + TRIO_LAYERS)


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


def _module_path(name: str) -> Path | None:
    path = HORNET.parent.joinpath(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def _runtime_imports(name: str) -> set[str]:
    """Every module ``name`` imports when it runs (``if TYPE_CHECKING:`` blocks skipped),
    with ``from package import module`` resolved to the submodule."""
    path = _module_path(name)
    assert path is not None, name
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
                   for stmt in node.body for n in ast.walk(stmt)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names
                         if _module_path(f"{module}.{a.name}") is not None)
    return found


def _closure(start: str) -> dict[str, set[str]]:
    """The hornet modules loaded by importing ``start`` (parents included), each with
    the top-level names of what it imports."""
    seen: dict[str, set[str]] = {}
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        imports = _runtime_imports(name)
        seen[name] = {i.split(".")[0] for i in imports}
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += [i for i in imports
                 if i.split(".")[0] == "hornet" and _module_path(i) is not None]
    return seen


def test_the_machine_reaches_no_io_module_through_any_hornet_module() -> None:
    closure = _closure("hornet.mixer.core")
    assert {"hornet.mixer.requests", "hornet.mixer.routing", "hornet.credentials.issuer",
            "hornet.credentials"} <= set(closure)  # the walk follows imports and parents
    offenders = {name: sorted(imports & (FORBIDDEN - (ROOT_EXEMPT if name == "hornet"
                                                      else set())))
                 for name, imports in closure.items()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_closure_walk_sees_an_io_import() -> None:
    closure = _closure("hornet.mixer.service")  # the trio layer: it must be caught
    assert {"trio", "sqlite3"} <= set().union(*closure.values())
    assert "sqlite3" in closure["hornet.credentials.store"]


def test_importing_the_machine_loads_no_storage_or_trio() -> None:
    code = (
        "import sys, hornet.mixer.core\n"
        "banned = ('sqlite3', '_sqlite3', 'psycopg', 'trio')\n"
        "print(','.join(sorted(n for n in sys.modules if n.split('.')[0] in banned)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_mixer_module_is_under_600_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in MIXER.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_every_statistics_method_returns_a_frozen_attrs_record() -> None:
    import importlib
    import inspect
    import typing

    import attrs

    checked = []
    for path in sorted(MIXER.glob("*.py")):
        module = importlib.import_module(f"hornet.mixer.{path.stem}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            method = cls.__dict__.get("statistics")
            if cls.__module__ != module.__name__ or method is None:
                continue
            returned = typing.get_type_hints(method, vars(module))["return"]
            assert attrs.has(returned), f"{cls.__name__}.statistics -> {returned}"
            assert returned.__setattr__.__name__ == "_frozen_setattrs", returned  # frozen
            checked.append(cls.__name__)
    assert {"MixerCore", "MixerService", "MixerClient", "PeerNetwork", "MemoryTransport",
            "EntryRelay"} <= set(checked)

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


#: Each folder of ``hornet/`` is one layer; a layer may import itself and the layers listed
#: here, nothing else (docs/architecture.md draws the same diagram).
LAYERS: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "core": frozenset({"errors"}),
    "link": frozenset({"core", "errors"}),
    "credentials": frozenset({"core", "errors"}),
    "directory": frozenset({"credentials", "core", "errors"}),
    "transport": frozenset({"directory", "link", "core", "errors"}),
    "circuit": frozenset({"transport", "directory", "link", "core", "errors"}),
    "client": frozenset({"circuit", "transport", "directory", "link", "core", "errors"}),
    "node": frozenset(
        {"circuit", "transport", "directory", "credentials", "link", "core", "errors"}
    ),
    "authority": frozenset({"node", "transport", "directory", "core", "errors"}),
    "mixer": frozenset(
        {"client", "node", "circuit", "transport", "directory", "credentials", "link", "core",
         "errors"}
    ),
    "testing": frozenset(
        {"mixer", "authority", "client", "node", "circuit", "transport", "directory",
         "credentials", "link", "core", "errors"}
    ),
    "api": frozenset(
        {"testing", "client", "node", "circuit", "transport", "directory", "core", "errors"}
    ),
    "cli": frozenset(
        {"api", "testing", "mixer", "authority", "client", "node", "circuit", "transport",
         "directory", "credentials", "link", "core", "errors"}
    ),
}
#: The sans-IO layers and modules: no sockets, storage, threads, clock or randomness, not
#: even through another hornet module they import.
SANS_IO = ("hornet.core", "hornet.link", "hornet.credentials")
#: Modules of a sans-IO layer that are its storage side (the services run them in threads):
#: the spent-serial store, the payment ledger, and the issuing service that commits to them.
STORAGE = {"hornet.credentials.store", "hornet.credentials.payments", "hornet.credentials.service"}
FORBIDDEN = IO_MODULES | {"sqlite3", "psycopg", "threading", "ctypes", "subprocess", "httpx"}


def _layer(module: str) -> str:
    parts = module.split(".")
    if module in {"hornet", "hornet.sphinx"}:
        return "api"
    if parts[1] in {"errors", "_native"}:
        return "errors" if parts[1] == "errors" else "core"
    return parts[1]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _hornet_imports(path: Path) -> set[str]:
    """The hornet modules ``path`` imports, wherever the import statement is."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "hornet")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "hornet":
                continue
            for alias in node.names:  # ``from hornet.core import crypto`` names a module
                sub = f"{node.module}.{alias.name}"
                base = PACKAGE.parent / sub.replace(".", "/")
                is_module = base.with_suffix(".py").exists() or base.with_suffix(".pyi").exists()
                found.add(sub if is_module else node.module)
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that runs: ``if TYPE_CHECKING:`` bodies are left out."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _hornet_imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_belongs_to_a_layer() -> None:
    assert {_layer(m) for m in _graph()} <= set(LAYERS)


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if _layer(target) != _layer(module) and _layer(target) not in LAYERS[_layer(module)]
    )


def test_imports_point_down_the_layer_table() -> None:
    assert _upward(_graph()) == []


def test_the_layer_check_catches_an_upward_import() -> None:
    graph = _graph()
    graph["hornet.core.relay"] = graph["hornet.core.relay"] | {"hornet.node.relay"}
    graph["hornet.transport.udp"] = graph["hornet.transport.udp"] | {"hornet.circuit.circuit"}
    assert _upward(graph) == [
        "hornet.core.relay -> hornet.node.relay",
        "hornet.transport.udp -> hornet.circuit.circuit",
    ]


def test_sans_io_layers_reach_no_io_module_even_indirectly() -> None:
    graph = _graph()
    offenders: dict[str, list[str]] = {}
    for module in graph:
        if not module.startswith(SANS_IO) or module in STORAGE:
            continue
        seen, todo = {module}, [module]
        while todo:
            current = todo.pop()
            # importing hornet.a.b runs hornet/a/__init__.py; the package root is left out:
            # it only reads HORNET_ENGINE (os.environ) to pick the engine once.
            parents = {".".join(current.split(".")[:i]) for i in range(2, current.count(".") + 1)}
            for target in graph.get(current, set()) | parents:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        path_of = {m: PACKAGE.parent / (m.replace(".", "/")) for m in seen}
        bad = sorted(
            f"{m}: {name}"
            for m, base in path_of.items()
            for file in (base.with_suffix(".py"), base / "__init__.py")
            if file.exists()
            for name in _imports(file) & FORBIDDEN
        )
        if bad:
            offenders[module] = bad
    assert offenders == {}


def test_no_public_class_name_is_defined_in_two_modules() -> None:
    where: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                where.setdefault(node.name, []).append(_module_name(path))
    assert {name: mods for name, mods in where.items() if len(mods) > 1} == {}


MAX_MODULE_LINES = 700


def test_no_module_exceeds_the_size_limit() -> None:
    sizes = {_module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}

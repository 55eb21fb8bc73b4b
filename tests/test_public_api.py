"""The package root is an API that tools can see: ``dir(hornet)`` lists it, every name
resolves, and mypy sees real types (not ``Any``) although the runtime loads lazily."""

from __future__ import annotations

import ast
import importlib
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


ROOTS = frozenset({"hornet", "hornet.sphinx", "hornet.mixer", "hornet.credentials"})
EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


def _hornet_imports(tree: ast.Module) -> list[tuple[int, str, str | None]]:
    """Every ``import hornet…`` / ``from hornet… import name`` as (line, module, name)."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if _in_hornet(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and _in_hornet(node.module):
            found += [(node.lineno, node.module, a.name) for a in node.names]
    return found


def _in_hornet(module: str) -> bool:
    return module == "hornet" or module.startswith("hornet.")


def test_examples_import_only_from_package_roots() -> None:
    assert len(EXAMPLES) >= 4
    for path in EXAMPLES:
        tree = ast.parse(path.read_text())
        imports = _hornet_imports(tree)
        for line, module, name in imports:
            where = f"{path.name}:{line}"
            assert module in ROOTS, f"{where} imports from {module}, not a package root"
            if name is not None:
                exported = importlib.import_module(module).__all__
                assert name in exported, f"{where}: {name} is not in {module}.__all__"
        if ("hornet", None) not in {(module, name) for _, module, name in imports}:
            continue
        for node in ast.walk(tree):  # with ``import hornet``, hornet.<name> is the root's API
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "hornet"):
                assert node.attr in hornet.__all__, f"{path.name}:{node.lineno}: hornet.{node.attr}"


def test_the_examples_import_check_catches_a_deep_import() -> None:
    tree = ast.parse("from hornet.core.params import Params\nimport hornet.mixer.node\n")
    modules = [module for _, module, _ in _hornet_imports(tree)]
    assert modules == ["hornet.core.params", "hornet.mixer.node"]
    assert not set(modules) & ROOTS


def test_every_name_the_package_roots_export_resolves() -> None:
    for root in sorted(ROOTS):
        module = importlib.import_module(root)
        for name in module.__all__:
            value = getattr(module, name)
            assert value is not None, f"{root}.{name}"


def test_every_package_but_the_roots_says_it_is_internal() -> None:
    package = Path(hornet.__file__).parent
    unmarked = []
    for init in sorted(package.glob("*/__init__.py")):
        name = f"hornet.{init.parent.name}"
        if name in ROOTS:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        if "Internal: applications import from the package roots" not in doc:
            unmarked.append(name)
    assert unmarked == []

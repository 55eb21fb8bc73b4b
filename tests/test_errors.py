"""hornet.errors: one hierarchy, and one vocabulary of drop counters (rule 5).

Every ``RemoteProtocolError`` subclass names its counter in ``reason``; the drops that
are no peer's fault are ``LocalDropReason`` members. The link layer, admission and the
relay count drops by these strings only: the last test reads their source and fails on
any counter key outside the vocabulary (a string literal, or an exception's class name).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import hornet
from hornet import errors
from hornet.core.relay import DropReason
from hornet.errors import LocalDropReason, RemoteProtocolError
from hornet.node.admission import Verdict

ROOT = Path(hornet.__file__).parent
#: The modules that count drops in the one vocabulary (the mixer keeps its own counters;
#: hornet.client's endpoint is outside this vocabulary's scope).
COUNTING = [
    *sorted((ROOT / "core").rglob("*.py")),
    *sorted((ROOT / "link").rglob("*.py")),
    *sorted((ROOT / "transport").rglob("*.py")),
    *(ROOT / "node" / name for name in ("admission.py", "relay.py", "metrics.py", "state.py")),
    ROOT / "node" / "destination.py",
]
#: Attribute or variable names of the counters those modules keep.
COUNTERS = {"dropped", "rejected"}


def remote_errors() -> list[type[RemoteProtocolError]]:
    seen: list[type[RemoteProtocolError]] = []
    todo = [RemoteProtocolError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


def vocabulary() -> set[str]:
    return {cls.reason for cls in remote_errors()} | {str(m) for m in LocalDropReason}


def test_every_remote_error_names_its_own_snake_case_reason() -> None:
    for cls in remote_errors():
        assert "reason" in vars(cls), f"{cls.__name__} inherits its parent's reason"
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.reason), cls.__name__


def test_reasons_are_unique_across_errors_and_local_drops() -> None:
    reasons = [cls.reason for cls in remote_errors()] + [str(m) for m in LocalDropReason]
    duplicates = {r for r in reasons if reasons.count(r) > 1}
    assert not duplicates


def test_every_remote_error_is_defined_in_errors_py() -> None:
    assert {cls.__module__ for cls in remote_errors()} == {"hornet.errors"}


def test_the_circuit_errors_live_in_errors_py_and_stay_importable() -> None:
    from hornet import circuit

    for name in ("CircuitError", "NoPathError", "SetupTimeoutError", "StaleDirectoryError",
                 "DescriptorExpiredError"):
        cls = getattr(errors, name)
        assert issubclass(cls, errors.HornetError)
        assert getattr(circuit, name) is cls
        assert getattr(hornet, name) is cls


def test_the_core_and_admission_drop_in_the_vocabulary() -> None:
    words = vocabulary()
    assert {str(reason) for reason in DropReason} <= words
    verdicts = {
        value for name, value in vars(Verdict).items()
        if not name.startswith("_") and name not in ("DATA", "SETUP")
    }
    assert verdicts and verdicts <= words
    assert not {Verdict.DATA, Verdict.SETUP} & words  # queue verdicts are not drops


def _counter_keys(tree: ast.AST) -> list[ast.expr]:
    """The subscripts of every ``dropped[...]`` / ``rejected[...]`` (name or attribute)."""
    keys = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            target = node.value
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name in COUNTERS:
                keys.append(node.slice)
    return keys


def _strays(tree: ast.AST, words: set[str]) -> list[str]:
    """The counter keys in ``tree`` that are not in the vocabulary ``words``. Allowed: a
    string in it, a ``LocalDropReason`` or ``Verdict`` member in it, an error's or a
    ``Drop``'s ``.reason`` (``.value``), or a variable holding one of these."""
    strays = []
    for key in _counter_keys(tree):
        text = ast.unparse(key)
        if isinstance(key, ast.Name):
            continue
        if isinstance(key, ast.Constant):
            if key.value not in words:
                strays.append(text)
        elif isinstance(key, ast.Attribute) and isinstance(key.value, ast.Name) and (
            key.value.id in ("LocalDropReason", "Verdict")
        ):
            holder = LocalDropReason if key.value.id == "LocalDropReason" else Verdict
            if str(getattr(holder, key.attr)) not in words:
                strays.append(text)
        elif not re.fullmatch(r"[\w.]+\.reason(\.value)?", text):
            strays.append(text)  # built at run time: a class name, an f-string, ...
    return strays


@pytest.mark.parametrize("path", COUNTING, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_counted_reason_is_in_the_vocabulary(path: Path) -> None:
    assert _strays(ast.parse(path.read_text(), str(path)), vocabulary()) == []


def test_the_vocabulary_scan_finds_stray_counter_keys() -> None:
    # The scan must look at real counting code, and would catch a stray key there.
    assert sum(len(_counter_keys(ast.parse(path.read_text()))) for path in COUNTING) >= 15
    stray = ast.parse(
        'self.dropped["bogus"] += 1\n'
        "self.rejected[type(exc).__name__] += 1\n"
        'dropped[f"rejected_{name}"] += 1\n'
        "self.dropped[LocalDropReason.QUEUE_FULL] += 1\n"
        "self.rejected[exc.reason] += 1\n"
    )
    assert sorted(_strays(stray, vocabulary())) == [
        "'bogus'", "f'rejected_{name}'", "type(exc).__name__"
    ]


def test_statistics_are_frozen_attrs_records_outside_the_mixer() -> None:
    # trio's convention: statistics() returns a frozen record, never an object or dict.
    import importlib
    import typing

    import attrs

    owners = []
    for path in sorted(ROOT.rglob("*.py")):
        if "mixer" in path.parts or "def statistics(" not in path.read_text():
            continue
        name = ".".join(("hornet", *path.relative_to(ROOT).with_suffix("").parts))
        module = importlib.import_module(name.removesuffix(".__init__"))
        owners += [
            cls for cls in vars(module).values()
            if isinstance(cls, type) and cls.__module__ == module.__name__
            and "statistics" in vars(cls)
        ]
    assert len(owners) >= 5  # Circuit, Stream, LinkEndpoint, LinkSocket, RelayNode
    for owner in owners:
        record = typing.get_type_hints(owner.statistics)["return"]
        assert attrs.has(record), owner.__name__
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            object.__new__(record).__setattr__("x", 1)

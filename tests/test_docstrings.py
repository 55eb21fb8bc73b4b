"""The public API's docstrings say Args / Returns (or Yields) / Raises, as h11 and trio
do, and name every parameter the code takes (so a docstring cannot drift from its
signature unnoticed)."""

from __future__ import annotations

import builtins
import inspect
import re

import pytest

import hornet
from hornet import errors

#: The functions of ``hornet.__all__`` (classes are checked by their own methods).
FUNCTIONS = [
    "load_key_file",
    "local_network",
    "open_circuit",
    "relay_info",
    "serve",
    "serve_relay",
    "serve_rendezvous",
    "write_key_file",
]
METHODS = [
    ("Circuit", "send"),
    ("Circuit", "receive"),
    ("Circuit", "drain"),
    ("Directory", "load"),
]


def _sections(doc: str) -> dict[str, str]:
    """Google-style sections: ``Args:`` etc. at the docstring's own indentation."""
    parts = re.split(r"^(Args|Returns|Yields|Raises):\n", doc, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _documented_names(section: str) -> set[str]:
    return set(re.findall(r"^    (\w+):", section, flags=re.M))


def test_the_checked_functions_are_the_exported_ones() -> None:
    exported = {n for n in hornet.__all__ if inspect.isfunction(getattr(hornet, n, None))}
    assert exported == set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_exported_functions_document_every_parameter_and_what_they_raise(name: str) -> None:
    function = inspect.unwrap(getattr(hornet, name))
    doc = inspect.getdoc(function)
    assert doc, name
    sections = _sections(doc)
    assert "Raises" in sections, name
    parameters = set(inspect.signature(function).parameters) - {"self", "cls"}
    if parameters:
        assert _documented_names(sections.get("Args", "")) == parameters, name
    raised = _documented_names(sections["Raises"])
    assert raised and all(hasattr(errors, e) or hasattr(builtins, e) for e in raised), name


@pytest.mark.parametrize(("owner", "method"), METHODS)
def test_public_methods_say_what_they_raise(owner: str, method: str) -> None:
    doc = inspect.getdoc(getattr(getattr(hornet, owner), method))
    assert doc and "Raises" in _sections(doc), f"{owner}.{method}"

"""SECURITY.md names, for every guarantee, a test that exists and performs the attack."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _guarantee_rows() -> list[str]:
    text = (REPO / "SECURITY.md").read_text()
    section = text.split("## 2.", 1)[1].split("\n## 3.", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line
            and not line.startswith("| guarantee")]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_guarantee_names_an_attack_test_and_a_measured_result() -> None:
    rows = _guarantee_rows()
    assert len(rows) >= 20
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4, row
        assert "test_" in cells[2], f"no attack test named: {cells[0]}"
        assert cells[3], f"no measured result: {cells[0]}"


def test_every_test_security_md_names_exists() -> None:
    rows = "\n".join(_guarantee_rows())
    named = re.findall(r"`([\w/]+\.py)::(test_\w+)`", rows)
    # "`::test_x`" continues the previous file of its cell
    current = None
    checked = 0
    for match in re.finditer(r"`(?:([\w/]+\.py))?::(test_\w+)`", rows):
        file, name = match.groups()
        current = file or current
        assert current is not None
        path = REPO / "tests" / current
        assert path.is_file(), f"SECURITY.md names a missing file: tests/{current}"
        assert name in _test_names(path), f"SECURITY.md names a missing test: {current}::{name}"
        checked += 1
    assert checked >= len(named) >= 30

"""The README's two set-up commands are the ones CI runs, and its example works."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _sh_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def _setup_commands() -> tuple[str, str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    blocks = _sh_blocks(section)
    assert len(blocks) == 2, "the set-up section must hold exactly two commands"
    run, test = blocks
    assert "\n" not in run and "\n" not in test
    return run, test


def test_ci_runs_the_readme_commands_verbatim() -> None:
    run, test = _setup_commands()
    ci = (REPO / ".ci" / "run").read_text()
    assert test in ci.splitlines()
    assert run in ci.splitlines()
    assert "mypy --strict" in ci and "ruff check" in ci


def test_readme_python_example_runs() -> None:
    readme = (REPO / "README.md").read_text()
    examples = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert examples
    for code in examples:
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_cli_demo_runs_and_exits_zero() -> None:
    for extra in ([], ["--rendezvous"]):
        out = subprocess.run(
            [sys.executable, "-m", "hornet.cli", "demo", "--hops", "2", *extra],
            capture_output=True, text=True, check=True, timeout=120,
        )
        assert "every message arrived, in order, both ways" in out.stdout


def test_cli_keygen_writes_a_private_key_file(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    out = subprocess.run(
        [sys.executable, "-m", "hornet.cli", "keygen", "--out", str(path)],
        capture_output=True, text=True, check=True,
    )
    assert path.stat().st_mode & 0o777 == 0o600
    assert out.stdout.strip() in path.read_text()
    again = subprocess.run(
        [sys.executable, "-m", "hornet.cli", "keygen", "--out", str(path)],
        capture_output=True, text=True, check=False,
    )
    assert again.returncode != 0 and "Traceback" not in again.stderr

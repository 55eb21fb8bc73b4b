"""The watchtower example and the demo run to completion on UDP loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_watchtower_example_exits_0_and_checks_its_claims() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "mixer_watchtower.py")],
                          capture_output=True, text=True, timeout=180, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok] the LSP relayed nothing after the purchase" in proc.stdout
    assert "FAILED" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_the_mixer_demo_passes_its_checks() -> None:
    code = ("import sys, trio; from hornet.mixer.demo import run_mixer_demo; "
            "sys.exit(trio.run(run_mixer_demo, print))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("all checks passed")

"""docs/operating.md, run: every shell block of the guide, in order, each in the folder of
the host it names (``<!-- host: NAME [each: NAMES] [background] [retry] -->``), with the
guide's host names on 127.0.0.1. The network it builds (3 authorities, 5 relays, a hidden
web service) must carry a page from a web server to a client through ``hornet connect``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "operating.md"
BLOCK = re.compile(r"<!-- host: (?P<meta>[^>]*?) -->\n```sh\n(?P<body>.*?)```", re.DOTALL)


def _blocks() -> list[tuple[list[str], set[str], str]]:
    blocks = []
    for match in BLOCK.finditer(GUIDE.read_text()):
        words = match["meta"].split()
        hosts, flags = [words[0]], set()
        if "each:" in words:
            at = words.index("each:")
            hosts = [w for w in words[at + 1 :] if w not in ("background", "retry")]
        flags = {w for w in words if w in ("background", "retry")}
        blocks.append((hosts, flags, match["body"]))
    return blocks


def _substitute(body: str, host: str, keys: dict[str, str]) -> str:
    body = re.sub(r"(auth\d|relay\d)\.example\.net", "127.0.0.1", body)
    if host.startswith("relay"):
        n = host.removeprefix("relay")
        body = body.replace("RELAY_HOST", "127.0.0.1").replace("RELAY_PORT", f"973{n}")
        body = body.replace("METRICS_PORT", f"910{n}")
    for name, key in keys.items():
        body = body.replace(name, key)
    return body


def test_the_operating_guide_brings_up_its_network(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    keys: dict[str, str] = {}
    background: list[subprocess.Popen[str]] = []
    outputs: list[str] = []
    blocks = _blocks()
    assert len(blocks) >= 15
    try:
        for hosts, flags, body in blocks:
            for host in hosts:
                folder = tmp_path / host
                folder.mkdir(exist_ok=True)
                script = _substitute(body, host, keys)
                if "background" in flags:
                    proc = subprocess.Popen(
                        ["bash", "-c", f"exec {script.strip()}"],
                        cwd=folder,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    background.append(proc)
                    if "http.server" not in script:  # every hornet service prints when ready
                        assert proc.stdout is not None
                        line = proc.stdout.readline()
                        assert line, (script, proc.communicate(timeout=10))
                        if "hidden destination: service " in line:
                            keys["SERVICE_NAME"] = line.split("service ")[1].split(":")[0]
                    else:
                        time.sleep(1)
                    continue
                deadline = time.monotonic() + (60 if "retry" in flags else 0)
                while True:
                    out = subprocess.run(
                        ["bash", "-e", "-c", script],
                        cwd=folder,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=60,
                        check=False,
                    )
                    if out.returncode == 0 or time.monotonic() > deadline:
                        break
                    time.sleep(1)
                assert out.returncode == 0, (host, script, out.stdout, out.stderr)
                outputs.append(out.stdout)
                if script.startswith("hornet authority init"):
                    keys[f"AUTH{host.removeprefix('auth')}_KEY"] = out.stdout.strip()
        # The status blocks printed a relay's counters; the last block fetched a page
        # through the hidden service.
        assert any(line.startswith("node ") for line in outputs[-3].splitlines())
        assert "service.key" in outputs[-1]
    finally:
        for proc in background:
            proc.send_signal(signal.SIGTERM)
        results = []
        for proc in background:
            try:
                results.append(proc.communicate(timeout=30))
            except subprocess.TimeoutExpired:
                proc.kill()
                results.append(proc.communicate())
    hornet_procs = [p for p in background if "http.server" not in " ".join(map(str, p.args))]
    assert all(p.returncode == 0 for p in hornet_procs), results

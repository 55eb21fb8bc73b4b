"""contrib/systemd: every unit runs a command the CLI accepts, stops with SIGTERM (which
every long-running command answers with exit 0), and carries the sandboxing options."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from hornet.cli.app import build_parser

UNITS = Path(__file__).resolve().parent.parent / "contrib" / "systemd"
SANDBOX = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def _settings(path: Path) -> dict[str, str]:
    settings = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), value.strip())
    return settings


@pytest.mark.parametrize("name", ["relay", "authority", "serve", "mixer"])
def test_each_unit_runs_a_command_the_cli_accepts(name: str) -> None:
    settings = _settings(UNITS / f"hornet-{name}@.service")
    argv = shlex.split(
        settings["ExecStart"].replace("%i", "node").replace("${HORNET_FORWARD}", "127.0.0.1:80")
    )
    assert argv[0] == "/usr/bin/hornet"
    args = build_parser().parse_args(argv[1:])
    assert args.command == ("authority" if name == "authority" else name)
    assert "KillSignal" not in settings  # systemd's default, SIGTERM: exit 0
    for key, value in SANDBOX.items():
        assert settings.get(key) == value, (name, key)
    assert settings["User"] == "hornet" and settings["Restart"] == "on-failure"

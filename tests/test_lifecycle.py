"""How commands start, stop and refuse: exit codes on signals, unknown keys, key file
permissions, relative paths, directory validation, range-checked options, and typed
errors (never exception groups) from ``hornet.serve``."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import hornet
from hornet import cli
from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file
from hornet.errors import BindError, ConfigError
from hornet.mixer.service import load_config_file

KEYS = NodeKeys.generate(random.Random(3))
OTHER = NodeKeys.generate(random.Random(4))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _relay_folder(tmp: Path, **extra: Any) -> Path:
    port = _free_port()
    write_key_file(tmp / "node.key", KEYS)
    listed = Directory(
        (relay_info(KEYS, ("127.0.0.1", port)), relay_info(OTHER, ("127.0.0.1", port + 1)))
    )
    listed.write(tmp / "directory.json")
    config = {"key_file": "node.key", "directory": "directory.json", "listen": f"127.0.0.1:{port}"}
    config.update(extra)
    (tmp / "relay.json").write_text(json.dumps(config))
    return tmp / "relay.json"


def _one_line(err: str, command: str, *parts: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"hornet {command}: "), lines[0]
    for part in parts:
        assert part in lines[0], lines[0]


# -- signals ------------------------------------------------------------------------------


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hornet.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


def _wait_for_line(proc: subprocess.Popen[str], text: str) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return line
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"never printed {text!r}: {proc.communicate()}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_relay_exits_0_on_sigterm_and_sigint(tmp_path: Path, signum: signal.Signals) -> None:
    config = _relay_folder(tmp_path)
    proc = _start(["relay", "--config", str(config)], cwd=Path("/"))
    _wait_for_line(proc, "listening on")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, (out, err)
    assert "Traceback" not in err
    # It closed its replay state on the way out: the next start opens it again.
    assert (tmp_path / "node.key.state.sqlite").exists()


def test_a_mixer_exits_0_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "mixer.toml").write_text('state_dir = "state"\nlisten = "127.0.0.1:0"\n')
    proc = _start(["mixer", "--config", str(tmp_path / "mixer.toml")], cwd=Path("/"))
    _wait_for_line(proc, "listening")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, (out, err)
    assert "Traceback" not in err


def test_a_benchmark_exits_0_on_sigterm(tmp_path: Path) -> None:
    proc = _start(["bench", "e2e", "--packets", "100000000", "--rounds", "1"], cwd=tmp_path)
    time.sleep(3)  # the relays run as processes and the first round has begun
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (out, err)
    assert "Traceback" not in err and "ExceptionGroup" not in err


# -- the relay's config -------------------------------------------------------------------


def test_an_unknown_relay_config_key_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _relay_folder(tmp_path, dta_rate=10)
    assert cli.main(["relay", "--config", str(config)]) == 2
    _one_line(capsys.readouterr().err, "relay", str(config), "unknown key 'dta_rate'")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o777])
@pytest.mark.parametrize("command", ["relay", "relay-entry"])
def test_a_key_file_others_may_read_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: int, command: str
) -> None:
    config = _relay_folder(tmp_path)
    (tmp_path / "node.key").chmod(mode)
    assert cli.main([command, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    _one_line(err, command, str(tmp_path / "node.key"), f"{mode:04o}", "chmod 600")


def test_a_mixer_key_file_others_may_read_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mixer.toml").write_text('state_dir = "state"\nlisten = "127.0.0.1:0"\n')
    (tmp_path / "state").mkdir()
    from hornet.mixer.service import load_or_create_keys

    load_or_create_keys(tmp_path / "state" / "mixer-keys.json")
    (tmp_path / "state" / "mixer-keys.json").chmod(0o644)
    assert cli.main(["mixer", "--config", str(tmp_path / "mixer.toml")]) == 2
    _one_line(capsys.readouterr().err, "mixer", "mixer-keys.json", "chmod 600")


def test_relative_paths_resolve_against_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "mixer.toml").write_text(
        'state_dir = "state"\n[relay]\nlisten = "127.0.0.1:0"\ndirectory = "directory.json"\n'
    )
    config = load_config_file(folder / "mixer.toml")
    assert config.state_dir == str(folder / "state")
    assert config.relay_directory == str(folder / "directory.json")
    from hornet.node.config import RelayConfig

    relay = RelayConfig.load(_relay_folder(folder))
    assert relay.key_file == folder / "node.key" and relay.directory == folder / "directory.json"
    assert relay.state == folder / "node.key.state.sqlite"


def test_a_mixer_run_from_another_folder_keeps_its_identity(tmp_path: Path) -> None:
    (tmp_path / "mixer.toml").write_text('state_dir = "state"\nlisten = "127.0.0.1:0"\n')
    ids = []
    for cwd in (tmp_path, Path("/")):
        proc = _start(["mixer", "--config", str(tmp_path / "mixer.toml")], cwd=cwd)
        ids.append(_wait_for_line(proc, "listening").split()[3])
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert ids[0] == ids[1]


# -- directory validation -----------------------------------------------------------------


def _directory(change: Any) -> dict[str, Any]:
    data = Directory(
        (relay_info(KEYS, ("127.0.0.1", 7001)), relay_info(OTHER, ("127.0.0.1", 7002)))
    ).to_json()
    change(data)
    return data


DIRECTORY_CASES: list[tuple[str, Any, str]] = [
    (
        "two relays on one address",
        lambda d: d["relays"][1].update(address="127.0.0.1:7001"),
        "relays[1].address 127.0.0.1:7001 is also relays[0]'s",
    ),
    ("empty setup keys", lambda d: d["relays"][1].update(setup_keys={}), "relays[1].setup_keys"),
    ("no setup keys", lambda d: d["relays"][0].pop("setup_keys"), "relays[0].setup_keys: empty"),
    ("unknown params field", lambda d: d["params"].update(hops=3), "params: unknown field 'hops'"),
    ("unknown top-level field", lambda d: d.update(relais=[]), "unknown field 'relais'"),
    ("unknown entry field", lambda d: d["relays"][1].update(port=1), "relays[1]: unknown field"),
    (
        "one relay twice",
        lambda d: d["relays"].append(d["relays"][0]),
        "relays[2] lists a node id twice (as relays[0])",
    ),
]


@pytest.mark.parametrize(
    ("case", "change", "message"), DIRECTORY_CASES, ids=[c[0] for c in DIRECTORY_CASES]
)
def test_a_bad_directory_is_refused_naming_the_file_and_the_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, change: Any, message: str
) -> None:
    config = _relay_folder(tmp_path)
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(_directory(change)))
    with pytest.raises(ConfigError, match=r"directory\.json") as info:
        Directory.load(path)
    assert message in str(info.value)
    assert cli.main(["relay", "--config", str(config)]) == 2
    _one_line(capsys.readouterr().err, "relay", str(path), message)


# -- command-line numbers -----------------------------------------------------------------

BAD_OPTIONS = [
    ["demo", "--relays", "-1"],
    ["demo", "--relays", "0"],
    ["demo", "--hops", "0"],
    ["demo", "--hops", "x"],
    ["bench", "e2e", "--rounds", "0"],
    ["bench", "e2e", "--payload", "10"],
    ["bench", "e2e", "--payload", "1000000"],
    ["bench", "e2e", "--packets", "0"],
    ["bench", "e2e", "--circuits", "-5"],
    ["relay-entry", "--config", "x.json", "--epochs", "0"],
]


@pytest.mark.parametrize("argv", BAD_OPTIONS, ids=[" ".join(a) for a in BAD_OPTIONS])
def test_numeric_options_are_range_checked(argv: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hornet.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr
    assert f"argument {argv[-2]}:" in out.stderr


# -- hornet.serve -------------------------------------------------------------------------


async def _echo(circuit: Any) -> None:
    async for message in circuit:
        await circuit.send(message)


async def test_serve_on_a_port_in_use_raises_a_bind_error_not_a_group(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        address = taken.getsockname()
        directory = Directory((relay_info(KEYS, address),))
        # pytest.raises matches the error itself only: a group holding it would fail here.
        with pytest.raises(BindError, match=r"cannot listen on 127\.0\.0\.1"):
            await hornet.serve(KEYS, directory, address, _echo, state=tmp_path / "state.sqlite")


async def test_serve_rendezvous_on_a_port_in_use_raises_a_bind_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        directory = Directory((relay_info(KEYS, ("127.0.0.1", 7001)),))
        with pytest.raises(BindError):
            await hornet.serve_rendezvous(directory, _echo, bind=taken.getsockname())


SERVE_SCRIPT = textwrap.dedent(
    """
    import random, sys, tempfile, trio, hornet
    from hornet.directory.model import Directory, NodeKeys, relay_info

    keys = NodeKeys.generate(random.Random(3))
    address = ("127.0.0.1", int(sys.argv[1]))

    async def echo(circuit):
        async for message in circuit:
            await circuit.send(message)

    async def main():
        directory = Directory((relay_info(keys, address),))
        state = tempfile.mkdtemp() + "/state.sqlite"
        await hornet.serve(keys, directory, address, echo, state=state, task_status=Started())

    class Started:
        def started(self, value=None):
            print("ready", flush=True)

    try:
        trio.run(main)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


def test_ctrl_c_in_serve_raises_a_plain_keyboard_interrupt(tmp_path: Path) -> None:
    (tmp_path / "serve.py").write_text(SERVE_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "serve.py"), str(_free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(hornet.__file__).parent.parent)},
    )
    _wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert "interrupted" in out, (out, err)
    assert proc.returncode == 0 and "Traceback" not in err and "ExceptionGroup" not in err

"""Bad configuration and key files for ``hornet relay`` and ``hornet mixer``: one clear
line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hornet import cli
from hornet.core import crypto
from hornet.directory.model import Directory, NodeKeys, relay_info, write_key_file

KEYS = NodeKeys.generate(random.Random(3))
OTHER = NodeKeys.generate(random.Random(4))


def _relay_files(tmp: Path, config: Any = None, *, key: Any = None, directory: Any = None) -> Path:
    """A relay config (and its key and directory files) with the given parts replaced."""
    write_key_file(tmp / "node.key", KEYS)
    listed = Directory(
        (relay_info(KEYS, ("127.0.0.1", 7001)), relay_info(OTHER, ("127.0.0.1", 7002)))
    )
    (tmp / "directory.json").write_text(json.dumps(listed.to_json()))
    if key is not None:
        (tmp / "node.key").write_text(key if isinstance(key, str) else json.dumps(key))
    if directory is not None:
        text = directory if isinstance(directory, str) else json.dumps(directory)
        (tmp / "directory.json").write_text(text)
    path = tmp / "relay.json"
    if config is None:
        config = {"key_file": "node.key", "directory": "directory.json", "listen": "127.0.0.1:7001"}
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    return path


def _directory_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = Directory((relay_info(KEYS, ("127.0.0.1", 7001)),)).to_json()
    change(data)
    return data


def _config(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key_file": "node.key",
        "directory": "directory.json",
        "listen": "127.0.0.1:7001",
    }
    base.update(changes)
    return base


def _entry(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["relays"][0].update(changes)


RELAY_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("missing config", {"config": "<absent>"}, "cannot read config"),
    ("config not JSON", {"config": "{key_file: node.key"}, "is not JSON: line 1"),
    ("config not an object", {"config": "[1, 2]"}, "expected a JSON object"),
    ("key_file not a string", {"config": _config(key_file=42)}, "'key_file' must be a string"),
    ("listen without port", {"config": _config(listen="127.0.0.1")}, "listen: expected host:port"),
    ("listen port out of range", {"config": _config(listen="h:70000")}, "expected host:port"),
    ("loss not a number", {"config": _config(loss="x")}, "'loss' must be a number"),
    ("setup_rate not a number", {"config": _config(setup_rate="fast")}, "setup_rate must be"),
    ("setup_queue not an int", {"config": _config(setup_queue=2.5)}, "setup_queue must be"),
    ("puzzle_max too low", {"config": _config(puzzle_base=9, puzzle_max=4)}, "puzzle_base <="),
    ("path_mtu not an int", {"config": _config(path_mtu="1500")}, "'path_mtu' must be"),
    ("path_mtu below 1280", {"config": _config(path_mtu=576)}, "'path_mtu' must be"),
    ("path_mtu below the packets", {"config": _config(path_mtu=1400)}, "'path_mtu' 1400 is below"),
    ("key file not JSON", {"key": "not json"}, "is not JSON"),
    ("key file wrong type", {"key": {"type": "hornet-mixer-keys"}}, "not a hornet node key"),
    (
        "key file bad hex",
        {"key": {"type": "hornet-node-key", "secret": "zz" * 32, "local_secret": "00" * 32}},
        "secret: expected 32 bytes of hex",
    ),
    (
        "key file short local secret",
        {"key": {"type": "hornet-node-key", "secret": "11" * 32, "local_secret": "00" * 8}},
        "local_secret: expected 32 bytes of hex",
    ),
    (
        "key file zero scalar",
        {"key": {"type": "hornet-node-key", "secret": "00" * 32, "local_secret": "00" * 32}},
        "not a valid secp256k1 scalar",
    ),
    ("key file is a directory", {"key_dir": True}, "cannot read key file"),
    ("directory missing", {"config": _config(directory="absent.json")}, "cannot read directory"),
    ("directory not JSON", {"directory": "{"}, "is not JSON"),
    ("directory wrong version", {"directory": {"hornet_directory": 2}}, "not a hornet directory"),
    (
        "directory relays not a list",
        {"directory": {"hornet_directory": 1, "relays": {}}},
        "'relays' must be a list",
    ),
    (
        "directory entry not an object",
        {"directory": {"hornet_directory": 1, "relays": ["x"]}},
        "relays[0]: must be an object",
    ),
    (
        "directory entry bad hex",
        {"directory": _directory_with(_entry(node_id="xyz"))},
        "relays[0].node_id: expected 8 bytes of hex",
    ),
    (
        "directory entry id mismatch",
        {"directory": _directory_with(_entry(node_id=OTHER.node_id.hex()))},
        "node_id: does not match the public key",
    ),
    (
        "directory entry not a point",
        {"directory": _directory_with(_entry(public_key="05" + "11" * 32))},
        "not a valid secp256k1 point",
    ),
    (
        "directory entry address",
        {"directory": _directory_with(_entry(address="localhost"))},
        "relays[0].address: expected host:port",
    ),
    (
        "directory params",
        {"directory": _directory_with(lambda d: d.update(params={"max_hops": 0}))},
        "params.max_hops",
    ),
    (
        "directory lists a node twice",
        {"directory": _directory_with(lambda d: d["relays"].append(d["relays"][0]))},
        "lists a node id twice",
    ),
    ("state not a string", {"config": _config(state=5)}, "'state' must be a string"),
    ("state_sync unknown", {"config": _config(state_sync="sometimes")}, "'state_sync' must be"),
    ("native_loop not a bool", {"config": _config(native_loop="no")}, "'native_loop' must be"),
    ("state file not SQLite", {"state": b"not a database" * 100}, "state file"),
    ("state path a directory", {"state": "dir"}, "state file"),
    ("listen address not ours", {"config": _config(listen="203.0.113.5:7000")}, "assign"),
]


def _assert_one_clear_line(code: int, err: str, command: str, message: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"hornet {command}") and message in lines[0], lines[0]


@pytest.mark.parametrize(("case", "parts", "message"), RELAY_CASES, ids=[c[0] for c in RELAY_CASES])
def test_a_bad_relay_file_gives_one_clear_line_and_a_nonzero_exit(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    parts: dict[str, Any],
    message: str,
) -> None:
    config = parts.get("config")
    path = _relay_files(
        tmp_path,
        None if config == "<absent>" else config,
        key=parts.get("key"),
        directory=parts.get("directory"),
    )
    if config == "<absent>":
        path.unlink()
    state = parts.get("state")
    if state == "dir":
        (tmp_path / "node.key.state.sqlite").mkdir()
    elif state is not None:
        (tmp_path / "node.key.state.sqlite").write_bytes(state)
    if parts.get("key_dir"):
        (tmp_path / "node.key").unlink()
        (tmp_path / "node.key").mkdir()
    code = cli.main(["relay", "--config", str(path)])
    _assert_one_clear_line(code, capsys.readouterr().err, "relay", message)
    assert code == 2


# -- the mixer ----------------------------------------------------------------------------


def _mixer_files(tmp: Path, text: str, name: str = "mixer.toml") -> Path:
    path = tmp / name
    path.write_text(text.replace("STATE", str(tmp / "state")).replace("TMP", str(tmp)))
    return path


NODE = crypto.SecretKey(bytes(31) + b"\x07").public_key.hex()
MIXER_CASES: list[tuple[str, str, str, int]] = [
    ("not TOML", "[prices\nmessage = 1", "syntax error", 2),
    ("not JSON", "{", "syntax error", 2),
    ("no state_dir", 'listen = "127.0.0.1:0"', "state_dir is required", 2),
    ("state_dir not a string", "state_dir = 5", "state_dir", 2),
    ("unknown key", 'state_dir = "STATE"\npricez = 1', "pricez", 2),
    ("price wrong type", 'state_dir = "STATE"\n[prices]\nmessage = "one"', "prices.message", 2),
    (
        "peer bad hex",
        f'state_dir = "STATE"\n[[peers]]\nnode_id = "{"zz" * 33}"',
        "peers[0].node_id",
        2,
    ),
    (
        "peer wrong key type",
        f'state_dir = "STATE"\n[[peers]]\nnode_id = "{NODE[:64]}"',
        "peers[0].node_id",
        2,
    ),
    ("key file not JSON", 'state_dir = "STATE"\nlisten = "127.0.0.1:0"', "not a mixer key file", 2),
    ("key file bad hex", 'state_dir = "STATE"\nlisten = "127.0.0.1:0"', "not a mixer key file", 2),
    ("key file wrong shape", 'state_dir = "STATE"\nlisten = "127.0.0.1:0"', "not a mixer key", 2),
    ("state_dir is a file", 'state_dir = "TMP/plain"\nlisten = "127.0.0.1:0"', "", 1),
    (
        "relay directory bad entry",
        'state_dir = "STATE"\nlisten = "127.0.0.1:0"\n'
        '[relay]\nlisten = "127.0.0.1:0"\ndirectory = "TMP/directory.json"',
        "relays[0].address",
        2,
    ),
]
_MIXER_KEY_FILES = {
    "key file not JSON": "{{{",
    "key file bad hex": json.dumps({"node_secret": "zz", "master_secret": "00" * 32}),
    "key file wrong shape": json.dumps(["node_secret"]),
}


@pytest.mark.parametrize(
    ("case", "text", "message", "code"), MIXER_CASES, ids=[c[0] for c in MIXER_CASES]
)
def test_a_bad_mixer_file_gives_one_clear_line_and_a_nonzero_exit(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    text: str,
    message: str,
    code: int,
) -> None:
    name = "mixer.json" if case == "not JSON" else "mixer.toml"
    path = _mixer_files(tmp_path, text, name)
    if case in _MIXER_KEY_FILES:
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "mixer-keys.json").write_text(_MIXER_KEY_FILES[case])
        (tmp_path / "state" / "mixer-keys.json").chmod(0o600)
    (tmp_path / "plain").write_text("a file, not a folder")
    directory = Directory((relay_info(KEYS, ("127.0.0.1", 7001)),)).to_json()
    directory["relays"][0]["address"] = "no port"
    (tmp_path / "directory.json").write_text(json.dumps(directory))
    assert cli.main(["mixer", "--config", str(path)]) == code
    _assert_one_clear_line(code, capsys.readouterr().err, "mixer", message)


def test_a_missing_mixer_config_gives_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["mixer", "--config", str(tmp_path / "absent.toml")]) == 2
    _assert_one_clear_line(2, capsys.readouterr().err, "mixer", "cannot read the config file")


# -- unreadable files, in a real process ------------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder an unprivileged user can enter (tests may run as root)."""
    with tempfile.TemporaryDirectory(prefix="hornet-perm-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


def _unprivileged() -> list[str]:
    """A command prefix that runs as ``nobody`` when we are root (root reads files of any
    mode, so only an unprivileged process sees a permission error)."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    usable = shutil.which("setpriv") is not None and (
        subprocess.run(
            [*prefix, sys.executable, "-c", "import hornet"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if not usable:
        pytest.skip("running as root, and cannot start hornet as an unprivileged user here")
    return prefix


def _run(prefix: list[str], args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "hornet.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )


def test_unreadable_files_give_one_clear_line(shared_dir: Path) -> None:
    prefix = _unprivileged()
    relay = _relay_files(shared_dir)
    for path in (relay, shared_dir / "directory.json"):
        path.chmod(0o644)
    (shared_dir / "node.key").chmod(0o000)
    out = _run(prefix, ["relay", "--config", str(relay)])
    assert out.returncode != 0
    _assert_one_clear_line(out.returncode, out.stderr, "relay", "Permission denied")
    assert "cannot read key file" in out.stderr

    mixer = _mixer_files(shared_dir, 'state_dir = "STATE"')
    mixer.chmod(0o000)
    out = _run(prefix, ["mixer", "--config", str(mixer)])
    _assert_one_clear_line(out.returncode, out.stderr, "mixer", "cannot read the config file")
    assert out.returncode == 2

"""Inputs the fuzz suite found, replayed in the default run.

Config and key files that are not UTF-8, nest deeper than Python's recursion limit, hold
an integer of more than 4300 digits, or a number beyond the float range used to escape
the loaders as UnicodeDecodeError, RecursionError, ValueError or OverflowError (a
traceback instead of the ``ConfigError`` that names the file).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hornet.directory.model import Directory, load_key_file
from hornet.errors import ConfigError
from hornet.mixer.config import parse_config
from hornet.mixer.service import load_config_file, load_or_create_keys
from hornet.node.config import RelayConfig

BAD_FILES = {
    "not-utf8": b'{"hornet_directory": 1, "relays": [\xff\xfe]}',
    "too-deep": b"[" * 100_000,
    "too-deep-object": b'{"a":' * 50_000,
    "long-integer": b'{"type": ' + b"9" * 5000 + b"}",
}
LOADERS: dict[str, Callable[[Path], Any]] = {
    "Directory.load": Directory.load,
    "load_key_file": load_key_file,
    "mixer load_config_file (json)": load_config_file,
    "mixer load_or_create_keys": load_or_create_keys,
    "relay config": RelayConfig.load,
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("content", BAD_FILES)
def test_unusable_json_files_raise_config_error(tmp_path: Path, loader: str, content: str) -> None:
    path = tmp_path / "file.json"
    path.write_bytes(BAD_FILES[content])
    path.chmod(0o600)  # so that key loaders read the bytes (they refuse wider modes)
    with pytest.raises(ConfigError):
        LOADERS[loader](path)


@pytest.mark.parametrize("content", [b"a = " + b"1" * 5000, b"a = \xff"])
def test_unusable_toml_config_raises_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mixer.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError):
        load_config_file(path)


def test_a_number_beyond_the_float_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="lifetime_s"):
        parse_config(json.loads('{"scid": {"lifetime_s": 1' + "0" * 400 + "}}"))

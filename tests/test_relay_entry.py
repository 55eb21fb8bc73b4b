"""``hornet relay-entry``: what an operator publishes for the coming key epochs."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from hornet.cli.app import main
from hornet.core.keys import epoch_public_key
from hornet.core.params import Params
from hornet.directory.model import Directory, NodeKeys, write_key_file


def test_relay_entry_lists_the_setup_keys_of_the_coming_epochs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = NodeKeys.generate(random.Random(3))
    write_key_file(tmp_path / "relay.key", keys)
    config = tmp_path / "relay.json"
    config.write_text(json.dumps({"key_file": "relay.key", "listen": "127.0.0.1:9735"}))
    before = Params().epoch_of(time.time())
    assert main(["relay-entry", "--config", str(config), "--epochs", "3"]) == 0
    entry = json.loads(capsys.readouterr().out)
    directory = Directory.from_json({"hornet_directory": 1, "relays": [entry]})
    (relay,) = directory.relays
    assert relay.node_id == keys.node_id and relay.address == ("127.0.0.1", 9735)
    epochs = [k.epoch for k in relay.setup_keys]
    assert len(epochs) == 3 and epochs[0] in (before, before + 1)
    assert epochs == list(range(epochs[0], epochs[0] + 3))
    for key in relay.setup_keys:
        assert key.public_key == epoch_public_key(keys.local_secret, key.epoch)


def test_relay_entry_creates_the_key_on_first_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "relay.json"
    config.write_text(json.dumps({"key_file": "new.key", "listen": "127.0.0.1:9735"}))
    assert main(["relay-entry", "--config", str(config)]) == 0
    entry = json.loads(capsys.readouterr().out)
    key_file = tmp_path / "new.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    from hornet.directory.model import load_key_file

    keys = load_key_file(key_file)
    assert entry["node_id"] == keys.node_id.hex()
    # The relay started later from the same config serves under the same identity.
    assert main(["relay-entry", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["node_id"] == keys.node_id.hex()


def test_relay_entry_with_a_key_file_others_may_read_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_key_file(tmp_path / "relay.key", NodeKeys.generate(random.Random(3)))
    (tmp_path / "relay.key").chmod(0o644)
    config = tmp_path / "relay.json"
    config.write_text(json.dumps({"key_file": "relay.key", "listen": "127.0.0.1:9735"}))
    assert main(["relay-entry", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "relay.key" in err and "chmod 600" in err and "Traceback" not in err


def _entry(**changes: object) -> dict[str, object]:
    keys = NodeKeys.generate(random.Random(4))
    entry: dict[str, object] = {
        "node_id": keys.node_id.hex(),
        "public_key": keys.node_key.public_key.hex(),
        "address": "127.0.0.1:1",
        "setup_keys": {"7": epoch_public_key(keys.local_secret, 7).hex()},
    }
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    ("setup_keys", "message"),
    [
        ([], "expected an object"),
        ({"x": "00"}, "not an epoch number"),
        ({"-1": "00"}, "not an epoch number"),
        ({"7": "zz"}, "33 bytes of hex"),
        ({"7": "02" + "00" * 32}, "not a valid secp256k1 point"),
    ],
)
def test_bad_setup_keys_in_a_directory_are_clear_errors(setup_keys: object, message: str) -> None:
    from hornet.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        Directory.from_json({"hornet_directory": 1, "relays": [_entry(setup_keys=setup_keys)]})
    good = Directory.from_json({"hornet_directory": 1, "relays": [_entry()]})
    assert good.relays[0].setup_key(7) is not None and good.relays[0].setup_key(8) is None
    assert Directory.from_json(good.to_json()) == good

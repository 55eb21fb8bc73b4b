"""Config parsing and ``mixer_main``: clear errors, no tracebacks, a clean start."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hornet.core import crypto
from hornet.credentials.payments import VoucherPayments
from hornet.directory.model import Directory, NodeKeys, relay_info
from hornet.errors import ConfigError
from hornet.mixer.config import parse_config
from hornet.mixer.service import load_config_file, mint_voucher, mixer_main

NODE = crypto.SecretKey(bytes(31) + b"\x07").public_key.hex()

GOOD_TOML = f"""
listen = "127.0.0.1:0"
state_dir = "STATE"

[prices]
message = 1
scid_register = 2
scid_renew = 1
circuit_open = 5

[credentials]
issuance_k = 16

[scid]
lifetime_s = 300

[limits]
incoming_client = {{ rate = 5, burst = 10 }}
incoming_peer = "eclair"
queue_messages = 20

[limits.profiles.cln]
rate = 8
burst = 8

[backpressure]
recover_s = 20

[hints]
entries = 4

[[peers]]
node_id = "{NODE}"
address = "127.0.0.1:9999"
profile = "lnd"

[[channels]]
scid = "800000x12x1"
node_id = "{NODE}"
"""


def _write(tmp_path: Path, text: str, name: str = "mixer.toml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("STATE", str(tmp_path / "state")))
    return path


def test_a_full_config_parses(tmp_path: Path) -> None:
    config = load_config_file(_write(tmp_path, GOOD_TOML))
    assert config.prices.circuit_open == 5
    assert config.credential_params.issuance_k == 16
    assert config.incoming_client.rate == 5 and config.incoming_peer.window
    assert config.profiles["cln"].rate == 8
    assert config.peers[0].profile == "lnd" and config.peers[0].address == ("127.0.0.1", 9999)
    assert config.channels == (((800_000 << 40) | (12 << 16) | 1, bytes.fromhex(NODE)),)
    assert config.listen == ("127.0.0.1", 0)
    as_json = _write(tmp_path, json.dumps({"state_dir": "x", "prices": {"message": 3}}), "m.json")
    assert load_config_file(as_json).prices.message == 3


@pytest.mark.parametrize(("data", "field"), [
    ({"pricez": {}}, "pricez"),
    ({"prices": {"message": "one"}}, "prices.message"),
    ({"prices": {"message": -1}}, "price message"),
    ({"scid": {"lifetime_s": 0}}, "scid.lifetime_s"),
    ({"limits": {"incoming_client": "nonsense"}}, "incoming_client"),
    ({"limits": {"incoming_client": {"rate": 0, "burst": 1}}}, "incoming_client"),
    ({"peers": [{"node_id": "00" * 33}]}, "peers[0].node_id"),
    ({"peers": [{"node_id": NODE, "profile": "btcd"}]}, "profile"),
    ({"channels": [{"scid": "1x2", "node_id": NODE}]}, "channels[0].scid"),
    ({"listen": "nowhere"}, "listen"),
    ({"credentials": {"k": 99}}, "credentials"),
])
def test_bad_configs_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_config(data)


@pytest.mark.parametrize("text", ["[prices\nmessage = 1", 'listen = "x"', "state_dir = 5",
                                  "[prices]\nmessage = 1"])
def test_mixer_main_rejects_bad_configs_without_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    assert mixer_main(str(_write(tmp_path, text))) == 2
    err = capsys.readouterr().err
    assert err.startswith("hornet mixer: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_mixer_main_reports_a_missing_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert mixer_main(str(tmp_path / "absent.toml")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_mixer_main_starts_and_stops_cleanly(tmp_path: Path) -> None:
    config = _write(tmp_path, GOOD_TOML)
    code = voucher = mint_voucher(str(config), 10)
    assert len(code) == 64
    payments = VoucherPayments(tmp_path / "state" / "credentials.sqlite")
    assert payments.paid_amount(bytes.fromhex(voucher)) == 10
    payments.close()
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from hornet.mixer.service import mixer_main; "
         "sys.exit(mixer_main(sys.argv[1]))", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("hornet mixer: node ") and "listening on tcp 127.0.0.1:" in line
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    keys = json.loads((tmp_path / "state" / "mixer-keys.json").read_text())
    assert (tmp_path / "state" / "mixer-keys.json").stat().st_mode & 0o077 == 0
    assert keys["node_id"] in line


def test_mixer_main_serves_metrics_at_the_configured_address(tmp_path: Path) -> None:
    config = _write(tmp_path, 'metrics = "127.0.0.1:0"\n' + GOOD_TOML)
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from hornet.mixer.service import mixer_main; "
         "sys.exit(mixer_main(sys.argv[1]))", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert second.startswith("hornet mixer: metrics on http://127.0.0.1:"), second
        url = second.rsplit(" ", 1)[1].strip()
        text = httpx.get(url, timeout=10).text
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    node_id = first.split()[3]
    assert f'hornet_mixer_node_info{{node_id="{node_id}"}} 1.0' in text
    assert "hornet_mixer_forwarded_total 0.0" in text
    assert proc.returncode == 0 and "Traceback" not in err


def test_the_relay_section_parses_and_its_keys_go_together() -> None:
    config = parse_config({"prices": {"circuit_open": 3},
                           "relay": {"listen": "127.0.0.1:9737", "directory": "dir.json",
                                     "max_lifetime_s": 120, "setup_queue": 8}})
    assert config.relay_listen == ("127.0.0.1", 9737) and config.relay_directory == "dir.json"
    assert config.circuit_max_lifetime_s == 120 and config.relay_setup_queue == 8
    with pytest.raises(ConfigError, match=r"relay\.listen and relay\.directory"):
        parse_config({"relay": {"listen": "127.0.0.1:9737"}})
    with pytest.raises(ConfigError, match=r"relay\.max_lifetime_s"):
        parse_config({"relay": {"max_lifetime_s": 0}})
    with pytest.raises(ConfigError, match=r"relay\.bogus"):
        parse_config({"relay": {"bogus": 1}})


def test_mixer_main_runs_the_relay_and_prints_its_directory_entry(tmp_path: Path) -> None:
    other = NodeKeys.generate(random.Random(1))
    Directory((relay_info(other, ("127.0.0.1", 9)),)).write(tmp_path / "directory.json")
    config = _write(tmp_path, GOOD_TOML + f"""
[relay]
listen = "127.0.0.1:0"
directory = "{tmp_path / 'directory.json'}"
""")
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from hornet.mixer.service import mixer_main; "
         "sys.exit(mixer_main(sys.argv[1]))", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert first.startswith("hornet mixer: node ")
    assert second.startswith("hornet mixer: relay ") and "directory entry" in second
    entry = json.loads(second.split("directory entry ", 1)[1])
    listed = Directory.from_json({"hornet_directory": 1, "relays": [entry]})
    assert listed.relays[0].node_id.hex() == entry["node_id"] != other.node_id.hex()
    assert "is not in" in err and "Traceback" not in err
    assert proc.returncode == 0

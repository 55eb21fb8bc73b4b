"""``hornet mixer`` with ``authorities``: the running mixer process starts its relay from
the authorities' k-of-n consensus and publishes the relay's entry with the mixer's
signed listing, so the consensus lists the mixer with the issuer keys it shows in INFO
and a wallet built from that consensus accepts it. Config errors are one line, exit 2."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
import trio

from hornet.authority import Authority, AuthorityKey
from hornet.authority.service import serve_authority
from hornet.core import crypto
from hornet.core.chdr import TYPE_SETUP
from hornet.core.params import Params
from hornet.credentials.params import verify_issuer_params
from hornet.directory.fetch import DirectoryClient, publish_entry
from hornet.directory.model import Directory, NodeKeys, format_address, relay_info
from hornet.errors import ConfigError, IssuerKeyMismatchError
from hornet.mixer.client import MixerClient
from hornet.mixer.config import parse_config
from hornet.mixer.engine import mixer_listing
from hornet.mixer.entry import EntryRelay, relay_keys, serve_entry_relay
from hornet.mixer.keys import derive_issuer_key
from hornet.mixer.network import PeerNetwork
from hornet.mixer.service import load_config_file, mixer_main
from hornet.mixer.session import Wallet
from hornet.testing.memnet import MemoryNetwork

PARAMS = Params()
RNG = random.Random(1717)
AUTHORITY_KEYS = [AuthorityKey.generate(RNG) for _ in range(3)]
TRUSTED = frozenset(key.public for key in AUTHORITY_KEYS)
RELAYS = [NodeKeys.generate(RNG) for _ in range(3)]


def _config(tmp_path: Path, urls: list[str], changes: dict[str, object] | None = None) -> Path:
    section = {"urls": urls, "keys": [key.public.hex() for key in AUTHORITY_KEYS],
               "threshold": 2, "cache": "directory-cache.json", **(changes or {})}
    path = tmp_path / "mixer.json"
    path.write_text(json.dumps({
        "listen": "127.0.0.1:0", "state_dir": "state", "prices": {"circuit_open": 5},
        "relay": {"listen": "127.0.0.1:0"}, "authorities": section,
    }))
    return path


async def _directory_listing_a_mixer(client: DirectoryClient) -> Directory:
    while True:
        directory = await client.fetch()
        if directory.mixers:
            return directory
        await trio.sleep(0.2)


async def test_a_running_mixer_is_listed_by_the_authorities_and_a_wallet_accepts_it(
        tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        urls = []
        for i, key in enumerate(AUTHORITY_KEYS):
            address = await nursery.start(partial(
                serve_authority, Authority(key, PARAMS), ("127.0.0.1", 0),
                state_dir=tmp_path / f"authority{i}", publish_interval_s=0.5))
            urls.append(f"http://127.0.0.1:{address[1]}")
        for j, relay in enumerate(RELAYS):
            assert await publish_entry(urls, relay, ("127.0.0.1", 7000 + j), PARAMS) == 3
        await trio.sleep(1.2)  # each authority has published a document with the relays
        config = _config(tmp_path, urls)
        proc = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; from hornet.mixer.service import mixer_main; "
             "sys.exit(mixer_main(sys.argv[1]))", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            with trio.fail_after(60):
                lines = [await trio.to_thread.run_sync(proc.stdout.readline) for _ in range(3)]
            node_line, relay_line, publish_line = lines
            assert node_line.startswith("hornet mixer: node "), (lines, proc.poll())
            mixer_id = bytes.fromhex(node_line.split()[3])
            tcp_port = int(node_line.split("listening on tcp ")[1].split()[0].rsplit(":", 1)[1])
            entry = json.loads(relay_line.split("directory entry ", 1)[1])
            assert "3 authorities" in publish_line
            # The mixer started its relay from the consensus, cached next to its config.
            assert (tmp_path / "directory-cache.json").exists()

            with trio.fail_after(30):
                directory = await _directory_listing_a_mixer(
                    DirectoryClient(urls, TRUSTED, 2))
            (listing,) = directory.mixers
            assert listing.node_id == mixer_id
            relay = directory.get(bytes.fromhex(entry["node_id"]))
            assert relay is not None and relay.public_key.hex() == entry["public_key"]
            assert format_address(relay.address) == entry["address"]
            current = listing.credential_params.epoch_at(time.time())
            assert {current, current + 1} <= set(listing.epochs)

            # The wallet from the consensus accepts the running mixer: INFO's signed
            # issuer keys are the ones listed (``Wallet.learn`` raises otherwise).
            wallet = Wallet.from_directory(directory, mixer_id)
            key = crypto.SecretKey.from_rng(RNG)
            net = PeerNetwork(key, directory={mixer_id: ("127.0.0.1", tcp_port)}, rng=RNG)
            await nursery.start(net.serve)
            client = MixerClient.create(net, key, wallet, rng=RNG)
            await nursery.start(client.run)
            with trio.fail_after(30):
                info = await client.get_info()
            assert info.node_id == mixer_id and info.relay_key == relay.public_key
            shown = [verify_issuer_params(signed, mixer_id) for signed in info.signed_params]
            assert shown
            for verified in shown:
                listed = listing.issuer_key(verified.public.epoch)
                assert listed is not None and listed.encode() == verified.public.encode()

            # Control: a listing with other issuer keys is refused by the same check.
            forged = mixer_listing(listing.credential_params, mixer_id,
                                   lambda epoch: derive_issuer_key(bytes(32), epoch),
                                   time.time())
            other = crypto.SecretKey.from_rng(RNG)
            other_net = PeerNetwork(other, directory={mixer_id: ("127.0.0.1", tcp_port)},
                                    rng=RNG)
            await nursery.start(other_net.serve)
            fooled = MixerClient.create(other_net, other, Wallet(forged), rng=RNG)
            await nursery.start(fooled.run)
            with trio.fail_after(30), pytest.raises(IssuerKeyMismatchError):
                await fooled.get_info()

            proc.send_signal(signal.SIGINT)
            _, err = await trio.to_thread.run_sync(partial(proc.communicate, timeout=60))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("authorities", "message"), [
    ({"urls": ["ftp://nowhere"]}, "authorities.urls"),
    ({"keys": ["00"]}, "authorities.keys[0]"),
    ({"threshold": 4}, "authorities.threshold"),
    ({"cache": 7}, "authorities.cache"),
    ({"bogus": 1}, "unknown key 'bogus'"),
])
def test_a_bad_authorities_setting_is_one_line_naming_the_file_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], authorities: dict[str, object],
        message: str) -> None:
    config = _config(tmp_path, ["http://127.0.0.1:9"], authorities)
    assert mixer_main(str(config)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"hornet mixer: {config}: ") and message in err


def test_authorities_need_the_relay_and_replace_its_directory_file(tmp_path: Path) -> None:
    urls = ["http://127.0.0.1:9"]
    config = _config(tmp_path, urls)
    data = json.loads(config.read_text())
    del data["relay"]
    config.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"authorities need relay\.listen"):
        load_config_file(config)
    data["relay"] = {"listen": "127.0.0.1:0", "directory": "directory.json"}
    config.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"relay\.directory or authorities, not both"):
        load_config_file(config)
    with pytest.raises(ConfigError, match="authorities is read from a config file"):
        parse_config({"authorities": {}})
    with pytest.raises(ConfigError, match=r"relay\.public_address .* give authorities"):
        parse_config({"relay": {"listen": "127.0.0.1:0", "directory": "d.json",
                                "public_address": "192.0.2.1:9737"}})


def test_the_authorities_cache_path_is_relative_to_the_config_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    config = _config(folder, ["http://127.0.0.1:9"])
    data = json.loads(config.read_text())
    data["relay"]["public_address"] = "192.0.2.1:9737"
    config.write_text(json.dumps(data))
    monkeypatch.chdir(tmp_path)
    loaded = load_config_file(Path("etc") / "mixer.json")
    assert loaded.authorities is not None
    assert loaded.authorities.cache == folder.resolve() / "directory-cache.json"
    assert loaded.authorities.keys == TRUSTED and loaded.authorities.threshold == 2
    assert loaded.relay_public_address == ("192.0.2.1", 9737)


async def test_a_refreshed_directory_reaches_the_mixer_relays_gate_and_link_layer(
        tmp_path: Path) -> None:
    """``EntryRelay.replace_directory`` (what the consensus refresh calls): a relay that
    joins the network later may send the mixer's relay setups, and its link key is known."""
    mem = MemoryNetwork()
    keys = relay_keys(bytes(range(32)))
    old, newcomer = RELAYS[0], RELAYS[1]
    for link in (False, True):
        sock = await mem.bind(("127.0.0.1", 0))
        joined = await mem.bind(("127.0.0.1", 0))
        before = Directory((relay_info(keys, sock.address), relay_info(old, ("127.0.0.1", 1))))
        after = Directory((*before, relay_info(newcomer, joined.address)))
        async with trio.open_nursery() as nursery:
            entry: EntryRelay = await nursery.start(
                lambda task_status, s=sock, lk=link: serve_entry_relay(
                    keys, before, s.address, sock=s, link=lk,
                    state=tmp_path / f"relay{lk}.sqlite", task_status=task_status))
            if link:
                resolve = entry._link.endpoint.resolve  # type: ignore[union-attr]
                assert resolve(joined.address) is None
                entry.replace_directory(after)
                resolve = entry._link.endpoint.resolve  # type: ignore[union-attr]
                assert resolve(joined.address) == newcomer.node_key.public_key
            else:
                setup = bytes((TYPE_SETUP,)) + bytes(200)
                await joined.send(setup, entry.address)
                with trio.fail_after(5):
                    while entry.statistics()["dropped_unpaid_setup"] < 1:
                        await trio.sleep(0.01)
                entry.replace_directory(after)
                assert entry.node.directory == after
                await joined.send(setup, entry.address)
                with trio.fail_after(5):
                    while not entry.node.statistics().dropped:
                        await trio.sleep(0.01)  # the relay itself saw (and dropped) it
                assert entry.statistics()["dropped_unpaid_setup"] == 1
            nursery.cancel_scope.cancel()

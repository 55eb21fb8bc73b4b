"""Authorities over HTTP: relays upload signed entries, nodes fetch a k-of-n directory,
cache it, and fall back to the cache while the authorities are unreachable."""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

import httpx
import trio

from hornet.authority import Authority, AuthorityKey
from hornet.authority.service import serve_authority
from hornet.core.params import Params
from hornet.directory.fetch import DirectoryClient, publish_entry
from hornet.directory.model import NodeKeys

PARAMS = Params()


async def _authorities(
    nursery: trio.Nursery, tmp: Path, keys: list[AuthorityKey], interval: float = 0.5
) -> list[str]:
    urls = []
    for i, key in enumerate(keys):
        address = await nursery.start(
            partial(
                serve_authority,
                Authority(key, PARAMS),
                ("127.0.0.1", 0),
                state_dir=tmp / f"authority{i}",
                publish_interval_s=interval,
            )
        )
        urls.append(f"http://127.0.0.1:{address[1]}")
    return urls


async def test_relays_publish_and_nodes_fetch_a_2_of_3_directory(tmp_path: Path) -> None:
    rng = random.Random(60)
    keys = [AuthorityKey.generate(rng) for _ in range(3)]
    trusted = {key.public for key in keys}
    relays = [NodeKeys.generate(rng) for _ in range(4)]
    async with trio.open_nursery() as nursery:
        urls = await _authorities(nursery, tmp_path, keys)
        for j, relay in enumerate(relays):
            assert await publish_entry(urls, relay, ("127.0.0.1", 7100 + j), PARAMS) == 3
        await trio.sleep(1.2)  # each authority has published since
        client = DirectoryClient(urls, trusted, 2, cache=tmp_path / "cache.json")
        directory = await client.fetch()
        assert {r.node_id for r in directory} == {r.node_id for r in relays}
        assert client.valid_until > client.fetched_at
        async with httpx.AsyncClient() as http:
            previous = await http.get(f"{urls[0]}/directory/previous")
            current = await http.get(f"{urls[0]}/directory")
            assert previous.status_code == 200 and previous.json() != current.json()
            assert previous.json()["valid_after"] <= current.json()["valid_after"]
            garbage = await http.post(f"{urls[0]}/entry", content=b"{not json")
            assert garbage.status_code == 400
            huge = await http.post(f"{urls[0]}/entry", content=b" " * 100_000)
            assert huge.status_code == 413
        # The authorities are unreachable: a node starts from its cache.
        offline = DirectoryClient(["http://127.0.0.1:1"], trusted, 2, cache=tmp_path / "cache.json")
        assert await offline.fetch() == directory
        nursery.cancel_scope.cancel()


async def test_a_restarted_authority_keeps_its_relays_and_documents(tmp_path: Path) -> None:
    rng = random.Random(61)
    keys = [AuthorityKey.generate(rng)]
    relay = NodeKeys.generate(rng)
    async with trio.open_nursery() as nursery:
        (url,) = await _authorities(nursery, tmp_path, keys, interval=60)
        assert await publish_entry([url], relay, ("127.0.0.1", 7200), PARAMS) == 1
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        (url,) = await _authorities(nursery, tmp_path, keys, interval=60)
        client = DirectoryClient([url], {keys[0].public}, 1)
        assert [r.node_id for r in await client.fetch()] == [relay.node_id]
        nursery.cancel_scope.cancel()


def _cli(argv: list[str]) -> tuple[int, str]:
    import io
    import sys

    from hornet import cli

    err, sys.stderr = sys.stderr, io.StringIO()
    try:
        code = cli.main(argv)
        return code, sys.stderr.getvalue()
    finally:
        sys.stderr = err


def test_authority_and_relay_config_errors_exit_2_naming_the_key(tmp_path: Path) -> None:
    import json

    assert _cli(["authority", "init", "--out", str(tmp_path / "a.key")])[0] == 0
    code, err = _cli(["authority", "init", "--out", str(tmp_path / "a.key")])
    assert code == 2 and "never overwritten" in err
    good = {"key_file": "a.key", "listen": "127.0.0.1:1", "state_dir": "s"}
    cases = [
        ({**good, "valdity_s": 5}, "unknown key 'valdity_s'"),
        ({**good, "publish_interval_s": 4000, "validity_s": 3600}, "below 'validity_s'"),
        ({**good, "params": {"hops": 3}}, "unknown field 'hops'"),
    ]
    for config, message in cases:
        (tmp_path / "authority.json").write_text(json.dumps(config))
        code, err = _cli(["authority", "serve", "--config", str(tmp_path / "authority.json")])
        assert code == 2 and message in err and str(tmp_path / "authority.json") in err, err
    (tmp_path / "a.key").chmod(0o640)
    (tmp_path / "authority.json").write_text(json.dumps(good))
    code, err = _cli(["authority", "serve", "--config", str(tmp_path / "authority.json")])
    assert code == 2 and "chmod 600" in err

    relay = {"key_file": "n.key", "listen": "127.0.0.1:1"}
    authorities = {"urls": ["http://127.0.0.1:1"], "keys": ["ab" * 32]}
    relay_cases = [
        ({**relay, "authorities": authorities, "directory": "d.json"}, "not both"),
        ({**relay, "authorities": {**authorities, "keys": ["ab"]}}, "authorities.keys[0]"),
        ({**relay, "authorities": {**authorities, "threshold": 2}}, "threshold must be in [1, 1]"),
        ({**relay, "authorities": {**authorities, "url": []}}, "unknown key 'url'"),
        ({**relay, "authorities": {**authorities, "urls": ["ftp://x"]}}, "http(s) URLs"),
    ]
    for config, message in relay_cases:
        (tmp_path / "relay.json").write_text(json.dumps(config))
        code, err = _cli(["relay", "--config", str(tmp_path / "relay.json")])
        assert code == 2 and message in err, err


def test_a_relay_with_no_reachable_authority_and_no_cache_exits_1(tmp_path: Path) -> None:
    import json

    relay = {
        "key_file": "n.key",
        "listen": "127.0.0.1:47411",
        "authorities": {"urls": ["http://127.0.0.1:1"], "keys": ["ab" * 32]},
    }
    (tmp_path / "relay.json").write_text(json.dumps(relay))
    code, err = _cli(["relay", "--config", str(tmp_path / "relay.json")])
    assert code == 1 and "no directory from the authorities" in err
    assert "Traceback" not in err


async def test_the_directory_age_restarts_at_each_refresh_and_grows_on_the_cache(
    tmp_path: Path,
) -> None:
    """A relay's ``directory_age_seconds`` counts from the last successful fetch, even
    when the directory did not change; while the authorities are down and the node runs
    on its cache, it counts from when the cache was written."""
    rng = random.Random(62)
    keys = [AuthorityKey.generate(rng)]
    relay = NodeKeys.generate(rng)
    refreshed: list[float] = []
    changed: list[object] = []
    async with trio.open_nursery() as nursery:
        (url,) = await _authorities(nursery, tmp_path, keys, interval=60)
        assert await publish_entry([url], relay, ("127.0.0.1", 7300), PARAMS) == 1
        cache = tmp_path / "cache.json"
        client = DirectoryClient([url], {keys[0].public}, 1, cache=cache, refresh_s=1)
        await client.fetch()
        nursery.start_soon(
            partial(client.run, changed.append, on_refresh=refreshed.append, retry_s=1)
        )
        await trio.sleep(3.5)
        assert len(refreshed) >= 2 and not changed  # refreshed, never changed
        assert refreshed == sorted(refreshed) and refreshed[-1] > refreshed[0]
        written = cache.stat().st_mtime
        nursery.cancel_scope.cancel()
    offline = DirectoryClient(["http://127.0.0.1:1"], {keys[0].public}, 1, cache=cache)
    await trio.sleep(1.1)
    await offline.fetch()
    assert offline.fetched_at == written  # the cache's age, not the time of this start


async def test_a_cache_that_cannot_be_written_does_not_stop_the_node(tmp_path: Path) -> None:
    """Two nodes sharing one cache file (a config folder shared by mistake) refresh at
    the same moment many times, and a third node's cache folder does not exist: every
    fetch gives the directory, and the shared cache stays a whole file."""
    rng = random.Random(63)
    keys = [AuthorityKey.generate(rng)]
    relay = NodeKeys.generate(rng)
    async with trio.open_nursery() as nursery:
        (url,) = await _authorities(nursery, tmp_path, keys, interval=0.5)
        assert await publish_entry([url], relay, ("127.0.0.1", 7400), PARAMS) == 1
        await trio.sleep(1.2)  # the authority has published since
        trusted = {keys[0].public}
        shared = [DirectoryClient([url], trusted, 1, cache=tmp_path / "c.json") for _ in range(2)]
        lost = DirectoryClient([url], trusted, 1, cache=tmp_path / "missing" / "c.json")
        results: list[int] = []

        async def fetch(client: DirectoryClient) -> None:
            for _ in range(15):
                results.append(len(await client.fetch()))

        async with trio.open_nursery() as fetchers:
            for client in [*shared, lost]:
                fetchers.start_soon(fetch, client)
        assert results == [1] * 45
        assert DirectoryClient(["http://127.0.0.1:1"], trusted, 1, cache=tmp_path / "c.json")\
            .load_cache()
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
        nursery.cancel_scope.cancel()

"""A node's side of the authorities (httpx): publish its entry, fetch the directory.

``DirectoryClient`` fetches every authority's document, keeps the k-of-n consensus
(``document.consensus``), caches the documents on disk, and refreshes before the
consensus expires: a node restarted while the authorities are unreachable starts from
its cache as long as that is still valid. ``publish_entry`` uploads a relay's entry
with the setup keys of the current and coming key epochs, signed by its identity key
(and, for a mixer's relay, the mixer's listing signed by the mixer, ``extra``).

Hidden services: ``publish_descriptor`` uploads a signed descriptor under the service's
name (``descriptor.py``); ``DescriptorSource`` fetches the newest one by name.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import httpx
import trio

from hornet.core.crypto import SecretKey
from hornet.core.params import Params
from hornet.core.rendezvous import Descriptor
from hornet.directory.descriptor import newest, sign_descriptor
from hornet.directory.document import MAX_RELAYS, consensus, sign_entry
from hornet.directory.model import Address, Directory, NodeKeys, relay_info
from hornet.errors import ConfigError, HornetError

log = logging.getLogger("hornet.authority")

MAX_DOCUMENT = 2 * 1024 * 1024 + MAX_RELAYS * 400  # bytes read from one authority
MAX_DESCRIPTOR_BODY = 16 * 1024  # bytes read for one descriptor


async def publish_entry(
    urls: Sequence[str],
    keys: NodeKeys,
    address: Address,
    params: Params,
    *,
    epochs: int = 3,
    now: float | None = None,
    timeout: float = 5.0,
    extra: dict[str, Any] | None = None,
) -> int:
    """Upload this relay's signed entry (setup keys for ``epochs`` key epochs from now) to
    every authority; returns how many accepted it. ``extra``: more entry fields."""
    now = time.time() if now is None else now
    entry = relay_info(keys, address, params, now=now, epochs=epochs).to_json()
    entry.update(extra or {})
    body = sign_entry(keys.node_key, entry, int(now), secrets.token_bytes(32))
    return await _post_to_all(urls, "entry", body, timeout)


async def _post_to_all(urls: Sequence[str], what: str, body: Any, timeout: float) -> int:
    """POST ``body`` to ``/what`` at every authority; how many accepted it (200)."""
    accepted = 0
    async with httpx.AsyncClient(timeout=timeout) as client:
        for url in urls:
            try:
                response = await client.post(f"{url.rstrip('/')}/{what}", json=body)
            except httpx.HTTPError as exc:
                log.warning("authority %s unreachable: %s", url, exc)
                continue
            if response.status_code == 200:
                accepted += 1
            else:
                log.warning("authority %s refused the %s: %s", url, what, response.text[:200])
    return accepted


class DirectoryUnavailableError(HornetError):
    """Fewer than the threshold of authority documents verify, and no valid cache."""


class DirectoryClient:
    """The directory a node uses, from ``threshold`` of the trusted authorities."""

    def __init__(
        self,
        urls: Sequence[str],
        trusted: Collection[bytes],
        threshold: int,
        *,
        cache: str | Path | None = None,
        timeout: float = 5.0,
        refresh_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= threshold <= len(trusted):
            raise ConfigError(f"threshold must be in [1, {len(trusted)}]")
        self.urls = list(urls)
        self.trusted = frozenset(trusted)
        self.threshold = threshold
        self.cache = Path(cache) if cache is not None else None
        self.timeout = timeout
        self.refresh_s = refresh_s
        self.clock = clock
        self.directory: Directory | None = None
        self.valid_until = 0
        self.fetched_at = 0.0

    async def fetch(self) -> Directory:
        """Fetch, verify and cache the documents; ``ConfigError`` if fewer than the
        threshold verify (the cache, when still valid, is used instead)."""
        documents: list[Any] = []
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            for url in self.urls:
                try:
                    response = await client.get(f"{url.rstrip('/')}/directory")
                    if response.status_code == 200 and len(response.content) <= MAX_DOCUMENT:
                        documents.append(response.json())
                except (httpx.HTTPError, ValueError) as exc:
                    log.warning("authority %s: %s", url, exc)
        try:
            directory, valid_until = consensus(
                documents, self.trusted, self.threshold, self.clock()
            )
        except HornetError as exc:
            if self.load_cache():
                assert self.directory is not None
                log.warning("authorities unreachable or unverified: using the cached directory")
                return self.directory
            raise DirectoryUnavailableError(f"no directory from the authorities: {exc}") from None
        self._use(directory, valid_until)
        if self.cache is not None:
            try:
                await trio.to_thread.run_sync(self._write_cache, documents)
            except OSError as exc:  # the directory is good; only a restart loses it
                log.warning("cannot write the directory cache %s: %s", self.cache, exc)
        return directory

    def load_cache(self) -> bool:
        """Use the cached documents if they still give a valid consensus."""
        if self.cache is None or not self.cache.exists():
            return False
        try:
            documents = json.loads(self.cache.read_text(encoding="utf-8"))
            directory, valid_until = consensus(
                documents, self.trusted, self.threshold, self.clock()
            )
            fetched_at = self.cache.stat().st_mtime
        except (OSError, ValueError, RecursionError, HornetError):
            return False
        self._use(directory, valid_until, fetched_at)
        return True

    def _use(self, directory: Directory, valid_until: int, fetched_at: float | None = None) -> None:
        """Use ``directory``; ``fetched_at``: when it came from the authorities (the cache
        file's time for a cached one), so a node's directory age keeps growing while it
        runs on its cache."""
        self.directory, self.valid_until = directory, valid_until
        self.fetched_at = self.clock() if fetched_at is None else fetched_at

    def _write_cache(self, documents: list[Any]) -> None:
        """Write a temporary file of this process's own, then rename it over the cache:
        readers, and other writers of the same cache, see a whole file or the old one."""
        assert self.cache is not None
        temporary = self.cache.with_name(f"{self.cache.name}.{os.getpid()}.{id(self):x}.tmp")
        try:
            temporary.write_text(json.dumps(documents))
            os.replace(temporary, self.cache)
        finally:
            temporary.unlink(missing_ok=True)

    def refresh_in(self) -> float:
        """Seconds until the next fetch: ``refresh_s``, or sooner, half-way to expiry."""
        return max(1.0, min(self.refresh_s, (self.valid_until - self.clock()) / 2))

    async def run(
        self,
        on_directory: Callable[[Directory], None],
        *,
        on_refresh: Callable[[float], None] | None = None,
        retry_s: float = 10.0,
    ) -> None:
        """Refresh before expiry until cancelled, handing each new directory over.
        ``on_refresh(fetched_at)`` after every refresh, changed or not: when the
        directory in use was last fetched (a relay's directory age metric)."""
        while True:
            await trio.sleep(self.refresh_in() if self.directory is not None else retry_s)
            previous = self.directory
            try:
                directory = await self.fetch()
            except HornetError as exc:
                log.warning("directory refresh failed: %s", exc)
                await trio.sleep(retry_s)
                continue
            if directory != previous:
                on_directory(directory)
            if on_refresh is not None:
                on_refresh(self.fetched_at)


async def publish_forever(
    urls: Sequence[str],
    keys: NodeKeys,
    address: Address,
    params: Params,
    *,
    extra: Callable[[float], dict[str, Any]] | None = None,
) -> None:
    """Upload this relay's entry every quarter key epoch, so the authorities always hold
    its setup keys for the coming epochs; until cancelled. ``extra(now)``: more entry
    fields, made afresh for each upload (a mixer's relay: ``{"mixer": ...}`` from
    ``sign_mixer_listing``, so its issuer keys for the coming credential epochs too)."""
    while True:
        now = time.time()
        fields = extra(now) if extra is not None else None
        accepted = await publish_entry(urls, keys, address, params, now=now, extra=fields)
        log.info("entry published to %d of %d authorities", accepted, len(urls))
        await trio.sleep(max(1.0, params.epoch_s / 4))


async def publish_descriptor(
    urls: Sequence[str],
    key: SecretKey,
    descriptor: Descriptor,
    *,
    now: float | None = None,
    timeout: float = 5.0,
) -> int:
    """Upload ``descriptor`` signed by the service key ``key`` to every authority;
    returns how many accepted it."""
    now = time.time() if now is None else now
    body = sign_descriptor(key, descriptor, int(now), secrets.token_bytes(32))
    return await _post_to_all(urls, "descriptor", body, timeout)


class DescriptorUnavailableError(HornetError):
    """No authority holds a valid descriptor signed under the service's name."""


class DescriptorSource:
    """A hidden service's current descriptor, by name (its 32-byte x-only key), from
    the authorities: ``await get()`` fetches when the one held is older than
    ``refresh_s`` or within ``margin_s`` of its EXP, else returns it."""

    def __init__(
        self,
        urls: Sequence[str],
        service: bytes,
        params: Params,
        *,
        timeout: float = 5.0,
        refresh_s: float = 10.0,
        margin_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(service) != 32:
            raise ConfigError("a service name is a 32-byte key (64 hex digits)")
        self.urls = list(urls)
        self.service = service
        self.params = params
        self.timeout = timeout
        self.refresh_s = refresh_s
        self.margin_s = margin_s
        self.clock = clock
        self.descriptor: Descriptor | None = None
        self.fetched_at = 0.0

    async def fetch(self) -> Descriptor:
        """Ask every authority; the newest descriptor that verifies, or
        ``DescriptorUnavailableError``."""
        published: list[Any] = []
        name = self.service.hex()
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            for url in self.urls:
                try:
                    response = await client.get(f"{url.rstrip('/')}/descriptor/{name}")
                    if response.status_code == 200 and len(response.content) <= (
                        MAX_DESCRIPTOR_BODY
                    ):
                        published.append(response.json())
                except (httpx.HTTPError, ValueError) as exc:
                    log.warning("authority %s: %s", url, exc)
        best = newest(published, self.params, self.service, self.clock())
        if best is None:
            raise DescriptorUnavailableError(f"no authority holds a valid descriptor of {name}")
        self.descriptor, self.fetched_at = best.descriptor, self.clock()
        log.debug("descriptor of %s: signed at %d, EXP %d", name, best.signed_at,
                  best.descriptor.exp)
        return best.descriptor

    async def get(self) -> Descriptor:
        now = self.clock()
        held = self.descriptor
        if (
            held is None
            or now - self.fetched_at >= self.refresh_s
            or held.exp - now <= self.margin_s
        ):
            return await self.fetch()
        return held


__all__ = [
    "DescriptorSource",
    "DescriptorUnavailableError",
    "DirectoryClient",
    "DirectoryUnavailableError",
    "publish_descriptor",
    "publish_entry",
    "publish_forever",
]

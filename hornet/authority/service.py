"""A directory authority over HTTP (hypercorn's trio worker), and its config file.

Routes (JSON bodies):
- ``POST /entry``: a relay's signed entry (``machine.Authority.submit``); 200
  ``{"accepted": node_id}``, or 400 ``{"error": ...}``. Bodies over ``MAX_BODY`` are
  refused unread (413).
- ``GET /directory``: the current signed document; ``GET /directory/previous``: the one
  before it (404 while there is none).
- ``POST /descriptor``: a hidden service's signed descriptor
  (``machine.Authority.submit_descriptor``); ``GET /descriptor/<name>``: the one held
  for that service name (64 hex digits), 404 when none or expired.

``serve_authority`` publishes a document at start and every ``publish_interval_s``, and
writes the current and previous documents and the held entries to its state folder
(one file, replaced by rename), so a restarted authority serves the same documents and
keeps its relays.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from hornet.authority.machine import Authority, AuthorityKey
from hornet.directory.descriptor import verify_descriptor
from hornet.directory.document import SignedEntry, verify_entry
from hornet.directory.model import Address, Directory, parse_address
from hornet.errors import BindError, ConfigError, HornetError
from hornet.node.config import load_json_config, reject_unknown

log = logging.getLogger("hornet.authority")

MAX_BODY: Final = 64 * 1024
STATE_FILE: Final = "authority-state.json"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class AuthorityApp:
    """The ASGI application: routes to an ``Authority``."""

    def __init__(
        self,
        authority: Authority,
        clock: Callable[[], float] = time.time,
        on_entry: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.authority = authority
        self.clock = clock
        self.on_entry = on_entry  # e.g. persist the state before answering (entries, descriptors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "GET" and path in ("/directory", "/directory/previous"):
            document = self.authority.current if path == "/directory" else self.authority.previous
            if document is None:
                await _respond(send, 404, {"error": "no document yet"})
            else:
                await _respond(send, 200, document)
        elif method == "GET" and path.startswith("/descriptor/"):
            try:
                name = bytes.fromhex(path.removeprefix("/descriptor/"))
            except ValueError:
                name = b""
            held = self.authority.descriptor(name, self.clock())
            if held is None:
                await _respond(send, 404, {"error": "no such descriptor"})
            else:
                await _respond(send, 200, held)
        elif method == "POST" and path == "/descriptor":
            body = await _read_body(receive)
            if body is None:
                await _respond(send, 413, {"error": "body too large"})
                return
            try:
                held_descriptor = self.authority.submit_descriptor(json.loads(body), self.clock())
            except (ValueError, RecursionError):
                await _respond(send, 400, {"error": "body is not JSON"})
            except HornetError as exc:
                await _respond(send, 400, {"error": str(exc)[:200]})
            else:
                log.info("descriptor accepted for service %s", held_descriptor.service.hex())
                if self.on_entry is not None:
                    await self.on_entry()
                await _respond(send, 200, {"accepted": held_descriptor.service.hex()})
        elif method == "POST" and path == "/entry":
            body = await _read_body(receive)
            if body is None:
                await _respond(send, 413, {"error": "body too large"})
                return
            try:
                signed = self.authority.submit(json.loads(body), self.clock())
            except (ValueError, RecursionError):
                await _respond(send, 400, {"error": "body is not JSON"})
            except HornetError as exc:
                await _respond(send, 400, {"error": str(exc)[:200]})
            else:
                log.info("entry accepted from relay %s", signed.info.node_id.hex())
                if self.on_entry is not None:
                    await self.on_entry()
                await _respond(send, 200, {"accepted": signed.info.node_id.hex()})
        else:
            await _respond(send, 404, {"error": "not found"})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


# -- config and state ---------------------------------------------------------------------

_KEYS: Final = frozenset(
    {"key_file", "listen", "state_dir", "params", "validity_s", "publish_interval_s"}
)


@attrs.frozen
class AuthorityConfig:
    key_file: Path
    listen: Address
    state_dir: Path
    directory_params: dict[str, Any]
    validity_s: int = 3600
    publish_interval_s: int = 600

    @classmethod
    def load(cls, path: str | Path) -> AuthorityConfig:
        data = load_json_config(path)
        where = f"config {path}"
        reject_unknown(data, _KEYS, where)
        for key in ("key_file", "listen", "state_dir"):
            if not isinstance(data.get(key), str):
                raise ConfigError(f"{where}: '{key}' must be a string")
        params = data.get("params", {})
        Directory.from_json({"hornet_directory": 1, "params": params, "relays": []}, where=where)
        numbers = {}
        for key, default in (("validity_s", 3600), ("publish_interval_s", 600)):
            value = data.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 86_400:
                raise ConfigError(f"{where}: '{key}' must be an integer in [1, 86400]")
            numbers[key] = value
        if numbers["publish_interval_s"] >= numbers["validity_s"]:
            raise ConfigError(f"{where}: 'publish_interval_s' must be below 'validity_s'")
        base = Path(path).resolve().parent
        return cls(
            key_file=base / data["key_file"],
            listen=parse_address(data["listen"], where=f"{where}: listen"),
            state_dir=base / data["state_dir"],
            directory_params=params,
            **numbers,
        )

    def authority(self) -> Authority:
        params = Directory.from_json(
            {"hornet_directory": 1, "params": self.directory_params, "relays": []}
        ).params
        return Authority(AuthorityKey.load(self.key_file), params, validity_s=self.validity_s)


def save_state(authority: Authority, folder: Path) -> None:
    """The documents and entries, written to a new file and renamed over the old one."""
    folder.mkdir(parents=True, exist_ok=True)
    body = {
        "current": authority.current,
        "previous": authority.previous,
        "entries": [
            {"entry": e.entry, "signed_at": e.signed_at, "signature": e.signature.hex()}
            for e in authority.entries.values()
        ],
        "descriptors": [d.data for d in authority.descriptors.values()],
    }
    temporary = folder / (STATE_FILE + ".tmp")
    temporary.write_text(json.dumps(body))
    os.replace(temporary, folder / STATE_FILE)


def load_state(authority: Authority, folder: Path) -> None:
    """Restore what ``save_state`` wrote (nothing if there is no state yet). Entries are
    verified again; the documents are this authority's own."""
    path = folder / STATE_FILE
    if not path.exists():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        authority.current, authority.previous = data["current"], data["previous"]
        for raw in data["entries"]:
            signed: SignedEntry = verify_entry(raw)
            authority.entries[signed.info.node_id] = signed
        for raw in data.get("descriptors", []):
            with contextlib.suppress(HornetError):  # expired while the authority was down
                held = verify_descriptor(raw, authority.params, time.time())
                authority.descriptors[held.service] = held
    except (ValueError, KeyError, TypeError, RecursionError, HornetError) as exc:
        raise ConfigError(f"state file {path} is unusable: {exc}") from None


async def serve_authority(
    authority: Authority,
    listen: Address,
    *,
    state_dir: Path | None = None,
    publish_interval_s: float = 600.0,
    clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``authority`` on ``listen`` until cancelled; reports the bound address."""
    if state_dir is not None:
        load_state(authority, state_dir)

    def publish() -> None:
        document = authority.publish(clock(), secrets.token_bytes(32))
        if state_dir is not None:
            save_state(authority, state_dir)
        log.info("published a document of %d relays", len(document["relays"]))

    async def persist() -> None:
        if state_dir is not None:
            await trio.to_thread.run_sync(save_state, authority, state_dir)

    config = HypercornConfig()
    config.bind = [f"{listen[0]}:{listen[1]}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hornet.authority.http")
    async with trio.open_nursery() as nursery:
        try:
            binds: list[str] = await nursery.start(
                lambda task_status: hypercorn_serve(
                    AuthorityApp(authority, clock, on_entry=persist),  # type: ignore[arg-type]
                    config,
                    shutdown_trigger=trio.sleep_forever,
                    mode="asgi",
                    task_status=task_status,
                )
            )
        except OSError as exc:
            raise BindError(f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}") from None
        host, _, port = binds[0].removeprefix("http://").rpartition(":")
        publish()
        task_status.started((host.strip("[]"), int(port)))
        while True:
            await trio.sleep(publish_interval_s)
            publish()


__all__ = [
    "AuthorityApp",
    "AuthorityConfig",
    "load_state",
    "save_state",
    "serve_authority",
]

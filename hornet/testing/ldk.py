"""Driving a scripted LDK node (tests/ldk/ldk_node.mjs) from trio: tests and benchmarks.

The script runs LDK 0.1's PeerManager and OnionMessenger (the ``lightningdevkit`` npm
package) and speaks newline-delimited JSON: commands in on stdin, events out on stdout
(the script's header lists both). ``open_ldk_node`` starts one in a folder where
``npm ci`` has installed the packages; ``LdkNode`` sends commands and waits for events.
Non-JSON lines (the bindings' banner) are kept in ``log``. Timeouts belong to the
caller (``event`` waits until the event arrives).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

#: The content TLV the script's messages use by default (odd, ≥ 64); a "ping…" message
#: is answered with TLV + 2.
APP_TLV = 77_771


class LdkNode:
    """One scripted LDK node: commands in on stdin, events out on stdout."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.node_id = b""
        self.port = 0
        self.log: list[str] = []
        self._events: list[dict[str, Any]] = []
        self._arrived = trio.Event()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        while True:
            chunk = await self.process.stdout.receive_some(65_536)
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                text = line.decode(errors="replace").strip()
                if not text.startswith("{"):
                    self.log.append(text)
                    continue
                self._events.append(json.loads(text))
            self._arrived.set()

    async def event(self, name: str, **match: Any) -> dict[str, Any]:
        """The next event called ``name`` whose fields include ``match`` (removed from
        the backlog). A script error raises ``RuntimeError``."""
        while True:
            for i, event in enumerate(self._events):
                if event.get("event") == "error":
                    raise RuntimeError(f"LDK script error: {event}")
                if event.get("event") == name and all(event.get(k) == v
                                                       for k, v in match.items()):
                    return self._events.pop(i)
            self._arrived = trio.Event()
            await self._arrived.wait()

    def events(self, name: str) -> list[dict[str, Any]]:
        """The backlog of ``name`` events not consumed yet."""
        return [e for e in self._events if e.get("event") == name]

    def take(self, name: str) -> list[dict[str, Any]]:
        """Remove and return the backlog of ``name`` events."""
        taken = [e for e in self._events if e.get("event") == name]
        self._events = [e for e in self._events if e.get("event") != name]
        return taken

    async def command(self, cmd: str, **fields: Any) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all((json.dumps({"cmd": cmd, **fields}) + "\n").encode())

    async def connect(self, node_id: bytes, address: tuple[str, int]) -> None:
        await self.command("connect", node_id=node_id.hex(), host=address[0], port=address[1])
        await self.event("connected", node_id=node_id.hex())

    async def peers(self) -> list[str]:
        await self.command("peers")
        return list((await self.event("peers"))["node_ids"])

    async def path(self, via: list[bytes], context: bytes) -> str:
        """A blinded path to this node through ``via`` (hex of LDK's serialisation)."""
        await self.command("path", via=[v.hex() for v in via], context=context.hex())
        return str((await self.event("path"))["path"])

    async def send(self, path: str, data: bytes, *, reply_via: list[bytes] | None = None,
                   context: bytes = b"", flip_at: int | None = None,
                   first_hop: bytes | None = None, tlv: int = APP_TLV) -> None:
        await self.command("send", path=path, tlv=tlv, data=data.hex(),
                           reply_via=None if reply_via is None else [v.hex() for v in reply_via],
                           context=context.hex(), flip_at=flip_at,
                           first_hop=None if first_hop is None else first_hop.hex())
        sent = await self.event("sent")
        if not sent["ok"]:
            raise RuntimeError(f"LDK could not send: {sent}")


@asynccontextmanager
async def open_ldk_node(nursery: trio.Nursery, folder: Path, *,
                        seed: bytes | None = None) -> AsyncIterator[LdkNode]:
    """Start ``folder/ldk_node.mjs`` (``npm ci`` done in ``folder``) and stop it on exit."""
    process = await trio.lowlevel.open_process(
        ["node", str(folder / "ldk_node.mjs"), (seed or secrets.token_bytes(32)).hex()],
        cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    node = LdkNode(process)
    nursery.start_soon(node._read)
    try:
        ready = await node.event("ready")
        node.node_id, node.port = bytes.fromhex(ready["node_id"]), int(ready["port"])
        yield node
    finally:
        with trio.CancelScope(shield=True):
            if process.stdin is not None:
                await process.stdin.aclose()
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


__all__ = ["APP_TLV", "LdkNode", "open_ldk_node"]

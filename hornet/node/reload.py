"""A running node picks up a new directory file without a restart.

``watch_directory`` checks the file every ``interval`` seconds (its modification time
and size) and at once on SIGHUP, and hands a changed directory to
``RelayNode.replace_directory``. A file that does not load (half written, invalid, other
network parameters) is logged at WARNING and the node keeps the directory it has: a bad
edit never takes a running relay down. Loading runs in a worker thread, so a large file
never stalls the packet loop.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from hornet.directory.model import Directory
from hornet.errors import HornetError

if TYPE_CHECKING:
    from hornet.node.relay import RelayNode

log = logging.getLogger("hornet.directory")


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


async def reload_directory(nodes: list[RelayNode], path: Path) -> bool:
    """Load ``path`` and give it to ``nodes``; False (and a WARNING) if it does not load."""
    try:
        directory = await trio.to_thread.run_sync(Directory.load, path)
        published = os.stat(path).st_mtime
        for node in nodes:
            node.replace_directory(directory, published=published)
    except (HornetError, OSError) as exc:
        log.warning("directory %s not reloaded, keeping the current one: %s", path, exc)
        return False
    return True


async def watch_directory(
    nodes: list[RelayNode],
    path: str | Path,
    *,
    interval: float = 10.0,
    sighup: bool = True,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Reload ``path`` into ``nodes`` when it changes, and on SIGHUP; until cancelled."""
    path = Path(path)
    seen = _stamp(path)

    async def on_change() -> None:
        nonlocal seen
        while True:
            await trio.sleep(interval)
            stamp = _stamp(path)
            if stamp is not None and stamp != seen:
                seen = stamp
                await reload_directory(nodes, path)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(on_change)
        if not sighup:
            task_status.started()
            return
        with trio.open_signal_receiver(signal.SIGHUP) as signals:
            task_status.started()
            async for _ in signals:
                seen = _stamp(path)
                log.info("SIGHUP: reloading the directory %s", path)
                await reload_directory(nodes, path)


__all__ = ["reload_directory", "watch_directory"]

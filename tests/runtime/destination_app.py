"""A destination process for the restart tests: ``hornet.serve`` running an application
that executes the commands it receives and logs each one it executes.

    python destination_app.py KEY_FILE DIRECTORY PORT STATE LOG

Serves on 127.0.0.1:PORT without link encryption (the tests replay HORNET packets
themselves), with its replay state in STATE. Every command (one datagram) is appended to
LOG, one line each, before the answer ``done: <command>`` is sent back. Prints
``listening`` once it serves; on SIGUSR1 prints the node's statistics as one JSON line.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys

import trio

import hornet
from hornet.circuit.circuit import Circuit
from hornet.directory.model import Directory, load_key_file
from hornet.node.destination import ServiceInfo


async def main(key_file: str, directory_path: str, port: int, state: str, log_path: str) -> None:
    keys = load_key_file(key_file)
    directory = Directory.load(directory_path)
    with open(log_path, "a", encoding="utf-8") as log:

        async def application(circuit: Circuit) -> None:
            async for command in circuit:
                log.write(command.decode(errors="replace") + "\n")
                log.flush()  # in the OS's cache: survives SIGKILL
                await circuit.send(b"done: " + command)

        with trio.open_signal_receiver(signal.SIGUSR1) as signals:
            async with trio.open_nursery() as nursery:
                info: ServiceInfo = await nursery.start(
                    lambda task_status: hornet.serve(
                        keys,
                        directory,
                        ("127.0.0.1", port),
                        application,
                        state=state,
                        link=False,
                        task_status=task_status,
                    )
                )
                print("listening", flush=True)
                async for _ in signals:
                    stats = info.node.statistics()
                    line = {"delivered": stats.delivered, "dropped": stats.dropped}
                    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    key_file, directory_path, port, state, log_path = sys.argv[1:]
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main, key_file, directory_path, int(port), state, log_path)

"""How the long-running commands start and stop, and how their numbers are checked.

Rules:
1. A service runs until SIGINT or SIGTERM (systemd's stop signal). The signal cancels
   it, its ``finally`` blocks close sockets and files, and the command exits 0.
2. A command that runs to completion (a benchmark, the demo) treats SIGTERM as SIGINT,
   and an interrupt as a clean stop: exit 0, no traceback.
3. Numeric command-line options are checked against their range before anything runs.
"""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio

from hornet.circuit.circuit import single_error

log = logging.getLogger("hornet")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def until_stopped(body: Callable[[], Awaitable[Any]], *, name: str) -> None:
    """Run ``body`` until it returns or SIGINT/SIGTERM arrives; the signal cancels it."""
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    log.info("%s: %s, stopping", name, signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(watch)
            await body()
            nursery.cancel_scope.cancel()


def run_service(body: Callable[[], Awaitable[Any]], *, name: str) -> None:
    """``trio.run`` a service until SIGINT/SIGTERM; a lone error leaves as itself."""
    with single_error():
        trio.run(lambda: until_stopped(body, name=name))


def _interrupt(signum: int, frame: object) -> None:
    signal.raise_signal(signal.SIGINT)


@contextmanager
def interruptible() -> Iterator[list[bool]]:
    """For commands that run to completion: SIGTERM becomes SIGINT, and an interrupt
    (bare, or inside trio's exception groups) ends the block quietly. The yielded list
    holds True afterwards if it was interrupted."""
    interrupted: list[bool] = []
    # A shell starts background jobs with SIGINT ignored; this command wants it.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield interrupted
    except* KeyboardInterrupt:
        interrupted.append(True)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for an integer in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {value}")
        return value

    parse.__name__ = "integer"
    return parse


__all__ = ["int_in", "interruptible", "run_service", "until_stopped"]

"""Fuzz harness: RendezvousDestination.receive, RendezvousSource.open, Descriptor.decode.

    python fuzz/fuzz_rendezvous.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("rendezvous"))

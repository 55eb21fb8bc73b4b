"""Fuzz harness: Relay.process on nested (rendezvous) data packets, garbage and mutants.

    python fuzz/fuzz_relay_nested.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("relay_nested"))

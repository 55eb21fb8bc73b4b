"""Fuzz harness: Relay.process on setup packets (P➊/P➋ at every hop), garbage and mutants.

    python fuzz/fuzz_relay_setup.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("relay_setup"))

"""Fuzz harness: Relay.process on data packets (forward and backward), garbage and mutants.

    python fuzz/fuzz_relay_data.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("relay_data"))

"""Fuzz harness: end-to-end frames: DestinationSession.receive and SourceSession.open.

    python fuzz/fuzz_e2e.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("e2e"))

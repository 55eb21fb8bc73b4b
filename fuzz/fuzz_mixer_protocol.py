"""Fuzz harness: every mixer protocol decoder (requests, responses, bodies, hints).

    python fuzz/fuzz_mixer_protocol.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("mixer_protocol"))

"""Fuzz harness: complete_setup: P➋ as it reaches the source.

    python fuzz/fuzz_setup_reply.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("setup_reply"))

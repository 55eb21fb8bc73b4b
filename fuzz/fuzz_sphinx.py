"""Fuzz harness: sphinx.peel_onion with every associated-data shape and both key types.

    python fuzz/fuzz_sphinx.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("sphinx"))

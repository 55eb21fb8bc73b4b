"""Fuzz harness: process_onion_message and the onion-message decoders.

    python fuzz/fuzz_onion_message.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("onion_message"))

"""Fuzz harness: directory, key and mixer config/key files (JSON and TOML).

    python fuzz/fuzz_config.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("config"))

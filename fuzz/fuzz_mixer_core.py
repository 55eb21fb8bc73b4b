"""Fuzz harness: MixerCore.handle: raw messages, wrapped requests, wrapped payments.

    python fuzz/fuzz_mixer_core.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("mixer_core"))

"""Fuzz harness: MixerSession.receive: raw messages and wrapped responses.

    python fuzz/fuzz_mixer_session.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("mixer_session"))

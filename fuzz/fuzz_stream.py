"""Fuzz harness: stream Frame.decode and Stream.receive_frame (reliable and datagram).

    python fuzz/fuzz_stream.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("stream"))

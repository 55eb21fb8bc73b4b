"""Fuzz harness: credential decoders, issuer verification, client finish, the service.

    python fuzz/fuzz_credentials.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("credentials"))

"""Fuzz harness: route blinding: BlindedPath/EncryptedData decoders, process_blinded_hop, TLV.

    python fuzz/fuzz_blinding.py -atheris_runs=1000000

See ``atheris_driver.py`` for the options (and the fallback without atheris).
"""

import sys

from atheris_driver import main

if __name__ == "__main__":
    sys.exit(main("blinding"))

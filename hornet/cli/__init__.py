"""The ``hornet`` command line (``app``), its long-running commands and the demos.

Internal: applications import from the package roots (``hornet``,
``hornet.sphinx``, ``hornet.mixer``, ``hornet.credentials``).
"""

from __future__ import annotations

from hornet.cli.app import (
    build_parser,
    main,
)

__all__ = [
    "build_parser",
    "main",
]

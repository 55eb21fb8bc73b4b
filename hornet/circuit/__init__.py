"""The circuit layer: a trio ``Circuit`` over the end-to-end sessions (``circuit``), and
the endpoint that builds and rebuilds circuits (``endpoint``: path choice, setup, relay
health, setup puzzles).

Sits above ``hornet.transport`` and below ``hornet.client`` and ``hornet.node``.

Internal: applications import from the package roots (``hornet``,
``hornet.sphinx``, ``hornet.mixer``, ``hornet.credentials``).
"""

from __future__ import annotations

from hornet.circuit.circuit import (
    Circuit,
    PathSealer,
    Signal,
    single_error,
)
from hornet.errors import (
    CircuitError,
    DescriptorExpiredError,
    NoPathError,
    SetupTimeoutError,
    StaleDirectoryError,
)

__all__ = [
    "Circuit",
    "CircuitError",
    "DescriptorExpiredError",
    "NoPathError",
    "PathSealer",
    "SetupTimeoutError",
    "Signal",
    "StaleDirectoryError",
    "single_error",
]

"""A kit for tests, examples and research: deterministic, in-memory HORNET networks.

Internal: applications import from the package roots (``hornet``,
``hornet.sphinx``, ``hornet.mixer``, ``hornet.credentials``).
"""

from hornet.testing.sim import Hop, SimNetwork

__all__ = ["Hop", "SimNetwork"]

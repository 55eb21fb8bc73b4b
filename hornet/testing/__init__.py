"""A kit for tests, examples and research: deterministic, in-memory HORNET networks."""

from hornet.testing.sim import Hop, SimNetwork

__all__ = ["Hop", "SimNetwork"]

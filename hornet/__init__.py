"""hornet: anonymous duplex communication over HORNET onion circuits.

Layers (dependencies point down only): ``hornet.client`` / ``hornet.node`` →
``hornet.transport`` → ``hornet.core`` (sans-IO) → ``hornet.errors``.
"""

from hornet.errors import HornetError

__version__ = "0.1.0"

__all__ = ["HornetError", "__version__"]

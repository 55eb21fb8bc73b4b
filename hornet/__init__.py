"""hornet: anonymous duplex communication over HORNET onion circuits.

Layers (dependencies point down only): ``hornet.client`` / ``hornet.node`` →
``hornet.transport`` → ``hornet.core`` (sans-IO) → ``hornet.errors``.

The trio runtime is imported lazily, so ``import hornet.core`` never loads trio::

    async with hornet.local_network(5, service=echo) as net:
        async with hornet.open_circuit(net.directory, net.service_id) as circuit:
            await circuit.send(b"hello")
            print(await circuit.receive())
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from hornet.core import engine as _engine
from hornet.errors import HornetError

# The data-plane engine for the whole process (hornet/core/engine.py): native when built.
_engine.use(os.environ.get("HORNET_ENGINE", "auto"))

__version__ = "0.1.0"

_LAZY = {
    "open_circuit": "hornet.client",
    "serve": "hornet.node.service",
    "serve_rendezvous": "hornet.node.service",
    "serve_relay": "hornet.node.relay",
    "local_network": "hornet.local",
    "LocalNetwork": "hornet.local",
    "Circuit": "hornet.circuit",
    "CircuitError": "hornet.circuit",
    "NoPathError": "hornet.circuit",
    "SetupTimeoutError": "hornet.circuit",
    "StaleDirectoryError": "hornet.circuit",
    "DescriptorExpiredError": "hornet.circuit",
    "SendRefusedError": "hornet.errors",
    "Directory": "hornet.directory",
    "ConfigError": "hornet.errors",
    "Descriptor": "hornet.core.rendezvous",
}

__all__ = [
    "Circuit",
    "CircuitError",
    "ConfigError",
    "Descriptor",
    "DescriptorExpiredError",
    "Directory",
    "HornetError",
    "LocalNetwork",
    "NoPathError",
    "SendRefusedError",
    "SetupTimeoutError",
    "StaleDirectoryError",
    "__version__",
    "local_network",
    "open_circuit",
    "serve",
    "serve_relay",
    "serve_rendezvous",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hornet' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

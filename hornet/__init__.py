"""hornet: anonymous duplex communication over HORNET onion circuits.

Layers (imports point down only; docs/architecture.md): ``cli`` → ``testing`` →
``mixer`` / ``authority`` → ``client`` / ``node`` → ``circuit`` → ``transport`` →
``directory`` → ``core`` / ``link`` / ``credentials`` (sans-IO) → ``errors``.

The trio runtime is imported lazily, so ``import hornet.core`` never loads trio::

    async with hornet.local_network(5, service=echo) as net:
        async with hornet.open_circuit(net.directory, net.service_id) as circuit:
            await circuit.send(b"hello")
            print(await circuit.receive())
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from hornet.core import engine as _engine
from hornet.errors import HornetError

# The data-plane engine for the whole process (hornet/core/engine.py): native when built.
_engine.use(os.environ.get("HORNET_ENGINE", "auto"))

__version__ = "0.1.0"

if TYPE_CHECKING:  # the real types for mypy and IDEs; at run time the names load lazily
    from hornet.circuit.circuit import Circuit
    from hornet.client import open_circuit
    from hornet.core.crypto import SecretKey
    from hornet.core.params import Params
    from hornet.core.rendezvous import Descriptor
    from hornet.directory.fetch import DirectoryClient
    from hornet.directory.model import (
        Directory,
        NodeKeys,
        load_key_file,
        relay_info,
        write_key_file,
    )
    from hornet.errors import (
        CircuitError,
        ConfigError,
        DescriptorExpiredError,
        NoPathError,
        SendRefusedError,
        SetupTimeoutError,
        StaleDirectoryError,
    )
    from hornet.node.destination import serve, serve_rendezvous
    from hornet.node.relay import serve_relay
    from hornet.testing.local import LocalNetwork, local_network
    from hornet.testing.tap import TapNetwork
    from hornet.transport.udp import UdpNetwork

_LAZY = {
    "open_circuit": "hornet.client",
    "serve": "hornet.node.destination",
    "serve_rendezvous": "hornet.node.destination",
    "serve_relay": "hornet.node.relay",
    "local_network": "hornet.testing.local",
    "LocalNetwork": "hornet.testing.local",
    "Circuit": "hornet.circuit",
    "CircuitError": "hornet.errors",
    "NoPathError": "hornet.errors",
    "SetupTimeoutError": "hornet.errors",
    "StaleDirectoryError": "hornet.errors",
    "DescriptorExpiredError": "hornet.errors",
    "SendRefusedError": "hornet.errors",
    "Directory": "hornet.directory",
    "NodeKeys": "hornet.directory",
    "load_key_file": "hornet.directory",
    "write_key_file": "hornet.directory",
    "relay_info": "hornet.directory",
    "Params": "hornet.core.params",
    "SecretKey": "hornet.core.crypto",
    "UdpNetwork": "hornet.transport",
    "TapNetwork": "hornet.testing.tap",
    "DirectoryClient": "hornet.directory.fetch",
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
    "DirectoryClient",
    "HornetError",
    "LocalNetwork",
    "NoPathError",
    "NodeKeys",
    "Params",
    "SecretKey",
    "SendRefusedError",
    "SetupTimeoutError",
    "StaleDirectoryError",
    "TapNetwork",
    "UdpNetwork",
    "__version__",
    "load_key_file",
    "local_network",
    "open_circuit",
    "relay_info",
    "serve",
    "serve_relay",
    "serve_rendezvous",
    "write_key_file",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hornet' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

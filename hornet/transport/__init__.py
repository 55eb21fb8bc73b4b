"""The trio I/O layer: UDP sockets (``udp``) and link-encrypted sockets (``link``).

Everything above it talks to the network through ``DatagramSocket`` and ``Network``.

Internal: applications import from the package roots (``hornet``,
``hornet.sphinx``, ``hornet.mixer``, ``hornet.credentials``).
"""

from __future__ import annotations

from hornet.transport.udp import (
    MAX_DATAGRAM,
    WILDCARDS,
    YIELD_EVERY,
    Address,
    DatagramSocket,
    KeystreamRandom,
    Network,
    UdpNetwork,
    UdpSocket,
    family_of,
    route_source,
    runtime_rng,
    unix_now,
)

__all__ = [
    "MAX_DATAGRAM",
    "WILDCARDS",
    "YIELD_EVERY",
    "Address",
    "DatagramSocket",
    "KeystreamRandom",
    "Network",
    "UdpNetwork",
    "UdpSocket",
    "family_of",
    "route_source",
    "runtime_rng",
    "unix_now",
]

"""Link encryption between neighbouring HORNET nodes (paper §7.2), sans-IO.

The per-circuit AHDR is constant, so without link encryption an observer of one link
can link all packets of a circuit. Each link is authenticated with a BOLT 8 handshake
(Noise_XK_secp256k1_ChaChaPoly_SHA256) against the relay's directory key, and every
datagram is then sealed with AES-256-GCM under a counter, behind a replay window.

- ``noise``: the three BOLT 8 acts, exact bytes.
- ``channel``: wire types, per-session AEAD, replay window.
- ``endpoint``: handshakes over lossy datagrams, timers, sessions keyed by address.

``hornet.transport.link`` wraps an endpoint around a trio socket. docs/spec-link.md is
the wire specification.

Internal: applications import from the package roots (``hornet``,
``hornet.sphinx``, ``hornet.mixer``, ``hornet.credentials``).
"""

from __future__ import annotations

from hornet.link.channel import DATA_OVERHEAD, REPLAY_WINDOW, ChannelSession
from hornet.link.endpoint import LinkEndpoint
from hornet.link.noise import Initiator, Responder, TransportKeys
from hornet.link.peers import LinkConfig, LinkStatistics

__all__ = [
    "DATA_OVERHEAD",
    "REPLAY_WINDOW",
    "ChannelSession",
    "Initiator",
    "LinkConfig",
    "LinkEndpoint",
    "LinkStatistics",
    "Responder",
    "TransportKeys",
]

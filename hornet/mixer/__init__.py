"""An onion-message mixer: paid, rate-limited relaying of Lightning onion messages.

A client buys anonymous credentials once, then — under a fresh node identity —
spends them to have the mixer forward its onion messages, registers short-lived
synthetic SCIDs at the mixer so that replies come back through it, reads hints on
which of the mixer's links are far from their onion-message rate limits, and opens
HORNET circuits whose first hop is the mixer's own relay (``MixerClient.open_circuit``).
Specification: docs/spec-mixer.md.

Every connection is a Lightning peer connection, BOLT 8 over TCP (``PeerNetwork``).

Layers: ``protocol``, ``scid``, ``ratelimit``, ``hints``, ``config``, ``peer`` (BOLT 1),
``session`` and ``core`` are sans-IO; ``state`` is SQLite; ``transport``, ``network``,
``node``, ``service``, ``client`` and ``entry`` are trio. The trio layers are imported
lazily, so importing a sans-IO module (``hornet.mixer.core``) does not load trio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hornet.mixer.config import MixerConfig, PeerConfig, parse_config
from hornet.mixer.core import MixerCore, Transmit
from hornet.mixer.hints import Hints, PeerHint
from hornet.mixer.protocol import Prices
from hornet.mixer.ratelimit import PROFILES, Limit
from hornet.mixer.scid import format_scid
from hornet.mixer.session import Delivered, MixerSession, ScidRegistration, Wallet

if TYPE_CHECKING:
    from hornet.mixer.client import MixerClient
    from hornet.mixer.entry import EntryRelay, relay_keys, serve_entry_relay
    from hornet.mixer.network import PeerNetwork
    from hornet.mixer.node import OnionNode
    from hornet.mixer.service import MixerService, mixer_main, open_mixer
    from hornet.mixer.transport import TapTransport

_LAZY = {
    "EntryRelay": "hornet.mixer.entry",
    "serve_entry_relay": "hornet.mixer.entry",
    "relay_keys": "hornet.mixer.entry",
    "OnionNode": "hornet.mixer.node",
    "TapTransport": "hornet.mixer.transport",
    "MixerClient": "hornet.mixer.client",
    "PeerNetwork": "hornet.mixer.network",
    "MixerService": "hornet.mixer.service",
    "mixer_main": "hornet.mixer.service",
    "open_mixer": "hornet.mixer.service",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hornet.mixer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "PROFILES",
    "Delivered",
    "EntryRelay",
    "Hints",
    "Limit",
    "MixerClient",
    "MixerConfig",
    "MixerCore",
    "MixerService",
    "MixerSession",
    "OnionNode",
    "PeerConfig",
    "PeerHint",
    "PeerNetwork",
    "Prices",
    "ScidRegistration",
    "TapTransport",
    "Transmit",
    "Wallet",
    "format_scid",
    "mixer_main",
    "open_mixer",
    "parse_config",
    "relay_keys",
    "serve_entry_relay",
]

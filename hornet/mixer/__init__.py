"""An onion-message mixer: paid, rate-limited relaying of Lightning onion messages.

A client buys anonymous credentials once, then — under a fresh node identity —
spends them to have the mixer forward its onion messages, registers short-lived
synthetic SCIDs at the mixer so that replies come back through it, reads hints on
which of the mixer's links are far from their onion-message rate limits, and opens
HORNET circuits whose first hop is the mixer's own relay (``MixerClient.open_circuit``).
Specification: docs/spec-mixer.md.

Every connection is a Lightning peer connection, BOLT 8 over TCP (``PeerNetwork``).

Layers:
- sans-IO machine: ``core`` (the mixer's decisions) with ``routing`` (peers, queues,
  mailboxes) and ``requests`` (answers to requests), speaking ``actions``; beside it
  ``protocol``, ``scid``, ``ratelimit``, ``hints``, ``keys``, ``config``, ``peer``
  (BOLT 1) and ``session`` (the client's machine);
- storage, blocking: ``state`` (SQLite), ``storage`` (executes the machine's storage
  actions), ``engine`` (machine + storage);
- trio: ``transport``, ``network``, ``node``, ``service``, ``metrics``, ``client``
  and ``entry``.
The package root imports only the machine's modules eagerly (the rest lazily), so
importing ``hornet.mixer.core`` loads no storage, socket, clock or trio module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hornet.mixer.actions import (
    CircuitRequest,
    CommitRefused,
    CommitRequest,
    CommitSpends,
    CredentialsRedeemed,
    ExpireScids,
    RedeemCredentials,
    RequestCommitted,
    ScidsExpired,
    SpendsCommitted,
    Transmit,
)
from hornet.mixer.config import MixerConfig, PeerConfig, parse_config
from hornet.mixer.core import MixerCore, MixerStatistics
from hornet.mixer.hints import Hints, PeerHint
from hornet.mixer.protocol import Prices
from hornet.mixer.ratelimit import PROFILES, Limit
from hornet.mixer.scid import format_scid

if TYPE_CHECKING:
    from hornet.mixer.client import MixerClient
    from hornet.mixer.engine import MixerEngine, mixer_listing
    from hornet.mixer.entry import EntryRelay, relay_keys, serve_entry_relay
    from hornet.mixer.metrics import MixerMetrics
    from hornet.mixer.network import PeerNetwork
    from hornet.mixer.node import OnionNode
    from hornet.mixer.service import (
        MixerService,
        MixerServiceStatistics,
        mixer_main,
        open_mixer,
    )
    from hornet.mixer.session import Delivered, MixerSession, ScidRegistration, Wallet
    from hornet.mixer.storage import MixerStorage
    from hornet.mixer.transport import TapTransport

_LAZY = {
    "Delivered": "hornet.mixer.session",
    "MixerSession": "hornet.mixer.session",
    "ScidRegistration": "hornet.mixer.session",
    "Wallet": "hornet.mixer.session",
    "MixerEngine": "hornet.mixer.engine",
    "mixer_listing": "hornet.mixer.engine",
    "MixerStorage": "hornet.mixer.storage",
    "MixerMetrics": "hornet.mixer.metrics",
    "EntryRelay": "hornet.mixer.entry",
    "serve_entry_relay": "hornet.mixer.entry",
    "relay_keys": "hornet.mixer.entry",
    "OnionNode": "hornet.mixer.node",
    "TapTransport": "hornet.mixer.transport",
    "MixerClient": "hornet.mixer.client",
    "PeerNetwork": "hornet.mixer.network",
    "MixerService": "hornet.mixer.service",
    "MixerServiceStatistics": "hornet.mixer.service",
    "mixer_main": "hornet.mixer.service",
    "open_mixer": "hornet.mixer.service",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hornet.mixer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "PROFILES",
    "CircuitRequest",
    "CommitRefused",
    "CommitRequest",
    "CommitSpends",
    "CredentialsRedeemed",
    "Delivered",
    "EntryRelay",
    "ExpireScids",
    "Hints",
    "Limit",
    "MixerClient",
    "MixerConfig",
    "MixerCore",
    "MixerEngine",
    "MixerMetrics",
    "MixerService",
    "MixerServiceStatistics",
    "MixerSession",
    "MixerStatistics",
    "MixerStorage",
    "OnionNode",
    "PeerConfig",
    "PeerHint",
    "PeerNetwork",
    "Prices",
    "RedeemCredentials",
    "RequestCommitted",
    "ScidRegistration",
    "ScidsExpired",
    "SpendsCommitted",
    "TapTransport",
    "Transmit",
    "Wallet",
    "format_scid",
    "mixer_listing",
    "mixer_main",
    "open_mixer",
    "parse_config",
    "relay_keys",
    "serve_entry_relay",
]

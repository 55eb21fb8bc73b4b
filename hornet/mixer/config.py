"""Mixer configuration: defaults, validation, and parsing of TOML/JSON mappings.

Strategy: one frozen ``MixerConfig`` holds everything (prices, credential parameters,
SCID lifetimes, limits, peers, service settings). ``parse_config`` turns a decoded
TOML or JSON mapping into it, rejecting unknown keys and bad values with a
``ConfigError`` that names the field (docs/spec-mixer.md §8 lists every key). Reading
the file is the service's job; this module does no I/O.

The ``authorities`` setting has the shape of a relay's (``hornet.node.config``) and is
parsed by that module's ``AuthoritiesConfig.parse``, which the loader
(``hornet.mixer.service.load_config_file``) calls: its cache path is relative to the
config file, and the parser's module reaches the directory model (clock, files), which
the machine importing this module must not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from hornet.core import crypto
from hornet.credentials.params import CredentialParams
from hornet.errors import ConfigError, HornetError
from hornet.mixer.protocol import Prices
from hornet.mixer.ratelimit import PROFILES, Limit
from hornet.mixer.scid import decode_scid

if TYPE_CHECKING:
    from hornet.node.config import AuthoritiesConfig

DEFAULT_PORT: Final = 9736


@attrs.frozen
class PeerConfig:
    """A network peer of the mixer: its node id, implementation profile and address."""

    node_id: bytes
    profile: str = "cln"
    address: tuple[str, int] | None = None

    def __attrs_post_init__(self) -> None:
        if len(self.node_id) != 33:
            raise ConfigError("peer node_id must be 33 bytes")


@attrs.frozen
class MixerConfig:
    """Everything a mixer needs besides its keys and its state (see spec §8)."""

    prices: Prices = attrs.field(factory=Prices)
    credential_params: CredentialParams = attrs.field(
        factory=lambda: CredentialParams(issuance_k=16))
    scid_lifetime_s: float = 600.0
    scid_max_ahead_s: float = 2400.0
    scid_tombstone_s: float = 7 * 86400.0
    max_scids: int = 100_000
    #: Mailbox of each synthetic SCID while its target is offline (spec §4.3), and the
    #: bound on all mailboxes together.
    mailbox_messages: int = 16
    mailbox_bytes: int = 65_536
    mailbox_total_bytes: int = 16 << 20
    #: Bundles (spec §3.7): one payment of ``prices.message`` buys ``bundle_k``
    #: messages within ``bundle_lifetime_s``; 0 turns bundles off.
    bundle_k: int = 16
    bundle_lifetime_s: float = 60.0
    max_bundles: int = 100_000
    #: Published defaults per implementation, possibly overridden.
    profiles: Mapping[str, Limit] = attrs.field(factory=lambda: dict(PROFILES))
    #: What we accept from a configured network peer and from an anonymous client.
    incoming_peer: Limit = attrs.field(factory=lambda: Limit(50.0, 100.0))
    incoming_client: Limit = attrs.field(factory=lambda: Limit(50.0, 100.0))
    #: Unpaid forwarding per incoming peer: what a plain node gives (Eclair's 10/s).
    free_forward: Limit = attrs.field(factory=lambda: Limit(10.0, 20.0))
    #: The profile of what an anonymous client accepts from us.
    client_profile: str = "hornet"
    queue_messages: int = 50
    queue_bytes: int = 262_144
    backpressure_recover_s: float = 30.0
    backpressure_min_interval_s: float = 1.0
    backpressure_floor: float = 1 / 64
    send_drop_notices: bool = True
    hint_tau_s: float = 10.0
    hint_entries: int = 8
    max_peers: int = 10_000
    max_batch: int = 64
    forward_unpaid: bool = True
    peers: tuple[PeerConfig, ...] = ()
    channels: tuple[tuple[int, bytes], ...] = ()
    #: The longest circuit a CIRCUIT request may open: EXP ≤ now + this (spec §9).
    circuit_max_lifetime_s: float = 600.0
    # -- service settings (ignored by the sans-IO core) -------------------------------
    listen: tuple[str, int] = ("127.0.0.1", DEFAULT_PORT)
    state_dir: str | None = None
    synchronous: str = "FULL"
    inbound_queue: int = 256
    #: Storage actions (commits) running at once in worker threads.
    max_commits: int = 4
    #: Where to serve Prometheus metrics (opt-in; port 0 picks a free one).
    metrics: tuple[str, int] | None = None
    #: The co-hosted HORNET relay (spec §9): UDP address, directory file, and the
    #: bound on paid setups waiting to be injected into it.
    relay_listen: tuple[str, int] | None = None
    relay_directory: str | None = None
    relay_setup_queue: int = 64
    #: Link encryption between the relay and its neighbours (docs/spec-link.md §9).
    relay_link: bool = True
    #: The relay's address in its published entry (default: relay.listen, bound port).
    relay_public_address: tuple[str, int] | None = None
    #: The directory authorities, instead of ``relay_directory``: the relay routes by
    #: their k-of-n consensus and uploads its entry, carrying this mixer's listing
    #: signed by the mixer's node key, to each of them.
    authorities: AuthoritiesConfig | None = None

    def __attrs_post_init__(self) -> None:
        _positive("scid.lifetime_s", self.scid_lifetime_s)
        if self.scid_max_ahead_s < self.scid_lifetime_s:
            raise ConfigError("scid.max_ahead_s must be at least scid.lifetime_s")
        _positive("scid.tombstone_s", self.scid_tombstone_s, allow_zero=True)
        _positive("bundles.lifetime_s", self.bundle_lifetime_s)
        if self.client_profile not in self.profiles:
            raise ConfigError("limits.client_profile names an unknown profile")
        for peer in self.peers:
            if peer.profile not in self.profiles:
                raise ConfigError(f"peers: unknown profile {peer.profile!r}")
        for name, value, low in (("limits.queue_messages", self.queue_messages, 0),
                                 ("limits.queue_bytes", self.queue_bytes, 0),
                                 ("hints.entries", self.hint_entries, 0),
                                 ("max_peers", self.max_peers, 1),
                                 ("scid.max_live", self.max_scids, 0),
                                 ("scid.mailbox_messages", self.mailbox_messages, 0),
                                 ("scid.mailbox_bytes", self.mailbox_bytes, 0),
                                 ("scid.mailbox_total_bytes", self.mailbox_total_bytes, 0),
                                 ("bundles.k", self.bundle_k, 0),
                                 ("bundles.max_live", self.max_bundles, 0),
                                 ("max_batch", self.max_batch, 1),
                                 ("inbound_queue", self.inbound_queue, 1),
                                 ("max_commits", self.max_commits, 1),
                                 ("relay.setup_queue", self.relay_setup_queue, 1)):
            if not low <= value <= 1 << 31:
                raise ConfigError(f"{name} out of range")
        if self.hint_entries > 255:
            raise ConfigError("hints.entries must be at most 255")
        _positive("backpressure.recover_s", self.backpressure_recover_s)
        _positive("backpressure.min_interval_s", self.backpressure_min_interval_s, allow_zero=True)
        if not 0 < self.backpressure_floor <= 1:
            raise ConfigError("backpressure.floor must be in (0, 1]")
        _positive("hints.tau_s", self.hint_tau_s)
        if self.synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigError("synchronous must be FULL, NORMAL or EXTRA")
        _positive("relay.max_lifetime_s", self.circuit_max_lifetime_s)
        if self.relay_directory is not None and self.authorities is not None:
            raise ConfigError("give relay.directory or authorities, not both")
        if self.authorities is not None and self.relay_listen is None:
            raise ConfigError("authorities need relay.listen: the mixer's listing is "
                              "published in its relay's entry")
        if (self.relay_listen is None) != (self.relay_directory is None
                                           and self.authorities is None):
            raise ConfigError("relay.listen and relay.directory go together "
                              "(or relay.listen and authorities)")
        if self.relay_public_address is not None and self.authorities is None:
            raise ConfigError("relay.public_address is published to the authorities: "
                              "give authorities")

    def profile(self, name: str) -> Limit:
        return self.profiles[name]

    def peer_profiles(self) -> dict[bytes, str]:
        return {p.node_id: p.profile for p in self.peers}


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ConfigError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number")


# --------------------------------------------------------------------------------------
# Parsing


class _Section:
    """Typed access to one mapping; remembers which keys were read to reject the rest."""

    def __init__(self, data: Any, name: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{name or 'config'} must be a table/object")
        self.data = data
        self.name = name
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data[key]

    def number(self, key: str, default: float) -> float:
        if key not in self.data:
            return default
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self._key(key)} must be a number")
        try:
            return float(value)
        except OverflowError:  # an integer beyond the float range
            raise ConfigError(f"{self._key(key)} is out of range") from None

    def integer(self, key: str, default: int) -> int:
        if key not in self.data:
            return default
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self._key(key)} must be an integer")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self.data:
            return default
        value = self.raw(key)
        if not isinstance(value, bool):
            raise ConfigError(f"{self._key(key)} must be true or false")
        return value

    def string(self, key: str, default: str | None) -> str | None:
        if key not in self.data:
            return default
        value = self.raw(key)
        if not isinstance(value, str):
            raise ConfigError(f"{self._key(key)} must be a string")
        return value

    def section(self, key: str) -> _Section:
        return _Section(self.raw(key) if key in self.data else {}, self._key(key))

    def finish(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise ConfigError(f"unknown key {self._key(extra[0])}")


def parse_address(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what} must be HOST:PORT")
    return host.strip("[]"), int(port)


def parse_node_id(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ConfigError(f"{what} must be a hex string")
    try:
        node_id = bytes.fromhex(text)
        crypto.validate_pubkey(node_id)
    except (ValueError, HornetError) as exc:
        raise ConfigError(f"{what} is not a 33-byte compressed public key") from exc
    return node_id


def parse_scid(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        scid = value
    elif isinstance(value, str) and value.count("x") == 2:
        try:
            h, t, o = (int(part) for part in value.split("x"))
        except ValueError as exc:
            raise ConfigError(f"{what} must look like 800000x12x1") from exc
        if not (0 <= h < 1 << 24 and 0 <= t < 1 << 24 and 0 <= o < 1 << 16):
            raise ConfigError(f"{what} is out of range")
        scid = (h << 40) | (t << 16) | o
    else:
        raise ConfigError(f"{what} must be an integer or HEIGHTxTXxOUT")
    try:
        decode_scid(scid)
    except HornetError as exc:
        raise ConfigError(f"{what} does not fit in 8 bytes") from exc
    return scid


def _limit(value: Any, what: str, profiles: Mapping[str, Limit]) -> Limit:
    if isinstance(value, str):
        if value not in profiles:
            raise ConfigError(f"{what}: unknown profile {value!r}")
        return profiles[value]
    sec = _Section(value, what)
    unit = sec.string("unit", "msg")
    if unit not in ("msg", "byte"):
        raise ConfigError(f"{what}.unit must be 'msg' or 'byte'")
    try:
        limit = Limit(sec.number("rate", math.nan), sec.number("burst", math.nan),
                      "msg" if unit == "msg" else "byte", sec.boolean("window", False))
    except HornetError as exc:
        raise ConfigError(f"{what}: {exc}") from exc
    sec.finish()
    return limit


def parse_config(data: Any, *, authorities: AuthoritiesConfig | None = None) -> MixerConfig:
    """Build a ``MixerConfig`` from a decoded TOML/JSON document (spec §8).
    ``authorities``: the document's ``authorities`` setting, already parsed by the loader
    (``load_config_file``), which takes the key out of ``data``."""
    top = _Section(data, "")
    if top.has("authorities"):
        raise ConfigError("authorities is read from a config file (load_config_file)")
    kwargs: dict[str, Any] = {"authorities": authorities}

    listen = top.string("listen", None)
    if listen is not None:
        kwargs["listen"] = parse_address(listen, "listen")
    kwargs["state_dir"] = top.string("state_dir", None)
    sync = top.string("synchronous", "FULL")
    kwargs["synchronous"] = sync
    kwargs["max_peers"] = top.integer("max_peers", 10_000)
    kwargs["max_batch"] = top.integer("max_batch", 64)
    kwargs["inbound_queue"] = top.integer("inbound_queue", 256)
    kwargs["max_commits"] = top.integer("max_commits", 4)
    metrics = top.string("metrics", None)
    if metrics is not None:
        kwargs["metrics"] = parse_address(metrics, "metrics")
    kwargs["forward_unpaid"] = top.boolean("forward_unpaid", True)

    p = top.section("prices")
    circuit = p.integer("circuit_open", -1)
    try:
        kwargs["prices"] = Prices(
            message=p.integer("message", 1),
            scid_register=p.integer("scid_register", 2),
            scid_renew=p.integer("scid_renew", 1),
            hints=p.integer("hints", 0),
            circuit_open=None if circuit < 0 else circuit,
        )
    except HornetError as exc:
        raise ConfigError(f"prices: {exc}") from exc
    p.finish()

    c = top.section("credentials")
    try:
        kwargs["credential_params"] = CredentialParams(
            range_bits=c.integer("range_bits", 32),
            k=c.integer("k", 2),
            issuance_k=c.integer("issuance_k", 16),
            unit_value=c.integer("unit_value", 1),
            epoch_origin=c.integer("epoch_origin", 0),
            epoch_length=c.integer("epoch_length", 7 * 24 * 3600),
            grace_period=c.integer("grace_period", 24 * 3600),
        )
    except HornetError as exc:
        raise ConfigError(f"credentials: {exc}") from exc
    c.finish()

    s = top.section("scid")
    kwargs["scid_lifetime_s"] = s.number("lifetime_s", 600.0)
    kwargs["scid_max_ahead_s"] = s.number("max_ahead_s", max(2400.0, kwargs["scid_lifetime_s"]))
    kwargs["scid_tombstone_s"] = s.number("tombstone_s", 7 * 86400.0)
    kwargs["max_scids"] = s.integer("max_live", 100_000)
    kwargs["mailbox_messages"] = s.integer("mailbox_messages", 16)
    kwargs["mailbox_bytes"] = s.integer("mailbox_bytes", 65_536)
    kwargs["mailbox_total_bytes"] = s.integer("mailbox_total_bytes", 16 << 20)
    s.finish()

    bun = top.section("bundles")
    kwargs["bundle_k"] = bun.integer("k", 16)
    kwargs["bundle_lifetime_s"] = bun.number("lifetime_s", 60.0)
    kwargs["max_bundles"] = bun.integer("max_live", 100_000)
    bun.finish()

    lim = top.section("limits")
    profiles = dict(PROFILES)
    prof = lim.section("profiles")
    for name in list(prof.data):
        profiles[str(name)] = _limit(prof.raw(name), f"limits.profiles.{name}", PROFILES)
    prof.finish()
    kwargs["profiles"] = profiles
    if lim.has("incoming_peer"):
        kwargs["incoming_peer"] = _limit(lim.raw("incoming_peer"), "limits.incoming_peer", profiles)
    if lim.has("incoming_client"):
        kwargs["incoming_client"] = _limit(lim.raw("incoming_client"), "limits.incoming_client",
                                           profiles)
    if lim.has("free_forward"):
        kwargs["free_forward"] = _limit(lim.raw("free_forward"), "limits.free_forward", profiles)
    kwargs["client_profile"] = lim.string("client_profile", "hornet")
    kwargs["queue_messages"] = lim.integer("queue_messages", 50)
    kwargs["queue_bytes"] = lim.integer("queue_bytes", 262_144)
    lim.finish()

    b = top.section("backpressure")
    kwargs["backpressure_recover_s"] = b.number("recover_s", 30.0)
    kwargs["backpressure_min_interval_s"] = b.number("min_interval_s", 1.0)
    kwargs["backpressure_floor"] = b.number("floor", 1 / 64)
    kwargs["send_drop_notices"] = b.boolean("send_drop_notices", True)
    b.finish()

    h = top.section("hints")
    kwargs["hint_tau_s"] = h.number("tau_s", 10.0)
    kwargs["hint_entries"] = h.integer("entries", 8)
    h.finish()

    peers = []
    raw_peers = top.raw("peers") if top.has("peers") else []
    if not isinstance(raw_peers, list):
        raise ConfigError("peers must be a list of tables")
    for i, raw in enumerate(raw_peers):
        ps = _Section(raw, f"peers[{i}]")
        node_id = parse_node_id(ps.raw("node_id") if ps.has("node_id") else None,
                                f"peers[{i}].node_id")
        address = ps.string("address", None)
        peers.append(PeerConfig(
            node_id=node_id,
            profile=ps.string("profile", "cln") or "cln",
            address=None if address is None else parse_address(address, f"peers[{i}].address"),
        ))
        ps.finish()
    kwargs["peers"] = tuple(peers)

    channels = []
    raw_channels = top.raw("channels") if top.has("channels") else []
    if not isinstance(raw_channels, list):
        raise ConfigError("channels must be a list of tables")
    for i, raw in enumerate(raw_channels):
        cs = _Section(raw, f"channels[{i}]")
        scid = parse_scid(cs.raw("scid") if cs.has("scid") else None, f"channels[{i}].scid")
        node_id = parse_node_id(cs.raw("node_id") if cs.has("node_id") else None,
                                f"channels[{i}].node_id")
        channels.append((scid, node_id))
        cs.finish()
    kwargs["channels"] = tuple(channels)

    r = top.section("relay")
    relay_listen = r.string("listen", None)
    if relay_listen is not None:
        kwargs["relay_listen"] = parse_address(relay_listen, "relay.listen")
    kwargs["relay_directory"] = r.string("directory", None)
    kwargs["relay_setup_queue"] = r.integer("setup_queue", 64)
    kwargs["relay_link"] = r.boolean("link", True)
    public = r.string("public_address", None)
    if public is not None:
        kwargs["relay_public_address"] = parse_address(public, "relay.public_address")
    kwargs["circuit_max_lifetime_s"] = r.number("max_lifetime_s", 600.0)
    r.finish()

    top.finish()
    try:
        return MixerConfig(**kwargs)
    except ConfigError:
        raise
    except HornetError as exc:
        raise ConfigError(str(exc)) from exc


__all__ = ["DEFAULT_PORT", "MixerConfig", "PeerConfig", "parse_config"]

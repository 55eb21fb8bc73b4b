"""The relay directory and node key files.

Directory: a JSON file ``{"hornet_directory": 1, "params": {...}, "relays": [...],
"mixers": [...]}`` in which each relay is ``{"node_id": hex8, "public_key": hex33,
"address": "host:port", "setup_keys": {"<epoch>": hex33, ...}}``. ``public_key`` is the
long-term identity (node id, link handshakes); ``setup_keys`` are the rotating setup keys
of the listed key epochs (SPEC.md §7.1), normally the current and the next.

Each mixer (optional list, docs/spec-mixer.md §3.5) is ``{"node_id": hex33,
"credential_params": hex35, "issuer_keys": {"<epoch>": hex66, ...}}``: the Lightning node
id that signs its INFO, its credential configuration (SPEC.md §9.1) and, per credential
epoch, ``Cw ‖ I`` of the issuer parameters it will use (SPEC.md §9.2). Every client
reads the same file, so these are the commitments wallets hold the mixer to: a mixer
cannot give one buyer an issuer key of its own without the wallet refusing it. The list
is plain data in the directory document; whatever authenticates the document covers it.
It is validated when loaded: a bad file raises ``ConfigError`` with a message that names
the file and the field, never a traceback.

Key file: JSON ``{"type": "hornet-node-key", "secret": hex32, "local_secret": hex32}``,
created on first start with mode 0600 (``load_or_create_key``).

Endpoint ids: a source or rendezvous client is not in the directory; the last relay of
its backward path reaches it through an 8-byte *endpoint id* that encodes its IPv4
address: ``0xFE 0x04 ‖ IPv4 (4) ‖ port (u16)``. A relay looks ids up in its directory
first, so a node id that happens to start with 0xFE04 is still a node id.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import attrs

from hornet.core.crypto import SecretKey, validate_pubkey
from hornet.core.keys import epoch_public_key
from hornet.core.params import DEFAULT_EPOCH_S, DEFAULT_MAX_SKEW_S, MAX_MAX_HOPS, Params, Profile
from hornet.core.relay import node_id_of
from hornet.credentials.params import PARAMS_LEN, CredentialParams, IssuerPublicParams
from hornet.errors import ConfigError, HornetError, InvalidPointError

ENDPOINT_PREFIX: Final = b"\xfe\x04"
#: An IPv6 endpoint's id: this prefix, a 4-byte tag of its address, its port.
ENDPOINT_PREFIX_V6: Final = b"\xfe\x06"
_TAG_PERSON: Final = b"hornet-endpoint6"
DIRECTORY_VERSION: Final = 1
#: An issuer key in a mixer listing: Cw ‖ I (SPEC.md §9.2, iparams without the epoch).
ISSUER_KEY_LEN: Final = 66
MAX_LISTED_EPOCHS: Final = 1000

Address = tuple[str, int]


def endpoint_id(address: Address) -> bytes:
    """The 8-byte id under which relays reach the endpoint at ``address``:
    ``0xFE 0x04 ‖ IPv4 ‖ port``, or for IPv6 ``0xFE 0x06 ‖ endpoint_tag ‖ port`` (the
    relay finds the address among its link peers: ``endpoint_v6``)."""
    host, port = address
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise ConfigError(f"an endpoint id needs a numeric IP address, got {host!r}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return ENDPOINT_PREFIX + ip.packed + port.to_bytes(2, "big")
    return ENDPOINT_PREFIX_V6 + endpoint_tag(str(ip)) + port.to_bytes(2, "big")


def endpoint_tag(host: str) -> bytes:
    """The 4-byte tag of an IPv6 address in an endpoint id (BLAKE2b, personalised)."""
    packed = ipaddress.IPv6Address(host.split("%", 1)[0]).packed
    return hashlib.blake2b(packed, digest_size=4, person=_TAG_PERSON).digest()


def endpoint_v6(node_id: bytes) -> tuple[bytes, int] | None:
    """The (address tag, port) an IPv6 endpoint id holds, or None if it is not one."""
    if len(node_id) != 8 or node_id[:2] != ENDPOINT_PREFIX_V6:
        return None
    port = int.from_bytes(node_id[6:8], "big")
    return (bytes(node_id[2:6]), port) if port else None


def endpoint_address(node_id: bytes) -> Address | None:
    """The address an endpoint id encodes, or None if it is not one."""
    if len(node_id) != 8 or node_id[:2] != ENDPOINT_PREFIX:
        return None
    port = int.from_bytes(node_id[6:8], "big")
    if port == 0:
        return None
    return str(ipaddress.IPv4Address(node_id[2:6])), port


def parse_address(text: str, *, where: str = "address") -> Address:
    """``host:port`` or ``[IPv6]:port``."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]") and ":" in host:
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address needs its brackets
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: expected host:port or [IPv6]:port, got {text!r}")
    return host, int(port)


def format_address(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@attrs.frozen
class EpochKey:
    """A relay's setup public key for one key epoch."""

    epoch: int
    public_key: bytes


@attrs.frozen
class RelayInfo:
    node_id: bytes
    public_key: bytes  # identity: node id and link handshakes
    address: Address
    setup_keys: tuple[EpochKey, ...] = ()

    def setup_key(self, epoch: int) -> bytes | None:
        """The setup key this relay published for ``epoch``, if any."""
        for key in self.setup_keys:
            if key.epoch == epoch:
                return key.public_key
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id.hex(),
            "public_key": self.public_key.hex(),
            "address": format_address(self.address),
            "setup_keys": {str(k.epoch): k.public_key.hex() for k in self.setup_keys},
        }


@attrs.frozen
class MixerListing:
    """A mixer's public commitments: node id, credential configuration and the issuer
    parameters (Cw, I) of each listed credential epoch (normally the current and the
    next, and the previous while it is in its grace period)."""

    node_id: bytes  # 33-byte Lightning node id: the key that signs the mixer's INFO
    credential_params: CredentialParams
    issuer_keys: tuple[IssuerPublicParams, ...] = ()

    def __attrs_post_init__(self) -> None:
        if len(self.node_id) != 33:
            raise ConfigError("mixer node_id must be 33 bytes")
        epochs = [key.epoch for key in self.issuer_keys]
        if len(set(epochs)) != len(epochs):
            raise ConfigError("mixer listing names a credential epoch twice")

    def issuer_key(self, epoch: int) -> IssuerPublicParams | None:
        """The issuer parameters this mixer committed to for ``epoch``, if any."""
        for key in self.issuer_keys:
            if key.epoch == epoch:
                return key
        return None

    @property
    def epochs(self) -> tuple[int, ...]:
        return tuple(key.epoch for key in self.issuer_keys)

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id.hex(),
            "credential_params": self.credential_params.encode().hex(),
            "issuer_keys": {str(k.epoch): k.encode()[4:].hex() for k in self.issuer_keys},
        }


@attrs.frozen
class Directory:
    """The relays a node or client knows, the network's parameters, and the mixers'
    issuer-key commitments.

    Immutable. Iterating gives the relays (``RelayInfo``); ``len`` counts them.
    ``Directory.load(path)`` reads a directory file, ``write(path)`` writes one, and
    ``DirectoryClient`` fetches one signed by the authorities.

    Raises:
        ConfigError: (when built) a node id or a mixer is listed twice.
    """

    relays: tuple[RelayInfo, ...]
    params: Params = attrs.field(factory=Params)
    mixers: tuple[MixerListing, ...] = ()
    _by_id: dict[bytes, RelayInfo] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        by_id = {relay.node_id: relay for relay in self.relays}
        if len(by_id) != len(self.relays):
            raise ConfigError("directory lists a node id twice")
        if len({mixer.node_id for mixer in self.mixers}) != len(self.mixers):
            raise ConfigError("directory lists a mixer twice")
        object.__setattr__(self, "_by_id", by_id)

    def __iter__(self) -> Iterator[RelayInfo]:
        return iter(self.relays)

    def __len__(self) -> int:
        return len(self.relays)

    def get(self, node_id: bytes) -> RelayInfo | None:
        """The relay with 8-byte id ``node_id``, or None if it is not listed."""
        return self._by_id.get(node_id)

    def address_of(self, node_id: bytes) -> Address | None:
        """Where to send a packet for ``node_id``: a relay's address or an endpoint's."""
        relay = self._by_id.get(node_id)
        return relay.address if relay is not None else endpoint_address(node_id)

    def mixer(self, node_id: bytes) -> MixerListing | None:
        """The listing of the mixer whose Lightning node id is ``node_id``, if any."""
        return next((m for m in self.mixers if m.node_id == bytes(node_id)), None)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "hornet_directory": DIRECTORY_VERSION,
            "params": {
                "max_hops": self.params.max_hops,
                "profile": self.params.profile.value,
                "epoch_s": self.params.epoch_s,
                "max_skew_s": self.params.max_skew_s,
            },
            "relays": [relay.to_json() for relay in self.relays],
        }
        if self.mixers:  # absent when empty: directories without mixers are unchanged
            data["mixers"] = [mixer.to_json() for mixer in self.mixers]
        return data

    def write(self, path: str | Path) -> None:
        """Write the directory to ``path`` as JSON (the format ``load`` reads)."""
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Directory:
        """The directory in the JSON file at ``path``.

        Raises:
            ConfigError: the file is unreadable, not UTF-8 JSON, or not a valid
                directory; the message names the file and the field.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read directory {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"directory {path} is not UTF-8 text") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"directory {path} is not JSON: line {exc.lineno}") from None
        except (ValueError, RecursionError):  # a number over 4300 digits, or nested too deep
            raise ConfigError(f"directory {path}: JSON nested too deep or too long") from None
        return cls.from_json(data, where=str(path))

    @classmethod
    def from_json(cls, data: Any, *, where: str = "directory") -> Directory:
        if not isinstance(data, dict) or data.get("hornet_directory") != DIRECTORY_VERSION:
            raise ConfigError(f"{where}: not a hornet directory (version {DIRECTORY_VERSION})")
        params = _params(data.get("params", {}), where)
        _reject_unknown(data, _DIRECTORY_FIELDS, where)
        entries = data.get("relays")
        if not isinstance(entries, list):
            raise ConfigError(f"{where}: 'relays' must be a list")
        mixers = data.get("mixers", [])
        if not isinstance(mixers, list):
            raise ConfigError(f"{where}: 'mixers' must be a list")
        relays = tuple(_relay(entry, f"{where}: relays[{i}]") for i, entry in enumerate(entries))
        _reject_duplicates(relays, where)
        return cls(
            relays,
            params,
            tuple(mixer_listing_from_json(entry, where=f"{where}: mixers[{i}]")
                  for i, entry in enumerate(mixers)),
        )


# The fields a directory may hold; anything else is refused, so a typo is never ignored.
# ``mixers``: each mixer's listing with its credential issuer keys (docs/spec-mixer.md §3.5).
_DIRECTORY_FIELDS: Final = frozenset({"hornet_directory", "params", "relays", "mixers"})
_PARAMS_FIELDS: Final = frozenset({"max_hops", "profile", "epoch_s", "max_skew_s"})
_RELAY_FIELDS: Final = frozenset({"node_id", "public_key", "address", "setup_keys"})


def _reject_unknown(data: dict[str, Any], known: frozenset[str], where: str) -> None:
    extra = sorted(str(key) for key in data if key not in known)
    if extra:
        raise ConfigError(f"{where}: unknown field {extra[0][:40]!r}")


def _reject_duplicates(relays: tuple[RelayInfo, ...], where: str) -> None:
    """Two entries with one node id or one address: ``ConfigError`` naming both."""
    ids: dict[bytes, int] = {}
    addresses: dict[Address, int] = {}
    for i, relay in enumerate(relays):
        first = ids.setdefault(relay.node_id, i)
        if first != i:
            raise ConfigError(f"{where}: relays[{i}] lists a node id twice (as relays[{first}])")
        first = addresses.setdefault(relay.address, i)
        if first != i:
            host, port = relay.address
            raise ConfigError(
                f"{where}: relays[{i}].address {host}:{port} is also relays[{first}]'s"
            )


def _params(data: Any, where: str) -> Params:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: 'params' must be an object")
    _reject_unknown(data, _PARAMS_FIELDS, f"{where}: params")
    max_hops = data.get("max_hops", Params().max_hops)
    if not isinstance(max_hops, int) or not 1 <= max_hops <= MAX_MAX_HOPS:
        raise ConfigError(f"{where}: params.max_hops must be an integer in [1, {MAX_MAX_HOPS}]")
    try:
        profile = Profile(data.get("profile", Params().profile.value))
    except ValueError:
        raise ConfigError(f"{where}: params.profile must be 'paper' or 'hardened'") from None
    epoch_s = data.get("epoch_s", DEFAULT_EPOCH_S)
    max_skew_s = data.get("max_skew_s", DEFAULT_MAX_SKEW_S)
    if not isinstance(epoch_s, int) or not isinstance(max_skew_s, int):
        raise ConfigError(f"{where}: params.epoch_s and params.max_skew_s must be integers")
    try:
        return Params(max_hops=max_hops, profile=profile, epoch_s=epoch_s, max_skew_s=max_skew_s)
    except HornetError as exc:
        raise ConfigError(f"{where}: params: {exc}") from None


def _hex(entry: dict[str, Any], field: str, size: int, where: str) -> bytes:
    value = entry.get(field)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise ConfigError(f"{where}.{field}: expected {size} bytes of hex")
    return raw


def _relay(entry: Any, where: str) -> RelayInfo:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be an object")
    _reject_unknown(entry, _RELAY_FIELDS, where)
    node_id = _hex(entry, "node_id", 8, where)
    public_key = _hex(entry, "public_key", 33, where)
    try:
        validate_pubkey(public_key)
    except InvalidPointError:
        raise ConfigError(f"{where}.public_key: not a valid secp256k1 point") from None
    if node_id_of(public_key) != node_id:
        raise ConfigError(f"{where}.node_id: does not match the public key")
    address = entry.get("address")
    if not isinstance(address, str):
        raise ConfigError(f"{where}.address: expected 'host:port'")
    keys = entry.get("setup_keys", {})
    if not isinstance(keys, dict) or len(keys) > 1000:
        raise ConfigError(f"{where}.setup_keys: expected an object {{epoch: hex33}}")
    if not keys:
        raise ConfigError(f"{where}.setup_keys: empty (list the current and next epochs' keys)")
    setup_keys = []
    for epoch, _ in keys.items():
        if not epoch.isdigit() or int(epoch) >= 1 << 32:
            raise ConfigError(f"{where}.setup_keys: {epoch[:20]!r} is not an epoch number")
        key = _hex(keys, epoch, 33, f"{where}.setup_keys")
        try:
            validate_pubkey(key)
        except InvalidPointError:
            raise ConfigError(f"{where}.setup_keys.{epoch}: not a valid secp256k1 point") from None
        setup_keys.append(EpochKey(int(epoch), key))
    return RelayInfo(
        node_id,
        public_key,
        parse_address(address, where=f"{where}.address"),
        tuple(sorted(setup_keys, key=lambda k: k.epoch)),
    )


def mixer_listing_from_json(entry: Any, *, where: str = "mixer listing") -> MixerListing:
    """Parse one ``mixers`` entry (the output of ``hornet mixer-entry``)."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be an object")
    node_id = _hex(entry, "node_id", 33, where)
    try:
        validate_pubkey(node_id)
    except InvalidPointError:
        raise ConfigError(f"{where}.node_id: not a valid secp256k1 point") from None
    try:
        params = CredentialParams.decode(_hex(entry, "credential_params", PARAMS_LEN, where))
    except HornetError:
        raise ConfigError(f"{where}.credential_params: not a valid configuration") from None
    keys = entry.get("issuer_keys", {})
    if not isinstance(keys, dict) or len(keys) > MAX_LISTED_EPOCHS:
        raise ConfigError(f"{where}.issuer_keys: expected an object {{epoch: hex66}}")
    issuer_keys = []
    for epoch in keys:
        if not epoch.isdigit() or int(epoch) >= 1 << 32:
            raise ConfigError(f"{where}.issuer_keys: {epoch[:20]!r} is not an epoch number")
        raw = _hex(keys, epoch, ISSUER_KEY_LEN, f"{where}.issuer_keys")
        try:
            issuer_keys.append(IssuerPublicParams.decode(int(epoch).to_bytes(4, "big") + raw))
        except HornetError:
            raise ConfigError(f"{where}.issuer_keys.{epoch}: not two valid points") from None
    return MixerListing(node_id, params, tuple(sorted(issuer_keys, key=lambda k: k.epoch)))


# -- node key files -----------------------------------------------------------------------


@attrs.frozen
class NodeKeys:
    """A node's long-term key and its local secret SV (both hidden from repr).

    ``node_key`` is the identity the directory lists (its node id is
    SHA256(public key)[:8]); setup keys and SV rotate per key epoch and derive from
    ``local_secret`` (32 bytes). Read one with ``load_key_file``, write one with
    ``write_key_file``; ``serve``, ``serve_relay`` and the mixer's relay need it.
    """

    node_key: SecretKey = attrs.field(repr=False)
    local_secret: bytes = attrs.field(repr=False)

    @property
    def node_id(self) -> bytes:
        """The node's 8-byte id: SHA256(compressed public key)[:8]."""
        return node_id_of(self.node_key.public_key)

    @classmethod
    def generate(cls, rng: Any) -> NodeKeys:
        """Fresh keys from ``rng`` (``secrets.SystemRandom()`` for a real node)."""
        return cls(SecretKey.from_rng(rng), rng.randbytes(32))


def write_key_file(path: str | Path, keys: NodeKeys) -> None:
    """Write ``keys`` to ``path``, created with mode 0600 (never readable by others).

    Args:
        path: the key file; an existing one is overwritten.
        keys: the node's keys.

    Raises:
        OSError: the file cannot be created or written.
    """
    body = json.dumps(
        {
            "type": "hornet-node-key",
            "secret": keys.node_key.secret_bytes().hex(),
            "local_secret": keys.local_secret.hex(),
            "public_key": keys.node_key.public_key.hex(),
        }
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(body + "\n")
    os.chmod(path, 0o600)


def check_key_permissions(path: str | Path, mode: int) -> None:
    """Refuse a secret key file that its group or others may access (as ssh does)."""
    if mode & 0o077:
        raise ConfigError(
            f"key file {path}: permissions {mode & 0o777:04o} are too open (the group or "
            f"others may read it); fix with: chmod 600 {path}"
        )


def load_key_file(path: str | Path) -> NodeKeys:
    """The node keys in the key file at ``path`` (as ``write_key_file`` writes it).

    Args:
        path: the key file.

    Returns:
        The node's ``NodeKeys``.

    Raises:
        ConfigError: naming the file, if it is unreadable, malformed, not a hornet node
            key, or accessible to anyone but its owner (its mode must be 0600 or
            stricter).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            check_key_permissions(path, mode)
            data = json.loads(handle.read())
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None
    except (ValueError, RecursionError):  # not UTF-8, not JSON, too deep, number too long
        raise ConfigError(f"key file {path} is not JSON") from None
    if not isinstance(data, dict) or data.get("type") != "hornet-node-key":
        raise ConfigError(f"key file {path}: not a hornet node key")
    where = f"key file {path}"
    secret = _hex(data, "secret", 32, where)
    # Key files from older ``hornet keygen`` have no SV: derive none, refuse instead.
    local_secret = _hex(data, "local_secret", 32, where)
    try:
        return NodeKeys(SecretKey(secret), local_secret)
    except HornetError:
        raise ConfigError(f"{where}: the secret is not a valid secp256k1 scalar") from None


def load_or_create_key(path: str | Path) -> NodeKeys:
    """Load the key file at ``path``, or create it (mode 0600) on first start."""
    if not Path(path).exists():
        write_key_file(path, NodeKeys.generate(secrets.SystemRandom()))
    return load_key_file(path)


def relay_info(
    keys: NodeKeys,
    address: Address,
    params: Params | None = None,
    *,
    now: float | None = None,
    epochs: int = 2,
) -> RelayInfo:
    """A relay's directory entry listing its setup keys for ``epochs`` key epochs.

    Args:
        keys: the relay's node keys.
        address: where the relay receives packets.
        params: the network's parameters (default ``Params()``).
        now: the time whose key epoch comes first (default: the clock).
        epochs: how many key epochs to list, from the one at ``now``: by default the
            current one and the next.

    Returns:
        The ``RelayInfo`` to put in a ``Directory`` (which validates the address).

    Raises:
        ValueError: ``epochs`` is less than 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {epochs}")
    params = params or Params()
    first = params.epoch_of(time.time() if now is None else now)
    setup_keys = tuple(
        EpochKey(e, epoch_public_key(keys.local_secret, e)) for e in range(first, first + epochs)
    )
    return RelayInfo(keys.node_id, keys.node_key.public_key, address, setup_keys)


def directory_of(relays: Iterable[RelayInfo], params: Params | None = None) -> Directory:
    return Directory(tuple(relays), params or Params())

"""A relay's configuration file (``hornet relay --config FILE``), read and checked whole.

Rules:
1. The file is one JSON object. A key this module does not know is an error, so a typo
   (``dta_rate``) never runs silently on defaults.
2. Every path in it is relative to the file's folder, wherever the command runs from.
3. Every error is a ``ConfigError`` whose one line names the file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import attrs

from hornet.core.params import (
    ETHERNET_MTU,
    IPV6_MIN_MTU,
    LINK_OVERHEAD,
    UDP_IPV4_OVERHEAD,
    UDP_IPV6_OVERHEAD,
    Params,
)
from hornet.directory.document import trusted_keys
from hornet.directory.model import Address, parse_address
from hornet.errors import ConfigError
from hornet.node.admission import Limits

_RELAY_KEYS: Final = frozenset(
    {
        "key_file",
        "directory",
        "listen",
        "loss",
        "link",
        "native_loop",
        "state",
        "state_sync",
        "metrics",
        "authorities",
        "public_address",
        "path_mtu",
    }
) | frozenset(field.name for field in attrs.fields(Limits))
#: ``path_mtu`` bounds: IPv6's minimum link MTU, and the largest IP packet.
MIN_PATH_MTU: Final = IPV6_MIN_MTU
MAX_PATH_MTU: Final = 65535


def load_json_config(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``ConfigError`` (naming the file) if there is none."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {path} is not JSON: line {exc.lineno}") from None
    except (ValueError, RecursionError):  # not UTF-8, nested too deep, number too long
        raise ConfigError(f"config {path} is not usable JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a JSON object")
    return data


def reject_unknown(data: dict[str, Any], known: frozenset[str], where: str) -> None:
    """``ConfigError`` naming the first key of ``data`` not in ``known``."""
    extra = sorted(key for key in data if key not in known)
    if extra:
        raise ConfigError(f"{where}: unknown key {extra[0]!r}")


_AUTHORITY_KEYS: Final = frozenset({"urls", "keys", "threshold", "cache"})


@attrs.frozen
class AuthoritiesConfig:
    """Where a node gets its directory from: ``threshold`` of the authorities whose
    x-only keys are ``keys``, at ``urls``; the verified documents cached in ``cache``."""

    urls: tuple[str, ...]
    keys: frozenset[bytes]
    threshold: int
    cache: Path

    @classmethod
    def parse(cls, data: Any, base: Path, where: str) -> AuthoritiesConfig:
        where = f"{where}: authorities"
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be an object")
        reject_unknown(data, _AUTHORITY_KEYS, where)
        urls = data.get("urls")
        if (
            not isinstance(urls, list)
            or not urls
            or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls)
        ):
            raise ConfigError(f"{where}.urls must be a list of http(s) URLs")
        keys_list = data.get("keys")
        if not isinstance(keys_list, list) or not keys_list:
            raise ConfigError(f"{where}.keys must be a list of authority keys")
        keys = trusted_keys(keys_list, where=f"{where}.keys")
        threshold = data.get("threshold", len(keys) // 2 + 1)
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise ConfigError(f"{where}.threshold must be an integer")
        if not 1 <= threshold <= len(keys):
            raise ConfigError(f"{where}.threshold must be in [1, {len(keys)}]")
        cache = data.get("cache", "directory-cache.json")
        if not isinstance(cache, str):
            raise ConfigError(f"{where}.cache must be a string")
        return cls(tuple(urls), keys, threshold, base / cache)


@attrs.frozen
class RelayConfig:
    """A relay's settings, paths already resolved against the config file's folder."""

    path: Path
    key_file: Path
    directory: Path | None
    listen: Address | None
    state: Path
    state_sync: str = "normal"
    loss: float = 0.0
    link: bool = True
    native_loop: bool = True  # the native data loop when the native engine is active
    limits: Limits = attrs.field(factory=Limits)
    metrics: Address | None = None  # where to serve Prometheus metrics (opt-in)
    authorities: AuthoritiesConfig | None = None  # instead of a directory file
    public_address: Address | None = None  # published to the authorities (default listen)
    path_mtu: int = ETHERNET_MTU  # no datagram above this leaves (IP and UDP headers in)

    @classmethod
    def load(cls, path: str | Path, *, need_directory: bool = True) -> RelayConfig:
        data = load_json_config(path)
        where = f"config {path}"
        reject_unknown(data, _RELAY_KEYS, where)
        if need_directory and "authorities" not in data:
            required: tuple[str, ...] = ("key_file", "directory", "listen")
        elif need_directory:
            required = ("key_file", "listen")
        else:
            required = ("key_file",)
        if "authorities" in data and "directory" in data:
            raise ConfigError(f"{where}: give 'directory' or 'authorities', not both")
        for key in required:
            if key not in data:
                raise ConfigError(f"{where}: '{key}' is required")
        for key in (
            "key_file",
            "directory",
            "listen",
            "state",
            "state_sync",
            "metrics",
            "public_address",
        ):
            if key in data and not isinstance(data[key], str):
                raise ConfigError(f"{where}: '{key}' must be a string")
        base = Path(path).resolve().parent
        loss = data.get("loss", 0.0)
        if isinstance(loss, bool) or not isinstance(loss, int | float) or not 0 <= loss < 1:
            raise ConfigError(f"{where}: 'loss' must be a number in [0, 1)")
        link = data.get("link", True)  # link encryption between neighbours (docs/spec-link.md)
        if not isinstance(link, bool):
            raise ConfigError(f"{where}: 'link' must be true or false")
        native_loop = data.get("native_loop", True)
        if not isinstance(native_loop, bool):
            raise ConfigError(f"{where}: 'native_loop' must be true or false")
        state_sync = data.get("state_sync", "normal")
        if state_sync not in ("normal", "full"):
            raise ConfigError(f"{where}: 'state_sync' must be 'normal' or 'full'")
        path_mtu = data.get("path_mtu", ETHERNET_MTU)
        if (isinstance(path_mtu, bool) or not isinstance(path_mtu, int)
                or not MIN_PATH_MTU <= path_mtu <= MAX_PATH_MTU):
            raise ConfigError(
                f"{where}: 'path_mtu' must be an integer in [{MIN_PATH_MTU}, {MAX_PATH_MTU}]"
            )
        listen = data.get("listen")
        metrics = data.get("metrics")
        public = data.get("public_address")
        authorities = data.get("authorities")
        return cls(
            path=Path(path),
            key_file=base / data["key_file"],
            directory=base / data["directory"] if "directory" in data else None,
            listen=None if listen is None else parse_address(listen, where=f"{where}: listen"),
            # Replay state across restarts (SPEC.md §7.5): next to the key file by default.
            state=base / data.get("state", data["key_file"] + ".state.sqlite"),
            state_sync=state_sync,
            loss=float(loss),
            link=link,
            native_loop=native_loop,
            limits=Limits.from_mapping(data, where=where),
            metrics=None if metrics is None else parse_address(metrics, where=f"{where}: metrics"),
            authorities=(
                None if authorities is None else AuthoritiesConfig.parse(authorities, base, where)
            ),
            public_address=(
                None if public is None else parse_address(public, where=f"{where}: public_address")
            ),
            path_mtu=path_mtu,
        )

    def check_path_mtu(self, params: Params) -> None:
        """``ConfigError`` if ``path_mtu`` cannot carry a setup packet and a data packet
        of the runtime's class for the relay's address family (IPv4: the default class;
        IPv6: the class for IPv6's 1280-byte minimum) inside a link record."""
        ipv6 = self.listen is not None and ":" in self.listen[0]
        ip_udp = UDP_IPV6_OVERHEAD if ipv6 else UDP_IPV4_OVERHEAD
        payload = params.max_payload(IPV6_MIN_MTU, ipv6=True) if ipv6 else (
            params.default_payload_size
        )
        largest = LINK_OVERHEAD + max(params.setup_packet_len, params.data_packet_len(payload))
        if largest + ip_udp > self.path_mtu:
            raise ConfigError(
                f"config {self.path}: 'path_mtu' {self.path_mtu} is below the network's "
                f"largest datagram ({largest} bytes + {ip_udp} of IP and UDP headers)"
            )


__all__ = ["RelayConfig", "load_json_config", "reject_unknown"]

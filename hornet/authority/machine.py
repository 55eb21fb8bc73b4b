"""A directory authority's state: the entries relays uploaded, and the documents it
published (the current one and the previous one). Sans-IO: ``now`` and the signing
randomness are passed in; the HTTP service and the key file live elsewhere.

Rules for an uploaded entry (``submit``), each refusal a ``HornetError``:
1. its signature by the relay's identity key verifies (``verify_entry``);
2. it was signed within ``max_skew_s`` of now, and later than the entry held for that
   relay (an old entry replayed cannot roll a relay's keys or address back);
3. it carries the setup key of the current or the next key epoch;
4. no other relay holds its address, nor the mixer whose listing it carries;
5. at most ``MAX_RELAYS`` relays are held.
An entry not renewed within ``entry_lifetime_s`` leaves the next document.

Hidden-service descriptors (``descriptor``'s rules) are held beside the entries, the
newest per service name, until their EXP.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

import attrs

from hornet.core import crypto
from hornet.core.params import Params
from hornet.directory.descriptor import MAX_DESCRIPTORS, SignedDescriptor, verify_descriptor
from hornet.directory.document import (
    MAX_RELAYS,
    SignedEntry,
    sign_document,
    verify_entry,
)
from hornet.directory.model import Directory, check_key_permissions
from hornet.errors import ConfigError, HornetError, RateLimitedError, ReplayError

KEY_TYPE: Final = "hornet-authority-key"


@attrs.frozen
class AuthorityKey:
    """An authority's BIP-340 signing key (secret hidden from repr)."""

    secret: crypto.SecretKey = attrs.field(repr=False)

    @property
    def public(self) -> bytes:
        """The 32-byte x-only key nodes list among their trusted authorities."""
        return crypto.xonly_pubkey(self.secret.public_key)

    @classmethod
    def generate(cls, rng: Any) -> AuthorityKey:
        return cls(crypto.SecretKey.from_rng(rng))

    def write(self, path: str | Path) -> None:
        """Write the key file with mode 0600 (never readable by others)."""
        body = json.dumps(
            {
                "type": KEY_TYPE,
                "secret": self.secret.secret_bytes().hex(),
                "public_key": self.public.hex(),
            }
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(body + "\n")

    @classmethod
    def load(cls, path: str | Path) -> AuthorityKey:
        try:
            with open(path, encoding="utf-8") as handle:
                check_key_permissions(path, os.fstat(handle.fileno()).st_mode)
                data = json.loads(handle.read())
        except OSError as exc:
            raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None
        except (ValueError, RecursionError):
            raise ConfigError(f"key file {path} is not JSON") from None
        if not isinstance(data, dict) or data.get("type") != KEY_TYPE:
            raise ConfigError(f"key file {path}: not a hornet authority key")
        try:
            secret = bytes.fromhex(data.get("secret", ""))
            return cls(crypto.SecretKey(secret))
        except (ValueError, TypeError, HornetError):
            raise ConfigError(f"key file {path}: 'secret' is not a secp256k1 scalar") from None


@attrs.define
class Authority:
    """One authority's entries and documents."""

    key: AuthorityKey
    params: Params = attrs.field(factory=Params)
    validity_s: int = 3600  # how long a published document is valid
    entry_lifetime_s: int = 3 * 3600  # an entry not renewed in this time is dropped
    max_skew_s: int = 300
    entries: dict[bytes, SignedEntry] = attrs.field(factory=dict)
    current: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    descriptors: dict[bytes, SignedDescriptor] = attrs.field(factory=dict)

    def submit(self, data: Any, now: float) -> SignedEntry:
        """Accept a relay's signed entry (module rules 1-5), or raise."""
        signed = verify_entry(data)
        info = signed.info
        if abs(signed.signed_at - now) > self.max_skew_s:
            raise ConfigError("entry: signed_at is too far from the authority's clock")
        held = self.entries.get(info.node_id)
        if held is not None and signed.signed_at <= held.signed_at:
            raise ReplayError("entry: not newer than the entry held for this relay")
        epoch = self.params.epoch_of(now)
        if info.setup_key(epoch) is None and info.setup_key(epoch + 1) is None:
            raise ConfigError("entry: no setup key for the current or next key epoch")
        for other in self.entries.values():
            if other.info.node_id == info.node_id:
                continue
            if other.info.address == info.address:
                raise ConfigError("entry: another relay holds this address")
            if signed.mixer is not None and other.mixer is not None and (
                other.mixer.node_id == signed.mixer.node_id
            ):
                raise ConfigError("entry: another relay carries this mixer's listing")
        if held is None and len(self.entries) >= MAX_RELAYS:
            raise RateLimitedError("entry: the authority holds as many relays as it may")
        self.entries[info.node_id] = signed
        return signed

    def submit_descriptor(self, data: Any, now: float) -> SignedDescriptor:
        """Hold a hidden service's signed descriptor (``descriptor`` rules), or raise."""
        signed = verify_descriptor(data, self.params, now)
        if abs(signed.signed_at - now) > self.max_skew_s:
            raise ConfigError("descriptor: signed_at is too far from the authority's clock")
        held = self.descriptors.get(signed.service)
        if held is not None and signed.signed_at <= held.signed_at:
            raise ReplayError("descriptor: not newer than the one held for this service")
        for name in [n for n, d in self.descriptors.items() if d.descriptor.exp <= now]:
            del self.descriptors[name]
        if held is None and len(self.descriptors) >= MAX_DESCRIPTORS:
            raise RateLimitedError("descriptor: the authority holds as many as it may")
        self.descriptors[signed.service] = signed
        return signed

    def descriptor(self, service: bytes, now: float) -> dict[str, Any] | None:
        """The descriptor held for ``service``, as published, unless it expired."""
        held = self.descriptors.get(service)
        if held is None or held.descriptor.exp <= now:
            return None
        return held.data

    def publish(self, now: float, aux: bytes) -> dict[str, Any]:
        """Sign a document of the live entries, valid from ``now``; the one it replaces
        becomes ``previous``."""
        for node_id in [
            n for n, e in self.entries.items() if now - e.signed_at > self.entry_lifetime_s
        ]:
            del self.entries[node_id]
        live = sorted(self.entries.values(), key=lambda e: e.info.node_id)
        params = Directory((), self.params).to_json()["params"]
        start = int(now)
        document = sign_document(
            self.key.secret, [e.entry for e in live], params, start, start + self.validity_s, aux
        )
        self.previous, self.current = self.current, document
        return document


__all__ = ["Authority", "AuthorityKey"]

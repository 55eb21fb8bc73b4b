"""Hidden-service descriptors at the authorities (sans-IO): signed, named by a key.

A hidden destination (``serve_rendezvous``) gets a new ``Descriptor`` with every
rendezvous circuit it builds. To be reachable under one name it signs each descriptor
with a long-term key, and the x-only public key (32 bytes, 64 hex digits) is the
service's name, as a Tor onion address is its key. Rules:

1. A published descriptor travels as ``{"service": hex32, "descriptor": hex,
   "signed_at": unix, "signature": hex64}``: a BIP-340 signature by the service key
   over the tagged hash (``document.tagged_digest``, its own tag) of the other fields.
2. The name authenticates the descriptor: a client checks the signature under the
   name it was given, so no authority, and no threshold of them, can hand out another
   service's descriptor. Authorities only store and serve; a client asks them all and
   takes the newest (``signed_at``) descriptor that verifies and has not expired.
3. An authority keeps the newest descriptor per name (an older one replayed is
   refused), forgets it at its EXP, and holds at most ``MAX_DESCRIPTORS`` names.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from hornet.core import crypto
from hornet.core.params import Params
from hornet.core.rendezvous import Descriptor
from hornet.directory.document import _integer, tagged_digest
from hornet.errors import ConfigError, HornetError

DESCRIPTOR_TAG: Final = b"hornet/hidden-descriptor/v1"
MAX_DESCRIPTORS: Final = 10_000  # names an authority holds
_FIELDS: Final = frozenset({"service", "descriptor", "signed_at", "signature"})
_MAX_DESCRIPTOR_HEX: Final = 8192


@attrs.frozen
class SignedDescriptor:
    """A descriptor whose signature under its service name verified."""

    service: bytes  # the x-only service key: the name
    descriptor: Descriptor
    signed_at: int
    data: dict[str, Any] = attrs.field(eq=False, repr=False)  # as published


def service_name(key: crypto.SecretKey) -> bytes:
    """The name (x-only public key) a service key publishes under."""
    return crypto.xonly_pubkey(key.public_key)


def sign_descriptor(
    key: crypto.SecretKey, descriptor: Descriptor, signed_at: int, aux: bytes
) -> dict[str, Any]:
    body = {
        "service": service_name(key).hex(),
        "descriptor": descriptor.encode().hex(),
        "signed_at": signed_at,
    }
    signature = crypto.schnorr_sign(key.secret_bytes(), tagged_digest(DESCRIPTOR_TAG, body), aux)
    return {**body, "signature": signature.hex()}


def _hex(data: dict[str, Any], key: str, where: str, size: int | None = None) -> bytes:
    value = data.get(key)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or (size is not None and len(raw) != size):
        raise ConfigError(f"{where}: '{key}' must be {size or 'some'} bytes of hex")
    return raw


def verify_descriptor(
    data: Any,
    params: Params,
    now: float,
    *,
    service: bytes | None = None,
    where: str = "descriptor",
) -> SignedDescriptor:
    """The descriptor in ``data`` if it is signed by its service key (``service``, when
    given, must be that key) and has not expired at ``now``; else a ``HornetError``."""
    if not isinstance(data, dict) or set(data) != _FIELDS:
        raise ConfigError(f"{where}: expected {{service, descriptor, signed_at, signature}}")
    name = _hex(data, "service", where, 32)
    if service is not None and name != service:
        raise ConfigError(f"{where}: published under another name")
    text = data["descriptor"]
    if not isinstance(text, str) or len(text) > _MAX_DESCRIPTOR_HEX:
        raise ConfigError(f"{where}: 'descriptor' must be hex of at most 4096 bytes")
    signed_at = _integer(data, "signed_at", where)
    signature = _hex(data, "signature", where, 64)
    body = {key: value for key, value in data.items() if key != "signature"}
    crypto.schnorr_verify(name, signature, tagged_digest(DESCRIPTOR_TAG, body))
    try:
        descriptor = Descriptor.decode(params, _hex(data, "descriptor", where))
    except HornetError:
        raise ConfigError(f"{where}: not a descriptor of this network") from None
    if descriptor.exp <= now:
        raise ConfigError(f"{where}: expired")
    return SignedDescriptor(name, descriptor, signed_at, data)


def newest(
    published: list[Any], params: Params, service: bytes, now: float
) -> SignedDescriptor | None:
    """The newest of ``published`` (one per authority) that verifies under ``service``."""
    best: SignedDescriptor | None = None
    for i, data in enumerate(published):
        try:
            signed = verify_descriptor(
                data, params, now, service=service, where=f"descriptor {i}"
            )
        except HornetError:
            continue
        if best is None or signed.signed_at > best.signed_at:
            best = signed
    return best


__all__ = [
    "DESCRIPTOR_TAG",
    "MAX_DESCRIPTORS",
    "SignedDescriptor",
    "newest",
    "service_name",
    "sign_descriptor",
    "verify_descriptor",
]

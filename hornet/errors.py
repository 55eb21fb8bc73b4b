"""hornet's one error hierarchy.

Rules (in the style of h11):

1. Every error hornet raises on purpose is a ``HornetError``.
2. ``LocalProtocolError``: *you*, the caller, asked for something impossible
   (a payload that does not fit, a key of the wrong length).
3. ``RemoteProtocolError``: bytes that came from the network are bad. Parsing
   untrusted input raises only this branch; property tests hold us to that.
4. Messages never contain key material, shared secrets or MACs. They name the
   field and the size, nothing else.
"""

from __future__ import annotations


class HornetError(Exception):
    """Base class of every error hornet raises on purpose."""


class LocalProtocolError(HornetError):
    """The caller misused the API: bad arguments, impossible requests."""


class RemoteProtocolError(HornetError):
    """Bytes from a peer are unacceptable. Safe to count, never to echo back."""


class MalformedInputError(RemoteProtocolError):
    """Wrong length, unknown version, bad encoding, truncated or oversize field."""


class InvalidPointError(MalformedInputError):
    """A public key or group element does not decode to a valid curve point."""


class UnknownVersionError(MalformedInputError):
    """The packet's version byte is not one we speak."""


class IntegrityError(RemoteProtocolError):
    """A MAC, tag or proof did not verify (always checked in constant time)."""


class ReplayError(RemoteProtocolError):
    """The packet or token was seen before."""


class ExpiredError(RemoteProtocolError):
    """The packet or credential is past its expiry time."""


__all__ = [
    "ExpiredError",
    "HornetError",
    "IntegrityError",
    "InvalidPointError",
    "LocalProtocolError",
    "MalformedInputError",
    "RemoteProtocolError",
    "ReplayError",
    "UnknownVersionError",
]


# --------------------------------------------------------------------------------------
# Anonymous prepaid credentials (hornet.credentials)


class MalformedCredentialError(MalformedInputError):
    """A credential request, response or parameter set has a bad encoding or shape."""


class InvalidProofError(IntegrityError):
    """A credential proof (MAC presentation, balance, range or issuance) did not verify."""


class DoubleSpendError(ReplayError):
    """A credential serial number, or a payment, was already spent by another request."""


class WrongEpochError(ExpiredError):
    """The credential's epoch is not accepted now (unknown, or past its grace period)."""


class InsufficientValueError(RemoteProtocolError):
    """The value presented or paid does not cover what the request asks for."""


class PaymentRequiredError(RemoteProtocolError):
    """The payment a request names is unknown or not (yet) paid."""


__all__ += [
    "DoubleSpendError",
    "InsufficientValueError",
    "InvalidProofError",
    "MalformedCredentialError",
    "PaymentRequiredError",
    "WrongEpochError",
]


# --------------------------------------------------------------------------------------
# Onion-message mixer (hornet.mixer)


class ConfigError(LocalProtocolError):
    """A configuration, directory or key file is missing or unusable (names the field)."""


class BindError(ConfigError):
    """A service cannot listen on its address (in use, or not this host's)."""


class RateLimitedError(RemoteProtocolError):
    """A peer sent more than its allowance, or a downstream queue is full."""


class UnknownScidError(RemoteProtocolError):
    """A short_channel_id is neither a live synthetic SCID nor a known channel."""


class RequestRefusedError(RemoteProtocolError):
    """The mixer answered a client request with a non-OK status (``status`` names it)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class IssuerKeyMismatchError(IntegrityError):
    """A mixer showed credential parameters or an issuer key other than the ones the
    directory commits it to for that epoch (a tagging attempt, or a stale directory)."""


__all__ += [
    "BindError",
    "ConfigError",
    "IssuerKeyMismatchError",
    "RateLimitedError",
    "RequestRefusedError",
    "UnknownScidError",
]


# --------------------------------------------------------------------------------------
# Link encryption between neighbours (hornet.link)


class UnknownSessionError(RemoteProtocolError):
    """A link datagram belongs to no handshake or session this endpoint holds."""


class LinkAuthenticationError(IntegrityError):
    """A link peer authenticated with a static key other than the one its address has
    in the directory."""


__all__ += [
    "LinkAuthenticationError",
    "UnknownSessionError",
]


# --------------------------------------------------------------------------------------
# Datagram transport (hornet.transport)


class SendRefusedError(HornetError):
    """The local kernel refused to send a datagram to an address (no route, wrong
    family, a socket bound where the address cannot be reached). The message names the
    address; nothing left the host."""


__all__ += ["SendRefusedError"]

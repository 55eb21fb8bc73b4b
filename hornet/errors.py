"""hornet's one error hierarchy.

Rules (in the style of h11):

1. Every error hornet raises on purpose is a ``HornetError``.
2. ``LocalProtocolError``: *you*, the caller, asked for something impossible
   (a payload that does not fit, a key of the wrong length).
3. ``RemoteProtocolError``: bytes that came from the network are bad. Parsing
   untrusted input raises only this branch; property tests hold us to that.
4. Messages never contain key material, shared secrets or MACs. They name the
   field and the size, nothing else.
5. One vocabulary of drop counters (h11's ``error_status_hint`` idea): every
   ``RemoteProtocolError`` subclass names the counter its drops are counted under in
   its class attribute ``reason``, and ``LocalDropReason`` lists the few drops that are
   no peer's fault (a full queue, an unknown next hop). The link layer, admission and
   the relay count drops by these strings and by no others; the reasons are unique
   (``tests/test_errors.py`` holds both rules).
"""

from __future__ import annotations

import enum
from typing import ClassVar


class HornetError(Exception):
    """Base class of every error hornet raises on purpose."""


class LocalProtocolError(HornetError):
    """The caller misused the API: bad arguments, impossible requests."""


class RemoteProtocolError(HornetError):
    """Bytes from a peer are unacceptable. Safe to count, never to echo back."""

    reason: ClassVar[str] = "remote_protocol"


class MalformedInputError(RemoteProtocolError):
    """Wrong length, unknown version, bad encoding, truncated or oversize field."""

    reason: ClassVar[str] = "malformed"


class InvalidPointError(MalformedInputError):
    """A public key or group element does not decode to a valid curve point."""

    reason: ClassVar[str] = "invalid_point"


class UnknownVersionError(MalformedInputError):
    """The packet's version byte is not one we speak."""

    reason: ClassVar[str] = "unknown_version"


class IntegrityError(RemoteProtocolError):
    """A MAC, tag or proof did not verify (always checked in constant time)."""

    reason: ClassVar[str] = "integrity"


class ReplayError(RemoteProtocolError):
    """The packet or token was seen before."""

    reason: ClassVar[str] = "replay"


class ExpiredError(RemoteProtocolError):
    """The packet or credential is past its expiry time."""

    reason: ClassVar[str] = "expired"


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

    reason: ClassVar[str] = "malformed_credential"


class InvalidProofError(IntegrityError):
    """A credential proof (MAC presentation, balance, range or issuance) did not verify."""

    reason: ClassVar[str] = "invalid_proof"


class DoubleSpendError(ReplayError):
    """A credential serial number, or a payment, was already spent by another request."""

    reason: ClassVar[str] = "double_spend"


class WrongEpochError(ExpiredError):
    """The credential's epoch is not accepted now (unknown, or past its grace period)."""

    reason: ClassVar[str] = "wrong_epoch"


class InsufficientValueError(RemoteProtocolError):
    """The value presented or paid does not cover what the request asks for."""

    reason: ClassVar[str] = "insufficient_value"


class PaymentRequiredError(RemoteProtocolError):
    """The payment a request names is unknown or not (yet) paid."""

    reason: ClassVar[str] = "payment_required"


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

    reason: ClassVar[str] = "rate_limited"


class UnknownScidError(RemoteProtocolError):
    """A short_channel_id is neither a live synthetic SCID nor a known channel."""

    reason: ClassVar[str] = "unknown_scid"


class RequestRefusedError(RemoteProtocolError):
    """The mixer answered a client request with a non-OK status (``status`` names it)."""

    reason: ClassVar[str] = "request_refused"

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class IssuerKeyMismatchError(IntegrityError):
    """A mixer showed credential parameters or an issuer key other than the ones the
    directory commits it to for that epoch (a tagging attempt, or a stale directory)."""

    reason: ClassVar[str] = "issuer_key_mismatch"


__all__ += [
    "BindError",
    "ConfigError",
    "IssuerKeyMismatchError",
    "RateLimitedError",
    "RequestRefusedError",
    "UnknownScidError",
]


# --------------------------------------------------------------------------------------
# Relays: the core's decision (hornet.core.relay) and admission (hornet.node.admission)


class RouteError(RemoteProtocolError):
    """A well-formed packet asks this node for a role it may not play: a setup whose
    flags, hop position and bound associated data are not one of the allowed roles, or a
    nested (rendezvous) header on a backward path or at a plain destination."""

    reason: ClassVar[str] = "route"


class LifetimeError(RemoteProtocolError):
    """A setup's EXP is not a multiple of the EXP granularity, or lies further ahead
    than the longest circuit lifetime allows."""

    reason: ClassVar[str] = "lifetime"


class KeyEpochError(RemoteProtocolError):
    """A setup names a key epoch whose setup key this relay does not hold now."""

    reason: ClassVar[str] = "key_epoch"


class SetupRateLimitedError(RateLimitedError):
    """A neighbour sent more setups than its setup allowance (each costs an ECDH)."""

    reason: ClassVar[str] = "setup_rate_limited"


class PuzzleError(RemoteProtocolError):
    """A client setup arrived under load without a puzzle solution of the difficulty
    required now."""

    reason: ClassVar[str] = "puzzle"


class PuzzleReusedError(ReplayError):
    """A client setup carries a puzzle solution (its Sphinx ephemeral key) that was
    already admitted once."""

    reason: ClassVar[str] = "puzzle_reused"


__all__ += [
    "KeyEpochError",
    "LifetimeError",
    "PuzzleError",
    "PuzzleReusedError",
    "RouteError",
    "SetupRateLimitedError",
]


class LocalDropReason(enum.StrEnum):
    """The drops that are no peer's fault, by counter name (rule 5). Each member is a
    ``str``, so it counts and compares as its value."""

    #: A bounded queue was full; the newest datagram or packet was dropped.
    QUEUE_FULL = "queue_full"
    #: A relay's setup queue was full; the newest setup was dropped.
    SETUP_QUEUE_FULL = "setup_queue_full"
    #: The relay still held the most setup replay tags its caller may leave
    #: unpersisted; the setup was refused before its ECDH (``Relay.setup_tags_persisted``).
    SETUP_TAGS_UNPERSISTED = "setup_tags_unpersisted"
    #: The directory has no address for the next hop a packet names.
    UNKNOWN_NEXT_HOP = "unknown_next_hop"
    #: The local kernel refused to send the datagram (``SendRefusedError``).
    SEND_REFUSED = "send_refused"
    #: A packet was delivered to a node that runs no destination service.
    NO_SERVICE = "no_service"
    #: Fault injection in tests: the node dropped this share of arrivals on purpose.
    INJECTED_LOSS = "injected_loss"
    #: A link handshake timed out.
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    #: Packets queued behind a link handshake that failed.
    QUEUE_HANDSHAKE_FAILED = "queue_handshake_failed"
    #: Packets queued for a link peer no handshake could be started with.
    QUEUE_NO_HANDSHAKE = "queue_no_handshake"
    #: Packets queued for a link peer that was forgotten (evicted or timed out).
    QUEUE_PEER_FORGOTTEN = "queue_peer_forgotten"
    #: A half-open link handshake evicted to make room (the global bound).
    HALF_OPEN_EVICTED = "half_open_evicted"
    #: A half-open link handshake evicted to make room (its source's bound).
    HALF_OPEN_EVICTED_SOURCE = "half_open_evicted_source"
    #: A link peer evicted to make room (the global bound).
    PEER_EVICTED = "peer_evicted"
    #: A link peer evicted to make room (its source's bound).
    PEER_EVICTED_SOURCE = "peer_evicted_source"
    #: A destination got a frame for a connection it does not hold (any more).
    UNKNOWN_CONNECTION = "unknown_connection"
    #: A destination at its connection limit refused a new connection.
    TOO_MANY_CONNECTIONS = "too_many_connections"
    #: A destination got a frame before its service reported itself started.
    NOT_STARTED = "not_started"


__all__ += ["LocalDropReason"]


# --------------------------------------------------------------------------------------
# Link encryption between neighbours (hornet.link)


class UnknownSessionError(RemoteProtocolError):
    """A link datagram belongs to no handshake or session this endpoint holds."""

    reason: ClassVar[str] = "unknown_session"


class LinkAuthenticationError(IntegrityError):
    """A link peer authenticated with a static key other than the one its address has
    in the directory."""

    reason: ClassVar[str] = "link_authentication"


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


# --------------------------------------------------------------------------------------
# Circuits (hornet.circuit, hornet.client)


class CircuitError(HornetError):
    """The circuit cannot carry data any more (path broken, expired, closed by peer)."""


class NoPathError(CircuitError):
    """The directory does not hold enough relays for the requested path."""


class StaleDirectoryError(NoPathError):
    """The directory lacks what the current key epoch needs: fetch a fresh one."""


class DescriptorExpiredError(CircuitError):
    """A hidden destination's descriptor is past its EXP: fetch the new one."""


class SetupTimeoutError(CircuitError):
    """No setup reply arrived in time: a relay on the path is unreachable or dropped it."""


__all__ += [
    "CircuitError",
    "DescriptorExpiredError",
    "NoPathError",
    "SetupTimeoutError",
    "StaleDirectoryError",
]

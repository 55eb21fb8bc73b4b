"""What the mixer machine asks of the world (actions) and what it is told back (events).

Rules:
1. ``MixerCore`` returns actions and never performs them. ``Transmit`` and
   ``CircuitRequest`` move bytes; the others are storage work (``StorageAction``),
   each with a ``commit_id`` that its result carries back.
2. The executor of a storage action (``MixerStorage.execute``, blocking; the trio
   service runs it in a worker thread) answers with exactly one ``StorageResult``:
   the commit's outcome, or ``CommitRefused`` with the remote error that refused it
   (a double spend, a bad credential). Storage failures (a full disk) are not results:
   they propagate and stop the service, as a crash would.
3. The machine acts on a spend only after its result: a paid message is forwarded,
   a SCID granted and a circuit opened only once ``SpendsCommitted`` /
   ``RequestCommitted`` says the spends are durable.
"""

from __future__ import annotations

from typing import Literal

import attrs

from hornet.core.blinding import BlindedPath
from hornet.errors import RemoteProtocolError
from hornet.mixer.scid import Registration


def _size(data: bytes) -> str:
    return f"<{len(data)} bytes>"


# --------------------------------------------------------------------------------------
# Actions that move bytes


@attrs.frozen
class Transmit:
    """Send ``message`` (a BOLT 1 message: type 513 or 515) to the peer ``peer``."""

    peer: bytes
    message: bytes = attrs.field(repr=_size)


@attrs.frozen
class CircuitRequest:
    """A paid request to open a HORNET circuit through the mixer: inject ``setup``
    (P➊, whose first hop is the mixer's relay) into that relay. The setup reply P➋
    travels over HORNET, not back to the mixer; ``reply_path`` is informational."""

    request_id: bytes
    setup: bytes = attrs.field(repr=_size)
    paid_value: int
    reply_path: BlindedPath | None


# --------------------------------------------------------------------------------------
# Storage actions


@attrs.frozen
class SpendBatch:
    """The distinct serials of one credential epoch, spent by paid messages."""

    epoch: int
    serials: tuple[bytes, ...] = attrs.field(repr=lambda s: f"<{len(s)} serials>")


@attrs.frozen
class CommitSpends:
    """Record the serials of a batch of paid messages: one transaction per epoch (group
    commit); the store's primary key decides every double spend. Answered by
    ``SpendsCommitted``."""

    commit_id: int
    batches: tuple[SpendBatch, ...]


@attrs.frozen
class ScidWrite:
    """The SCID-store write that goes with a request: ``insert`` a new registration,
    or move ``scid``'s expiry from ``previous_expiry`` to ``expires_at``."""

    insert: Registration | None = None
    scid: int | None = None
    expires_at: float = 0.0
    previous_expiry: float = 0.0


@attrs.frozen
class CommitRequest:
    """Record a paid request's ``serials`` together with its ``response`` in one
    transaction, and the SCID write that goes with it. An identical earlier request
    (same ``request_id``) wins: its cached response is returned and nothing is written.
    ``response`` None only looks the cached response up. ``epoch`` None: nothing is
    spent (a free price), only the SCID write is made. Answered by ``RequestCommitted``
    or ``CommitRefused``; the SCID write is rolled back when the spend is refused."""

    commit_id: int
    epoch: int | None
    serials: tuple[bytes, ...] = attrs.field(repr=lambda s: f"<{len(s)} serials>")
    request_id: bytes = attrs.field(repr=False)
    response: bytes | None = attrs.field(repr=lambda r: "None" if r is None else _size(r))
    scid: ScidWrite | None = None


@attrs.frozen
class RedeemCredentials:
    """Serve a credential request (``issue``: BUY against a payment; ``reissue``:
    REISSUE/ROLLOVER against spent credentials) with the credential service, which
    verifies it, records it and signs the new credentials with randomness drawn from
    ``seed``. Answered by ``CredentialsRedeemed`` or ``CommitRefused``."""

    commit_id: int
    kind: Literal["issue", "reissue"]
    request: bytes = attrs.field(repr=_size)
    now: float
    seed: bytes = attrs.field(repr=False)


@attrs.frozen
class ExpireScids:
    """Delete expired registrations and tombstone them until ``tombstone_until``; purge
    tombstones older than ``purge_before`` (if set). Answered by ``ScidsExpired``."""

    commit_id: int
    scids: tuple[int, ...]
    tombstone_until: float
    purge_before: float | None


StorageAction = CommitSpends | CommitRequest | RedeemCredentials | ExpireScids
Action = Transmit | CircuitRequest | StorageAction


# --------------------------------------------------------------------------------------
# Storage results (events fed back with ``MixerCore.storage_done``)


@attrs.frozen
class SpendsCommitted:
    """The outcome of ``CommitSpends``: ``accepted[i]`` for the i-th serial, batch by
    batch in the action's order (False: spent before, a double spend)."""

    commit_id: int
    accepted: tuple[bool, ...]


@attrs.frozen
class RequestCommitted:
    """The outcome of ``CommitRequest``: ``cached`` is the response of an identical
    earlier request (nothing was written), None if this request was recorded."""

    commit_id: int
    cached: bytes | None = attrs.field(repr=lambda r: "None" if r is None else _size(r))


@attrs.frozen
class CredentialsRedeemed:
    """The outcome of ``RedeemCredentials``: the response body to send."""

    commit_id: int
    body: bytes = attrs.field(repr=_size)


@attrs.frozen
class ScidsExpired:
    """``ExpireScids`` is durable."""

    commit_id: int


@attrs.frozen
class CommitRefused:
    """A storage action refused by the data (``error``, e.g. a ``DoubleSpendError``)."""

    commit_id: int
    error: RemoteProtocolError


StorageResult = SpendsCommitted | RequestCommitted | CredentialsRedeemed | ScidsExpired \
    | CommitRefused


__all__ = [
    "Action",
    "CircuitRequest",
    "CommitRefused",
    "CommitRequest",
    "CommitSpends",
    "CredentialsRedeemed",
    "ExpireScids",
    "RedeemCredentials",
    "RequestCommitted",
    "ScidWrite",
    "ScidsExpired",
    "SpendBatch",
    "SpendsCommitted",
    "StorageAction",
    "StorageResult",
    "Transmit",
]

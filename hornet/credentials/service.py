"""The issuer's request handling: scheme verification + spent-serial store + payments.

Strategy (wabisabi.md §4.5, cheap checks first):
1. Compute the request id; an identical retry of an answered request gets the cached
   response before any expensive work (onion messages get lost, clients retry).
2. Parse strictly and verify the single Fiat–Shamir proof (``Issuer.verify_*``).
3. For a paid issuance, ask the payment backend how much the payment id paid.
4. Make the MACs, then ``store.record`` serials + response (+ payment claim) in one
   transaction. Only that commit decides double spends; the response leaves this
   module only after it committed.

Invariants: synchronous code; randomness (``rng``) and time (``now``) are passed in.
Production must pass a CSPRNG (``secrets.SystemRandom()``).
"""

from __future__ import annotations

import attrs

from hornet.credentials.issuer import Issuer, VerifiedSpend
from hornet.credentials.messages import ISSUANCE, REISSUE, ROLLOVER, request_id
from hornet.credentials.payments import PaymentBackend
from hornet.credentials.store import SpentSerialStore
from hornet.credentials.transcript import Rng
from hornet.errors import InsufficientValueError, LocalProtocolError, MalformedCredentialError


def _peek_epoch(data: bytes, kinds: tuple[int, ...]) -> int:
    if len(data) < 5 or data[0] not in kinds:
        raise MalformedCredentialError("request: unexpected message type")
    return int.from_bytes(data[1:5], "big")


@attrs.define
class CredentialService:
    """The mixer's credential endpoint: one call per request type."""

    issuer: Issuer
    store: SpentSerialStore
    payments: PaymentBackend | None = None

    def spend(self, data: bytes, *, message_hash: bytes, now: float) -> VerifiedSpend:
        """Hot path: verify a presentation-only spend and record its serial durably.

        Raises ``DoubleSpendError`` for a serial already spent (including a replay of
        the same request), and the scheme's errors for anything invalid.
        """
        verified = self.issuer.verify_spend(data, message_hash=message_hash, now=now)
        self.store.record(verified.epoch, (verified.serial,), verified.request_id)
        return verified

    def reissue(self, data: bytes, *, message_hash: bytes, now: float, rng: Rng,
                price: int = 0) -> bytes:
        """REISSUE or ROLLOVER; an identical retry returns the cached response."""
        epoch_in = _peek_epoch(data, (REISSUE, ROLLOVER))
        req_id = request_id(data, message_hash)
        if epoch_in < (1 << 32):
            cached = self.store.cached_response(epoch_in, req_id)
            if cached is not None:
                return cached
        ticket = self.issuer.verify_reissue(data, message_hash=message_hash, now=now,
                                            price=price)
        response = self.issuer.issue(ticket, rng)
        assert ticket.epoch_in is not None
        cached = self.store.record(ticket.epoch_in, ticket.serials, ticket.request_id, response)
        return response if cached is None else cached

    def issue(self, data: bytes, *, now: float, rng: Rng) -> bytes:
        """Known-value ISSUANCE against a payment; an identical retry is idempotent."""
        if self.payments is None:
            raise LocalProtocolError("this service has no payment backend")
        epoch = _peek_epoch(data, (ISSUANCE,))
        req_id = request_id(data, bytes(32))
        cached = self.store.cached_response(epoch, req_id)
        if cached is not None:
            return cached
        ticket = self.issuer.verify_issuance(data, now=now)
        assert ticket.payment_id is not None
        paid = self.payments.paid_amount(ticket.payment_id)
        if ticket.value > paid:
            raise InsufficientValueError("requested value exceeds the payment")
        response = self.issuer.issue(ticket, rng)
        cached = self.store.record(ticket.epoch_out, (), ticket.request_id, response,
                                   payment_id=ticket.payment_id)
        return response if cached is None else cached

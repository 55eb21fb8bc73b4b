"""Executes the mixer machine's storage actions on its stores (blocking).

Strategy: ``MixerStorage.execute(action) -> result`` is plain synchronous code over
the spent-serial store (through ``SpendLedger``), the SCID store and the credential
service; the trio service runs it in a worker thread (``trio.to_thread.run_sync``),
tests and benchmarks call it inline (``MixerEngine``). The stores serialise their own
transactions (each holds a lock), so several actions may run at once; the store's
primary key decides every double spend whatever the interleaving.

Invariants:
- A result is returned only after the transaction it reports has committed.
- A ``CommitRequest`` whose spend is refused leaves no SCID write behind.
- Remote errors (a double spend, a bad credential) become ``CommitRefused``; storage
  failures propagate.
"""

from __future__ import annotations

from typing import Final

import attrs

from hornet.credentials.service import CredentialService
from hornet.errors import (
    DoubleSpendError,
    LocalProtocolError,
    MalformedInputError,
    RemoteProtocolError,
)
from hornet.mixer.actions import (
    CommitRefused,
    CommitRequest,
    CommitSpends,
    CredentialsRedeemed,
    ExpireScids,
    RedeemCredentials,
    RequestCommitted,
    ScidsExpired,
    ScidWrite,
    SpendsCommitted,
    StorageAction,
    StorageResult,
)
from hornet.mixer.keys import KeyedRng
from hornet.mixer.state import ScidStore, SpendLedger

_CREDENTIAL_RNG_TAG: Final = b"hornet/mixer/v1/credential-rng"


@attrs.define
class MixerStorage:
    """The stores behind one mixer and the executor of its storage actions."""

    ledger: SpendLedger = attrs.field(repr=False)
    credentials: CredentialService = attrs.field(repr=False)
    scid_store: ScidStore | None = attrs.field(repr=False, default=None)

    def execute(self, action: StorageAction) -> StorageResult:
        """Perform ``action`` durably and return its result (blocking)."""
        if isinstance(action, CommitSpends):
            accepted: list[bool] = []
            for batch in action.batches:
                accepted += self.ledger.record_batch(batch.epoch, batch.serials)
            return SpendsCommitted(action.commit_id, tuple(accepted))
        if isinstance(action, CommitRequest):
            return self._commit_request(action)
        if isinstance(action, RedeemCredentials):
            return self._redeem(action)
        if isinstance(action, ExpireScids):
            if self.scid_store is not None:
                if action.scids:
                    self.scid_store.expire(list(action.scids), action.tombstone_until)
                if action.purge_before is not None:
                    self.scid_store.purge_tombstones(action.purge_before)
            return ScidsExpired(action.commit_id)
        raise LocalProtocolError(f"not a storage action: {action!r}")

    def _redeem(self, action: RedeemCredentials) -> StorageResult:
        rng = KeyedRng(action.seed, _CREDENTIAL_RNG_TAG)
        try:
            if action.kind == "issue":
                body = self.credentials.issue(action.request, now=action.now, rng=rng)
            else:
                body = self.credentials.reissue(action.request, message_hash=bytes(32),
                                                now=action.now, rng=rng)
        except RemoteProtocolError as exc:
            return CommitRefused(action.commit_id, exc)
        except LocalProtocolError:
            # Defensive: a request's bytes should only raise the Remote branch.
            return CommitRefused(action.commit_id,
                                 MalformedInputError("unusable credential request"))
        return CredentialsRedeemed(action.commit_id, body)

    def _commit_request(self, action: CommitRequest) -> StorageResult:
        # With a SCID write, look for an identical earlier request before writing; without
        # one, record_request finds it inside its own transaction.
        if action.epoch is not None and (action.scid is not None or action.response is None):
            cached = self.ledger.cached_response(action.epoch, action.request_id)
            if cached is not None or action.response is None:
                return RequestCommitted(action.commit_id, cached)
        elif action.response is None:
            return RequestCommitted(action.commit_id, None)
        self._write(action.scid)
        if action.epoch is None:
            return RequestCommitted(action.commit_id, None)
        try:
            cached = self.ledger.record_request(action.epoch, action.serials,
                                                action.request_id, action.response)
        except DoubleSpendError as exc:
            self._undo(action.scid)
            return CommitRefused(action.commit_id, exc)
        if cached is not None:
            self._undo(action.scid)
        return RequestCommitted(action.commit_id, cached)

    def _write(self, write: ScidWrite | None) -> None:
        if write is None or self.scid_store is None:
            return
        if write.insert is not None:
            self.scid_store.insert(write.insert)
        elif write.scid is not None:
            self.scid_store.update_expiry(write.scid, write.expires_at)

    def _undo(self, write: ScidWrite | None) -> None:
        if write is None or self.scid_store is None:
            return
        if write.insert is not None:
            self.scid_store.delete(write.insert.scid)
        elif write.scid is not None:
            self.scid_store.update_expiry(write.scid, write.previous_expiry)


__all__ = ["MixerStorage"]

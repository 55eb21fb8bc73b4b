"""WabiSabi-style KVAC: issuance, k-in/k-out reissuance, presentation-only spend, rollover.

The credential scheme is CPZ19 with one group attribute Ma = a·Gg + r·Gh, a Pedersen
commitment to the amount a (WabiSabi, Ficsór–Kogman–Ontivero–Seres 2021). Statements
and layouts are those of wabisabi.md §4.3 and SPEC.md §9. This module is the scheme's
one import: it re-exports the names of the modules below, which hold the code.

- ``messages``: the wire messages and the client's ``Credential`` record.
- ``statements``: the Σ-protocol statements and Fiat–Shamir transcripts both sides use.
- ``issuer``: ``Issuer`` (verify requests, issue MACs) and its result records.
- ``client``: ``Client`` (build requests, verify issuance) and ``PendingRequest``.

Strategy (sans-IO):
- Pure functions of (bytes, keys, rng, now). Nothing here reads a clock or an RNG of
  its own, or touches storage: ``hornet.credentials.service`` joins the scheme with
  a ``SpentSerialStore`` and a payment backend.
- Request types and fixed shapes (every request of a type has the same length):
  ISSUANCE (known public values, no range proof, bound to a payment id);
  REISSUE (k in, k out, range proofs of n bits, balance with public Δ, serials);
  SPEND (one unit credential, no outputs: the hot path, bound to a message hash);
  ROLLOVER (REISSUE from epoch e − 1 into epoch e with Δ = 0).
- Issuer verification (``Issuer.verify_*``) parses strictly, checks epochs and cheap
  shape conditions, then the single Fiat–Shamir proof. It returns a ticket; MACs are
  made by ``Issuer.issue`` only after the store has accepted the serials.

Invariants:
- Verification raises (``InvalidProofError`` and friends) and never returns False.
- Only ``RemoteProtocolError`` subclasses escape on untrusted bytes.
- Client secrets (r, t, z, bit blindings) and issuer keys never appear in ``repr``.
"""

from __future__ import annotations

from hornet.credentials.client import Client, PendingRequest, build_reissue_request
from hornet.credentials.issuer import IssuanceTicket, Issuer, VerifiedSpend
from hornet.credentials.messages import (
    CREDENTIAL_LEN,
    CREDENTIALS_RESPONSE,
    ISSUANCE,
    MESSAGE_HASH_LEN,
    PRESENTATION_LEN,
    REISSUE,
    ROLLOVER,
    SPEND,
    Credential,
    CredentialsResponse,
    IssuanceRequest,
    Presentation,
    ReissueRequest,
    SpendRequest,
    issuance_request_len,
    reissue_request_len,
    request_id,
    response_len,
    spend_request_len,
)

__all__ = [
    "CREDENTIALS_RESPONSE",
    "CREDENTIAL_LEN",
    "ISSUANCE",
    "MESSAGE_HASH_LEN",
    "PRESENTATION_LEN",
    "REISSUE",
    "ROLLOVER",
    "SPEND",
    "Client",
    "Credential",
    "CredentialsResponse",
    "IssuanceRequest",
    "IssuanceTicket",
    "Issuer",
    "PendingRequest",
    "Presentation",
    "ReissueRequest",
    "SpendRequest",
    "VerifiedSpend",
    "build_reissue_request",
    "issuance_request_len",
    "reissue_request_len",
    "request_id",
    "response_len",
    "spend_request_len",
]

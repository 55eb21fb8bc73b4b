"""Anonymous prepaid credentials: WabiSabi-style KVAC (CPZ19) with a durable spent-serial store.

Layers: ``params`` (configuration, issuer keys, signed iparams) → ``scheme`` (sans-IO
requests, proofs, Issuer and Client) → ``service`` (scheme + ``store`` + ``payments``).
See SPEC.md §9 for generators, encodings, transcripts and layouts.
"""

from hornet.credentials.params import (
    CredentialParams,
    IssuerPublicParams,
    IssuerSecretKey,
    VerifiedIssuerParams,
    sign_issuer_params,
    verify_issuer_params,
)
from hornet.credentials.payments import ClnPayments, Invoice, PaymentBackend, VoucherPayments
from hornet.credentials.scheme import (
    Client,
    Credential,
    IssuanceTicket,
    Issuer,
    PendingRequest,
    VerifiedSpend,
)
from hornet.credentials.service import CredentialService
from hornet.credentials.store import PostgresSpentStore, SpentSerialStore, SqliteSpentStore

__all__ = [
    "Client",
    "ClnPayments",
    "Credential",
    "CredentialParams",
    "CredentialService",
    "Invoice",
    "IssuanceTicket",
    "Issuer",
    "IssuerPublicParams",
    "IssuerSecretKey",
    "PaymentBackend",
    "PendingRequest",
    "PostgresSpentStore",
    "SpentSerialStore",
    "SqliteSpentStore",
    "VerifiedIssuerParams",
    "VerifiedSpend",
    "VoucherPayments",
    "sign_issuer_params",
    "verify_issuer_params",
]

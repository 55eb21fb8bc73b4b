"""Anonymous prepaid credentials: WabiSabi-style KVAC (CPZ19) with a durable spent-serial store.

Layers, bottom up:
- ``group`` (secp256k1 points, generators, fixed-base tables), ``encoding``,
  ``transcript`` and ``proofs`` (Σ-protocol commitments and responses);
- ``params`` (configuration, issuer keys, signed iparams);
- the scheme (sans-IO, re-exported by ``scheme``): ``messages`` (wire messages,
  ``Credential``), ``statements`` (what both sides prove), ``issuer`` and ``client``;
- ``service`` (scheme + ``store`` + ``payments``).
See SPEC.md §9 for generators, encodings, transcripts and layouts.

The storage layers (``service``, ``store``, ``payments``) are imported lazily, so that
importing a sans-IO module (``params``, ``scheme``) loads no storage module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hornet.credentials.client import Client, PendingRequest
from hornet.credentials.issuer import IssuanceTicket, Issuer, VerifiedSpend
from hornet.credentials.messages import Credential
from hornet.credentials.params import (
    CredentialParams,
    IssuerPublicParams,
    IssuerSecretKey,
    VerifiedIssuerParams,
    sign_issuer_params,
    verify_issuer_params,
)

if TYPE_CHECKING:
    from hornet.credentials.payments import (
        ClnPayments,
        Invoice,
        PaymentBackend,
        VoucherPayments,
    )
    from hornet.credentials.service import CredentialService
    from hornet.credentials.store import PostgresSpentStore, SpentSerialStore, SqliteSpentStore

_LAZY = {
    "ClnPayments": "hornet.credentials.payments",
    "Invoice": "hornet.credentials.payments",
    "PaymentBackend": "hornet.credentials.payments",
    "VoucherPayments": "hornet.credentials.payments",
    "CredentialService": "hornet.credentials.service",
    "PostgresSpentStore": "hornet.credentials.store",
    "SpentSerialStore": "hornet.credentials.store",
    "SqliteSpentStore": "hornet.credentials.store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hornet.credentials' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)


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

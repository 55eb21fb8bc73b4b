"""Directory authorities: relays upload signed entries, authorities publish signed
directory documents, and nodes trust the relays that k of their n authorities list.

``machine`` holds the authority's state (sans-IO) and ``service`` serves it over HTTP;
the signed formats and the consensus they share with every node are in
``hornet.directory.document``.

Internal: applications import from the package roots (``hornet``,
``hornet.sphinx``, ``hornet.mixer``, ``hornet.credentials``).
"""

from __future__ import annotations

from hornet.authority.machine import Authority, AuthorityKey
from hornet.directory.document import (
    Document,
    SignedEntry,
    consensus,
    sign_document,
    sign_entry,
    sign_mixer_listing,
    trusted_keys,
    verify_document,
    verify_entry,
)

__all__ = [
    "Authority",
    "AuthorityKey",
    "Document",
    "SignedEntry",
    "consensus",
    "sign_document",
    "sign_entry",
    "sign_mixer_listing",
    "trusted_keys",
    "verify_document",
    "verify_entry",
]

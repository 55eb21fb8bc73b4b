"""Directory authorities: relays upload signed entries, authorities publish signed
directory documents, and nodes trust the relays that k of their n authorities list.

``document`` holds the signed formats and the consensus (sans-IO); ``machine`` the
authority's state (sans-IO); ``keyfile`` an authority's key file.
"""

from __future__ import annotations

from hornet.authority.document import (
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
from hornet.authority.machine import Authority, AuthorityKey

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

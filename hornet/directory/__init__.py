"""The network directory: relays, their keys and addresses (``model``), the signed
documents of the directory authorities (``document``), hidden services' signed
descriptors (``descriptor``) and fetching both from the authorities (``fetch``).

Internal: applications import from the package roots (``hornet``,
``hornet.sphinx``, ``hornet.mixer``, ``hornet.credentials``).
"""

from __future__ import annotations

from hornet.directory.model import (
    DIRECTORY_VERSION,
    ENDPOINT_PREFIX,
    ENDPOINT_PREFIX_V6,
    ISSUER_KEY_LEN,
    MAX_LISTED_EPOCHS,
    Address,
    Directory,
    EpochKey,
    MixerListing,
    NodeKeys,
    RelayInfo,
    check_key_permissions,
    directory_of,
    endpoint_address,
    endpoint_id,
    endpoint_tag,
    endpoint_v6,
    format_address,
    load_key_file,
    load_or_create_key,
    mixer_listing_from_json,
    parse_address,
    relay_info,
    write_key_file,
)

__all__ = [
    "DIRECTORY_VERSION",
    "ENDPOINT_PREFIX",
    "ENDPOINT_PREFIX_V6",
    "ISSUER_KEY_LEN",
    "MAX_LISTED_EPOCHS",
    "Address",
    "Directory",
    "EpochKey",
    "MixerListing",
    "NodeKeys",
    "RelayInfo",
    "check_key_permissions",
    "directory_of",
    "endpoint_address",
    "endpoint_id",
    "endpoint_tag",
    "endpoint_v6",
    "format_address",
    "load_key_file",
    "load_or_create_key",
    "mixer_listing_from_json",
    "parse_address",
    "relay_info",
    "write_key_file",
]

"""Signed directory entries and documents, and the k-of-n consensus a node trusts.

Sans-IO: no sockets, files or clock of its own; ``now`` and signing randomness are
passed in. Rules:

1. A relay's entry (``hornet.directory``'s relay entry: node id, address, identity key,
   setup keys for the current and coming key epochs) travels as
   ``{"entry": {...}, "signed_at": unix, "signature": hex64}``,
   a BIP-340 Schnorr signature by the relay's identity key (``public_key``, x-only).
   The relay of a mixer adds ``"mixer": {"listing": {...}, "signature": hex64}`` to its
   entry: the mixer's listing (``hornet.directory.MixerListing``: Lightning node id,
   credential configuration, issuer keys per credential epoch), signed by the mixer's
   Lightning node key over the listing and the relay's node id. So neither another
   relay nor the authorities can list issuer keys for a mixer that did not sign them,
   and a listing cannot be moved to another relay's entry.
2. An authority publishes ``{"hornet_directory_document": 1, "authority": hex32,
   "valid_after": unix, "valid_until": unix, "params": {...}, "relays": [entries],
   "signature": hex64}``, signed by its own BIP-340 key over every other field.
3. What is signed is a tagged hash (BIP-340 style: ``SHA256(SHA256(tag) ‖ SHA256(tag) ‖
   body)``) of the canonical JSON of the body (sorted keys, no spaces), so an entry
   signature can never pass for a document signature or the reverse.
4. A node trusts n authority keys with a threshold k. It uses a document only if a
   trusted key signed it and it is valid now, and a relay only if at least k distinct
   trusted authorities list it with exactly the same entry. The network parameters too
   must be the same in k documents. A mixer is listed if its relay's entry is; when two
   agreed entries carry one mixer, neither is used.
5. Verification raises ``IntegrityError`` (bad signature) or ``ConfigError`` (a document
   unusable for another reason, naming where it came from); it never returns False.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable
from typing import Any, Final

import attrs

from hornet.core import crypto
from hornet.directory.model import Directory, MixerListing, RelayInfo, mixer_listing_from_json
from hornet.errors import ConfigError, HornetError

DOCUMENT_VERSION: Final = 1
ENTRY_TAG: Final = b"hornet/directory-entry/v1"
DOCUMENT_TAG: Final = b"hornet/directory-document/v1"
MIXER_TAG: Final = b"hornet/mixer-listing/v1"
MAX_RELAYS: Final = 10_000  # entries an authority keeps and a document may list


def canonical(body: Any) -> bytes:
    """The bytes that are signed: JSON with sorted keys and no spaces."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def tagged_digest(tag: bytes, body: Any) -> bytes:
    tag_hash = crypto.sha256(tag)
    return crypto.sha256(tag_hash + tag_hash + canonical(body))


def _integer(data: dict[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 40:
        raise ConfigError(f"{where}: '{key}' must be a unix time")
    return value


def _signature(data: dict[str, Any], where: str) -> bytes:
    value = data.get("signature")
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 64:
        raise ConfigError(f"{where}: 'signature' must be 64 bytes of hex")
    return raw


# -- relay entries ------------------------------------------------------------------------


@attrs.frozen
class SignedEntry:
    """A relay entry whose signature by the relay's identity key verified."""

    info: RelayInfo
    entry: dict[str, Any] = attrs.field(eq=False)  # as signed, mixer fields included
    signed_at: int
    signature: bytes = attrs.field(default=b"", eq=False)
    mixer: MixerListing | None = None  # the listing of the mixer this relay belongs to


def sign_mixer_listing(
    node_key: crypto.SecretKey, listing: MixerListing, relay_id: bytes, aux: bytes
) -> dict[str, Any]:
    """The ``mixer`` field of the entry of relay ``relay_id``: ``listing`` signed by the
    mixer's Lightning node key ``node_key`` (whose public key is ``listing.node_id``)."""
    if node_key.public_key != listing.node_id:
        raise ConfigError("the mixer listing names another node id than the signing key")
    body = {"listing": listing.to_json(), "relay": relay_id.hex()}
    signature = crypto.schnorr_sign(
        node_key.secret_bytes(), tagged_digest(MIXER_TAG, body), aux
    )
    return {"listing": body["listing"], "signature": signature.hex()}


def _mixer(entry: dict[str, Any], where: str) -> MixerListing | None:
    """The verified mixer listing an entry carries (``where``: the entry's name), if any.
    Call it once the rest of the entry checked out (the relay's node id is signed)."""
    if "mixer" not in entry:
        return None
    field = entry["mixer"]
    where = f"{where}.mixer"
    if not isinstance(field, dict) or set(field) != {"listing", "signature"}:
        raise ConfigError(f"{where}: expected {{listing, signature}}")
    listing = mixer_listing_from_json(field["listing"], where=f"{where}.listing")
    signature = _signature(field, where)
    digest = tagged_digest(MIXER_TAG, {"listing": field["listing"], "relay": entry["node_id"]})
    crypto.schnorr_verify(crypto.xonly_pubkey(listing.node_id), signature, digest)
    return listing


def _relay_fields(entry: Any) -> Any:
    """An entry without its ``mixer`` field: what ``hornet.directory`` checks as a relay."""
    if isinstance(entry, dict) and "mixer" in entry:
        return {key: value for key, value in entry.items() if key != "mixer"}
    return entry


def directory_of_entries(
    entries: list[Any], params: Any, *, where: str
) -> Directory:
    """The directory of signed-document ``entries`` (relay entries, a mixer's relay with
    its signed listing); ``ConfigError`` or ``IntegrityError`` naming the bad entry."""
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: 'relays' must be a list")
    directory = Directory.from_json(
        {"hornet_directory": 1, "params": params, "relays": [_relay_fields(e) for e in entries]},
        where=where,
    )
    mixers = [_mixer(e, f"{where}: relays[{i}]") for i, e in enumerate(entries)]
    listed = tuple(m for m in mixers if m is not None)
    if len({m.node_id for m in listed}) != len(listed):
        raise ConfigError(f"{where}: two relays carry one mixer's listing")
    return Directory(directory.relays, directory.params, listed)


def sign_entry(
    secret: crypto.SecretKey, entry: dict[str, Any], signed_at: int, aux: bytes
) -> dict[str, Any]:
    """``entry`` (a relay entry's JSON) signed by the relay's identity key ``secret``."""
    body = {"entry": entry, "signed_at": signed_at}
    digest = tagged_digest(ENTRY_TAG, body)
    signature = crypto.schnorr_sign(secret.secret_bytes(), digest, aux)
    return {**body, "signature": signature.hex()}


def verify_entry(data: Any, *, where: str = "entry") -> SignedEntry:
    """The entry in ``data`` once its shape and signature check out."""
    if not isinstance(data, dict) or set(data) != {"entry", "signed_at", "signature"}:
        raise ConfigError(f"{where}: expected {{entry, signed_at, signature}}")
    signed_at = _integer(data, "signed_at", where)
    signature = _signature(data, where)
    entry = data["entry"]
    (info,) = Directory.from_json(
        {"hornet_directory": 1, "relays": [_relay_fields(entry)]}, where=where
    ).relays
    digest = tagged_digest(ENTRY_TAG, {"entry": entry, "signed_at": signed_at})
    crypto.schnorr_verify(crypto.xonly_pubkey(info.public_key), signature, digest)
    return SignedEntry(info, entry, signed_at, signature, _mixer(entry, where))


# -- authority documents ------------------------------------------------------------------


@attrs.frozen
class Document:
    """One authority's verified document."""

    authority: bytes  # x-only key
    valid_after: int
    valid_until: int
    params: dict[str, Any] = attrs.field(eq=False)
    relays: tuple[dict[str, Any], ...] = attrs.field(eq=False)


def sign_document(
    secret: crypto.SecretKey,
    relays: Iterable[dict[str, Any]],
    params: dict[str, Any],
    valid_after: int,
    valid_until: int,
    aux: bytes,
) -> dict[str, Any]:
    body = {
        "hornet_directory_document": DOCUMENT_VERSION,
        "authority": crypto.xonly_pubkey(secret.public_key).hex(),
        "valid_after": valid_after,
        "valid_until": valid_until,
        "params": params,
        "relays": list(relays),
    }
    signature = crypto.schnorr_sign(secret.secret_bytes(), tagged_digest(DOCUMENT_TAG, body), aux)
    return {**body, "signature": signature.hex()}


_DOCUMENT_FIELDS: Final = frozenset(
    {
        "hornet_directory_document",
        "authority",
        "valid_after",
        "valid_until",
        "params",
        "relays",
        "signature",
    }
)


def verify_document(
    data: Any, trusted: Collection[bytes], now: float, *, where: str = "document"
) -> Document:
    """The document in ``data``, if a ``trusted`` key signed it and it is valid at ``now``."""
    if not isinstance(data, dict) or set(data) != _DOCUMENT_FIELDS:
        raise ConfigError(f"{where}: not a hornet directory document")
    if data["hornet_directory_document"] != DOCUMENT_VERSION:
        raise ConfigError(f"{where}: unknown document version")
    try:
        authority = bytes.fromhex(data["authority"]) if isinstance(data["authority"], str) else b""
    except ValueError:
        authority = b""
    if authority not in trusted:
        raise ConfigError(f"{where}: signed by an authority this node does not trust")
    signature = _signature(data, where)
    body = {key: value for key, value in data.items() if key != "signature"}
    crypto.schnorr_verify(authority, signature, tagged_digest(DOCUMENT_TAG, body))
    valid_after = _integer(data, "valid_after", where)
    valid_until = _integer(data, "valid_until", where)
    if not valid_after <= now < valid_until:
        raise ConfigError(f"{where}: not valid now (valid {valid_after} to {valid_until})")
    relays = data["relays"]
    if not isinstance(relays, list) or len(relays) > MAX_RELAYS:
        raise ConfigError(f"{where}: 'relays' must be a list of at most {MAX_RELAYS}")
    if not isinstance(data["params"], dict):
        raise ConfigError(f"{where}: 'params' must be an object")
    # Every entry must be a valid relay entry (the shape check of a directory file), and
    # every mixer listing signed by its mixer.
    directory_of_entries(relays, data["params"], where=where)
    return Document(authority, valid_after, valid_until, data["params"], tuple(relays))


def consensus(
    documents: Iterable[Any], trusted: Collection[bytes], threshold: int, now: float
) -> tuple[Directory, int]:
    """The directory of the relays that ``threshold`` distinct trusted authorities list
    with the same entry, and when it stops being valid (the k-th latest expiry).

    Documents that do not verify are skipped; ``ConfigError`` if fewer than
    ``threshold`` remain or they do not agree on the network parameters."""
    if not 1 <= threshold <= len(trusted):
        raise ConfigError(f"threshold must be in [1, {len(trusted)}]")
    by_authority: dict[bytes, Document] = {}
    problems: list[str] = []
    for i, data in enumerate(documents):
        try:
            document = verify_document(data, trusted, now, where=f"document {i}")
        except HornetError as exc:
            problems.append(str(exc))
            continue
        held = by_authority.get(document.authority)
        if held is None or held.valid_after < document.valid_after:
            by_authority[document.authority] = document
    if len(by_authority) < threshold:
        detail = f" ({'; '.join(problems[:3])})" if problems else ""
        raise ConfigError(
            f"only {len(by_authority)} of the {threshold} authority documents needed verify"
            + detail
        )
    params_votes = Counter(canonical(d.params) for d in by_authority.values())
    params_bytes, votes = params_votes.most_common(1)[0]
    if votes < threshold:
        raise ConfigError(f"fewer than {threshold} authorities agree on the network params")
    votes_by_entry: Counter[bytes] = Counter()
    entries: dict[bytes, dict[str, Any]] = {}
    for document in by_authority.values():
        for entry in {canonical(e): e for e in document.relays}.values():
            key = canonical(entry)
            votes_by_entry[key] += 1
            entries[key] = entry
    chosen = _unambiguous(
        [entries[key] for key, count in votes_by_entry.items() if count >= threshold]
    )
    directory = directory_of_entries(chosen, json.loads(params_bytes), where="consensus")
    expiries = sorted((d.valid_until for d in by_authority.values()), reverse=True)
    return directory, expiries[threshold - 1]


def _unambiguous(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop every relay that two agreed entries claim (one node id with two entries, one
    address for two node ids, or one mixer for two relays): neither side of a conflict
    is trusted."""
    ids = Counter(str(entry.get("node_id")) for entry in entries)
    addresses = Counter(str(entry.get("address")) for entry in entries)
    mixers = Counter(_mixer_id(entry) for entry in entries)
    kept = [
        entry
        for entry in entries
        if ids[str(entry.get("node_id"))] == 1
        and addresses[str(entry.get("address"))] == 1
        and (_mixer_id(entry) is None or mixers[_mixer_id(entry)] == 1)
    ]
    return sorted(kept, key=lambda entry: str(entry.get("node_id")))


def _mixer_id(entry: dict[str, Any]) -> str | None:
    field = entry.get("mixer")
    if not isinstance(field, dict) or not isinstance(field.get("listing"), dict):
        return None
    return str(field["listing"].get("node_id"))


def trusted_keys(values: Iterable[Any], *, where: str) -> frozenset[bytes]:
    """Authority keys from a config (hex x-only keys); ``ConfigError`` names a bad one."""
    keys = set()
    for i, value in enumerate(values):
        try:
            raw = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ConfigError(f"{where}[{i}]: expected a 32-byte x-only key in hex")
        keys.add(raw)
    return frozenset(keys)


__all__ = [
    "Document",
    "SignedEntry",
    "canonical",
    "consensus",
    "directory_of_entries",
    "sign_document",
    "sign_entry",
    "sign_mixer_listing",
    "tagged_digest",
    "trusted_keys",
    "verify_document",
    "verify_entry",
]

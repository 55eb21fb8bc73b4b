"""Replay the credential golden vectors (tests/vectors/credentials.json).

The issuer and the client are rebuilt from the secrets recorded in the file alone, so
these tests pin the wire format and the transcripts, not just self-consistency.
``tests/vectors/generate_credentials.py`` must also reproduce the file byte for byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from hornet.core.crypto import SecretKey
from hornet.credentials.client import Client, PendingRequest
from hornet.credentials.group import generators
from hornet.credentials.issuer import Issuer
from hornet.credentials.messages import ISSUANCE, REISSUE, Credential, IssuanceRequest
from hornet.credentials.params import (
    CredentialParams,
    IssuerSecretKey,
    sign_issuer_params,
    verify_issuer_params,
)
from hornet.credentials.service import CredentialService
from hornet.credentials.store import SqliteSpentStore, serial_key
from hornet.errors import DoubleSpendError, InvalidProofError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
FILE = VECTORS / "credentials.json"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json.loads(FILE.read_text())  # type: ignore[no-any-return]


def _params(doc: dict[str, Any]) -> CredentialParams:
    p = doc["params"]
    return CredentialParams(p["range_bits"], p["k"], p["issuance_k"], p["unit_value"],
                            p["epoch_origin"], p["epoch_length"], p["grace_period"])


def _issuer(doc: dict[str, Any]) -> Issuer:
    key = IssuerSecretKey.from_bytes(bytes.fromhex(doc["issuer"]["secret_key"]))
    return Issuer.create(_params(doc), {doc["issuer"]["epoch"]: key})


def _client(doc: dict[str, Any]) -> Client:
    verified = verify_issuer_params(bytes.fromhex(doc["issuer"]["signed_params"]),
                                    bytes.fromhex(doc["issuer"]["node_public_key"]))
    client = Client(verified.params)
    client.add_issuer_params(verified.public)
    return client


def _scalars(values: list[str]) -> tuple[int, ...]:
    return tuple(int(v, 16) for v in values)


def _credentials(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def test_generator_reproduces_the_credential_vectors_byte_for_byte() -> None:
    sys.path.insert(0, str(VECTORS))
    try:
        import generate_credentials  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(VECTORS))
    assert FILE.read_text() == generate_credentials.render()


def test_recorded_params_generators_and_signed_iparams_match(doc: dict[str, Any]) -> None:
    params = _params(doc)
    assert params.encode().hex() == doc["params"]["encoded"]
    assert params.digest().hex() == doc["params"]["digest"]
    assert {g.name: g.encoded.hex() for g in generators().all} == doc["params"]["generators"]
    issuer = _issuer(doc)
    epoch = doc["issuer"]["epoch"]
    assert epoch == params.epoch_at(doc["now"])
    public = issuer.public_params(epoch)
    assert public.encode().hex() == doc["issuer"]["iparams"]
    node_key = SecretKey(bytes.fromhex(doc["issuer"]["node_secret_key"]))
    assert node_key.public_key.hex() == doc["issuer"]["node_public_key"]
    signed = sign_issuer_params(params, public, node_key)  # RFC 6979: deterministic
    assert signed.hex() == doc["issuer"]["signed_params"]
    verified = verify_issuer_params(signed, node_key.public_key)
    assert verified.fingerprint.hex() == doc["issuer"]["fingerprint"]


def test_recorded_issuance_verifies_and_yields_the_recorded_credentials(
        doc: dict[str, Any]) -> None:
    section, params = doc["issuance"], _params(doc)
    request = bytes.fromhex(section["request"])
    ticket = _issuer(doc).verify_issuance(request, now=doc["now"])
    assert ticket.request_id.hex() == section["request_id"]
    assert ticket.payment_id is not None and ticket.payment_id.hex() == section["payment_id"]
    assert ticket.value == sum(section["values"])
    decoded = IssuanceRequest.decode(request, params)
    assert list(decoded.values) == section["values"]
    pending = PendingRequest(ISSUANCE, request, ticket.request_id, doc["issuer"]["epoch"],
                             tuple(section["values"]), _scalars(section["blindings"]),
                             decoded.commitments)
    creds = _client(doc).finish(pending, bytes.fromhex(section["response"]))
    assert [c.to_bytes() for c in creds] == _credentials(section["credentials"])
    assert [c.value for c in creds] == section["values"]


def test_recorded_reissue_verifies_and_yields_the_recorded_credentials(
        doc: dict[str, Any]) -> None:
    section = doc["reissue"]
    request = bytes.fromhex(section["request"])
    message_hash = bytes.fromhex(section["message_hash"])
    ticket = _issuer(doc).verify_reissue(request, message_hash=message_hash, now=doc["now"],
                                         price=section["price"])
    assert ticket.request_id.hex() == section["request_id"]
    assert [s.hex() for s in ticket.serials] == section["serials"]
    assert [m.encode().hex() for m in ticket.requested] == section["requested"]
    assert int.from_bytes(request[9:17], "big", signed=True) == section["delta"] == -1
    # The presented credentials are the recorded issuance outputs: their serials r·Gs.
    issued = [Credential.from_bytes(c) for c in _credentials(doc["issuance"]["credentials"])]
    gs = generators().Gs.point
    assert [(gs * issued[i].r).encode().hex() for i in section["inputs"]] == section["serials"]
    pending = PendingRequest(REISSUE, request, ticket.request_id, doc["issuer"]["epoch"],
                             tuple(section["out_values"]), _scalars(section["out_blindings"]),
                             ticket.requested)
    creds = _client(doc).finish(pending, bytes.fromhex(section["response"]))
    assert [c.to_bytes() for c in creds] == _credentials(section["credentials"])
    assert [c.value for c in creds] == section["out_values"]


def test_recorded_spend_verifies_once_and_is_bound_to_its_message(
        doc: dict[str, Any], tmp_path: Path) -> None:
    section = doc["spend"]
    request = bytes.fromhex(section["request"])
    message_hash = bytes.fromhex(section["message_hash"])
    issuer = _issuer(doc)
    with pytest.raises(InvalidProofError):
        issuer.verify_spend(request, message_hash=bytes(32), now=doc["now"])
    store = SqliteSpentStore(tmp_path / "spent.db")
    service = CredentialService(issuer, store)
    verified = service.spend(request, message_hash=message_hash, now=doc["now"])
    assert verified.request_id.hex() == section["request_id"]
    assert verified.serial.hex() == section["serial"]
    assert serial_key(verified.serial).hex() == section["serial_key"]
    credential = Credential.from_bytes(bytes.fromhex(section["credential"]))
    assert (generators().Gs.point * credential.r).encode() == verified.serial
    assert section["credential"] in doc["reissue"]["credentials"]
    with pytest.raises(DoubleSpendError):
        service.spend(request, message_hash=message_hash, now=doc["now"])
    store.close()

"""Write the credential golden vectors: ``python tests/vectors/generate_credentials.py``.

Everything derives from SEED. Each step draws from its own generator,
``random.Random(f"{SEED}/{step}")`` (named in the file as ``rng``), so one message can
be reproduced without replaying the others. The file holds, as hex:

- params: the configuration (SPEC.md §9.1), its encoding and digest,
  and every generator;
- issuer: the epoch key sk = (w, w', x0, x1, ya), iparams, the node key and the
  signed parameters with their fingerprint;
- issuance: a known-value ISSUANCE request (values, payment id, blindings r_j), the
  issuer's response (MACs + π_iparams) and the client's credentials;
- reissue: a 2-in/2-out REISSUE (n = 32) of two issued credentials paying a price of 1,
  its response and the new credentials;
- spend: a presentation-only SPEND of one reissued unit credential, its request id,
  serial S and stored serial key.

``tests/credentials/test_credential_vectors.py`` regenerates the file byte for byte and
verifies every recorded request with an issuer rebuilt from the file alone.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from hornet.core.crypto import SecretKey
from hornet.credentials.group import generators
from hornet.credentials.params import (
    CredentialParams,
    IssuerSecretKey,
    sign_issuer_params,
    verify_issuer_params,
)
from hornet.credentials.scheme import Client, Credential, Issuer
from hornet.credentials.store import serial_key

SEED = 0x43524544  # "CRED"
HERE = Path(__file__).resolve().parent
FILE = HERE / "credentials.json"
#: 2023-11-14T22:13:20Z: epoch 2810 of the default one-week schedule from 0.
NOW = 1_700_000_000
ISSUANCE_VALUES = (5, 3, 1, 1, 1, 0, 0, 0)
REISSUE_INPUTS = (0, 1)  # issued credentials 5 and 3 ...
REISSUE_OUTPUTS = (1, 6)  # ... become 1 and 6, paying a price of 1 (Δ = −1)
PRICE = 1
REISSUE_MESSAGE = bytes(range(32))
SPEND_MESSAGE = bytes(range(32, 64))


def rng_for(step: str) -> random.Random:
    return random.Random(f"{SEED}/{step}")


def _hex_all(items: Any) -> list[str]:
    return [bytes(item).hex() for item in items]


def _scalars(values: Any) -> list[str]:
    return [value.to_bytes(32, "big").hex() for value in values]


def _credentials(creds: tuple[Credential, ...]) -> list[str]:
    return [c.to_bytes().hex() for c in creds]


def build() -> dict[str, Any]:
    params = CredentialParams()
    epoch = params.epoch_at(NOW)
    g = generators()
    key = IssuerSecretKey.generate(rng_for("issuer-key"))
    node_key = SecretKey.from_rng(rng_for("node-key"))
    issuer = Issuer.create(params, {epoch: key})
    public = issuer.public_params(epoch)
    signed = sign_issuer_params(params, public, node_key)
    verified = verify_issuer_params(signed, node_key.public_key)
    client = Client(params)
    client.add_issuer_params(verified.public)

    # ISSUANCE of eight known values against a payment id.
    payment_id = rng_for("payment-id").randbytes(32)
    issuance = client.issuance_request(ISSUANCE_VALUES, payment_id, epoch=epoch,
                                       rng=rng_for("issuance-request"))
    issuance_ticket = issuer.verify_issuance(issuance.request, now=NOW)
    issuance_response = issuer.issue(issuance_ticket, rng_for("issuance-response"))
    issued = client.finish(issuance, issuance_response)

    # REISSUE 2 → 2 with range proofs, Δ = −PRICE.
    inputs = [issued[i] for i in REISSUE_INPUTS]
    reissue = client.reissue_request(inputs, REISSUE_OUTPUTS, message_hash=REISSUE_MESSAGE,
                                     rng=rng_for("reissue-request"))
    reissue_ticket = issuer.verify_reissue(reissue.request, message_hash=REISSUE_MESSAGE,
                                           now=NOW, price=PRICE)
    reissue_response = issuer.issue(reissue_ticket, rng_for("reissue-response"))
    reissued = client.finish(reissue, reissue_response)

    # SPEND of the reissued unit credential, bound to a message hash.
    unit = reissued[REISSUE_OUTPUTS.index(params.unit_value)]
    spend = client.spend_request(unit, message_hash=SPEND_MESSAGE, rng=rng_for("spend-request"))
    spent = issuer.verify_spend(spend, message_hash=SPEND_MESSAGE, now=NOW)

    return {
        "description": "hornet credential golden vectors (SPEC.md §9.9); "
                       "regenerate with tests/vectors/generate_credentials.py",
        "seed": SEED,
        "rng": "random.Random(f'{seed}/{step}'), bytes from .randbytes(n)",
        "now": NOW,
        "params": {
            "range_bits": params.range_bits,
            "k": params.k,
            "issuance_k": params.issuance_k,
            "unit_value": params.unit_value,
            "epoch_origin": params.epoch_origin,
            "epoch_length": params.epoch_length,
            "grace_period": params.grace_period,
            "encoded": params.encode().hex(),
            "digest": params.digest().hex(),
            "generators": {base.name: base.encoded.hex() for base in g.all},
        },
        "issuer": {
            "rng": "issuer-key",
            "epoch": epoch,
            "secret_key": key.to_bytes().hex(),
            "iparams": public.encode().hex(),
            "node_rng": "node-key",
            "node_secret_key": node_key.secret_bytes().hex(),
            "node_public_key": node_key.public_key.hex(),
            "signed_params": signed.hex(),
            "fingerprint": verified.fingerprint.hex(),
        },
        "issuance": {
            "payment_rng": "payment-id",
            "payment_id": payment_id.hex(),
            "values": list(ISSUANCE_VALUES),
            "request_rng": "issuance-request",
            "blindings": _scalars(issuance.blindings),
            "request": issuance.request.hex(),
            "request_id": issuance.request_id.hex(),
            "response_rng": "issuance-response",
            "response": issuance_response.hex(),
            "credentials": _credentials(issued),
        },
        "reissue": {
            "inputs": list(REISSUE_INPUTS),
            "out_values": list(REISSUE_OUTPUTS),
            "price": PRICE,
            "delta": sum(REISSUE_OUTPUTS) - sum(c.value for c in inputs),
            "message_hash": REISSUE_MESSAGE.hex(),
            "request_rng": "reissue-request",
            "out_blindings": _scalars(reissue.blindings),
            "requested": _hex_all(m.encode() for m in reissue.requested),
            "request": reissue.request.hex(),
            "request_id": reissue.request_id.hex(),
            "serials": _hex_all(reissue_ticket.serials),
            "response_rng": "reissue-response",
            "response": reissue_response.hex(),
            "credentials": _credentials(reissued),
        },
        "spend": {
            "credential": unit.to_bytes().hex(),
            "message_hash": SPEND_MESSAGE.hex(),
            "request_rng": "spend-request",
            "request": spend.hex(),
            "request_id": spent.request_id.hex(),
            "serial": spent.serial.hex(),
            "serial_key": serial_key(spent.serial).hex(),
        },
    }


def render() -> str:
    return json.dumps(build(), indent=1) + "\n"


def main() -> int:
    FILE.write_text(render())
    print(f"wrote {FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

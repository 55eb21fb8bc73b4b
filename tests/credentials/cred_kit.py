"""Shared builders for the credential tests (imported by the test modules)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

from hornet.credentials import Client, Credential, Issuer
from hornet.credentials.params import CredentialParams, IssuerSecretKey

EPOCH_LENGTH = 1000
GRACE = 100
NOW = 500.0  # inside epoch 0
MSG = bytes(range(32))


def make_params(**overrides: int) -> CredentialParams:
    base = {"epoch_length": EPOCH_LENGTH, "grace_period": GRACE}
    base.update(overrides)
    return CredentialParams(**base)


@attrs.define
class World:
    params: CredentialParams
    issuer: Issuer
    client: Client
    rng: random.Random

    def credentials(self, values: Sequence[int], *, epoch: int = 0) -> tuple[Credential, ...]:
        """Issue credentials of ``values`` (padded with zeros to issuance_k)."""
        k = self.params.issuance_k
        padded = list(values) + [0] * (k - len(values) % k if len(values) % k else 0)
        now = epoch * EPOCH_LENGTH + NOW
        out: list[Credential] = []
        for start in range(0, len(padded), k):
            chunk = padded[start : start + k]
            pending = self.client.issuance_request(chunk, self.rng.randbytes(32), epoch=epoch,
                                                   rng=self.rng)
            ticket = self.issuer.verify_issuance(pending.request, now=now)
            out.extend(self.client.finish(pending, self.issuer.issue(ticket, self.rng)))
        return tuple(out[: len(values)])


def make_world(seed: int = 7, **overrides: int) -> World:
    rng = random.Random(seed)
    params = make_params(**overrides)
    keys = {0: IssuerSecretKey.generate(rng), 1: IssuerSecretKey.generate(rng)}
    issuer = Issuer.create(params, keys)
    client = Client(params)
    for epoch in keys:
        client.add_issuer_params(issuer.public_params(epoch))
    return World(params, issuer, client, rng)

"""Relay key epochs (SPEC.md §7.1): per-epoch setup keys and local secrets.

Epochs are global: epoch e covers Unix time [e·E, (e+1)·E) for E = ``Params.epoch_s``.
A relay derives everything from the 32-byte local secret in its key file:

    epoch_secret(e) = HMAC-SHA256(local_secret, "hornet-epoch" ‖ u32 e)
    setup key x_e   = the first valid scalar among
                      HMAC-SHA256(epoch_secret(e), "hornet-epoch-dh" ‖ u8 i), i = 0, 1, ...
    SV_{e,g}        = HMAC-SHA256(epoch_secret(e), "hornet-sv" ‖ u32 g)

g is the relay's restart generation (SPEC.md §7.5): FSes sealed before a restart no
longer open after it. The directory publishes x_e·G for the current and next epochs; the
long-term identity key (node id, link handshakes) never rotates.
"""

from __future__ import annotations

from typing import Final

from hornet.core import crypto
from hornet.core.params import Params
from hornet.core.replay import BloomFilter
from hornet.errors import LocalProtocolError

_MAX_TRIES: Final = 256


def epoch_secret(local_secret: bytes, epoch: int) -> bytes:
    if not 0 <= epoch < 1 << 32:
        raise LocalProtocolError("epoch out of range")
    return crypto.hmac_sha256(local_secret, b"hornet-epoch" + epoch.to_bytes(4, "big"))


def epoch_setup_key(local_secret: bytes, epoch: int) -> crypto.SecretKey:
    """x_e, the relay's setup (Sphinx) secret key for ``epoch``."""
    seed = epoch_secret(local_secret, epoch)
    for i in range(_MAX_TRIES):
        candidate = crypto.hmac_sha256(seed, b"hornet-epoch-dh" + bytes((i,)))
        if crypto.is_valid_scalar(candidate):
            return crypto.SecretKey(candidate)
    raise LocalProtocolError("no valid scalar")  # probability ~2^-32000


def epoch_public_key(local_secret: bytes, epoch: int) -> bytes:
    """x_e·G (33 bytes), what the directory publishes for ``epoch``."""
    return epoch_setup_key(local_secret, epoch).public_key


class EpochKeys:
    """One epoch's keys at a relay: setup key, FS PRP, PFS key and setup replay filter."""

    __slots__ = ("epoch", "pfs_key", "prp", "prp_key", "replay", "setup_key")

    def __init__(
        self, local_secret: bytes, epoch: int, generation: int, replay: BloomFilter
    ) -> None:
        self.epoch = epoch
        self.setup_key = epoch_setup_key(local_secret, epoch)
        sv = crypto.hmac_sha256(
            epoch_secret(local_secret, epoch), b"hornet-sv" + generation.to_bytes(4, "big")
        )
        self.prp_key = crypto.hmac_sha256(sv, b"hornet-fs-prp")[:16]  # the native engine's copy
        self.prp = crypto.Prp256(self.prp_key)
        self.pfs_key = crypto.hmac_sha256(sv, b"hornet-pfs-ephemeral")
        self.replay = replay

    def __repr__(self) -> str:
        return f"EpochKeys(epoch={self.epoch}, <hidden>)"


def usable_setup_epoch(params: Params, low_byte: int, now: float) -> int | None:
    """The key epoch a setup CHDR names by its low byte, if a relay at ``now`` holds its
    key: epoch e is usable while e·E − skew <= now < (e+1)·E + skew."""
    period, skew = params.epoch_s, params.max_skew_s
    current = int(now // period)
    for epoch in (current, current + 1, current - 1):
        if epoch & 0xFF != low_byte or epoch < 0:
            continue
        if epoch * period - skew <= now < (epoch + 1) * period + skew:
            return epoch
    return None

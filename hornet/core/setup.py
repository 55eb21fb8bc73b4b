"""HORNET setup (§4.3.4): one round trip of Sphinx packets that collects the FSes.

P➊ (source → destination) = CHDR ‖ SHDR^f ‖ SP^f ‖ P^f and P➋ (destination → source)
= CHDR ‖ SHDR^b ‖ SP^b ‖ P^b. The Sphinx headers are hornet's BOLT 4 Sphinx with CHDR as
associated data (so EXP is authenticated at every hop) and a compact L of r frames of
47 bytes. Each hop's Sphinx payload is one TLV record (type 2) holding its 12-byte R.

SP, the setup payload, is end-to-end between source and destination: an AEAD
(ChaCha20-Poly1305, key from the destination's shared secret) that every relay
re-encrypts with a ChaCha20 layer of its own, so its bytes differ on every link.
- In P➊ it carries SHDR^b, R^b_0 (the first backward hop) and X_S, the source's
  ephemeral key for the destination's forward-secret session key.
- In P➋ it carries the forward FS payload and Y_D, the destination's ephemeral key.

Per-hop integrity: the source knows SP_i, the SP bytes exactly as they reach forward hop i
(the sealed SP with the layers of hops i..l−1 still on), so hop i's Sphinx HMAC covers
CHDR ‖ SP_i and a flipped SP bit is dropped at the next hop, not carried to the
destination as a tag. P➋'s SP^b is made by the destination, so backward hops bind CHDR
only; a relay accepts the CHDR-only match only on a BACKWARD route (SPEC.md §4.5). The FS
payload cannot be bound (relays add FSes); the source checks it (RETRIEVE_FSES).

This module holds the source's side (``build_setup``, ``complete_setup``) and the key
derivations both sides share; the relay and destination sides are in ``relay.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import attrs

from hornet.core import crypto
from hornet.core.ahdr import create_ahdr, expected_arrival
from hornet.core.chdr import setup_chdr
from hornet.core.fs import Flag, HopKeys, Route, init_fs_payload, retrieve_fses
from hornet.core.params import CHDR_LEN, EXP_GRANULARITY_S, LIFETIMES_S, NODE_ID_LEN, C, K, Params
from hornet.core.sphinx import build_onion
from hornet.errors import IntegrityError, LocalProtocolError, MalformedInputError

ROUTE_TLV_TYPE: Final = 2
_NONCE0: Final = bytes(12)
_NO_HOP: Final = bytes(NODE_ID_LEN)


# -- key derivations from a Sphinx shared secret ss (SPEC.md §4.2) ------------------------


def hop_secret(ss: bytes) -> bytes:
    """s, the hop's 16-byte HORNET key: HMAC("hornet-s", ss)[:16]."""
    return crypto.hmac_sha256(b"hornet-s", ss)[:K]


def sp_layer_key(ss: bytes) -> bytes:
    return crypto.hmac_sha256(b"hornet-sp-layer", ss)


def sp_aead_key(ss: bytes, *, backward: bool) -> bytes:
    return crypto.hmac_sha256(b"hornet-sp-bwd" if backward else b"hornet-sp-fwd", ss)


def backward_fs_seed(ss: bytes) -> bytes:
    return crypto.hmac_sha256(b"hornet-fsp-bwd", ss)[:K]


def setup_replay_tag(ephemeral_key: bytes) -> bytes:
    """The setup replay tag at a hop: SHA256("hornet-replay" ‖ X)[:16], X the hop's Sphinx
    ephemeral key (33 bytes). X determines the hop's shared secret, so one tag per X
    suffices, and it is known before the ECDH."""
    return crypto.sha256(b"hornet-replay" + ephemeral_key)[:K]


def pfs_session_secret(ss: bytes, dh: bytes) -> bytes:
    """s'_D = HMAC("hornet-pfs", ss ‖ ECDH(y_D, X_S))[:16], the destination's FS key."""
    return crypto.hmac_sha256(b"hornet-pfs", ss + dh)[:K]


def route_tlv(route: Route) -> bytes:
    return bytes((ROUTE_TLV_TYPE, 12)) + route.encode()


def parse_route_tlv(payload: bytes) -> Route:
    if len(payload) != 14 or payload[0] != ROUTE_TLV_TYPE or payload[1] != 12:
        raise MalformedInputError("setup hop payload is not one route record")
    return Route.decode(payload[2:])


def xor_sp_layers(sp: bytes, secrets: Sequence[bytes]) -> bytes:
    """Apply (or remove: XOR commutes) the per-hop ChaCha20 layers on SP."""
    for ss in secrets:
        sp = crypto.chacha20_xor(sp_layer_key(ss), sp)
    return sp


def sp_per_hop(sealed: bytes, secrets: Sequence[bytes]) -> list[bytes]:
    """SP_0 … SP_{l−1}: the forward SP as it reaches each hop (SPEC.md §4.4).

    SP_{l−1} = sealed ⊕ stream_{l−1} and SP_i = SP_{i+1} ⊕ stream_i: one ChaCha20 call
    per hop. SP_0 is what P➊ carries.
    """
    layered = [b""] * len(secrets)
    for index in range(len(secrets) - 1, -1, -1):
        sealed = crypto.chacha20_xor(sp_layer_key(secrets[index]), sealed)
        layered[index] = sealed
    return layered


# -- the source side ----------------------------------------------------------------------


@attrs.frozen
class HopSpec:
    """A relay (or destination) as the source sees it: 8-byte node id and public key."""

    node_id: bytes
    public_key: bytes

    def __attrs_post_init__(self) -> None:
        if len(self.node_id) != NODE_ID_LEN or len(self.public_key) != 33:
            raise LocalProtocolError("HopSpec needs an 8-byte node id and a 33-byte key")


@attrs.frozen
class CircuitKeys:
    """Everything the source learns from a completed setup (SPEC.md §4.5).

    ``forward_keys``: the forward relays' keys then the destination's (s'_D) keys, and
    ``forward_fses`` their FSes, so that nested headers (§6) can be built on demand.
    ``backward_layer_keys``: the destination's keys then the backward relays', in the
    order their layers are added. ``arrival_id``: the first 32 bytes of the AHDR as it
    reaches the source, which identifies the circuit's backward packets.
    """

    params: Params
    exp: int
    first_hop: bytes
    ahdr_forward: bytes = attrs.field(repr=False)
    ahdr_backward: bytes = attrs.field(repr=False)
    backward_first_hop: bytes
    destination: bytes  # the forward path's last node (the RP, for a rendezvous circuit)
    rendezvous: bool  # the destination's FS carries the RENDEZVOUS flag (SPEC.md §6)
    forward_keys: tuple[HopKeys, ...] = attrs.field(repr=False)
    forward_fses: tuple[bytes, ...] = attrs.field(repr=False)  # to build nested AHDRs
    backward_layer_keys: tuple[HopKeys, ...] = attrs.field(repr=False)
    arrival_id: bytes = attrs.field(repr=False)
    session_secret: bytes = attrs.field(repr=False)  # s'_D: end-to-end keys derive from it


@attrs.frozen
class PendingSetup:
    """The source's secrets between sending P➊ and receiving P➋."""

    params: Params
    exp: int
    match: bytes  # the SHDR^b HMAC that P➋ carries when it reaches the source
    forward: tuple[HopSpec, ...]
    backward: tuple[HopSpec, ...]
    forward_secrets: tuple[bytes, ...] = attrs.field(repr=False)
    backward_secrets: tuple[bytes, ...] = attrs.field(repr=False)
    forward_seed: bytes = attrs.field(repr=False)
    pfs_key: crypto.SecretKey = attrs.field(repr=False)
    rendezvous: bool = False
    key_epoch: int = 0


@attrs.frozen
class SetupRequest:
    """``build_setup``'s result: send ``packet`` to ``first_hop``, keep ``pending``."""

    packet: bytes
    first_hop: bytes
    pending: PendingSetup


def build_setup(
    params: Params,
    forward: Sequence[HopSpec],
    backward: Sequence[HopSpec],
    source_id: bytes,
    exp: int,
    rng: Any,
    *,
    rendezvous: bool = False,
    key_epoch: int = 0,
) -> SetupRequest:
    """Build P➊ (§4.3.4, source steps 1–6).

    ``forward`` ends with the destination; ``backward`` lists the relays from the
    destination back towards the source (not the source itself). ``source_id`` is the
    8-byte id under which the last backward relay reaches the source. ``rng`` provides
    ``randbytes(n)``; use a CSPRNG (``secrets.SystemRandom()``) outside tests. With
    ``rendezvous``, the destination is asked to act as a rendezvous point for this
    circuit: its FS carries the RENDEZVOUS flag, so it splices nested headers (§6).
    ``key_epoch`` is the relay key epoch whose keys ``forward`` and ``backward`` list
    (SPEC.md §7.1); ``exp`` should be ``coarse_exp`` of an allowed lifetime.
    """
    r = params.max_hops
    if not 1 <= len(forward) <= r or not 1 <= len(backward) <= r:
        raise LocalProtocolError(f"paths must have 1..{r} hops")
    if len(source_id) != NODE_ID_LEN:
        raise LocalProtocolError("source id must be 8 bytes")
    chdr = setup_chdr(r, exp, key_epoch)
    l_s = params.sphinx_payload_size

    final = Flag.DELIVER | Flag.RENDEZVOUS if rendezvous else Flag.DELIVER
    fwd_routes = [Route(h.node_id) for h in forward[1:]] + [Route(_NO_HOP, final)]
    bwd_routes = [Route(h.node_id, Flag.BACKWARD) for h in backward[1:]]
    bwd_routes.append(Route(source_id, Flag.BACKWARD))

    fwd_session = crypto.SecretKey.from_rng(rng).secret_bytes()
    bwd_session = crypto.SecretKey.from_rng(rng).secret_bytes()
    match = rng.randbytes(32)
    # SHDR^b binds CHDR only: its SP^b is made later, by the destination.
    onion_b = build_onion(
        bwd_session,
        [(h.public_key, route_tlv(rt)) for h, rt in zip(backward, bwd_routes, strict=True)],
        associated_data=chdr,
        payload_size=l_s,
        last_hop_next_hmac=match,
    )
    shdr_b, bwd_secrets = onion_b.packet, onion_b.shared_secrets
    pfs_key = crypto.SecretKey.from_rng(rng)
    plain = shdr_b + backward[0].node_id + pfs_key.public_key
    plain += bytes(params.sp_plain_len - len(plain))
    sp_hops: list[bytes] = []

    def bind_sp(secrets: Sequence[bytes]) -> list[bytes]:
        # The AEAD key comes from the destination's ss, known only once the secrets are.
        sealed = crypto.chacha20poly1305_encrypt(
            sp_aead_key(secrets[-1], backward=False), _NONCE0, plain, chdr
        )
        sp_hops.extend(sp_per_hop(sealed, secrets))
        return sp_hops

    # SHDR^f: hop i's HMAC covers CHDR ‖ SP_i (SPEC.md §4.4).
    onion_f = build_onion(
        fwd_session,
        [(h.public_key, route_tlv(rt)) for h, rt in zip(forward, fwd_routes, strict=True)],
        associated_data=chdr,
        payload_size=l_s,
        hop_associated_data=bind_sp,
    )
    shdr_f, fwd_secrets = onion_f.packet, onion_f.shared_secrets
    sp = sp_hops[0]
    seed = rng.randbytes(K)
    packet = chdr + shdr_f + sp + init_fs_payload(seed, r)
    pending = PendingSetup(
        params=params,
        exp=exp,
        match=match,
        forward=tuple(forward),
        backward=tuple(backward),
        forward_secrets=tuple(fwd_secrets),
        backward_secrets=tuple(bwd_secrets),
        forward_seed=seed,
        pfs_key=pfs_key,
        rendezvous=rendezvous,
        key_epoch=key_epoch,
    )
    return SetupRequest(packet=packet, first_hop=forward[0].node_id, pending=pending)


def setup_match(params: Params, packet: bytes) -> bytes:
    """The value that ties an arriving P➋ to its ``PendingSetup.match``."""
    if len(packet) != params.setup_packet_len:
        raise MalformedInputError("setup packet has the wrong length")
    end = CHDR_LEN + params.shdr_len
    return packet[end - 32 : end]


def complete_setup(pending: PendingSetup, packet: bytes, rng: Any) -> CircuitKeys:
    """Process P➋ at the source (§4.3.4, last step) and build both AHDRs (Alg. 4).

    Raises ``IntegrityError`` if any MAC or the SP AEAD fails, ``MalformedInputError``
    for a packet of the wrong shape.
    """
    params = pending.params
    r = params.max_hops
    if not crypto.ct_equal(setup_match(params, packet), pending.match):
        raise IntegrityError("setup reply does not belong to this setup")
    chdr = packet[:CHDR_LEN]
    if chdr != setup_chdr(r, pending.exp, pending.key_epoch):
        raise IntegrityError("setup reply CHDR changed")
    sp_start = CHDR_LEN + params.shdr_len
    sp = packet[sp_start : sp_start + params.sp_len]
    fs_payload_b = packet[sp_start + params.sp_len :]

    ss_d = pending.forward_secrets[-1]
    sealed = xor_sp_layers(sp, pending.backward_secrets)
    plain = crypto.chacha20poly1305_decrypt(sp_aead_key(ss_d, backward=True), _NONCE0, sealed, chdr)
    fs_payload_f = plain[: r * C]
    y_d = plain[r * C : r * C + 33]
    session = pfs_session_secret(ss_d, pending.pfs_key.ecdh(y_d))

    fwd_fs_keys = [HopKeys(hop_secret(ss)) for ss in pending.forward_secrets]
    bwd_fs_keys = [HopKeys(hop_secret(ss)) for ss in pending.backward_secrets]
    fses_f = retrieve_fses(fs_payload_f, pending.forward_seed, fwd_fs_keys, r)
    fses_b = retrieve_fses(fs_payload_b, backward_fs_seed(ss_d), bwd_fs_keys, r)

    dest_keys = HopKeys(session)
    forward_keys = (*fwd_fs_keys[:-1], dest_keys)
    n_f, n_b = len(forward_keys), len(bwd_fs_keys)
    ahdr_f = create_ahdr(forward_keys, fses_f, rng.randbytes((r - n_f) * C), slots=r)
    ahdr_b = create_ahdr(bwd_fs_keys, fses_b, rng.randbytes((r - n_b) * C), slots=r)
    return CircuitKeys(
        params=params,
        exp=pending.exp,
        first_hop=pending.forward[0].node_id,
        ahdr_forward=ahdr_f,
        ahdr_backward=ahdr_b,
        backward_first_hop=pending.backward[0].node_id,
        destination=pending.forward[-1].node_id,
        rendezvous=pending.rendezvous,
        forward_keys=forward_keys,
        forward_fses=tuple(fses_f),
        backward_layer_keys=(dest_keys, *bwd_fs_keys),
        arrival_id=expected_arrival(bwd_fs_keys, ahdr_b)[:32],
        session_secret=session,
    )


def coarse_exp(now: float, lifetime: float) -> int:
    """EXP for a circuit that should live ``lifetime`` seconds from ``now`` (SPEC.md §7.2).

    The lifetime becomes the shortest allowed one that is at least as long (the longest if
    none is), and EXP is rounded up to a multiple of the granularity, so every circuit of
    one lifetime class set up within the same 10 s shares its EXP.
    """
    chosen = next((t for t in LIFETIMES_S if t >= lifetime), LIFETIMES_S[-1])
    return -(-int(now + chosen) // EXP_GRANULARITY_S) * EXP_GRANULARITY_S

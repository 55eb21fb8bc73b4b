"""The relay decision function: ``Relay.process(packet, now) -> Forward | Deliver | Drop``.

Rules:
1. One pure call per packet. No I/O, no clock (``now`` is a parameter), no randomness.
2. No per-circuit state. A relay's circuit state lives in the FSes the packets carry,
   sealed under its local secret SV. The only per-circuit memory is an optional,
   bounded LRU cache from a verified AHDR to its opened FS and cipher contexts; it
   changes speed, never decisions (``cache_size=0`` disables it).
3. Bytes from the network never raise: every failure becomes ``Drop(reason)``. The
   reason (a ``DropReason``, named after the error that describes the drop) is for
   local counters only; nothing is ever sent back.
4. Setup packets: EXP and key-epoch checks, replay check on the ephemeral key (before the
   ECDH), Sphinx peel under the epoch's key, FS creation, ADD_FS, SP re-encryption,
   forward (SPEC.md §7). With ``record_setup_tags`` the result of every setup whose tag
   entered the replay filter carries that tag (``SetupForward``, or ``SetupDrop`` when
   the setup fails after its ECDH), for a service to persist before it sends the packet
   on, and to acknowledge with ``setup_tags_persisted``. Tags are never forgotten: once
   ``max_unpersisted_setup_tags`` are unacknowledged, new setups are dropped
   (``LocalDropReason.SETUP_TAGS_UNPERSISTED``) before their ECDH. The
   destination (the Sphinx final hop with the DELIVER flag)
   instead answers with P➋ on the backward path. The Sphinx HMAC binds CHDR ‖ SP on
   forward hops (P➊) and CHDR alone on backward hops (P➋, whose SP the source cannot
   know); one ECDH checks both, and the match must agree with the BACKWARD flag.
5. Data packets: PROC_AHDR (FS open, MAC check in constant time, EXP check, shift), then
   remove (forward) or add (backward, flag in R) one onion layer; see ``onion.py``. In
   the hardened profile a forward layer's AES-GCM covers O, its tag and the rest of the
   tag array, and an authenticated packet's (FS, IV) then goes through the
   per-EXP-window replay filter.
6. Two engines, one behaviour: with the native engine (``engine.py``) a data packet's
   whole decision runs in ``hornet._native`` (same cache, same filter, same results and
   drop reasons); setup packets always take the Python path below.
7. Nested data packets (rendezvous, SPEC.md §6) carry a 2r·c header and only travel
   forward paths. A rendezvous point (an FS with DELIVER and RENDEZVOUS) removes its
   layer, then splices: the header it uncovers starts with an inner block FS'‖γ' of one
   of its own rendezvous circuits, which it opens and checks like an AHDR block. The rest
   of that header leaves as an ordinary r·c header, towards the hop named in FS'.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

import attrs

from hornet.core import crypto
from hornet.core import engine as engines
from hornet.core.ahdr import ahdr_mac_ok, shift_ahdr
from hornet.core.chdr import (
    EPOCH_OFFSET,
    TYPE_DATA,
    TYPE_DATA_NESTED,
    TYPE_SETUP,
    bound_setup_chdr,
    setup_exp,
)
from hornet.core.fs import (
    Flag,
    HopKeys,
    OpenedFs,
    Route,
    add_fs,
    fs_create,
    fs_open,
    init_fs_payload,
)
from hornet.core.keys import EpochKeys, usable_setup_epoch
from hornet.core.params import (
    CHDR_LEN,
    EXP_GRANULARITY_S,
    FS_LEN,
    TAG_LEN,
    C,
    Params,
    Profile,
)
from hornet.core.replay import BloomFilter, DataReplayFilter
from hornet.core.setup import (
    backward_fs_seed,
    hop_secret,
    parse_route_tlv,
    pfs_session_secret,
    setup_replay_tag,
    sp_aead_key,
    xor_sp_layers,
)
from hornet.core.sphinx import PeeledOnion, peel_onion
from hornet.errors import (
    ExpiredError,
    IntegrityError,
    KeyEpochError,
    LifetimeError,
    LocalDropReason,
    LocalProtocolError,
    MalformedInputError,
    RemoteProtocolError,
    ReplayError,
    RouteError,
)

_NONCE0: Final = bytes(12)
_ZERO_TAG: Final = bytes(TAG_LEN)
#: Which candidate associated data a setup hop's Sphinx HMAC matched (SPEC.md §4.5).
_AD_CHDR_SP: Final = 0  # CHDR ‖ SP: a forward setup hop (P➊)
_AD_CHDR: Final = 1  # CHDR only: a backward setup hop (P➋)
#: The setup roles a node accepts: (R's flags, Sphinx final hop, associated data matched).
#: DELIVER exactly at the final hop, never with BACKWARD; RENDEZVOUS only with DELIVER;
#: SP bound exactly on forward hops (an unbound SP there could carry a tag to D).
_SETUP_ROLES: Final = frozenset(
    {
        (Flag.NONE, False, _AD_CHDR_SP),  # forward relay
        (Flag.BACKWARD, False, _AD_CHDR),  # backward relay
        (Flag.DELIVER, True, _AD_CHDR_SP),  # destination
        (Flag.DELIVER | Flag.RENDEZVOUS, True, _AD_CHDR_SP),  # destination and RP (§6)
    }
)
DEFAULT_CACHE_SIZE: Final = 1024
#: The Sphinx ephemeral key X in a setup packet: CHDR ‖ version (1) ‖ X (33) ‖ ...
_X_START: Final = CHDR_LEN + 1
_X_END: Final = _X_START + 33


class DropReason(enum.StrEnum):
    """Why ``process`` dropped a packet. Each value is the ``reason`` of the error that
    describes the drop (``hornet.errors``, rule 5), so a service counts the core's drops
    in the same vocabulary as the link layer's and admission's."""

    MALFORMED = MalformedInputError.reason
    INTEGRITY = IntegrityError.reason
    EXPIRED = ExpiredError.reason
    REPLAY = ReplayError.reason
    #: A well-formed packet this node may not handle that way.
    ROUTE = RouteError.reason
    #: A setup's EXP not coarse, or further ahead than any lifetime.
    LIFETIME = LifetimeError.reason
    #: A setup under a key epoch this relay does not hold now.
    KEY_EPOCH = KeyEpochError.reason


@attrs.frozen
class Forward:
    """Send ``packet`` to the node (or endpoint) with 8-byte id ``next_hop``."""

    next_hop: bytes
    packet: bytes


@attrs.frozen
class Deliver:
    """A data packet reached its destination: ``message`` is the innermost payload.

    ``circuit_id`` (16 bytes, from the FS) tells circuits apart; ``reply_hop`` is where
    backward packets go; ``session_secret`` is s'_D (hidden).
    """

    circuit_id: bytes
    reply_hop: bytes
    message: bytes
    session_secret: bytes = attrs.field(repr=False, eq=False)


@attrs.frozen
class Drop:
    """The packet is dropped; ``reason`` is for local counters, never sent back. It is
    a ``DropReason``, or ``LocalDropReason.SETUP_TAGS_UNPERSISTED`` when the caller left
    too many setup tags unacknowledged (no peer's fault)."""

    reason: DropReason | LocalDropReason


@attrs.frozen
class SetupTag:
    """A setup replay tag the relay accepted under key ``epoch`` (persist it, SPEC.md §7.5)."""

    epoch: int
    tag: bytes


@attrs.frozen
class SetupForward(Forward):
    """A setup to send on, from a relay that records setup tags: persist ``setup_tag``
    first, then acknowledge it (``Relay.setup_tags_persisted``)."""

    setup_tag: SetupTag


@attrs.frozen
class SetupDrop(Drop):
    """A setup dropped after its tag entered the replay filter (it failed after the
    ECDH), from a relay that records setup tags: persist and acknowledge ``setup_tag``
    as for a ``SetupForward``, so a replay after a restart is refused before its ECDH."""

    setup_tag: SetupTag


#: The drop reasons of the native engine, in its order (``Reason`` in native/src/relay.rs).
_NATIVE_REASONS: Final = (
    DropReason.MALFORMED,
    DropReason.INTEGRITY,
    DropReason.EXPIRED,
    DropReason.REPLAY,
    DropReason.ROUTE,
)

_REASONS: Final = (
    (ReplayError, DropReason.REPLAY),
    (ExpiredError, DropReason.EXPIRED),
    (IntegrityError, DropReason.INTEGRITY),
)
#: Setup tags a caller may leave unacknowledged before new setups are dropped.
DEFAULT_MAX_UNPERSISTED_SETUP_TAGS: Final = 64
_TAGS_UNPERSISTED: Final = Drop(LocalDropReason.SETUP_TAGS_UNPERSISTED)


def _drop_reason(exc: RemoteProtocolError) -> DropReason:
    """The drop reason for an error raised while processing a packet."""
    for cls, reason in _REASONS:
        if isinstance(exc, cls):
            return reason
    return DropReason.MALFORMED


class _Circuit:
    """What the cache keeps for one verified AHDR: the opened FS and cipher contexts."""

    __slots__ = (
        "backward",
        "circuit_id",
        "deliver",
        "enc",
        "exp",
        "flags",
        "gcm",
        "next_ahdr",
        "next_hop",
        "prp",
        "s",
        "splice",
        "tag",
    )

    def __init__(
        self,
        s: bytes,
        keys: HopKeys,
        route: Route,
        exp: int,
        next_ahdr: bytes,
        fs: bytes,
        hardened: bool,
    ) -> None:
        self.s = s
        self.exp = exp
        self.flags = route.flags
        # Plain bools: an enum.Flag test on every packet costs far more than reading a bool.
        self.backward = bool(route.flags & Flag.BACKWARD)
        self.deliver = bool(route.flags & Flag.DELIVER)
        self.next_hop = route.next_hop
        self.next_ahdr = next_ahdr
        self.circuit_id = crypto.sha256(fs)[:16]
        self.prp = crypto.AesBlock(keys.prp)
        self.enc = crypto.AesCtr(keys.enc)
        self.gcm = crypto.AesGcm(keys.gcm) if hardened and not self.backward else None
        self.tag = crypto.AesCtr(keys.tag) if hardened and self.backward else None
        self.splice = False  # a rendezvous point's view of a nested header (SPEC.md §6.3)

    def __repr__(self) -> str:
        return "_Circuit(<hidden>)"


class Relay:
    """A HORNET node: relay for any circuit, destination for circuits that end here."""

    def __init__(
        self,
        node_key: crypto.SecretKey,
        local_secret: bytes,
        params: Params | None = None,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        generation: int = 0,
        setup_filter_capacity: int = 1_000_000,
        setup_filter_fp: float = 1e-6,
        data_filter: DataReplayFilter | None = None,
        record_setup_tags: bool = False,
        max_unpersisted_setup_tags: int = DEFAULT_MAX_UNPERSISTED_SETUP_TAGS,
        engine: str | None = None,
    ) -> None:
        """``node_key`` is the long-term identity (node id); setup keys and SV rotate per
        epoch and derive from ``local_secret`` (``keys.py``). ``generation`` is the restart
        count (a service persists it): FSes sealed under another generation do not open.
        Setup replay filters hold ``setup_filter_capacity`` tags per epoch at false-positive
        rate ``setup_filter_fp``; ``data_filter`` is the hardened profile's data replay filter.
        With ``record_setup_tags`` setup results carry their replay tag
        (``SetupForward``, ``SetupDrop``); the caller persists each one and then calls
        ``setup_tags_persisted``. While ``max_unpersisted_setup_tags`` are not
        acknowledged, new setups are dropped (``LocalDropReason.SETUP_TAGS_UNPERSISTED``).
        ``engine`` picks the data plane's engine (``engine.py``; None: the active one).

        Raises:
            LocalProtocolError: ``local_secret`` is not 32 bytes, ``generation`` is not
                a u32, or ``max_unpersisted_setup_tags`` is below 1.
        """
        if len(local_secret) != 32:
            raise LocalProtocolError("the local secret SV must be 32 bytes")
        if not 0 <= generation < 1 << 32:
            raise LocalProtocolError("generation out of range")
        if max_unpersisted_setup_tags < 1:
            raise LocalProtocolError("max_unpersisted_setup_tags must be at least 1")
        self.params = params or Params()
        self.node_key = node_key
        self.node_id = node_id_of(node_key.public_key)
        self._local_secret = local_secret
        self.generation = generation
        self._setup_filter = (setup_filter_capacity, setup_filter_fp)
        BloomFilter(setup_filter_capacity, setup_filter_fp)  # validate the sizes now
        self._epochs: dict[int, EpochKeys] = {}
        self._record = record_setup_tags
        self.max_unpersisted_setup_tags = max_unpersisted_setup_tags
        #: Setup tags handed out in results and not yet acknowledged as persisted.
        self.unpersisted_setup_tags = 0
        self._cache: OrderedDict[bytes, _Circuit] = OrderedDict()
        self.cache_size = cache_size
        p = self.params
        self._ahdr_end = CHDR_LEN + p.ahdr_len
        self._tags_end = self._ahdr_end + p.tag_array_len
        self._nested_ahdr_end = CHDR_LEN + p.nested_ahdr_len
        self._nested_tags_end = self._nested_ahdr_end + p.tag_array_len
        self._spliced_prefix = bytes((TYPE_DATA, p.max_hops))
        self._hardened = p.profile is Profile.HARDENED
        self._skew = p.max_skew_s
        # How long after its epoch ends an FS may still be used: longest EXP, plus skew.
        self._fs_tail = p.max_lifetime_s + EXP_GRANULARITY_S + 2 * p.max_skew_s
        self.data_filter: DataReplayFilter | None = None
        if self._hardened:
            self.data_filter = data_filter if data_filter is not None else DataReplayFilter()
        self.engine = engines.resolve(engine)
        f = self.data_filter
        self._fast: Any = engines.data_plane(
            self.engine,
            max_hops=p.max_hops,
            hardened=self._hardened,
            epoch_s=p.epoch_s,
            skew=self._skew,
            fs_tail=self._fs_tail,
            cache_size=cache_size,
            replay_filter=None
            if f is None
            else (f.bits_log2, f.window_s, f.max_windows, f.bits_per_packet, f.max_bytes),
            forward=Forward,
            deliver=Deliver,
            drops=[Drop(reason) for reason in _NATIVE_REASONS],
        )

    def __repr__(self) -> str:
        return f"Relay(node_id={self.node_id.hex()}, params={self.params!r})"

    @property
    def replay_memory_bytes(self) -> int:
        """Memory of the data replay filter that decides (the native engine holds its own;
        ``data_filter`` then only carries its parameters)."""
        if self._fast is not None:
            return int(self._fast.replay_memory_bytes)
        return 0 if self.data_filter is None else self.data_filter.memory_bytes

    @property
    def cached_circuits(self) -> int:
        if self._fast is not None:
            return int(self._fast.cached_circuits)
        return len(self._cache)

    # -- key epochs (SPEC.md §7.1) ---------------------------------------------------------
    def epoch_keys(self, epoch: int) -> EpochKeys:
        """The keys of ``epoch`` (derived on first use; epochs long over are forgotten)."""
        keys = self._epochs.get(epoch)
        if keys is None:
            for old in [e for e in self._epochs if e < epoch - 2]:
                del self._epochs[old]
            keys = self._epochs[epoch] = EpochKeys(
                self._local_secret, epoch, self.generation, BloomFilter(*self._setup_filter)
            )
        return keys

    def setup_public_key(self, epoch: int) -> bytes:
        """x_e·G: the key this relay's directory entry lists for ``epoch``."""
        return self.epoch_keys(epoch).setup_key.public_key

    def _data_epochs(self, now: float) -> list[EpochKeys]:
        """The epochs whose FSes may still be valid at ``now``, current first."""
        period, skew = self.params.epoch_s, self._skew
        current = int(now // period)
        return [
            self.epoch_keys(epoch)
            for epoch in (current, current - 1, current + 1)
            if epoch >= 0 and epoch * period - skew <= now < (epoch + 1) * period + self._fs_tail
        ]

    def setup_tags_persisted(self, count: int = 1) -> None:
        """Acknowledge that the caller persisted ``count`` of the setup tags it was handed
        (``SetupForward.setup_tag``, ``SetupDrop.setup_tag``).

        Raises:
            LocalProtocolError: more tags acknowledged than were handed out.
        """
        if not 0 <= count <= self.unpersisted_setup_tags:
            raise LocalProtocolError("acknowledged more setup tags than were handed out")
        self.unpersisted_setup_tags -= count

    def restore_setup_tags(self, epoch: int, tags: list[bytes]) -> None:
        """Refill an epoch's replay filter with tags persisted before a restart."""
        replay = self.epoch_keys(epoch).replay
        for tag in tags:
            replay.check_and_add(tag)

    # -- the entry point ------------------------------------------------------------------
    def process(self, packet: bytes, now: float) -> Forward | Deliver | Drop:
        """Decide what to do with one packet. Never raises for any ``packet`` bytes."""
        fast = self._fast
        if fast is not None:  # the native engine decides data packets (rule 6)
            decided = fast.process(packet, now)
            while type(decided) is int:  # the FS key of an epoch not handed over yet
                fast.set_epoch(decided, self.epoch_keys(decided).prp_key)
                decided = fast.process(packet, now)
            if decided is not None:
                return decided  # type: ignore[no-any-return]
        try:
            if len(packet) < CHDR_LEN or packet[1] != self.params.max_hops:
                return Drop(DropReason.MALFORMED)
            kind = packet[0]
            if kind == TYPE_DATA:
                return self._data(packet, now)
            if kind == TYPE_SETUP:
                return self._setup(packet, now)
            if kind == TYPE_DATA_NESTED:
                return self._data(packet, now, nested=True)
            return Drop(DropReason.MALFORMED)
        except RemoteProtocolError as exc:
            return Drop(_drop_reason(exc))

    # -- data -----------------------------------------------------------------------------
    def _open_verified(
        self, fs: bytes, now: float, verify: Callable[[HopKeys], bool]
    ) -> tuple[OpenedFs, HopKeys]:
        """FS_OPEN under each live epoch's SV until the FS opens to keys that ``verify``
        (a MAC check); then the EXP check, with the tolerated skew."""
        for epoch in self._data_epochs(now):
            try:
                opened = fs_open(epoch.prp, fs)
            except RemoteProtocolError:
                continue
            keys = HopKeys(opened.s)
            if verify(keys):
                if opened.exp + self._skew <= now:
                    raise ExpiredError("circuit expired")
                return opened, keys
        raise IntegrityError("MAC mismatch")

    def _circuit(self, ahdr: bytes, now: float) -> _Circuit:
        """PROC_AHDR (Alg. 3) for a header not in the cache; caches the result."""
        fs = ahdr[:FS_LEN]
        opened, keys = self._open_verified(fs, now, lambda keys: ahdr_mac_ok(keys, ahdr))
        deadline = opened.exp + self._skew  # tolerate a clock behind the source's
        circuit = _Circuit(
            opened.s, keys, opened.route, deadline, shift_ahdr(keys, ahdr), fs, self._hardened
        )
        if len(ahdr) == self.params.nested_ahdr_len and opened.route.flags & Flag.RENDEZVOUS:
            self._open_inner_block(circuit, now)
        if self.cache_size:
            self._cache[ahdr] = circuit
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return circuit

    def _open_inner_block(self, circuit: _Circuit, now: float) -> None:
        """The splice at a rendezvous point (SPEC.md §6.3): check RH = FS' ‖ γ' ‖ A.

        FS' must be one of this node's own rendezvous FSes (DELIVER and RENDEZVOUS, not
        expired) and γ' = MAC(s'; FS' ‖ A). The circuit then continues with header A
        towards FS'.next_hop, and lives as long as both FSes do.
        """
        header = circuit.next_ahdr
        a_end = C + self.params.ahdr_len
        signed = header[:FS_LEN] + header[C:a_end]
        inner, _ = self._open_verified(
            header[:FS_LEN],
            now,
            lambda keys: crypto.ct_equal(crypto.mac16(keys.mac, signed), header[FS_LEN:C]),
        )
        if inner.route.flags != Flag.DELIVER | Flag.RENDEZVOUS:
            raise IntegrityError("inner block is not a rendezvous FS")
        circuit.splice = True
        circuit.next_hop = inner.route.next_hop
        circuit.next_ahdr = header[C:a_end]
        circuit.exp = min(circuit.exp, inner.exp + self._skew)

    def _data(self, packet: bytes, now: float, nested: bool = False) -> Forward | Deliver | Drop:
        if nested:
            ahdr_end, tags_end = self._nested_ahdr_end, self._nested_tags_end
        else:
            ahdr_end, tags_end = self._ahdr_end, self._tags_end
        if len(packet) <= tags_end:
            return Drop(DropReason.MALFORMED)
        ahdr = packet[CHDR_LEN:ahdr_end]
        circuit = self._cache.get(ahdr)
        if circuit is None:
            circuit = self._circuit(ahdr, now)
        elif circuit.exp <= now:
            return Drop(DropReason.EXPIRED)
        iv = packet[2:CHDR_LEN]
        payload = packet[tags_end:]
        if nested and (circuit.backward or (circuit.deliver and not circuit.splice)):
            return Drop(DropReason.ROUTE)  # nested headers only travel forward, to an RP
        if circuit.backward:
            # ADD_LAYER: encrypt under the arriving IV, then move the IV on.
            payload = circuit.enc.xor(iv, payload)
            tags = b""
            if circuit.tag is not None:
                tags = circuit.tag.xor(iv, packet[ahdr_end:tags_end])
            iv = circuit.prp.encrypt(iv)
            if self.data_filter is not None and self.data_filter.seen(
                iv, circuit.exp, now, self._skew
            ):
                return Drop(DropReason.REPLAY)
        else:
            # REMOVE_LAYER: move the IV back, then decrypt (and authenticate) under it.
            iv = circuit.prp.decrypt(iv)
            tags = b""
            if circuit.gcm is not None:
                # T = tag ‖ rest: one AEAD over rest ‖ 0^16 ‖ O checks every bit of T and
                # O, and decrypts to the shifted array T' ‖ O' (SPEC.md §5.4).
                plain = circuit.gcm.open(
                    iv[:12],
                    b"".join((
                        packet[ahdr_end + TAG_LEN : tags_end],
                        _ZERO_TAG,
                        payload,
                        packet[ahdr_end : ahdr_end + TAG_LEN],
                    )),
                    None,
                )
                # Authentic: now the (FS, IV) replay filter (the PRP'd IV stands for both).
                if self.data_filter is not None and self.data_filter.seen(
                    iv, circuit.exp, now, self._skew
                ):
                    return Drop(DropReason.REPLAY)
                if circuit.deliver and not circuit.splice:
                    payload = plain[tags_end - ahdr_end :]
                else:
                    tags, payload = plain, b""  # T' ‖ O', already in wire order
            else:
                payload = circuit.enc.xor(iv, payload)
            if circuit.splice:
                return Forward(
                    circuit.next_hop,
                    b"".join((self._spliced_prefix, iv, circuit.next_ahdr, tags, payload)),
                )
            if circuit.deliver:
                return Deliver(
                    circuit_id=circuit.circuit_id,
                    reply_hop=circuit.next_hop,
                    message=payload,
                    session_secret=circuit.s,
                )
        return Forward(
            circuit.next_hop, b"".join((packet[:2], iv, circuit.next_ahdr, tags, payload))
        )

    # -- setup ----------------------------------------------------------------------------
    def _setup(self, packet: bytes, now: float) -> Forward | Drop:
        p = self.params
        if len(packet) != p.setup_packet_len:
            return Drop(DropReason.MALFORMED)
        chdr = bound_setup_chdr(packet[:CHDR_LEN])  # the entry relay's puzzle stops here
        exp = setup_exp(chdr)
        if exp + self._skew <= now:
            return Drop(DropReason.EXPIRED)
        if exp % EXP_GRANULARITY_S or exp > p.max_exp(now):
            return Drop(DropReason.LIFETIME)
        number = usable_setup_epoch(p, chdr[EPOCH_OFFSET], now)
        if number is None:
            return Drop(DropReason.KEY_EPOCH)
        epoch = self.epoch_keys(number)
        # X determines the shared secret, so a replay is refused before the ECDH; the tag
        # is recorded only once the Sphinx HMAC proves the packet was built for us.
        tag = setup_replay_tag(packet[_X_START:_X_END])
        if tag in epoch.replay:
            return Drop(DropReason.REPLAY)
        if self._record and self.unpersisted_setup_tags >= self.max_unpersisted_setup_tags:
            return _TAGS_UNPERSISTED  # refuse the setup rather than forget its tag
        shdr_end = CHDR_LEN + p.shdr_len
        sp_end = shdr_end + p.sp_len
        sp = packet[shdr_end:sp_end]
        # One ECDH, two candidates, in the order _AD_CHDR_SP, _AD_CHDR.
        peeled = peel_onion(
            epoch.setup_key, packet[CHDR_LEN:shdr_end], associated_data=(chdr + sp, chdr)
        )
        epoch.replay.check_and_add(tag)
        if not self._record:
            return self._route_setup(epoch, chdr, exp, peeled, sp, packet[sp_end:])
        # From here on the tag is in the filter: the result carries it, whatever happens.
        self.unpersisted_setup_tags += 1
        accepted = SetupTag(epoch.epoch, tag)
        try:
            result = self._route_setup(epoch, chdr, exp, peeled, sp, packet[sp_end:])
        except RemoteProtocolError as exc:
            return SetupDrop(_drop_reason(exc), accepted)
        if isinstance(result, Drop):
            return SetupDrop(result.reason, accepted)
        return SetupForward(result.next_hop, result.packet, accepted)

    def _route_setup(
        self,
        epoch: EpochKeys,
        chdr: bytes,
        exp: int,
        peeled: PeeledOnion,
        sp: bytes,
        fs_payload: bytes,
    ) -> Forward | Drop:
        """A peeled setup in the role its routing info asks for: forward P➊ with ADD_FS,
        or answer it as the destination."""
        ss = peeled.shared_secret
        route = parse_route_tlv(peeled.payload)
        role = (route.flags, peeled.next_onion is None, peeled.associated_data_index)
        if role not in _SETUP_ROLES:
            return Drop(DropReason.ROUTE)
        s = hop_secret(ss)
        keys = HopKeys(s)
        sp = xor_sp_layers(sp, (ss,))
        if peeled.next_onion is not None:
            fs = fs_create(epoch.prp, s, route, exp)
            return Forward(
                route.next_hop,
                b"".join((chdr, peeled.next_onion, sp, add_fs(keys, fs, fs_payload))),
            )
        return self._answer_setup(epoch, chdr, exp, ss, keys, sp, fs_payload, route.flags)

    def _answer_setup(
        self,
        epoch: EpochKeys,
        chdr: bytes,
        exp: int,
        ss: bytes,
        keys: HopKeys,
        sp: bytes,
        fs_payload: bytes,
        flags: Flag,
    ) -> Forward:
        """Destination side of setup (§4.3.4): build P➋ towards R^b_0."""
        p = self.params
        plain = crypto.chacha20poly1305_decrypt(sp_aead_key(ss, backward=False), _NONCE0, sp, chdr)
        shdr_b = plain[: p.shdr_len]
        reply_hop = plain[p.shdr_len : p.shdr_len + 8]
        x_s = plain[p.shdr_len + 8 : p.shdr_len + 41]
        # y_D = PRF_SV(ss): forgotten with SV, so expired sessions stay secret (forward
        # secrecy for payloads), and no randomness is needed here.
        y_d = crypto.hmac_sha256(epoch.pfs_key, ss)
        if not crypto.is_valid_scalar(y_d):
            raise MalformedInputError("unusable ephemeral scalar")  # probability ~2^-128
        session = pfs_session_secret(ss, crypto.ecdh(y_d, crypto.validate_pubkey(x_s)))
        fs = fs_create(epoch.prp, session, Route(reply_hop, flags), exp)
        reply_plain = add_fs(keys, fs, fs_payload) + crypto.pubkey_from_secret(y_d)
        reply_plain += bytes(p.sp_plain_len - len(reply_plain))
        sp_b = crypto.chacha20poly1305_encrypt(
            sp_aead_key(ss, backward=True), _NONCE0, reply_plain, chdr
        )
        packet = chdr + shdr_b + sp_b + init_fs_payload(backward_fs_seed(ss), p.max_hops)
        return Forward(reply_hop, packet)


def node_id_of(public_key: bytes) -> bytes:
    """A node's 8-byte id: SHA256(compressed public key)[:8]."""
    return crypto.sha256(public_key)[:8]

"""The fuzz targets: one ``Target`` subclass per group of network-facing entry points.

Each world is built from public helpers (``hornet.testing.sim.SimNetwork``, the session
classes, ``MixerCore.create``...) so that it keeps working while the wire formats
change underneath. ``TARGETS`` maps a target name to its class; see ``fuzzkit`` for the
rules every target follows.
"""

from __future__ import annotations

import contextlib
import importlib
import random
from typing import Any, ClassVar, Final

from fuzzkit import Target, where

from hornet.core import crypto
from hornet.core.blinding import (
    BlindedPath,
    EncryptedData,
    create_blinded_path,
    process_blinded_hop,
)
from hornet.core.chdr import TYPE_DATA, TYPE_DATA_NESTED, TYPE_SETUP
from hornet.core.e2e import DestinationSession, SourceSession
from hornet.core.onion_message import (
    LARGE_PACKET_SIZE,
    OnionMessage,
    OnionMessagePayload,
    create_message_path,
    create_onion_message,
    process_onion_message,
)
from hornet.core.onion_message import DeliverMessage as OmDeliver
from hornet.core.onion_message import ForwardMessage as OmForward
from hornet.core.params import Params
from hornet.core.relay import Deliver, Drop, Forward
from hornet.core.rendezvous import Descriptor, RendezvousDestination, RendezvousSource
from hornet.core.setup import complete_setup
from hornet.core.sphinx import OVERHEAD, build_onion, peel_onion
from hornet.core.stream import MAX_MESSAGE, FrameKind, Stream, StreamFrame
from hornet.core.wire import decode_bigsize, decode_tlv_stream
from hornet.errors import HornetError
from hornet.link.endpoint import LinkEndpoint
from hornet.link.noise import Initiator, Responder
from hornet.testing import sim

NOW: Final = 1.0  # the time every sim packet is processed at (SimNetwork's default EXP is 600)
SEED: Final = 0x5EED
PAYLOAD: Final = 1024


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311  (deterministic worlds by design)


# --------------------------------------------------------------------------------------
# A recorded HORNET world: setups, data both ways, rendezvous both ways


class HornetWorld:
    """A ``SimNetwork`` that ran the protocol once and recorded every packet.

    ``hops``: (relay index, packet) for every packet a relay processed. ``replies``:
    (PendingSetup, P➋ as it reached its endpoint) for every setup. The endpoint objects
    (``source``/``dest`` sessions, rendezvous ends) hold packets they have *not* opened
    yet: ``to_dest``, ``to_source``, ``rv_to_dest``, ``rv_to_source``.
    """

    RELAYS: ClassVar[int] = 16
    DEST_ID: ClassVar[bytes] = b"dest\x00\x00\x00\x01"

    def __init__(self, seed: int = SEED, *, plain: bool = True, rendezvous: bool = True) -> None:
        self.params = Params()
        self.seed = seed
        self.hops: list[tuple[int, bytes]] = []
        self.replies: list[tuple[Any, bytes]] = []
        hops, replies = self.hops, self.replies
        original = sim.complete_setup  # type: ignore[attr-defined]

        def recording_complete(pending: Any, packet: bytes, rng: Any) -> Any:
            replies.append((pending, packet))
            return original(pending, packet, rng)

        class Recording(sim.SimNetwork):
            def send(self, first_hop: bytes, packet: bytes, now: float) -> sim.Trip:
                trip = super().send(first_hop, packet, now)
                index = {relay.node_id: i for i, relay in enumerate(self.relays)}
                hops.extend((index[hop.node_id], hop.packet) for hop in trip.hops)
                return trip

        sim.complete_setup = recording_complete  # type: ignore[attr-defined]
        try:
            net = Recording(self.RELAYS, self.params, seed=seed)
            if plain:
                self._plain(sim, net)
            if rendezvous:
                self._rendezvous(net)
        finally:
            sim.complete_setup = original  # type: ignore[attr-defined]

    def _plain(self, sim: Any, net: Any) -> None:
        rng = net.rng
        # Circuits of 3 hops each way, 1 hop each way, and r hops each way.
        self.source, self.dest = sim.open_session(net, [1, 2, 3], [4, 5, 6], PAYLOAD)
        short = sim.open_session(net, [7], [8], PAYLOAD)
        r = self.params.max_hops
        long = sim.open_session(net, list(range(1, r + 1)), list(range(r + 1, 2 * r + 1)), PAYLOAD)
        self.to_dest: list[bytes] = []
        self.to_source: list[bytes] = []
        for source, dest in ((self.source, self.dest), short, long):
            for i in range(3):
                trip = net.deliver(source.seal(b"data %d" % i, NOW, rng), NOW)
                back = net.deliver(dest.seal(b"reply %d" % i, rng), NOW)
                if source is self.source:  # kept unopened: valid inputs for the e2e target
                    self.to_dest.append(trip.delivered.message)
                    self.to_source.append(back.exit_packet)

    def _rendezvous(self, net: Any) -> None:
        rng = net.rng
        # D's circuit 9 → RP 0 (back over 12, 13); S's circuit 10 → 11 → RP 0.
        d_keys = net.setup([9, 0], [12, 13], endpoint=self.DEST_ID, rendezvous=True)
        self.rv_dest = RendezvousDestination(d_keys, crypto.SecretKey.from_rng(rng), PAYLOAD)
        self.descriptor = self.rv_dest.descriptor().encode()
        descriptor = Descriptor.decode(self.params, self.descriptor)
        s_keys = net.setup([10, 11, 0], [14, 15], rendezvous=True)
        self.rv_source = RendezvousSource(s_keys, descriptor, rng)
        first = net.deliver(self.rv_source.seal(b"hello D", NOW, rng), NOW)
        opened = self.rv_dest.receive(first.exit_packet)
        self.rv_to_dest = [
            net.deliver(self.rv_source.seal(b"more %d" % i, NOW, rng), NOW).exit_packet
            for i in range(2)
        ]
        self.rv_to_source = [
            net.deliver(
                self.rv_dest.seal(opened.connection, b"answer %d" % i, NOW, rng), NOW
            ).exit_packet
            for i in range(2)
        ]

    def fresh_relays(self) -> Any:
        """A new network with the same relay keys and no state (no replay tags, no cache)."""
        return sim.SimNetwork(self.RELAYS, self.params, seed=self.seed)


# --------------------------------------------------------------------------------------
# Relay.process


class RelayTarget(Target):
    """``Relay.process`` on one packet type. Input: relay index (1 byte) ‖ packet.

    Invariants beyond "never raises": the result is Forward, Deliver or Drop; a Forward
    names an 8-byte next hop and keeps the packet's length (a nested packet loses r·c
    bytes at the rendezvous point's splice); a setup packet is never delivered.
    """

    packet_type = TYPE_SETUP
    entry_points = ("hornet.core.relay.Relay.process",)
    max_len = 4096
    reset_every = 2000

    def build(self) -> None:
        if not self._seeds:
            world = HornetWorld()
            self.params = world.params
            self._seeds = [bytes((i,)) + p for i, p in world.hops if p[0] == self.packet_type]
            self._world = world
        self.net = self._world.fresh_relays()
        self.relays = self.net.relays

    def dictionary(self) -> list[bytes]:
        return [relay.node_id for relay in self.relays[:4]] + [
            bytes((TYPE_SETUP,)),
            bytes((TYPE_DATA,)),
        ]

    def canonical(self, data: bytes) -> bytes:
        return bytes((data[0] % len(self.relays),)) + data[1:] if data else data

    def feed_one(self, data: bytes) -> None:
        if not data:
            return
        relay = self.relays[data[0] % len(self.relays)]
        packet = data[1:]
        entry = self.entry_points[0]
        self.calls[entry] += 1
        try:
            result = relay.process(packet, NOW)
        except Exception as exc:  # the contract: never raises at all
            raise self.violation("crash", entry, data, where(exc)) from exc
        if isinstance(result, Drop):
            self.outcomes[f"Drop.{result.reason.name}"] += 1
            return
        if isinstance(result, Deliver):
            self.outcomes["Deliver"] += 1
            if packet[:1] == bytes((TYPE_SETUP,)):
                raise self.violation("crash", entry, data, "a setup packet was delivered")
            return
        if not isinstance(result, Forward):
            raise self.violation("crash", entry, data, f"returned {type(result).__name__}")
        self.outcomes[f"Forward.type{packet[0]}"] += 1
        expected = len(packet)
        if packet[0] == TYPE_DATA_NESTED and result.packet[:1] == bytes((TYPE_DATA,)):
            expected -= self.params.max_hops * 48  # the splice drops r·c header bytes
        if len(result.next_hop) != 8 or len(result.packet) != expected:
            raise self.violation(
                "crash", entry, data, f"Forward of {len(result.packet)} bytes for {len(packet)}"
            )

    def check_bounds(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for i, relay in enumerate(self.relays):
            self.bound(f"relay{i}.cached_circuits", relay.cached_circuits, relay.cache_size, sizes)
            epochs = getattr(relay, "_epochs", None)
            if epochs is not None:
                self.bound(f"relay{i}.key_epochs", len(epochs), 4, sizes)
            unpersisted = getattr(relay, "unpersisted_setup_tags", None)
            if unpersisted is not None:
                limit = relay.max_unpersisted_setup_tags
                self.bound(f"relay{i}.unpersisted_setup_tags", unpersisted, limit, sizes)
            data_filter = getattr(relay, "data_filter", None)
            if data_filter is not None:
                limit = data_filter.max_bytes
                used = relay.replay_memory_bytes  # whichever engine holds the filter
                self.bound(f"relay{i}.data_filter_bytes", used, limit, sizes)
        return sizes


class RelaySetupTarget(RelayTarget):
    name = "relay_setup"
    deep = ("Forward.type1",)
    packet_type = TYPE_SETUP
    # An accepted setup burns its ephemeral key X at that relay (replay filter): mutants
    # that keep X would then stop at the replay check, so the relays restart often.
    reset_every = 250


class RelayDataTarget(RelayTarget):
    name = "relay_data"
    deep = ("Forward.type2", "Deliver")
    packet_type = TYPE_DATA


class RelayNestedTarget(RelayTarget):
    name = "relay_nested"
    deep = ("Forward.type3",)
    packet_type = TYPE_DATA_NESTED


# --------------------------------------------------------------------------------------
# Sphinx


class SphinxTarget(Target):
    """``peel_onion``. Input: selector ‖ onion. Selector bits: 0–1 pick the associated
    data (none, 18 bytes, a tuple of two candidates), bit 2 passes the key as raw bytes
    instead of a ``SecretKey``."""

    name = "sphinx"
    deep = ("hornet.core.sphinx.peel_onion:ok",)
    entry_points = ("hornet.core.sphinx.peel_onion",)
    max_len = 1500
    AD: ClassVar[tuple[Any, ...]] = (b"", b"\x01\x07" + bytes(16), (b"candidate-0", b"c1"))

    def build(self) -> None:
        rng = _rng(SEED)
        self.key = crypto.SecretKey.from_rng(rng)
        others = [crypto.SecretKey.from_rng(rng).public_key for _ in range(3)]
        payload = b"\x02\x0c" + bytes(12)
        seeds = []
        for sel, ad in enumerate(self.AD):
            for size in (Params().sphinx_payload_size, 1300, 35, 400):
                for n in (1, 2, 4):
                    hops = [(self.key.public_key, payload)] + [
                        (o, b"\x02\x01z") for o in others[: n - 1]
                    ]
                    if sum(2 + len(p) + 32 for _, p in hops) > size:
                        continue
                    extra = None
                    if isinstance(ad, tuple):

                        def extra(secrets: Any, _n: int = n, _ad: Any = ad) -> list[bytes]:
                            return [_ad[1]] * _n

                    onion = build_onion(
                        rng.randbytes(32),
                        hops,
                        payload_size=size,
                        associated_data=b"" if isinstance(ad, tuple) else ad,
                        hop_associated_data=extra,
                    ).packet
                    seeds.append(bytes((sel,)) + onion)
                    seeds.append(bytes((sel | 4,)) + onion)
        self._seeds = seeds

    def canonical(self, data: bytes) -> bytes:
        return bytes((data[0] % 3 | data[0] & 4,)) + data[1:] if data else data

    def feed_one(self, data: bytes) -> None:
        if not data:
            return
        ad = self.AD[data[0] % 3]
        if isinstance(ad, tuple):
            ad = (b"" + ad[0], b"" + ad[1])
        key = self.key.secret_bytes() if data[0] & 4 else self.key
        peeled = self.call(
            self.entry_points[0], data, peel_onion, key, data[1:], associated_data=ad
        )
        if peeled is not None:
            if peeled.next_onion is not None and len(peeled.next_onion) != len(data) - 1:
                raise self.violation(
                    "crash", self.entry_points[0], data, "next onion changed length"
                )
            if len(data) - 1 - OVERHEAD < len(peeled.payload):
                raise self.violation("crash", self.entry_points[0], data, "payload overruns")


# --------------------------------------------------------------------------------------
# Onion messages and route blinding


def _blinding_world(seed: int = SEED) -> dict[str, Any]:
    """A node key, peers, and valid onion messages / blinded paths addressed to it."""

    rng = _rng(seed)

    def scalar() -> bytes:
        return crypto.SecretKey.from_rng(rng).secret_bytes()

    key = crypto.SecretKey.from_rng(rng)
    peers = [crypto.SecretKey.from_rng(rng).public_key for _ in range(3)]
    reply = create_message_path(scalar(), [peers[0], peers[1]], path_id=b"r" * 32)
    messages = []
    for n in (1, 2, 3):
        nodes = [key.public_key, *peers[: n - 1]]
        path = create_message_path(scalar(), nodes, path_id=b"p" * 32)
        messages.append(create_onion_message(scalar(), path).message)
        messages.append(
            create_onion_message(
                scalar(), path, reply_path=reply, payload=[(64, b"invoice-request")]
            ).message
        )
        messages.append(create_onion_message(scalar(), path, payload=[(77, b"odd")]).message)
    # A hop naming the next node by short_channel_id, with an override and extra records.
    items = [
        EncryptedData(
            short_channel_id=0x0102030405060708,
            next_path_key_override=peers[2],
            records=((11, b"x"),),
        ),
        EncryptedData(path_id=b"q" * 32),
    ]
    scid_path = create_blinded_path(scalar(), [(key.public_key, items[0]), (peers[0], items[1])])
    messages.append(create_onion_message(scalar(), scid_path).message)
    messages.append(
        create_onion_message(
            scalar(), create_message_path(scalar(), [key.public_key]), packet_size=LARGE_PACKET_SIZE
        ).message
    )
    paths = [reply, scid_path, create_message_path(scalar(), peers)]
    plaintexts = [it.encode() for it in items] + [
        EncryptedData(next_node_id=peers[1], padding=bytes(5)).encode(),
        EncryptedData(records=((10, bytes(8)), (12, bytes(12)), (14, b""))).encode(),
    ]
    payloads = [
        OnionMessagePayload(
            encrypted_recipient_data=b"e" * 40, reply_path=reply, records=((64, b"x"), (99, b"y"))
        ).encode()
    ]
    hops = [
        p.first_path_key + p.hops[0].encrypted_recipient_data
        for p in (create_blinded_path(scalar(), [(key.public_key, it)]) for it in items)
    ]
    return {
        "key": key,
        "peers": peers,
        "messages": messages,
        "paths": paths,
        "plaintexts": plaintexts,
        "payloads": payloads,
        "hops": hops,
    }


class OnionMessageTarget(Target):
    """``process_onion_message`` and the two onion-message decoders, fed every input."""

    name = "onion_message"
    deep = ("ForwardMessage", "DeliverMessage")
    entry_points = (
        "hornet.core.onion_message.process_onion_message",
        "hornet.core.onion_message.OnionMessage.decode",
        "hornet.core.onion_message.OnionMessagePayload.decode",
    )
    max_len = 34_000

    def build(self) -> None:
        world = _blinding_world()
        self.key = world["key"]
        self._seeds = world["messages"] + world["payloads"]

    def feed_one(self, data: bytes) -> None:
        ep = self.entry_points
        action = self.call(ep[0], data, process_onion_message, self.key, data)
        if action is not None:
            self.outcomes[type(action).__name__] += 1
            if not isinstance(action, OmForward | OmDeliver):
                raise self.violation("crash", ep[0], data, f"returned {type(action).__name__}")
            if isinstance(action, OmForward) and len(action.message) != len(data):
                raise self.violation("crash", ep[0], data, "forwarded message changed length")
        self.call(ep[1], data, OnionMessage.decode, data)
        self.call(ep[2], data, OnionMessagePayload.decode, data)


class BlindingTarget(Target):
    """Route blinding: both decoders, ``process_blinded_hop`` (input: path key (33) ‖
    encrypted_recipient_data) and the TLV/BigSize readers under them."""

    name = "blinding"
    deep = (
        "hornet.core.blinding.process_blinded_hop:ok",
        "hornet.core.blinding.BlindedPath.decode:ok",
        "hornet.core.blinding.EncryptedData.decode:ok",
    )
    entry_points = (
        "hornet.core.blinding.BlindedPath.decode",
        "hornet.core.blinding.EncryptedData.decode",
        "hornet.core.blinding.process_blinded_hop",
        "hornet.core.wire.decode_tlv_stream",
        "hornet.core.wire.decode_bigsize",
    )
    max_len = 2000

    def build(self) -> None:
        world = _blinding_world()
        self.key = world["key"]
        self._seeds = [p.encode() for p in world["paths"]] + world["plaintexts"] + world["hops"]

    def feed_one(self, data: bytes) -> None:
        ep = self.entry_points
        path = self.call(ep[0], data, BlindedPath.decode, data)
        if path is not None and path.encode() != data:
            raise self.violation("crash", ep[0], data, "decode/encode is not the identity")
        item = self.call(ep[1], data, EncryptedData.decode, data)
        if item is not None and item.encode() != data:
            raise self.violation("crash", ep[1], data, "decode/encode is not the identity")
        self.call(ep[2], data, process_blinded_hop, self.key, data[:33], data[33:])
        self.call(ep[3], data, decode_tlv_stream, data)
        self.call(ep[4], data, decode_bigsize, data)


# --------------------------------------------------------------------------------------
# Stream frames


class StreamTarget(Target):
    """``StreamFrame.decode`` and ``Stream.receive_frame`` on a reliable and a datagram stream
    that also send (so acknowledgements have something to acknowledge). The application
    reads its messages when the input's last byte is odd."""

    name = "stream"
    deep = (
        "hornet.core.stream.Stream.receive_frame[reliable]:ok",
        "hornet.core.stream.Stream.receive_frame[datagram]:ok",
    )
    entry_points = (
        "hornet.core.stream.Frame.decode",
        "hornet.core.stream.Stream.receive_frame[reliable]",
        "hornet.core.stream.Stream.receive_frame[datagram]",
    )
    max_len = 1100
    reset_every = 20_000
    CONN: ClassVar[bytes] = bytes(range(16))

    def build(self) -> None:
        self.now = 0.0
        self.reliable = Stream(self.CONN, 1000, max_ready=16)
        self.datagram = Stream(self.CONN, 1000, reliable=False, max_ready=16)
        peer = Stream(self.CONN, 1000)
        peer.queue_message(b"m" * 2500)
        peer.queue_message(b"")
        frames = peer.frames_to_send(0.0)
        frames += [StreamFrame(self.CONN, kind, 1, 3, 0, 0b101, b"x") for kind in FrameKind]
        self._seeds = [f.encode() for f in frames]

    def feed_one(self, data: bytes) -> None:
        ep = self.entry_points
        self.now += 0.001
        frame = self.call(ep[0], data, StreamFrame.decode, data)
        if frame is None:
            return
        if frame.encode() != data:
            raise self.violation("crash", ep[0], data, "decode/encode is not the identity")
        for entry, stream in ((ep[1], self.reliable), (ep[2], self.datagram)):
            if stream.can_queue and stream.statistics().in_flight < 8:
                stream.queue_message(b"o" * min(1600, stream.max_fragment))
            self.call(entry, data, stream.receive_frame, frame, self.now)
            stream.frames_to_send(self.now)
            if data[-1] & 1:
                while stream.has_message():
                    stream.next_message()

    def check_bounds(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for label, stream in (("reliable", self.reliable), ("datagram", self.datagram)):
            stats = stream.statistics()
            self.bound(f"{label}.ready", stats.ready, stream.max_ready, sizes)
            self.bound(f"{label}.in_flight", stats.in_flight, stream.window, sizes)
            self.bound(f"{label}.queued", stats.queued, stream.max_queued, sizes)
            self.bound(f"{label}.out_of_order", len(stream._out_of_order), stream.window, sizes)
            self.bound(f"{label}.partial_bytes", stream._partial_len, MAX_MESSAGE, sizes)
        return sizes


# --------------------------------------------------------------------------------------
# End-to-end frames, setup replies, rendezvous ends


class E2eTarget(Target):
    """The two ends of a circuit: ``DestinationSession.receive`` (the input is the
    delivered payload) and ``SourceSession.open`` (the input is a backward packet), both
    through ``open_frame``. The seeds are frames the sessions have not opened yet."""

    name = "e2e"
    deep = (
        "hornet.core.e2e.DestinationSession.receive:ok",
        "hornet.core.e2e.SourceSession.open:ok",
    )
    entry_points = (
        "hornet.core.e2e.DestinationSession.receive",
        "hornet.core.e2e.SourceSession.open",
    )
    max_len = 1400
    reset_every = 1000

    def build(self) -> None:
        world = HornetWorld(rendezvous=False)
        self.source: SourceSession = world.source
        self.dest: DestinationSession = world.dest
        self._seeds = world.to_dest + world.to_source

    def feed_one(self, data: bytes) -> None:
        ep = self.entry_points
        deliver = Deliver(self.dest.circuit_id, self.dest.reply_hop, data, b"\x00" * 16)
        body = self.call(ep[0], data, self.dest.receive, deliver)
        if body is not None:
            self.outcomes["dest.ok"] += 1
        self.call(ep[1], data, self.source.open, data)


class SetupReplyTarget(Target):
    """``complete_setup`` at the source: P➋ as it arrives. Input: pending index ‖ P➋."""

    name = "setup_reply"
    deep = ("hornet.core.setup.complete_setup:ok",)
    entry_points = ("hornet.core.setup.complete_setup",)
    max_len = 4096

    def build(self) -> None:
        world = HornetWorld()
        self.pending = [pending for pending, _ in world.replies]
        self._seeds = [bytes((i,)) + packet for i, (_, packet) in enumerate(world.replies)]
        self.rng = _rng(SEED)

    def canonical(self, data: bytes) -> bytes:
        return bytes((data[0] % len(self.pending),)) + data[1:] if data else data

    def feed_one(self, data: bytes) -> None:
        if not data:
            return
        pending = self.pending[data[0] % len(self.pending)]
        self.call(self.entry_points[0], data, complete_setup, pending, data[1:], self.rng)


class RendezvousTarget(Target):
    """Both rendezvous ends and the descriptor decoder, fed every input."""

    name = "rendezvous"
    deep = (
        "hornet.core.rendezvous.RendezvousDestination.receive:ok",
        "hornet.core.rendezvous.RendezvousSource.open:ok",
        "hornet.core.rendezvous.Descriptor.decode:ok",
    )
    entry_points = (
        "hornet.core.rendezvous.RendezvousDestination.receive",
        "hornet.core.rendezvous.RendezvousSource.open",
        "hornet.core.rendezvous.Descriptor.decode",
    )
    max_len = 2000
    reset_every = 1000

    def build(self) -> None:
        world = HornetWorld(plain=False)
        self.params = world.params
        self.dest: RendezvousDestination = world.rv_dest
        self.source: RendezvousSource = world.rv_source
        self._seeds = world.rv_to_dest + world.rv_to_source + [world.descriptor]

    def feed_one(self, data: bytes) -> None:
        ep = self.entry_points
        self.call(ep[0], data, self.dest.receive, data)
        self.call(ep[1], data, self.source.open, data)
        descriptor = self.call(ep[2], data, Descriptor.decode, self.params, data)
        if descriptor is not None and descriptor.encode() != data:
            raise self.violation("crash", ep[2], data, "decode/encode is not the identity")

    def check_bounds(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        self.bound("dest.connections", self.dest.connections, self.dest.max_connections, sizes)
        return sizes


# --------------------------------------------------------------------------------------
# Link layer


class LinkTarget(Target):
    """``LinkEndpoint.open`` on a responder, an initiator waiting for act two and both
    ends of an established link, plus the Noise act readers on fresh handshakes.

    Time advances 1 ms per input; the world is rebuilt every 20 000 inputs (20 s), so the
    seeds (recorded from the same deterministic handshake) stay current. The responder
    sees each input from one of 512 addresses, so its half-open and peer tables fill.
    """

    name = "link"
    deep = (
        "hornet.link.endpoint.LinkEndpoint.open[responder]:ok",
        "hornet.link.endpoint.LinkEndpoint.open[initiator]:ok",
        "hornet.link.endpoint.LinkEndpoint.open[established-responder]:ok",
        "hornet.link.endpoint.LinkEndpoint.open[established-initiator]:ok",
        "hornet.link.noise.Responder.read_act_one:ok",
        "hornet.link.noise.Initiator.read_act_two:ok",
        "hornet.link.noise.Responder.read_act_three:ok",
    )
    entry_points = (
        "hornet.link.endpoint.LinkEndpoint.open[responder]",
        "hornet.link.endpoint.LinkEndpoint.open[initiator]",
        "hornet.link.endpoint.LinkEndpoint.open[established-responder]",
        "hornet.link.endpoint.LinkEndpoint.open[established-initiator]",
        "hornet.link.noise.Responder.read_act_one",
        "hornet.link.noise.Initiator.read_act_two",
        "hornet.link.noise.Responder.read_act_three",
    )
    max_len = 1500
    reset_every = 20_000
    A: ClassVar[tuple[str, int]] = ("10.0.0.1", 1000)
    B: ClassVar[tuple[str, int]] = ("10.0.0.2", 1000)
    E_INITIATOR: ClassVar[crypto.SecretKey] = crypto.SecretKey(b"\x12" * 32)
    E_RESPONDER: ClassVar[crypto.SecretKey] = crypto.SecretKey(b"\x22" * 32)

    def _keys(self) -> dict[tuple[str, int], crypto.SecretKey]:
        return {self.A: crypto.SecretKey(b"\x01" * 32), self.B: crypto.SecretKey(b"\x02" * 32)}

    def _resolve(self, address: tuple[str, int]) -> bytes | None:
        key = self.keys.get(address)
        return key.public_key if key is not None else None

    def _pair(self) -> tuple[Any, Any, list[bytes]]:
        """Two endpoints after a handshake and a data exchange, and every datagram sent."""
        a = LinkEndpoint(self.keys[self.A], self._resolve, _rng(1))
        b = LinkEndpoint(self.keys[self.B], self._resolve, _rng(2))
        wire: list[bytes] = []
        first = a.seal(b"hello", self.B, 0.0)
        assert first is None  # queued behind the handshake
        ends = {self.A: a, self.B: b}
        for _ in range(6):
            for source, endpoint in ends.items():
                for datagram, dest in endpoint.datagrams_to_send():
                    wire.append(datagram)
                    with contextlib.suppress(HornetError):
                        ends[dest].open(datagram, source, 0.0)
        for source, dest in ((self.A, self.B), (self.B, self.A)):
            for i in range(2):  # the second is left unopened: a valid input for the fuzzing
                sealed = ends[source].seal(b"data %d from %s" % (i, source[0].encode()), dest, 0.0)
                assert sealed is not None
                wire.append(sealed)
                if i == 0:
                    ends[dest].open(sealed, source, 0.0)
        return a, b, wire

    def _acts(self) -> list[bytes]:
        """A handshake under the fixed ephemeral keys the Noise readers below use."""
        a_key, b_key = self.keys[self.A], self.keys[self.B]
        initiator = Initiator(a_key, b_key.public_key, self.E_INITIATOR)
        act_one = initiator.act_one()
        responder = Responder(b_key, self.E_RESPONDER)
        responder.read_act_one(act_one)
        act_two = responder.act_two()
        initiator.read_act_two(act_two)
        act_three, _ = initiator.act_three()
        return [b"\x01" + act_one, b"\x02" + act_two, b"\x03" + act_three]

    def build(self) -> None:
        self.keys = self._keys()
        self.now = 0.0
        self.responder = LinkEndpoint(self.keys[self.B], self._resolve, _rng(3))
        self.initiator = LinkEndpoint(self.keys[self.A], self._resolve, _rng(1))
        self.initiator.seal(b"queued", self.B, 0.0)
        self.initiator.datagrams_to_send()
        self.est_a, self.est_b, wire = self._pair()
        self._seeds = wire + self._acts()

    def feed_one(self, data: bytes) -> None:
        ep = self.entry_points
        self.now += 0.001
        port = 1000 + (data[-1] if data else 0) + 256 * (len(data) & 1)
        for entry, endpoint, source in (
            (ep[0], self.responder, ("10.0.1.1", port)),
            (ep[1], self.initiator, self.B),
            (ep[2], self.est_b, self.A),
            (ep[3], self.est_a, self.B),
        ):
            self.call(entry, data, endpoint.open, data, source, self.now)
            endpoint.datagrams_to_send()
        if self.calls[ep[0]] % 64 == 0:
            for endpoint in (self.responder, self.initiator, self.est_a, self.est_b):
                endpoint.tick(self.now)
                endpoint.datagrams_to_send()
        a_key, b_key = self.keys[self.A], self.keys[self.B]
        self.call(ep[4], data, Responder(b_key, self.E_RESPONDER).read_act_one, data[1:])
        initiator = Initiator(a_key, b_key.public_key, self.E_INITIATOR)
        act_one = initiator.act_one()
        self.call(ep[5], data, initiator.read_act_two, data[1:])
        genuine = Responder(b_key, self.E_RESPONDER)
        genuine.read_act_one(act_one)
        genuine.act_two()
        self.call(ep[6], data, genuine.read_act_three, data[1:])

    def check_bounds(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for label, endpoint in (
            ("responder", self.responder),
            ("initiator", self.initiator),
            ("est_a", self.est_a),
            ("est_b", self.est_b),
        ):
            stats = endpoint.statistics()
            config = endpoint.config
            # Relay peers (listed addresses) come on top of the client bounds.
            relays = len(self.keys)
            self.bound(f"{label}.peers", stats.peers, config.max_peers + relays, sizes)
            self.bound(
                f"{label}.half_open", stats.half_open, config.max_half_open + relays, sizes
            )
            self.bound(
                f"{label}.queued", stats.queued, config.max_queue * max(1, stats.peers), sizes
            )
            self.bound(f"{label}.sessions", stats.sessions, 4 * max(1, stats.peers), sizes)
        return sizes


# --------------------------------------------------------------------------------------
# Registry

#: name → (module, class). The mixer, credential and config targets are in targets_app.
_REGISTRY: Final = {
    "relay_setup": ("targets", "RelaySetupTarget"),
    "relay_data": ("targets", "RelayDataTarget"),
    "relay_nested": ("targets", "RelayNestedTarget"),
    "sphinx": ("targets", "SphinxTarget"),
    "onion_message": ("targets", "OnionMessageTarget"),
    "blinding": ("targets", "BlindingTarget"),
    "stream": ("targets", "StreamTarget"),
    "e2e": ("targets", "E2eTarget"),
    "setup_reply": ("targets", "SetupReplyTarget"),
    "rendezvous": ("targets", "RendezvousTarget"),
    "link": ("targets", "LinkTarget"),
    "mixer_protocol": ("targets_app", "MixerProtocolTarget"),
    "mixer_core": ("targets_app", "MixerCoreTarget"),
    "mixer_session": ("targets_app", "MixerSessionTarget"),
    "credentials": ("targets_app", "CredentialsTarget"),
    "config": ("targets_app", "ConfigTarget"),
}
NAMES: Final = tuple(_REGISTRY)


def make_target(name: str) -> Target:
    """Build the target called ``name`` (its world included)."""
    module_name, class_name = _REGISTRY[name]
    module = importlib.import_module(module_name)
    cls: type[Target] = getattr(module, class_name)
    return cls()

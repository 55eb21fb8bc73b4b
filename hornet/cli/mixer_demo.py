"""``hornet demo --mixer``: a tour of the onion-message mixer on loopback.

Every Lightning peer, the mixer and each client identity speak BOLT 8 over TCP
(``PeerNetwork``); the HORNET side is UDP.

One mixer, two network peers (Carol runs CLN, Dave runs Eclair), a paying client
(Alice, under a fresh identity, spending credentials bought under another one-off
identity) and a greedy one (Mallory). The demo buys
credentials, sends a paid message, gets a reply through a synthetic SCID, shows the
path hints react to load, shows Mallory throttled while Alice is served, and lets the
SCID expire. Then the bulk path: the mixer co-hosts a HORNET relay in a small HORNET
network with a watchtower service; Alice pays once to open a circuit whose first hop
is the mixer's relay and streams appointments over it, while Mallory's unpaid setup
to that relay is dropped. Every step is checked; the return value is 0 only if all
checks passed.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

from hornet.circuit.circuit import Circuit, SetupTimeoutError
from hornet.client import Entry, open_circuit
from hornet.core import crypto
from hornet.core.onion_message import create_message_path, create_onion_message
from hornet.core.params import Params
from hornet.directory.model import relay_info
from hornet.mixer.client import MixerClient
from hornet.mixer.config import MixerConfig, PeerConfig
from hornet.mixer.entry import EntryRelay, relay_keys, serve_entry_relay
from hornet.mixer.hints import Direction, Hints
from hornet.mixer.network import PeerNetwork
from hornet.mixer.node import OnionNode
from hornet.mixer.protocol import Prices
from hornet.mixer.ratelimit import Limit
from hornet.mixer.scid import MIXER_NAMESPACE, decode_scid, format_scid
from hornet.mixer.service import RELAY_STATE_DB, MixerService, open_mixer
from hornet.mixer.session import Wallet
from hornet.testing.local import local_network
from hornet.testing.tap import TapNetwork
from hornet.transport.udp import UdpNetwork

APP_TLV = 77_771
SCID_LIFETIME_S = 3.0
CIRCUIT_PRICE = 2
APPOINTMENTS = 5


async def _watchtower(circuit: Circuit) -> None:
    """The watchtower's HORNET service: acknowledge every appointment."""
    async for appointment in circuit:
        await circuit.send(b"accepted " + appointment.split(b":", 1)[0])


def _hint_line(hints: Hints, names: dict[bytes, str]) -> str:
    rows = [f"{names.get(h.node_id, '?')} {h.utilisation:.0%} of {h.rate:g} msg/s"
            for h in hints.outgoing]
    return "outgoing, least loaded first: " + "; ".join(rows)


async def run_mixer_demo(out: Callable[[str], None]) -> int:
    """Run the tour, writing one line per event to ``out``; 0 if every check passed."""
    rng = secrets.SystemRandom()
    carol_key, dave_key, buyer_key, alice_key, mallory_key = (
        crypto.SecretKey.from_rng(rng) for _ in range(5))
    names = {carol_key.public_key: "carol(cln)", dave_key.public_key: "dave(eclair)"}
    directory: dict[bytes, tuple[str, int]] = {}
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        out(f"    [{'ok' if ok else 'FAILED'}] {what}")
        if not ok:
            failures.append(what)

    async def tcp(nursery: trio.Nursery, key: crypto.SecretKey,
                  listed: bool = True) -> PeerNetwork:
        """A node on BOLT 8 / TCP; a listed one listens, a client only dials."""
        network = PeerNetwork(key, directory=directory,
                              listen=("127.0.0.1", 0) if listed else None)
        await nursery.start(network.serve)
        if listed:
            directory[key.public_key] = network.address
        return network

    config = MixerConfig(
        prices=Prices(message=1, scid_register=2, scid_renew=1, circuit_open=CIRCUIT_PRICE),
        scid_lifetime_s=SCID_LIFETIME_S, scid_max_ahead_s=4 * SCID_LIFETIME_S,
        incoming_client=Limit(5.0, 10.0),
        peers=(PeerConfig(carol_key.public_key, "cln"), PeerConfig(dave_key.public_key, "eclair")),
    )
    with tempfile.TemporaryDirectory() as state_dir, trio.fail_after(120):
        state = open_mixer(config, state_dir, now=time.time(), relay_params=Params())
        mixer_id = state.core.node_key.public_key
        hornet_net = TapNetwork(UdpNetwork())
        keys = relay_keys(state.master_secret)
        relay_sock = await hornet_net.bind(("127.0.0.1", 0))
        mixer_relay = relay_info(keys, relay_sock.address)
        try:
            async with local_network(3, service=_watchtower, network=hornet_net,
                                     extra_relays=[mixer_relay]) as hornet, \
                    trio.open_nursery() as nursery:
                entry: EntryRelay = await nursery.start(
                    lambda task_status: serve_entry_relay(
                        keys, hornet.directory, relay_sock.address, sock=relay_sock,
                        state=Path(state_dir) / RELAY_STATE_DB, task_status=task_status))
                mixer_net = await tcp(nursery, state.core.node_key)
                service = MixerService(state.core, mixer_net,
                                       clock=time.time, on_circuit=entry.submit)
                await nursery.start(service.serve)
                carol = OnionNode(carol_key, await tcp(nursery, carol_key), name="carol")
                dave = OnionNode(dave_key, await tcp(nursery, dave_key), name="dave")
                await nursery.start(carol.run)
                await nursery.start(dave.run)
                out(f"mixer {mixer_id.hex()[:16]}… on BOLT 8 tcp {directory[mixer_id][1]}; "
                    "peers carol (CLN limits: 4/s, burst 4) and dave (Eclair: 10 per second)")

                # 1. Buy credentials. The wallet holds the mixer to the issuer keys the
                # directory lists for it, so every buyer gets the same key. Buying and
                # spending use two identities on two connections: one identity or one
                # connection for both would show the mixer which purchase the spends came
                # from.
                published = attrs.evolve(hornet.directory,
                                         mixers=(state.core.listing(time.time()),))
                wallet = Wallet.from_directory(published, mixer_id)
                buyer = MixerClient.create(await tcp(nursery, buyer_key, listed=False),
                                           buyer_key, wallet, rng=rng)
                await nursery.start(buyer.run)
                await buyer.get_info()
                bought = await buyer.buy(state.payments.mint(16, rng))
                check(bought == 16, f"a voucher bought {bought} unit credentials under a "
                      f"one-off identity {buyer_key.public_key.hex()[:12]}…")
                alice = MixerClient.create(await tcp(nursery, alice_key, listed=False),
                                           alice_key, wallet, rng=rng)
                await nursery.start(alice.run)
                info = await alice.get_info()
                out(f"1. alice (fresh id {alice_key.public_key.hex()[:12]}…) reads prices: "
                    f"message {info.prices.message}, SCID {info.prices.scid_register}, "
                    f"renewal {info.prices.scid_renew} credential(s)")

                # 2. A synthetic SCID and a reply through it.
                registration = await alice.register_scid()
                height, tx, vout = decode_scid(registration.scid)
                out(f"2. alice registers synthetic SCID {format_scid(registration.scid)}: "
                    f"block {height}, tx {tx} (< 2500), output {vout} hides the namespace")
                check(state.core.book.cipher.namespace_of(registration.scid) == MIXER_NAMESPACE,
                      "only the mixer's key reveals that the SCID is synthetic")
                carol_path = create_message_path(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                                 [carol_key.public_key])
                await alice.send(carol_path, [(APP_TLV, b"hello carol")],
                                 reply_path=alice.reply_path(registration))
                got = await carol.receive()
                check(got.sender == mixer_id and dict(got.deliver.payload)[APP_TLV]
                      == b"hello carol", "carol got alice's paid message from the mixer")
                assert got.deliver.reply_path is not None
                old_reply_path = got.deliver.reply_path
                await carol.send(create_onion_message(
                    crypto.SecretKey.from_rng(rng).secret_bytes(), old_reply_path,
                    payload=[(APP_TLV, b"hi alice")]))
                reply = await alice.receive()
                check(dict(reply.payload)[APP_TLV] == b"hi alice",
                      "carol's reply came back through the synthetic SCID")
                receipt = await alice.send_confirmed(carol_path, [(APP_TLV, b"receipted")])
                got = await carol.receive()
                out(f"   alice sends with a delivery receipt: the mixer acknowledged "
                    f"({receipt.status.name.lower()}) once the spend was recorded")
                check(dict(got.deliver.payload)[APP_TLV] == b"receipted"
                      and alice.stats["receipts"] == 1,
                      "the receipt came back and carol got the message")

                # The mailbox: a reply to an offline client waits for it at the mixer.
                erin_key = crypto.SecretKey.from_rng(rng)
                async with trio.open_nursery() as erin_life:
                    erin = MixerClient.create(await tcp(erin_life, erin_key, listed=False),
                                              erin_key,
                                              Wallet.from_directory(published, mixer_id),
                                              rng=rng)
                    await erin_life.start(erin.run)
                    await erin.get_info()
                    await erin.buy(state.payments.mint(16, rng))
                    erin_path = erin.reply_path(await erin.register_scid())
                    erin_life.cancel_scope.cancel()  # erin's phone goes to sleep
                while mixer_net.connected(erin_key.public_key):
                    await trio.sleep(0.01)  # the mixer saw erin's connection close
                await carol.send(create_onion_message(
                    crypto.SecretKey.from_rng(rng).secret_bytes(), erin_path,
                    payload=[(APP_TLV, b"for erin, later")]))
                while state.core.statistics()["mailbox_stored"] < 1:
                    await trio.sleep(0.01)
                erin_again = MixerClient(await tcp(nursery, erin_key, listed=False),
                                         erin.session, rng=rng)
                await nursery.start(erin_again.run)
                await erin_again.get_info()  # reconnecting under the same identity
                held = await erin_again.receive()
                out("   erin registers an SCID and goes offline; carol's reply waits in the "
                    "SCID's mailbox and reaches erin when she reconnects")
                check(dict(held.payload)[APP_TLV] == b"for erin, later",
                      "the mailbox held the reply until erin came back")

                # 3. Hints follow load.
                before = await alice.hints()
                out(f"3. hints before: {_hint_line(before, names)}")
                for i in range(6):
                    await alice.send(carol_path, [(APP_TLV, b"burst %d" % i)])
                for _ in range(6):
                    with trio.move_on_after(5):
                        await carol.receive()
                after = await alice.hints()
                out(f"   hints after 6 messages to carol: {_hint_line(after, names)}")
                carol_load = after.utilisation(carol_key.public_key, Direction.OUTGOING) or 0
                dave_load = after.utilisation(dave_key.public_key, Direction.OUTGOING) or 0
                check(after.best_outgoing(1) == (dave_key.public_key,) and carol_load > dave_load,
                      "the least-loaded next hop is now dave")

                # 4. A greedy client is throttled, alice is not.
                mallory = MixerClient.create(await tcp(nursery, mallory_key, listed=False),
                                             mallory_key,
                                             Wallet.from_directory(published, mixer_id),
                                             rng=rng)
                await nursery.start(mallory.run)
                junk = create_onion_message(crypto.SecretKey.from_rng(rng).secret_bytes(),
                                            create_message_path(
                                                crypto.SecretKey.from_rng(rng).secret_bytes(),
                                                [mixer_id]), payload=[(APP_TLV, b"spam")])
                throttled_before = service.statistics().get("dropped_rate_limited", 0)
                for _ in range(40):
                    await mallory.transport.send(mixer_id, junk.message)
                await trio.sleep(0.3)
                throttled = service.statistics().get("dropped_rate_limited", 0) - throttled_before
                out(f"4. mallory floods 40 messages: the mixer throttled {throttled} of them "
                    f"(client allowance 5/s, burst 10) and told mallory with onion_message_drop")
                check(throttled >= 20, "mallory was throttled")
                check(mallory.stats["drop_notices"] >= 1,
                      "mallory received onion_message_drop over BOLT 8 (its init set bit 515)")
                await alice.send(carol_path, [(APP_TLV, b"still here")])
                got = await carol.receive()
                check(dict(got.deliver.payload)[APP_TLV] == b"still here",
                      "alice's next message went straight through")

                # 5. The SCID expires.
                wait = registration.expires_at - time.time() + 0.5
                out(f"5. waiting {max(wait, 0):.1f} s for the SCID to expire…")
                await trio.sleep(max(wait, 0))
                await carol.send(create_onion_message(
                    crypto.SecretKey.from_rng(rng).secret_bytes(), old_reply_path,
                    payload=[(APP_TLV, b"too late")]))
                late = None
                with trio.move_on_after(1.0):
                    late = await alice.receive()
                stats = service.statistics()
                check(late is None and stats.get("dropped_scid_expired", 0) == 1
                      and stats.get("scids_expired", 0) >= 1,
                      "a reply after the deadline was dropped silently")

                # 6. Bulk traffic over a HORNET circuit through the mixer's relay.
                out(f"6. the mixer's HORNET relay {entry.node_id.hex()} is listed in a "
                    f"{len(hornet.directory)}-node HORNET directory; a circuit setup costs "
                    f"{info.prices.circuit_open} credential(s)")
                balance = len(alice.wallet)
                acks = []
                async with alice.open_circuit(hornet.directory, hornet.service_id,
                                              hops=3, network=hornet_net) as circuit:
                    for i in range(APPOINTMENTS):
                        await circuit.send(b"appointment %d:" % i + secrets.token_bytes(180))
                        acks.append(await circuit.receive())
                out(f"   alice streamed {APPOINTMENTS} appointments over one paid circuit; "
                    f"the watchtower acknowledged {len(acks)}")
                check(acks == [b"accepted appointment %d" % i for i in range(APPOINTMENTS)],
                      "every appointment was acknowledged over the circuit")
                check(balance - len(alice.wallet) == CIRCUIT_PRICE,
                      f"alice paid {CIRCUIT_PRICE} credentials once, not per message")
                listed = {r.address for r in hornet.directory}
                alice_sockets = {s.source for s in hornet_net.log} - listed
                check(len(alice_sockets) == 1 and all(
                    hornet_net.destinations_of(a) == {entry.address} for a in alice_sockets),
                      "alice's HORNET socket sent to the mixer's relay and to nobody else")
                assert hornet.service is not None
                tower_senders = hornet_net.sources_to(hornet.service.node.address)
                check(bool(tower_senders) and entry.address not in tower_senders
                      and not tower_senders & alice_sockets,
                      "the watchtower heard only from another relay, never the mixer or alice")
                mallory_relay = hornet.directory.get(entry.node_id)
                assert mallory_relay is not None
                try:
                    async with open_circuit(hornet.directory, hornet.service_id,
                                            entry=Entry(mallory_relay), attempts=1,
                                            setup_timeout=0.5, network=hornet_net):
                        pass
                    refused = False
                except SetupTimeoutError:
                    refused = True
                dropped = entry.statistics()["dropped_unpaid_setup"]
                out(f"   mallory sends an unpaid setup straight to the mixer's relay: dropped "
                    f"({dropped} unpaid setup(s) counted), no answer")
                check(refused and dropped >= 1, "an unpaid setup could not enter the mixer")
                stats = service.statistics()
                out(f"mixer counters: paid messages {stats.get('paid_messages', 0)}, "
                    f"SCID deliveries {stats.get('scid_deliveries', 0)}, "
                    f"rate-limited {stats.get('dropped_rate_limited', 0)}, "
                    f"expired SCIDs {stats.get('scids_expired', 0)}, "
                    f"circuits opened {entry.statistics()['setups_injected']}, "
                    f"alice's wallet {len(alice.wallet)} credentials left")
                nursery.cancel_scope.cancel()
        finally:
            relay_sock.close()
            state.close()
    out("all checks passed" if not failures else f"{len(failures)} check(s) FAILED")
    return 0 if not failures else 1


__all__ = ["run_mixer_demo"]

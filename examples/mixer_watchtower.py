#!/usr/bin/env python3
"""A mobile wallet talks to its watchtower through an onion-message mixer.

The wallet's only channel is with its LSP. Sending watchtower appointments (one per
channel update) the usual way — onion messages relayed by the LSP — would show the
LSP how often the wallet updates its channels and to whom it reports. Here:

1. Purchase. The wallet pays the mixer once (a voucher stands in for a Lightning
   payment) and asks for anonymous credentials over onion messages relayed by its
   LSP. The LSP relays two requests towards the mixer and two responses back; it can
   read none of them.
2. Use. The wallet connects to the mixer directly under a FRESH node id, registers a
   synthetic SCID, and sends each appointment through the mixer, paying one
   credential per message. The watchtower answers along a reply path that enters
   through the mixer's synthetic SCID. The LSP carries none of this traffic.
3. Bulk. For a burst of appointments (a busy day of channel updates, a backup) the
   wallet pays ONE circuit_open and opens a HORNET circuit whose first hop is the
   mixer's own HORNET relay: setup once, then symmetric forwarding, both ways, with no
   per-message spend. The watchtower's HORNET service hears only from another relay.

Lightning nodes (LSP, mixer, watchtower, each wallet identity) talk BOLT 8 over TCP
on loopback, the HORNET side runs on UDP; each node's transport is tapped, so the script prints
what each party saw and checks the privacy claims against those logs. Exit code 0
means every check passed.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from pathlib import Path

import attrs
import trio

from hornet import Circuit, Params, SecretKey, TapNetwork, UdpNetwork, local_network, relay_info
from hornet.mixer import (
    EntryRelay,
    MixerClient,
    MixerConfig,
    MixerService,
    OnionNode,
    PeerConfig,
    PeerNetwork,
    Prices,
    TapTransport,
    Wallet,
    format_scid,
    open_mixer,
    relay_keys,
    serve_entry_relay,
)
from hornet.sphinx import create_message_path, create_onion_message

APPOINTMENT_TLV = 77_771  # odd final-hop record: an encrypted penalty-transaction blob
ACCEPTED_TLV = 77_773
APPOINTMENTS = 3
BULK_APPOINTMENTS = 20
CIRCUIT_PRICE = 2


def short(node_id: bytes) -> str:
    return node_id.hex()[:12] + "…"


async def tower_service(circuit: Circuit) -> None:
    """The watchtower's HORNET destination: acknowledge each appointment."""
    async for blob in circuit:
        await circuit.send(b"accepted " + blob[:16])


async def main() -> int:
    rng = secrets.SystemRandom()
    names: dict[bytes, str] = {}
    directory: dict[bytes, tuple[str, int]] = {}

    async def endpoint(nursery: trio.Nursery, key: SecretKey, name: str, *,
                       listed: bool = True) -> TapTransport:
        """A BOLT 8 node: a listed one listens, a wallet identity only dials."""
        network = PeerNetwork(key, directory=directory,
                              listen=("127.0.0.1", 0) if listed else None)
        await nursery.start(network.serve)
        names[key.public_key] = name
        if listed:
            directory[key.public_key] = network.address
        return TapTransport(network)

    lsp_key, tower_key, wallet_key = (SecretKey.from_rng(rng) for _ in range(3))
    checks: list[tuple[str, bool]] = []

    with tempfile.TemporaryDirectory() as state_dir, trio.fail_after(60):
        config = MixerConfig(
            prices=Prices(message=1, scid_register=2, scid_renew=1, circuit_open=CIRCUIT_PRICE),
            peers=(PeerConfig(lsp_key.public_key, "cln"),
                   PeerConfig(tower_key.public_key, "eclair")),
        )
        state = open_mixer(config, state_dir, now=time.time(), relay_params=Params())
        mixer_id = state.core.node_key.public_key
        # The HORNET side: three relays, the watchtower's HORNET service, and the mixer's
        # own relay (its key derives from the mixer's master secret), all on UDP loopback.
        hornet_udp = TapNetwork(UdpNetwork())
        keys = relay_keys(state.master_secret)
        relay_sock = await hornet_udp.bind(("127.0.0.1", 0))
        mixer_relay = relay_info(keys, relay_sock.address)
        async with local_network(3, service=tower_service, network=hornet_udp,
                                 extra_relays=[mixer_relay]) as hornet, \
                trio.open_nursery() as nursery:
            entry: EntryRelay = await nursery.start(
                lambda task_status: serve_entry_relay(keys, hornet.directory, relay_sock.address,
                                                      sock=relay_sock,
                                                      state=Path(state_dir) / "relay.state.sqlite",
                                                      task_status=task_status))
            mixer_net = await endpoint(nursery, state.core.node_key, "mixer")
            await nursery.start(MixerService(state.core, mixer_net, clock=time.time,
                                             on_circuit=entry.submit).serve)
            lsp_net = await endpoint(nursery, lsp_key, "LSP")
            lsp = OnionNode(lsp_key, lsp_net, name="LSP")
            await nursery.start(lsp.run)
            tower_net = await endpoint(nursery, tower_key, "watchtower")
            tower = OnionNode(tower_key, tower_net, name="watchtower")
            await nursery.start(tower.run)
            tower_secret = secrets.token_bytes(32)
            tower_path = create_message_path(secrets.token_bytes(32), [tower_key.public_key],
                                             path_id=tower_secret)

            async def watchtower() -> None:
                while True:
                    received = await tower.receive()
                    deliver = received.deliver
                    blob = dict(deliver.payload).get(APPOINTMENT_TLV)
                    if blob is None or not deliver.path_id_matches(tower_secret):
                        continue
                    if deliver.reply_path is not None:
                        ack = create_onion_message(
                            secrets.token_bytes(32), deliver.reply_path,
                            payload=[(ACCEPTED_TLV, b"accepted " + blob[:16])])
                        await tower.send(ack)

            nursery.start_soon(watchtower)

            # -- 1. purchase, under the wallet's real identity, through the LSP ------------
            # The directory every client reads lists the mixer's issuer keys per epoch;
            # the wallet refuses any other key, so the mixer cannot give this buyer a key
            # of its own and recognise its spends later.
            published = attrs.evolve(hornet.directory, mixers=(state.core.listing(time.time()),))
            wallet = Wallet.from_directory(published, mixer_id)
            wallet_net = await endpoint(nursery, wallet_key, "wallet (real id)")
            buyer = MixerClient.create(wallet_net, wallet_key, wallet,
                                       to_mixer=[lsp_key.public_key],
                                       reply_hops=[lsp_key.public_key])
            await nursery.start(buyer.run)
            voucher = state.payments.mint(16, rng)  # stands in for a paid invoice
            info = await buyer.get_info()
            bought = await buyer.buy(voucher)
            print(f"purchase: the wallet ({short(wallet_key.public_key)}) bought {bought} "
                  f"credentials via its LSP (a message costs {info.prices.message}, an SCID "
                  f"{info.prices.scid_register})")
            lsp_frames_after_purchase = len(lsp_net.log)

            # -- 2. use, under a fresh identity, directly with the mixer --------------------
            # A new key on a new connection: spending under the buying identity, or over the
            # buyer's connection, would show the mixer which purchase each spend came
            # from, and the credentials' unlinkability would buy nothing.
            fresh_key = SecretKey.from_rng(rng)
            fresh_net = await endpoint(nursery, fresh_key, "wallet (fresh id)", listed=False)
            user = MixerClient.create(fresh_net, fresh_key, wallet)
            await nursery.start(user.run)
            await user.get_info()
            registration = await user.register_scid()
            print(f"use: fresh identity {short(fresh_key.public_key)} registered synthetic SCID "
                  f"{format_scid(registration.scid)} (expires in "
                  f"{registration.expires_at - time.time():.0f} s)")
            acks = []
            for i in range(APPOINTMENTS):
                blob = secrets.token_bytes(180)  # an encrypted justice transaction
                await user.send(tower_path, [(APPOINTMENT_TLV, blob)],
                                reply_path=user.reply_path(registration))
                delivered = await user.receive()
                acks.append(dict(delivered.payload).get(ACCEPTED_TLV, b""))
                print(f"  appointment {i + 1}: sent through the mixer, tower answered "
                      f"{acks[-1][:8]!r}… through the SCID")

            # -- 3. bulk, over a HORNET circuit whose first hop is the mixer's relay ---------
            balance = len(wallet)
            bulk_acks = []
            async with user.open_circuit(hornet.directory, hornet.service_id, hops=3,
                                         network=hornet_udp) as circuit:
                for _ in range(BULK_APPOINTMENTS):
                    blob = secrets.token_bytes(180)
                    await circuit.send(blob)
                    bulk_acks.append(await circuit.receive() == b"accepted " + blob[:16])
            circuit_cost = balance - len(wallet)
            print(f"bulk: {BULK_APPOINTMENTS} appointments over one HORNET circuit through "
                  f"the mixer's relay {entry.node_id.hex()}, paid once ({circuit_cost} "
                  f"credentials), {sum(bulk_acks)} acknowledged")
            nursery.cancel_scope.cancel()

        listed = {r.address for r in hornet.directory}
        wallet_sockets = {s.source for s in hornet_udp.log} - listed
        wallet_peers = {hornet_udp.destinations_of(w) == {entry.address} for w in wallet_sockets}
        assert hornet.service is not None
        tower_hornet_senders = hornet_udp.sources_to(hornet.service.node.address)
        lsp_log = list(lsp_net.log)
        tower_log = list(tower_net.log)
        mixer_log = list(mixer_net.log)
        purchase, usage = lsp_log[:lsp_frames_after_purchase], lsp_log[lsp_frames_after_purchase:]

        def party(tap: TapTransport, me: bytes) -> str:
            frames = list(tap.log)
            peers = sorted({names.get(f.sender if f.receiver == me else f.receiver, "?")
                            for f in frames})
            return f"{len(frames)} frames with {', '.join(peers) or 'nobody'}"

        print()
        print("what each party saw:")
        print(f"  LSP        : {party(lsp_net, lsp_key.public_key)}")
        for seen in lsp.seen:
            nxt = names.get(seen.next_hop or b"", "(nobody)")
            print(f"               onion message from {names.get(seen.sender, '?')} -> {nxt}, "
                  f"{seen.size} bytes, readable: {seen.delivered}")
        print(f"  mixer      : {party(mixer_net, mixer_id)}")
        print(f"  watchtower : {party(tower_net, tower_key.public_key)}")
        for frame in tower_log:
            if frame.receiver == tower_key.public_key:
                print(f"               received {len(frame.message)} bytes from "
                      f"{names.get(frame.sender, '?')}")
        hops = {r.address: "relay " + r.node_id.hex()[:8] for r in hornet.directory}
        hops[entry.address] = "the mixer's relay"
        wallet_sent = [s for s in hornet_udp.log if s.source in wallet_sockets]
        print(f"  HORNET     : the wallet's socket sent {len(wallet_sent)} packets, to "
              f"{', '.join(sorted({hops.get(s.destination, '?') for s in wallet_sent}))}")
        print("               the watchtower's HORNET node heard from "
              f"{', '.join(sorted(hops.get(a, '?') for a in tower_hornet_senders))}")

        ids_of_wallet = {wallet_key.public_key, fresh_key.public_key}
        checks += [
            ("the LSP relayed nothing after the purchase", usage == []),
            ("during the purchase the LSP only relayed between the wallet and the mixer",
             all({f.sender, f.receiver} <= {lsp_key.public_key, mixer_id, wallet_key.public_key}
                 for f in purchase)
             and all(s.next_hop in (mixer_id, wallet_key.public_key) for s in lsp.seen)),
            ("the LSP could read none of the messages it relayed",
             not any(s.delivered for s in lsp.seen)),
            ("the LSP never saw the fresh identity",
             all(fresh_key.public_key not in (f.sender, f.receiver) for f in lsp_log)),
            ("the watchtower heard only from the mixer",
             {f.sender for f in tower_log if f.receiver == tower_key.public_key} == {mixer_id}),
            ("the watchtower never exchanged a frame with the wallet or the LSP",
             all(not ({f.sender, f.receiver} & (ids_of_wallet | {lsp_key.public_key}))
                 for f in tower_log)),
            ("the mixer saw the wallet's real id nowhere (only the LSP, then the fresh id)",
             all(wallet_key.public_key not in (f.sender, f.receiver) for f in mixer_log)),
            (f"all {APPOINTMENTS} appointments were acknowledged through the SCID",
             len(acks) == APPOINTMENTS and all(a.startswith(b"accepted ") for a in acks)),
            ("the wallet paid one credential per appointment and one circuit_open in all",
             len(wallet) == bought - 2 - APPOINTMENTS - CIRCUIT_PRICE
             and circuit_cost == CIRCUIT_PRICE),
            (f"all {BULK_APPOINTMENTS} bulk appointments were acknowledged over the circuit",
             len(bulk_acks) == BULK_APPOINTMENTS and all(bulk_acks)),
            ("the wallet's HORNET socket talked to the mixer's relay and nobody else",
             len(wallet_sockets) == 1 and wallet_peers == {True}),
            ("the watchtower's HORNET node heard only from a relay other than the mixer's",
             bool(tower_hornet_senders) and entry.address not in tower_hornet_senders
             and not tower_hornet_senders & wallet_sockets),
            ("no unpaid setup reached the mixer's relay; exactly one paid setup did",
             entry.statistics()["dropped_unpaid_setup"] == 0
             and entry.statistics()["setups_injected"] == 1),
        ]
        relay_sock.close()
        state.close()

    print()
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'FAILED'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1



if __name__ == "__main__":
    sys.exit(trio.run(main))

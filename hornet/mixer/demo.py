"""``hornet demo --mixer``: a tour of the onion-message mixer on UDP loopback.

One mixer, two network peers (Carol runs CLN, Dave runs Eclair), a paying client
(Alice, under a fresh identity) and a greedy one (Mallory). The demo buys
credentials, sends a paid message, gets a reply through a synthetic SCID, shows the
path hints react to load, shows Mallory throttled while Alice is served, and lets the
SCID expire. Every step is checked; the return value is 0 only if all checks passed.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable

import trio

from hornet.core import crypto
from hornet.core.onion_message import create_message_path, create_onion_message
from hornet.mixer.client import MixerClient
from hornet.mixer.config import MixerConfig, PeerConfig
from hornet.mixer.hints import Direction, Hints
from hornet.mixer.node import OnionNode
from hornet.mixer.protocol import Prices
from hornet.mixer.ratelimit import Limit
from hornet.mixer.scid import MIXER_NAMESPACE, decode_scid, format_scid
from hornet.mixer.service import MixerService, open_mixer
from hornet.mixer.session import Wallet
from hornet.mixer.transport import UdpEndpoint

APP_TLV = 77_771
SCID_LIFETIME_S = 3.0


def _hint_line(hints: Hints, names: dict[bytes, str]) -> str:
    rows = [f"{names.get(h.node_id, '?')} {h.utilisation:.0%} of {h.rate:g} msg/s"
            for h in hints.outgoing]
    return "outgoing, least loaded first: " + "; ".join(rows)


async def run_mixer_demo(out: Callable[[str], None]) -> int:
    """Run the tour, writing one line per event to ``out``; 0 if every check passed."""
    rng = secrets.SystemRandom()
    carol_key, dave_key, alice_key, mallory_key = (
        crypto.SecretKey.from_rng(rng) for _ in range(4))
    names = {carol_key.public_key: "carol(cln)", dave_key.public_key: "dave(eclair)"}
    directory: dict[bytes, tuple[str, int]] = {}
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        out(f"    [{'ok' if ok else 'FAILED'}] {what}")
        if not ok:
            failures.append(what)

    async def udp(key: crypto.SecretKey, listed: bool = True) -> UdpEndpoint:
        endpoint = await UdpEndpoint.open(key.public_key, directory=directory)
        if listed:
            directory[key.public_key] = endpoint.address
        return endpoint

    config = MixerConfig(
        prices=Prices(message=1, scid_register=2, scid_renew=1),
        scid_lifetime_s=SCID_LIFETIME_S, scid_max_ahead_s=4 * SCID_LIFETIME_S,
        incoming_client=Limit(5.0, 10.0),
        peers=(PeerConfig(carol_key.public_key, "cln"), PeerConfig(dave_key.public_key, "eclair")),
    )
    with tempfile.TemporaryDirectory() as state_dir, trio.fail_after(120):
        state = open_mixer(config, state_dir, now=time.time())
        mixer_id = state.core.node_key.public_key
        try:
            async with trio.open_nursery() as nursery:
                service = MixerService(state.core, await udp(state.core.node_key), clock=time.time)
                await nursery.start(service.serve)
                carol = OnionNode(carol_key, await udp(carol_key), name="carol")
                dave = OnionNode(dave_key, await udp(dave_key), name="dave")
                await nursery.start(carol.run)
                await nursery.start(dave.run)
                out(f"mixer {mixer_id.hex()[:16]}… on udp {directory[mixer_id][1]}; peers carol "
                    "(CLN limits: 4/s, burst 4) and dave (Eclair: 10 per second)")

                # 1. Buy credentials under a fresh identity.
                alice = MixerClient.create(await udp(alice_key, listed=False), alice_key,
                                           Wallet(mixer_id), rng=rng)
                await nursery.start(alice.run)
                info = await alice.get_info()
                out(f"1. alice (fresh id {alice_key.public_key.hex()[:12]}…) reads prices: "
                    f"message {info.prices.message}, SCID {info.prices.scid_register}, "
                    f"renewal {info.prices.scid_renew} credential(s)")
                bought = await alice.buy(state.payments.mint(16, rng))
                check(bought == 16, f"a voucher bought {bought} unit credentials")

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
                mallory = MixerClient.create(await udp(mallory_key, listed=False), mallory_key,
                                             Wallet(mixer_id), rng=rng)
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
                      and stats.get("scids_expired", 0) == 1,
                      "a reply after the deadline was dropped silently")
                out(f"mixer counters: paid messages {stats.get('paid_messages', 0)}, "
                    f"SCID deliveries {stats.get('scid_deliveries', 0)}, "
                    f"rate-limited {stats.get('dropped_rate_limited', 0)}, "
                    f"expired SCIDs {stats.get('scids_expired', 0)}, "
                    f"alice's wallet {len(alice.wallet)} credentials left")
                nursery.cancel_scope.cancel()
        finally:
            state.close()
    out("all checks passed" if not failures else f"{len(failures)} check(s) FAILED")
    return 0 if not failures else 1


__all__ = ["run_mixer_demo"]

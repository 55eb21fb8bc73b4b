"""A long-lived circuit opened with a ``DirectoryClient`` outlives the directory it was
opened with: while relays republish their keys and the authorities publish new
documents, the client's renewals use the latest consensus (setup keys of the current
epoch), for several key epochs, with no action from the user."""

from __future__ import annotations

import random

import trio
import trio.testing

import hornet
from hornet.authority import Authority, AuthorityKey, consensus, sign_entry
from hornet.circuit.circuit import Circuit
from hornet.core.params import Params
from hornet.directory.fetch import DirectoryClient
from hornet.directory.model import Directory, relay_info
from hornet.testing.memnet import MemoryNetwork
from hornet.transport.udp import unix_now

PARAMS = Params(epoch_s=670)  # the shortest epoch the protocol allows


class InProcessDirectoryClient(DirectoryClient):
    """A ``DirectoryClient`` whose fetch reads the authorities' documents in process
    (the HTTP transport is tested in test_authority_http.py)."""

    def __init__(self, authorities: list[Authority], trusted: set[bytes]) -> None:
        super().__init__(["memory:"], trusted, 2, refresh_s=60, clock=unix_now)
        self.authorities = authorities

    async def fetch(self) -> Directory:
        documents = [a.current for a in self.authorities]
        directory, valid_until = consensus(documents, self.trusted, 2, self.clock())
        self._use(directory, valid_until)
        return directory


async def _echo(circuit: Circuit) -> None:
    async for message in circuit:
        await circuit.send(message)


async def test_a_circuit_renews_across_key_epochs_with_a_directory_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(90)
    keys = [AuthorityKey.generate(rng) for _ in range(3)]
    authorities = [Authority(k, PARAMS, validity_s=PARAMS.epoch_s) for k in keys]
    mem = MemoryNetwork(seed=9)
    async with hornet.local_network(4, service=_echo, network=mem, seed=9, params=PARAMS) as net:
        assert net.service is not None
        nodes = [*net.relays, net.service.node]

        def publish() -> None:
            now = unix_now()
            for node, node_keys in zip(nodes, net.keys, strict=True):
                entry = relay_info(node_keys, node.address, PARAMS, now=now, epochs=3).to_json()
                signed = sign_entry(node_keys.node_key, entry, int(now), rng.randbytes(32))
                for authority in authorities:
                    authority.submit(signed, now)
            documents = [a.publish(now, rng.randbytes(32)) for a in authorities]
            directory, _ = consensus(documents, {k.public for k in keys}, 2, now)
            for node in nodes:
                node.replace_directory(directory)

        async def publish_forever() -> None:
            while True:
                await trio.sleep(PARAMS.epoch_s / 4)
                publish()

        publish()
        client = InProcessDirectoryClient(authorities, {k.public for k in keys})
        first = PARAMS.epoch_of(unix_now())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(publish_forever)
            async with hornet.open_circuit(
                client, net.service_id, hops=3, network=mem, lifetime=60
            ) as circuit:
                sent = 0
                while PARAMS.epoch_of(unix_now()) - first < 5:
                    await circuit.send(b"ping %d" % sent)
                    with trio.fail_after(30):
                        assert await circuit.receive() == b"ping %d" % sent
                    sent += 1
                    await trio.sleep(30)
            nursery.cancel_scope.cancel()
    # Past 5 epoch boundaries (the first epoch partial): a message every 30 s throughout,
    # over underlying circuits renewed every minute.
    assert sent >= 4 * 670 // 30

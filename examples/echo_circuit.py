"""Open a duplex circuit from a script: a local network, an echo service, a client."""

import trio

import hornet


async def echo(circuit: hornet.Circuit) -> None:
    async for message in circuit:
        await circuit.send(message.upper())


async def main() -> None:
    async with hornet.local_network(5, service=echo) as net:
        async with hornet.open_circuit(net.directory, net.service_id, hops=3) as circuit:
            for word in (b"anonymous", b"duplex", b"circuits"):
                await circuit.send(word)
                with trio.fail_after(5):
                    print((await circuit.receive()).decode())


if __name__ == "__main__":
    trio.run(main)

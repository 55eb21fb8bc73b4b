"""A hidden service: neither side learns where the other is, only the rendezvous point."""

import trio

import hornet


async def hidden(circuit: hornet.Circuit) -> None:
    async for message in circuit:
        await circuit.send(b"hidden service got: " + message)


async def main() -> None:
    async with hornet.local_network(6) as net, trio.open_nursery() as nursery:
        descriptor = await nursery.start(
            lambda task_status: hornet.serve_rendezvous(
                net.directory, hidden, task_status=task_status
            )
        )
        print(f"descriptor: rendezvous point {descriptor.rp_id.hex()}")
        async with hornet.open_circuit(net.directory, descriptor, hops=2) as circuit:
            await circuit.send(b"hello, whoever you are")
            with trio.fail_after(5):
                print((await circuit.receive()).decode())
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)

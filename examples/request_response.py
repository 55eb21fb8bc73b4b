"""A small key-value backup service behind a circuit (the watchtower/backup use case).

Requests are JSON: {"op": "put", "key": ..., "value": hex} or {"op": "get", "key": ...}.
The service never learns who stores what: it only sees circuits.
"""

import json

import trio

import hornet


async def backup_service(circuit: hornet.Circuit, store: dict[str, str]) -> None:
    async for raw in circuit:
        request = json.loads(raw)
        if request["op"] == "put":
            store[request["key"]] = request["value"]
            reply: dict[str, object] = {"ok": True}
        else:
            reply = {"ok": request["key"] in store, "value": store.get(request["key"])}
        await circuit.send(json.dumps(reply).encode())


async def call(circuit: hornet.Circuit, **request: str) -> dict[str, object]:
    await circuit.send(json.dumps(request).encode())
    with trio.fail_after(5):
        return dict(json.loads(await circuit.receive()))


async def main() -> None:
    store: dict[str, str] = {}
    async with hornet.local_network(5, service=lambda c: backup_service(c, store)) as net:
        blob = bytes(range(256)) * 20  # a 5 KB encrypted backup, say
        async with hornet.open_circuit(net.directory, net.service_id) as circuit:
            print(await call(circuit, op="put", key="channel-42", value=blob.hex()))
        async with hornet.open_circuit(net.directory, net.service_id) as circuit:
            reply = await call(circuit, op="get", key="channel-42")
            assert bytes.fromhex(str(reply["value"])) == blob
            print(f"restored {len(blob)} bytes over a fresh circuit")


if __name__ == "__main__":
    trio.run(main)

// A scripted LDK node (the `lightningdevkit` 0.1 TypeScript/WASM bindings) for hornet's
// interop tests. It runs a PeerManager with an OnionMessenger over TCP
// (`lightningdevkit-node-net`) and is driven by newline-delimited JSON:
//
//   argv: SEED_HEX (32 bytes)
//   out:  {"event":"ready","node_id":HEX,"port":N}       once listening on 127.0.0.1
//   in:   {"cmd":"connect","node_id":HEX,"host":H,"port":N}
//         -> {"event":"connected","node_id":HEX} when the peer is ready
//   in:   {"cmd":"peers"}                              -> {"event":"peers","node_ids":[HEX…]}
//   in:   {"cmd":"tick"}   PeerManager.timer_tick_occurred now (node-net calls it every
//         10 s: it pings each peer and drops one that left the previous ping unanswered)
//         -> {"event":"ticked"}
//   in:   {"cmd":"path","via":[HEX…],"context":HEX}    -> {"event":"path","path":HEX}
//         a blinded path to this node through `via` (LDK adds its context as TLV 65537)
//   in:   {"cmd":"send","path":HEX,"tlv":N,"data":HEX,"reply_via":[HEX…]|null,
//          "context":HEX,"flip_at":N|null,"first_hop":HEX|null}
//         -> {"event":"sent","ok":BOOL,"error":STR}
//         sends one custom onion message (TLV `tlv` ≥ 64) to the blinded path, with a
//         reply path to this node through `reply_via`; with `flip_at`, LDK builds the
//         onion message and this script flips one bit of it (byte `flip_at` of the
//         onion_message body) and sends the result to `first_hop` as a raw type-513
//         message.
//   in:   {"cmd":"flood","path":HEX,"tlv":N,"data":HEX,"count":N}
//         sends `count` messages without reply path as fast as LDK's buffers allow
//         -> {"event":"flooded","count":N}
//   in:   {"cmd":"quiet"}  stop emitting "om" events (messages are still counted)
//   in:   {"cmd":"count"}  -> {"event":"count","received":N}
//   out:  {"event":"om","tlv":N,"data":HEX,"context":HEX|null,"responder":BOOL}
//         for each custom onion message received. A message whose data starts with
//         "ping" is answered along its reply path with TLV `tlv`+2 and "pong:"+data.
//
// node-net's descriptor never clears its write-waiting flag after `drain`, so the first
// refused write would stall a connection for good: get_descriptor is replaced below.

import * as fs from "fs";
import * as readline from "readline";
import * as ldk from "lightningdevkit";
import { NodeLDKNet } from "lightningdevkit-node-net";

const wasm = fs.readFileSync(new URL("./node_modules/lightningdevkit/liblightningjs.wasm",
                                     import.meta.url));
await ldk.initializeWasmFromBinary(wasm);

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => Uint8Array.from(Buffer.from(text, "hex"));
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const seed = unhex(process.argv[2]);
const logger = ldk.Logger.new_impl({
    log(record) {
        if (process.env.HORNET_LDK_LOG) {
            process.stderr.write(`${record.get_module_path()}: ${record.get_args()}\n`);
        }
    },
});
const now = Math.floor(Date.now() / 1000);
const keys = ldk.KeysManager.constructor_new(seed, BigInt(now), 0);
const entropy = keys.as_EntropySource();
const signer = keys.as_NodeSigner();
const nodeId = signer.get_node_id(ldk.Recipient.LDKRecipient_Node).res;
const network = ldk.Network.LDKNetwork_Regtest;
const graph = ldk.NetworkGraph.constructor_new(network, logger);
const messageRouter = ldk.DefaultMessageRouter.constructor_new(graph, entropy);
const ignorer = ldk.IgnoringMessageHandler.constructor_new();

// A ChannelManager, as on any real LDK node: it takes part in the init exchange (it
// refuses peers that lack features it needs). No chain is attached: no channel opens.
const feeEstimator = ldk.FeeEstimator.new_impl({
    get_est_sat_per_1000_weight(_target) { return 253; },
});
const broadcaster = ldk.BroadcasterInterface.new_impl({ broadcast_transactions(_txs) {} });
const persister = ldk.Persist.new_impl({
    persist_new_channel(_outpoint, _monitor) {
        return ldk.ChannelMonitorUpdateStatus.LDKChannelMonitorUpdateStatus_Completed;
    },
    update_persisted_channel(_outpoint, _update, _monitor) {
        return ldk.ChannelMonitorUpdateStatus.LDKChannelMonitorUpdateStatus_Completed;
    },
    archive_persisted_channel(_outpoint) {},
});
const chainMonitor = ldk.ChainMonitor.constructor_new(
    ldk.Option_FilterZ.constructor_none(), broadcaster, logger, feeEstimator, persister);
const scorer = ldk.ProbabilisticScorer.constructor_new(
    ldk.ProbabilisticScoringDecayParameters.constructor_default(), graph, logger);
const router = ldk.DefaultRouter.constructor_new(
    graph, logger, entropy, ldk.MultiThreadedLockableScore.constructor_new(scorer.as_Score())
        .as_LockableScore(), ldk.ProbabilisticScoringFeeParameters.constructor_default());
const channels = ldk.ChannelManager.constructor_new(
    feeEstimator, chainMonitor.as_Watch(), broadcaster, router.as_Router(),
    messageRouter.as_MessageRouter(), logger, entropy, signer, keys.as_SignerProvider(),
    ldk.UserConfig.constructor_default(),
    ldk.ChainParameters.constructor_new(network, ldk.BestBlock.constructor_from_network(network)),
    now);

function contents(type, data) {
    return ldk.OnionMessageContents.new_impl({
        tlv_type() { return type; },
        msg_type() { return "hornet-interop"; },
        write() { return data; },
        debug_str() { return `hornet-interop ${type} (${data.length} bytes)`; },
    });
}

let received = 0;
let quiet = false;
const customOnionMessages = ldk.CustomOnionMessageHandler.new_impl({
    read_custom_message(type, buffer) {
        return ldk.Result_COption_OnionMessageContentsZDecodeErrorZ.constructor_ok(
            ldk.Option_OnionMessageContentsZ.constructor_some(contents(type, buffer)));
    },
    handle_custom_message(message, context, responder) {
        const data = message.write();
        const type = message.tlv_type();
        const ctx = context instanceof ldk.Option_CVec_u8ZZ_Some ? hex(context.some) : null;
        received += 1;
        if (!quiet) {
            emit({ event: "om", tlv: Number(type), data: hex(data), context: ctx,
                   responder: responder != null });
        }
        if (responder != null && Buffer.from(data).subarray(0, 4).toString() === "ping") {
            const reply = contents(type + 2n, Uint8Array.from(
                Buffer.concat([Buffer.from("pong:"), Buffer.from(data)])));
            return ldk.Option_C2Tuple_OnionMessageContentsResponseInstructionZZ.constructor_some(
                ldk.TwoTuple_OnionMessageContentsResponseInstructionZ.constructor_new(
                    reply, responder.respond()));
        }
        return ldk.Option_C2Tuple_OnionMessageContentsResponseInstructionZZ.constructor_none();
    },
    release_pending_custom_messages() { return []; },
});

const messenger = ldk.OnionMessenger.constructor_new(
    entropy, signer, logger, channels.as_NodeIdLookUp(),
    messageRouter.as_MessageRouter(), ignorer.as_OffersMessageHandler(),
    ignorer.as_AsyncPaymentsMessageHandler(), ignorer.as_DNSResolverMessageHandler(),
    customOnionMessages);

// Raw wire messages (the bit-flipped onion) go out through a custom message handler.
let rawQueue = [];
const rawMessages = ldk.CustomMessageHandler.new_impl({
    handle_custom_message(_msg, _sender) { return ldk.Result_NoneLightningErrorZ.constructor_ok(); },
    get_and_clear_pending_msg() {
        const queued = rawQueue;
        rawQueue = [];
        return queued.map(([peer, type, body]) => ldk.TwoTuple_PublicKeyTypeZ.constructor_new(
            peer, ldk.Type.new_impl({
                type_id() { return type; },
                debug_str() { return `raw ${type}`; },
                write() { return body; },
            })));
    },
    peer_disconnected(_id) {},
    peer_connected(_id, _init, _inbound) { return ldk.Result_NoneNoneZ.constructor_ok(); },
    provided_node_features() { return ldk.NodeFeatures.constructor_empty(); },
    provided_init_features(_id) { return ldk.InitFeatures.constructor_empty(); },
}, {
    read(_type, _buffer) {
        return ldk.Result_COption_TypeZDecodeErrorZ.constructor_ok(ldk.Option_TypeZ.constructor_none());
    },
});

const peers = ldk.PeerManager.constructor_new(
    channels.as_ChannelMessageHandler(),
    ignorer.as_RoutingMessageHandler(), messenger.as_OnionMessageHandler(), rawMessages,
    now, entropy.get_secure_random_bytes(), logger, signer);

class Net extends NodeLDKNet {
    get_descriptor(socket) {
        const index = this.descriptor_count;
        this.descriptor_count += 1n;
        socket.setNoDelay(true);
        const manager = this.peer_manager;
        let waiting = false;
        const descriptor = ldk.SocketDescriptor.new_impl({
            send_data(data, resumeRead) {
                if (resumeRead) socket.resume();
                if (waiting) return 0;
                if (!socket.write(data)) waiting = true;
                return data.length;
            },
            disconnect_socket() { socket.destroy(); },
            eq(other) { return other.hash() == this.hash(); },
            hash() { return index; },
        });
        socket.on("drain", () => {
            if (!waiting) return;
            waiting = false;
            if (!manager.write_buffer_space_avail(descriptor).is_ok()) descriptor.disconnect_socket();
        });
        socket.on("data", (data) => {
            const result = manager.read_event(descriptor, data);
            if (!result.is_ok()) descriptor.disconnect_socket();
            else if (result.res) socket.pause();
            manager.process_events();
        });
        socket.on("close", () => manager.socket_disconnected(descriptor));
        socket.on("error", () => manager.socket_disconnected(descriptor));
        return descriptor;
    }
}

const net = new Net(peers);
await net.bind_listener("127.0.0.1", 0);
emit({ event: "ready", node_id: hex(nodeId), port: net.servers[0].address().port });

const connectedIds = () => peers.list_peers().map((p) => hex(p.get_counterparty_node_id()));

function blindedPath(via, context) {
    const hops = via.map((id) => ldk.MessageForwardNode.constructor_new(
        unhex(id), ldk.Option_u64Z.constructor_none()));
    const result = ldk.BlindedMessagePath.constructor_new(
        hops, nodeId, ldk.MessageContext.constructor_custom(unhex(context)), entropy);
    if (!result.is_ok()) throw new Error("cannot build a blinded path");
    return result.res;
}

async function handle(command) {
    switch (command.cmd) {
    case "connect": {
        try {
            await net.connect_peer(command.host, command.port, unhex(command.node_id));
        } catch {
            emit({ event: "connect_failed", node_id: command.node_id });
            return;
        }
        for (let i = 0; i < 200 && !connectedIds().includes(command.node_id); i++) {
            await new Promise((resolve) => setTimeout(resolve, 25));
        }
        emit({ event: connectedIds().includes(command.node_id) ? "connected" : "connect_failed",
               node_id: command.node_id });
        return;
    }
    case "peers":
        emit({ event: "peers", node_ids: connectedIds() });
        return;
    case "quiet":
        quiet = true;
        return;
    case "count":
        emit({ event: "count", received });
        return;
    case "flood": {
        const body = unhex(command.data);
        let sent = 0;
        while (sent < command.count) {
            const path = ldk.BlindedMessagePath.constructor_read(unhex(command.path)).res;
            const result = messenger.send_onion_message(
                contents(BigInt(command.tlv), body),
                ldk.MessageSendInstructions.constructor_without_reply_path(
                    ldk.Destination.constructor_blinded_path(path)));
            if (result.is_ok()) {
                sent += 1;
                if (sent % 16 == 0) peers.process_events();
            } else {
                peers.process_events();
                await new Promise((resolve) => setTimeout(resolve, 10));
            }
        }
        peers.process_events();
        emit({ event: "flooded", count: sent });
        return;
    }
    case "tick":
        peers.timer_tick_occurred();
        peers.process_events();
        emit({ event: "ticked" });
        return;
    case "path":
        emit({ event: "path", path: hex(blindedPath(command.via, command.context).write()) });
        return;
    case "send": {
        const parsed = ldk.BlindedMessagePath.constructor_read(unhex(command.path));
        if (!parsed.is_ok()) {
            emit({ event: "sent", ok: false, error: "bad path" });
            return;
        }
        const destination = ldk.Destination.constructor_blinded_path(parsed.res);
        const instructions = command.reply_via == null
            ? ldk.MessageSendInstructions.constructor_without_reply_path(destination)
            : ldk.MessageSendInstructions.constructor_with_specified_reply_path(
                destination, blindedPath(command.reply_via, command.context ?? ""));
        const result = messenger.send_onion_message(
            contents(BigInt(command.tlv), unhex(command.data)), instructions);
        if (!result.is_ok()) {
            emit({ event: "sent", ok: false, error: String(result.err) });
            return;
        }
        if (command.flip_at != null) {
            const firstHop = unhex(command.first_hop);
            const built = messenger.as_OnionMessageHandler().next_onion_message_for_peer(firstHop);
            if (built == null) {
                emit({ event: "sent", ok: false, error: "no onion message queued" });
                return;
            }
            const body = built.write();
            body[command.flip_at] ^= 1;
            rawQueue.push([firstHop, 513, body]);
        }
        peers.process_events();
        emit({ event: "sent", ok: true, error: "" });
        return;
    }
    default:
        emit({ event: "error", error: `unknown command ${command.cmd}` });
    }
}

const lines = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
lines.on("line", (line) => {
    if (!line.trim()) return;
    chain = chain.then(() => handle(JSON.parse(line))).catch((error) => {
        emit({ event: "error", error: String(error) });
    });
});
lines.on("close", () => {
    net.stop();
    process.exit(0);
});

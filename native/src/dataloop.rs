//! The relay's data loop in a native thread: batches in with recvmmsg, DATA packets
//! decided here, batches out with sendmmsg (the paper's fast path; setup stays slow).
//!
//! The thread owns a duplicate of the relay's UDP socket descriptor and never takes the
//! GIL. Per datagram, in a `Relay` loop:
//! 1. a link DATA datagram from a peer whose sessions Python pushed (`Tables::peers`) is
//!    opened under them (the same `LinkSession` objects Python's link endpoint holds,
//!    so counters and replay windows are shared); an empty one (keepalive) ends here;
//! 2. a HORNET DATA / DATA_NESTED packet passes the peer's data token bucket, then the
//!    relay's `DataPlane` (shared with the Python relay core: one AHDR cache, one
//!    replay filter) decides it;
//! 3. a `Forward` to a next hop in `Tables::routes` with a usable send session is
//!    sealed and sent in this batch; a `Drop` is counted by reason;
//! 4. everything else goes to Python through the bounded event queue (drop and count
//!    `native_queue_full` when full): datagrams the loop cannot open (`Raw`: link
//!    handshakes, unknown peers, forgeries, which Python counts), opened packets it does
//!    not decide (`Packet`: setups, epochs whose keys Python must load first), forwards
//!    with no usable session (`Forward`: Python's link endpoint queues them behind a
//!    handshake or rekeys) and deliveries (`Deliver`).
//!
//! A `Forward` loop is the plain forwarder of the benchmarks: every datagram goes on,
//! unchanged, to one address. A `Sink` loop counts what arrives and reports the count
//! to a feedback address. Both share the I/O path above, crypto aside.
//!
//! Bounded: the event queue (`capacity`), the peer table (`max_peers`) and the route
//! table (`max_routes`); Python's pushes beyond them are refused.

#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::header::NODE_ID_LEN;
use crate::io::{send_batch, wait_readable, EventFd, RecvBatch};
use crate::link::LinkSession;
use crate::relay::{DataPlane, Outcome, Reason, CHDR_LEN, TYPE_DATA, TYPE_DATA_NESTED};

pub const TYPE_LINK_FROM_INITIATOR: u8 = 0x21;
pub const TYPE_LINK_FROM_RESPONDER: u8 = 0x22;
/// An endpoint id's first two bytes (`hornet.directory.ENDPOINT_PREFIX`).
const ENDPOINT_PREFIX: [u8; 2] = [0xfe, 0x04];
/// How long a batch waits for send-buffer room before the rest counts as loss.
const SEND_WAIT_MS: i32 = 5;

pub type Shared<T> = Arc<Mutex<T>>;

/// Lock, ignoring poisoning: a panic elsewhere leaves the tables consistent (every
/// update is one insert or remove).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What Python gets from the loop (see the module rules, step 4).
pub enum Event {
    Raw {
        datagram: Vec<u8>,
        source: SocketAddr,
    },
    Packet {
        packet: Vec<u8>,
        source: SocketAddr,
    },
    Forward {
        packet: Vec<u8>,
        next_hop: [u8; NODE_ID_LEN],
    },
    Deliver {
        circuit_id: [u8; 16],
        reply_hop: [u8; NODE_ID_LEN],
        message: Vec<u8>,
        s: [u8; 16],
    },
}

/// A link session as the loop may use it, until `until`.
pub struct Usable {
    pub session: Shared<LinkSession>,
    pub until: Instant,
}

/// The data token bucket of one peer (`admission.Limits.data_rate` / `data_burst`).
struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Peer {
    /// The session packets to this peer are sealed under (None: Python sends).
    pub send: Option<Usable>,
    /// Sessions that open DATA_FROM_INITIATOR, then DATA_FROM_RESPONDER, newest first.
    pub receive: [Vec<Usable>; 2],
    bucket: Bucket,
    /// Traffic since Python last asked (it keeps the link endpoint's idle timer).
    pub active: bool,
}

impl Peer {
    pub fn new(send: Option<Usable>, receive: [Vec<Usable>; 2], burst: f64) -> Self {
        Peer {
            send,
            receive,
            bucket: Bucket {
                tokens: burst,
                at: Instant::now(),
            },
            active: false,
        }
    }
}

#[derive(Clone)]
pub enum Mode {
    /// A HORNET relay: `plane` decides DATA packets; `link` says whether datagrams are
    /// link-encrypted (docs/spec-link.md) or bare HORNET packets.
    Relay {
        plane: Shared<DataPlane>,
        link: bool,
        rekey_after_messages: u64,
    },
    /// The plain forwarder: every datagram, unchanged, to `to`.
    Forward { to: SocketAddr },
    /// Count arrivals; every `every` datagrams tell `feedback` the count since the
    /// figures were last taken (u64 big-endian).
    Sink {
        feedback: Option<SocketAddr>,
        every: u64,
    },
}

#[derive(Default)]
pub struct Counters {
    pub received: u64,
    pub forwarded: u64,
    pub dropped: HashMap<&'static str, u64>,
    /// Sink mode: arrivals, and the first and last arrival (seconds, monotonic).
    pub first: Option<Instant>,
    pub last: Option<Instant>,
    pub bytes: u64,
}

impl Counters {
    fn drop(&mut self, reason: &'static str) {
        *self.dropped.entry(reason).or_insert(0) += 1;
    }
}

/// Everything Python and the loop thread share, behind one lock taken once per batch.
pub struct Tables {
    pub peers: HashMap<SocketAddr, Peer>,
    pub routes: HashMap<[u8; NODE_ID_LEN], SocketAddr>,
    pub events: VecDeque<Event>,
    pub capacity: usize,
    pub max_peers: usize,
    pub max_routes: usize,
    pub data_rate: f64,
    pub data_burst: f64,
    /// The largest datagram the loop sends (the relay's path MTU less IP and UDP headers);
    /// a larger forward is dropped as `send_refused`, as the Python socket refuses it.
    pub max_datagram: usize,
    pub counters: Counters,
}

impl Tables {
    pub fn new(
        capacity: usize,
        max_peers: usize,
        max_routes: usize,
        rate: f64,
        burst: f64,
    ) -> Self {
        Tables {
            peers: HashMap::new(),
            routes: HashMap::new(),
            events: VecDeque::new(),
            capacity,
            max_peers,
            max_routes,
            data_rate: rate,
            data_burst: burst,
            max_datagram: 65_507,
            counters: Counters::default(),
        }
    }

    fn push(&mut self, event: Event) -> bool {
        if self.events.len() >= self.capacity {
            self.counters.drop("native_queue_full");
            return false;
        }
        self.events.push_back(event);
        true
    }
}

const DROP_NAMES: [&str; 5] = ["malformed", "integrity", "expired", "replay", "route"];

fn reason_name(reason: Reason) -> &'static str {
    DROP_NAMES[reason as usize]
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The address an endpoint id encodes (`hornet.directory.endpoint_address`):
/// 0xfe 0x04 ‖ IPv4 ‖ port (big-endian, not 0).
fn endpoint_address(id: &[u8; NODE_ID_LEN]) -> Option<SocketAddr> {
    if id[..2] != ENDPOINT_PREFIX {
        return None;
    }
    let port = u16::from_be_bytes([id[6], id[7]]);
    if port == 0 {
        return None;
    }
    let ip = std::net::Ipv4Addr::new(id[2], id[3], id[4], id[5]);
    Some(SocketAddr::new(ip.into(), port))
}

/// Open `datagram` under the first of `sessions` that takes it.
fn open_link(sessions: &[Usable], datagram: &[u8], now: Instant) -> Option<Vec<u8>> {
    sessions
        .iter()
        .filter(|u| now < u.until)
        .find_map(|u| lock(&u.session).open(datagram).ok())
}

/// Seal `packet` for `to` if the loop holds a usable send session for it.
fn seal_for(
    tables: &Tables,
    to: &SocketAddr,
    packet: &[u8],
    now: Instant,
    rekey: u64,
) -> Option<Vec<u8>> {
    let usable = tables.peers.get(to)?.send.as_ref()?;
    if now >= usable.until {
        return None;
    }
    let mut session = lock(&usable.session);
    if session.sent >= rekey {
        return None; // Python's endpoint starts the rekey on its next seal
    }
    session.seal(packet)
}

/// One received datagram in a relay loop; sealed forwards go to `out`.
#[allow(clippy::too_many_arguments)]
fn relay_datagram(
    tables: &mut Tables,
    plane: &Mutex<DataPlane>,
    link: bool,
    rekey: u64,
    datagram: &[u8],
    source: SocketAddr,
    now: Instant,
    out: &mut Vec<(Vec<u8>, SocketAddr)>,
) -> bool {
    let opened;
    let packet: &[u8] = if link {
        let kind = datagram.first().copied().unwrap_or(0);
        let index = match kind {
            TYPE_LINK_FROM_INITIATOR => 0,
            TYPE_LINK_FROM_RESPONDER => 1,
            _ => {
                return tables.push(Event::Raw {
                    datagram: datagram.to_vec(),
                    source,
                })
            }
        };
        let Some(peer) = tables.peers.get_mut(&source) else {
            return tables.push(Event::Raw {
                datagram: datagram.to_vec(),
                source,
            });
        };
        match open_link(&peer.receive[index], datagram, now) {
            Some(plain) => {
                peer.active = true;
                opened = plain;
                &opened
            }
            None => {
                return tables.push(Event::Raw {
                    datagram: datagram.to_vec(),
                    source,
                })
            }
        }
    } else {
        datagram
    };
    if packet.is_empty() {
        return false; // a keepalive or confirmation: nothing for the relay
    }
    let max_hops = lock(plane).max_hops();
    let is_data = packet.len() >= CHDR_LEN
        && (packet[0] == TYPE_DATA || packet[0] == TYPE_DATA_NESTED)
        && packet[1] as usize == max_hops;
    if !is_data {
        return tables.push(Event::Packet {
            packet: packet.to_vec(),
            source,
        });
    }
    if !take_token(tables, &source, now) {
        tables.counters.drop("rate_limited");
        return false;
    }
    let outcome = lock(plane).process(packet, unix_now(), packet[0] == TYPE_DATA_NESTED);
    match outcome {
        Outcome::Forward {
            next_hop,
            packet: out_packet,
        } => {
            let Some(to) = tables
                .routes
                .get(&next_hop)
                .copied()
                .or_else(|| endpoint_address(&next_hop))
            else {
                return tables.push(Event::Forward {
                    packet: out_packet,
                    next_hop,
                });
            };
            let datagram = if link {
                match seal_for(tables, &to, &out_packet, now, rekey) {
                    Some(sealed) => sealed,
                    None => {
                        return tables.push(Event::Forward {
                            packet: out_packet,
                            next_hop,
                        })
                    }
                }
            } else {
                out_packet
            };
            if datagram.len() > tables.max_datagram {
                tables.counters.drop("send_refused");
                return false;
            }
            tables.counters.forwarded += 1;
            out.push((datagram, to));
            false
        }
        Outcome::Deliver {
            circuit_id,
            reply_hop,
            message,
            s,
        } => tables.push(Event::Deliver {
            circuit_id,
            reply_hop,
            message,
            s,
        }),
        Outcome::Drop(reason) => {
            tables.counters.drop(reason_name(reason));
            false
        }
        Outcome::NeedEpoch(_) => tables.push(Event::Packet {
            packet: packet.to_vec(),
            source,
        }),
    }
}

/// The peer's data token bucket (a peer Python has not pushed has none: unlimited here,
/// as its packets only reach this point without the link layer).
fn take_token(tables: &mut Tables, source: &SocketAddr, now: Instant) -> bool {
    let (rate, burst) = (tables.data_rate, tables.data_burst);
    let Some(peer) = tables.peers.get_mut(source) else {
        return true;
    };
    let bucket = &mut peer.bucket;
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
    bucket.at = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        true
    } else {
        false
    }
}

/// The loop thread's body: until `stop` is signalled, wait for datagrams, take a batch,
/// decide it under one lock of `tables`, send what it produced, and signal `events`
/// when Python has something new.
pub fn run(
    sock: OwnedFd,
    mode: Mode,
    tables: Shared<Tables>,
    stop: Arc<EventFd>,
    events: Arc<EventFd>,
    batch: usize,
) {
    let fd = sock.as_raw_fd();
    let mut recv = RecvBatch::new(batch);
    let mut out: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(batch);
    loop {
        if !wait_readable(fd, stop.fd()) {
            return;
        }
        if recv.receive(fd).is_err() || recv.is_empty() {
            continue; // EAGAIN (another reader was first) or an ICMP error: try again
        }
        let now = Instant::now();
        let mut new_events = false;
        {
            let mut tables = lock(&tables);
            for i in 0..recv.len() {
                let (data, source) = recv.get(i);
                tables.counters.received += 1;
                let (Some(data), Some(source)) = (data, source) else {
                    tables.counters.drop("malformed");
                    continue;
                };
                match &mode {
                    Mode::Relay {
                        plane,
                        link,
                        rekey_after_messages,
                    } => {
                        new_events |= relay_datagram(
                            &mut tables,
                            plane,
                            *link,
                            *rekey_after_messages,
                            data,
                            source,
                            now,
                            &mut out,
                        );
                    }
                    Mode::Forward { to } => {
                        tables.counters.forwarded += 1;
                        out.push((data.to_vec(), *to));
                    }
                    Mode::Sink { feedback, every } => {
                        let c = &mut tables.counters;
                        c.first.get_or_insert(now);
                        c.last = Some(now);
                        c.bytes += data.len() as u64;
                        if let Some(to) = feedback {
                            if c.received.is_multiple_of(*every) {
                                out.push((c.received.to_be_bytes().to_vec(), *to));
                            }
                        }
                    }
                }
            }
        }
        send_batch(fd, &out, SEND_WAIT_MS);
        out.clear();
        if new_events {
            events.signal();
        }
    }
}

//! The relay's data path: `Relay._data` of `hornet/core/relay.py`, decision for decision.
//!
//! PROC_AHDR (FS open under each live epoch's PRP, MAC check in constant time, EXP check,
//! shift), the nested header's splice at a rendezvous point, then one onion layer
//! removed (forward) or added (backward), then the hardened profile's replay filter. The
//! cache of verified AHDRs is the reference's, entry for entry: the same capacity, the
//! same first-in-first-out eviction, the same deadline, so the two engines decide alike
//! even where the cache shows (a cached circuit past its deadline drops as EXPIRED).

use std::collections::{HashMap, VecDeque};

use crate::header::{
    ahdr_mac_ok, fs_open, shift_ahdr, HopKeys, OpenedFs, C, FLAG_BACKWARD, FLAG_DELIVER,
    FLAG_RENDEZVOUS, FS_LEN, NODE_ID_LEN,
};
use crate::onion::Layer;
use crate::primitives::{mac16_ok, sha256, Prp256, K, TAG_LEN};
use crate::replay::DataReplayFilter;

pub const CHDR_LEN: usize = 18;
pub const TYPE_DATA: u8 = 0x02;
pub const TYPE_DATA_NESTED: u8 = 0x03;

/// Why a packet was dropped: `DropReason` of the reference, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Malformed = 0,
    Integrity = 1,
    Expired = 2,
    Replay = 3,
    Route = 4,
}

/// The decision for one data packet.
pub enum Outcome {
    Forward {
        next_hop: [u8; NODE_ID_LEN],
        packet: Vec<u8>,
    },
    Deliver {
        circuit_id: [u8; 16],
        reply_hop: [u8; NODE_ID_LEN],
        message: Vec<u8>,
        s: [u8; K],
    },
    Drop(Reason),
    /// The FS must be opened under an epoch whose keys the caller has not given yet.
    NeedEpoch(i64),
}

/// What the cache keeps for one verified AHDR.
struct Circuit {
    s: [u8; K],
    exp: i64,
    backward: bool,
    deliver: bool,
    splice: bool,
    next_hop: [u8; NODE_ID_LEN],
    next_ahdr: Vec<u8>,
    circuit_id: [u8; 16],
    layer: Layer,
}

/// The cached circuits whose AHDRs share a first block, with their AHDRs.
type Bucket = Vec<(Box<[u8]>, Circuit)>;

pub struct Config {
    pub max_hops: usize,
    pub hardened: bool,
    pub epoch_s: i64,
    pub skew: i64,
    pub fs_tail: i64,
    pub cache_size: usize,
}

pub struct DataPlane {
    cfg: Config,
    epochs: HashMap<i64, Prp256>,
    /// Verified AHDRs, hashed by their first block FS ‖ γ (two cached AHDRs share it only
    /// through a MAC collision) and matched on every byte.
    cache: HashMap<[u8; C], Bucket>,
    /// Insertion order, for first-in-first-out eviction; `cached` counts the entries.
    order: VecDeque<Box<[u8]>>,
    cached: usize,
    pub filter: Option<DataReplayFilter>,
}

enum Fail {
    Drop(Reason),
    NeedEpoch(i64),
}

/// Python's `int(now // period)` for a float `now` and an int `period` (floor division
/// as CPython computes it, then truncation).
fn py_floor_div(now: f64, period: f64) -> i64 {
    let m = now % period;
    let mut div = (now - m) / period;
    if m != 0.0 && ((period < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    let mut floor = div.floor();
    if div - floor > 0.5 {
        floor += 1.0;
    }
    floor as i64
}

impl DataPlane {
    pub fn new(cfg: Config, filter: Option<DataReplayFilter>) -> Self {
        DataPlane {
            cfg,
            epochs: HashMap::new(),
            cache: HashMap::new(),
            order: VecDeque::new(),
            cached: 0,
            filter,
        }
    }

    pub fn set_epoch(&mut self, epoch: i64, prp_key: &[u8]) {
        self.epochs.retain(|e, _| *e >= epoch - 2);
        self.epochs.insert(epoch, Prp256::new(prp_key));
    }

    pub fn max_hops(&self) -> usize {
        self.cfg.max_hops
    }

    /// Cache a verified AHDR; past `cache_size` entries the oldest goes.
    fn insert(&mut self, ahdr: &[u8], circuit: Circuit) {
        let prefix: [u8; C] = ahdr[..C]
            .try_into()
            .expect("an AHDR has at least one block");
        self.cache
            .entry(prefix)
            .or_default()
            .push((ahdr.into(), circuit));
        self.order.push_back(ahdr.into());
        self.cached += 1;
        if self.cached > self.cfg.cache_size {
            if let Some(old) = self.order.pop_front() {
                if let Some(bucket) = self.cache.get_mut(&old[..C]) {
                    if let Some(i) = bucket.iter().position(|(key, _)| *key == old) {
                        bucket.swap_remove(i);
                        self.cached -= 1;
                    }
                    if bucket.is_empty() {
                        self.cache.remove(&old[..C]);
                    }
                }
            }
        }
    }

    pub fn cached_circuits(&self) -> usize {
        self.cached
    }

    /// The epochs whose FSes may still be valid at `now`, current first.
    fn data_epochs(&self, now: f64) -> Vec<i64> {
        let period = self.cfg.epoch_s;
        let current = py_floor_div(now, period as f64);
        [current, current - 1, current + 1]
            .into_iter()
            .filter(|&e| {
                e >= 0
                    && ((e * period - self.cfg.skew) as f64) <= now
                    && now < ((e + 1) * period + self.cfg.fs_tail) as f64
            })
            .collect()
    }

    /// FS_OPEN under each live epoch until the FS opens to keys that `verify`, then the
    /// EXP check.
    fn open_verified(
        &self,
        fs: &[u8],
        now: f64,
        verify: impl Fn(&HopKeys) -> bool,
    ) -> Result<(OpenedFs, HopKeys), Fail> {
        for epoch in self.data_epochs(now) {
            let Some(prp) = self.epochs.get(&epoch) else {
                return Err(Fail::NeedEpoch(epoch));
            };
            let Some(opened) = fs_open(prp, fs) else {
                continue;
            };
            let keys = HopKeys::new(&opened.s);
            if verify(&keys) {
                if ((opened.exp as i64 + self.cfg.skew) as f64) <= now {
                    return Err(Fail::Drop(Reason::Expired));
                }
                return Ok((opened, keys));
            }
        }
        Err(Fail::Drop(Reason::Integrity))
    }

    /// PROC_AHDR (Alg. 3) for a header not in the cache, and the splice check.
    fn build_circuit(&self, ahdr: &[u8], now: f64) -> Result<Circuit, Fail> {
        let (opened, keys) = self.open_verified(&ahdr[..FS_LEN], now, |k| ahdr_mac_ok(k, ahdr))?;
        let mut circuit = Circuit {
            s: opened.s,
            exp: opened.exp as i64 + self.cfg.skew,
            backward: opened.flags & FLAG_BACKWARD != 0,
            deliver: opened.flags & FLAG_DELIVER != 0,
            splice: false,
            next_hop: opened.next_hop,
            next_ahdr: shift_ahdr(&keys, ahdr),
            circuit_id: sha256(&ahdr[..FS_LEN])[..16].try_into().expect("16 bytes"),
            layer: Layer::new(&keys),
        };
        let nested_len = 2 * self.cfg.max_hops * C;
        if ahdr.len() == nested_len && opened.flags & FLAG_RENDEZVOUS != 0 {
            // The splice (SPEC.md §6.3): RH = FS' ‖ γ' ‖ A, FS' one of our rendezvous FSes.
            let header = &circuit.next_ahdr;
            let a_end = C + self.cfg.max_hops * C;
            let (inner, _) = self.open_verified(&header[..FS_LEN], now, |k| {
                mac16_ok(
                    &k.mac,
                    &[&header[..FS_LEN], &header[C..a_end]],
                    &header[FS_LEN..C],
                )
            })?;
            if inner.flags != FLAG_DELIVER | FLAG_RENDEZVOUS {
                return Err(Fail::Drop(Reason::Integrity));
            }
            circuit.splice = true;
            circuit.next_hop = inner.next_hop;
            circuit.next_ahdr = header[C..a_end].to_vec();
            circuit.exp = circuit.exp.min(inner.exp as i64 + self.cfg.skew);
        }
        Ok(circuit)
    }

    /// One data packet (type DATA or DATA_NESTED, hops byte already checked).
    pub fn process(&mut self, packet: &[u8], now: f64, nested: bool) -> Outcome {
        let r = self.cfg.max_hops;
        let tag_array_len = if self.cfg.hardened { r * TAG_LEN } else { 0 };
        let ahdr_end = CHDR_LEN + if nested { 2 * r * C } else { r * C };
        let tags_end = ahdr_end + tag_array_len;
        if packet.len() <= tags_end {
            return Outcome::Drop(Reason::Malformed);
        }
        let ahdr = &packet[CHDR_LEN..ahdr_end];
        let hit = self
            .cache
            .get(&ahdr[..C])
            .and_then(|bucket| bucket.iter().find(|(key, _)| **key == *ahdr));
        if let Some((_, circuit)) = hit {
            if (circuit.exp as f64) <= now {
                return Outcome::Drop(Reason::Expired);
            }
            let filter = self.filter.as_mut();
            return remove_or_add_layer(
                &self.cfg, filter, circuit, packet, now, nested, ahdr_end, tags_end,
            );
        }
        let fresh = match self.build_circuit(ahdr, now) {
            Ok(circuit) => circuit,
            Err(Fail::Drop(reason)) => return Outcome::Drop(reason),
            Err(Fail::NeedEpoch(e)) => return Outcome::NeedEpoch(e),
        };
        let outcome = remove_or_add_layer(
            &self.cfg,
            self.filter.as_mut(),
            &fresh,
            packet,
            now,
            nested,
            ahdr_end,
            tags_end,
        );
        if self.cfg.cache_size > 0 {
            self.insert(ahdr, fresh);
        }
        outcome
    }
}

/// The onion layer and the replay filter for a verified circuit.
#[allow(clippy::too_many_arguments)]
fn remove_or_add_layer(
    cfg: &Config,
    filter: Option<&mut DataReplayFilter>,
    circuit: &Circuit,
    packet: &[u8],
    now: f64,
    nested: bool,
    ahdr_end: usize,
    tags_end: usize,
) -> Outcome {
    if nested && (circuit.backward || (circuit.deliver && !circuit.splice)) {
        return Outcome::Drop(Reason::Route); // nested headers only travel forward, to an RP
    }
    let iv_in = &packet[2..CHDR_LEN];
    let payload_in = &packet[tags_end..];
    let tag_array = &packet[ahdr_end..tags_end];
    let layer = &circuit.layer;
    let out_len = CHDR_LEN + circuit.next_ahdr.len() + tag_array.len() + payload_in.len();
    let mut out = Vec::with_capacity(out_len);
    if circuit.backward {
        // ADD_LAYER: encrypt under the arriving IV, then move the IV on.
        let iv = layer.prp.encrypt(iv_in);
        if let Some(filter) = filter {
            if filter.seen(&iv, circuit.exp, now, cfg.skew) {
                return Outcome::Drop(Reason::Replay);
            }
        }
        out.extend_from_slice(&packet[..2]);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&circuit.next_ahdr);
        let t_start = out.len();
        out.extend_from_slice(tag_array);
        if cfg.hardened {
            layer.tag.ctr_xor(iv_in, &mut out[t_start..]);
        }
        let p_start = out.len();
        out.extend_from_slice(payload_in);
        layer.enc.ctr_xor(iv_in, &mut out[p_start..]);
        return Outcome::Forward {
            next_hop: circuit.next_hop,
            packet: out,
        };
    }
    // REMOVE_LAYER: move the IV back, then decrypt (and authenticate) under it.
    let iv = layer.prp.decrypt(iv_in);
    let prefix: [u8; 2] = if circuit.splice {
        [TYPE_DATA, cfg.max_hops as u8]
    } else {
        [packet[0], packet[1]]
    };
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&iv);
    out.extend_from_slice(&circuit.next_ahdr);
    let t_start = out.len();
    if cfg.hardened {
        // T = tag ‖ rest: one AEAD over rest ‖ 0^16 ‖ O checks every bit of T and O, and
        // decrypts in place to T' ‖ O', already in wire order.
        let (tag, rest) = tag_array.split_at(TAG_LEN);
        out.extend_from_slice(rest);
        out.extend_from_slice(&[0u8; TAG_LEN]);
        out.extend_from_slice(payload_in);
        if !layer.gcm.open(&iv, &[], &mut out[t_start..], tag) {
            return Outcome::Drop(Reason::Integrity);
        }
        // Authentic: now the (FS, IV) replay filter (the PRP'd IV stands for both).
        if let Some(filter) = filter {
            if filter.seen(&iv, circuit.exp, now, cfg.skew) {
                return Outcome::Drop(Reason::Replay);
            }
        }
    } else {
        out.extend_from_slice(payload_in);
        layer.enc.ctr_xor(&iv, &mut out[t_start..]);
    }
    if circuit.deliver && !circuit.splice {
        let message = out.split_off(out.len() - payload_in.len());
        return Outcome::Deliver {
            circuit_id: circuit.circuit_id,
            reply_hop: circuit.next_hop,
            message,
            s: circuit.s,
        };
    }
    Outcome::Forward {
        next_hop: circuit.next_hop,
        packet: out,
    }
}

//! Forwarding segments and anonymous headers: FS_OPEN (HORNET §4.3.2) and PROC_AHDR
//! (Alg. 3), as `hornet/core/fs.py` and `hornet/core/ahdr.py` define them.

use crate::primitives::{derive_keys, mac16_ok, Aes, Block, Prp256, K};

/// |FS| = s (16) ‖ R (12) ‖ EXP (4).
pub const FS_LEN: usize = 32;
/// c = |FS| + k: one AHDR block.
pub const C: usize = FS_LEN + K;
/// R = next hop (8) ‖ flags (1) ‖ reserved (3).
pub const NODE_ID_LEN: usize = 8;

pub const FLAG_BACKWARD: u8 = 0x01;
pub const FLAG_DELIVER: u8 = 0x02;
pub const FLAG_RENDEZVOUS: u8 = 0x04;
const KNOWN_FLAGS: u8 = FLAG_BACKWARD | FLAG_DELIVER | FLAG_RENDEZVOUS;

/// HORNET's per-hop keys from s: mac, prg0, prg1, prg2, prp, enc, tag, gcm = AES_s(1..8).
/// `enc` keys AES-CTR layers only, `gcm` the hardened profile's AES-GCM layers only.
pub struct HopKeys {
    pub mac: Block,
    pub prg2: Block,
    pub prp: Block,
    pub enc: Block,
    pub tag: Block,
    pub gcm: Block,
}

impl HopKeys {
    pub fn new(s: &[u8]) -> Self {
        let [mac, _prg0, _prg1, prg2, prp, enc, tag, gcm] = derive_keys::<8>(s);
        HopKeys {
            mac,
            prg2,
            prp,
            enc,
            tag,
            gcm,
        }
    }
}

/// FS_OPEN's result: s, R's next hop and flags, EXP.
pub struct OpenedFs {
    pub s: Block,
    pub next_hop: [u8; NODE_ID_LEN],
    pub flags: u8,
    pub exp: u32,
}

/// FS_OPEN: invert the PRP; `None` when R does not decode (a forged FS, usually).
pub fn fs_open(prp: &Prp256, fs: &[u8]) -> Option<OpenedFs> {
    let plain = prp.decrypt(fs);
    let route = &plain[K..K + 12];
    if route[9..12] != [0, 0, 0] || route[8] & !KNOWN_FLAGS != 0 {
        return None;
    }
    let mut s = [0u8; K];
    s.copy_from_slice(&plain[..K]);
    let mut next_hop = [0u8; NODE_ID_LEN];
    next_hop.copy_from_slice(&route[..NODE_ID_LEN]);
    let exp = u32::from_be_bytes([plain[28], plain[29], plain[30], plain[31]]);
    Some(OpenedFs {
        s,
        next_hop,
        flags: route[8],
        exp,
    })
}

/// γ == MAC(h_MAC(s); FS ‖ β), in constant time.
pub fn ahdr_mac_ok(keys: &HopKeys, ahdr: &[u8]) -> bool {
    mac16_ok(&keys.mac, &[&ahdr[..FS_LEN], &ahdr[C..]], &ahdr[FS_LEN..C])
}

/// The header after one PROC_AHDR: (β ‖ 0^c) ⊕ PRG2(s).
pub fn shift_ahdr(keys: &HopKeys, ahdr: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ahdr.len());
    out.extend_from_slice(&ahdr[C..]);
    out.resize(ahdr.len(), 0);
    Aes::new(&keys.prg2).ctr_xor(&[0u8; K], &mut out);
    out
}

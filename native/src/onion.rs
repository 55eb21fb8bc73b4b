//! Data-payload onion layers (HORNET §4.4.2) in both profiles, as `hornet/core/onion.py`.
//!
//! PAPER: ADD_LAYER(IV, O) = (PRP(IV), AES-CTR_enc(IV, O)); REMOVE_LAYER inverts it.
//! HARDENED, forward: hop i opens AES-128-GCM_gcm(IV'[0:12]) over O with tag T[0:16] and
//! associated data rest = T[16:r·16] (the authenticated tag array: every byte of T is
//! covered at the next honest hop), then passes on T' = (rest ‖ 0^16) ⊕ CTR_tag(IV').
//! The source seals inside-out, so it knows T_{i+1} before it computes tag_i.

use crate::header::HopKeys;
use crate::primitives::{xor_into, Aes, Gcm128, K, TAG_LEN};

/// One hop's cached cipher contexts.
pub struct Layer {
    pub prp: Aes,
    pub enc: Aes,
    pub gcm: Gcm128,
    pub tag: Aes,
}

impl Layer {
    pub fn new(keys: &HopKeys) -> Self {
        Layer::from_keys(&keys.prp, &keys.enc, &keys.tag, &keys.gcm)
    }

    pub fn from_keys(prp: &[u8], enc: &[u8], tag: &[u8], gcm: &[u8]) -> Self {
        Layer {
            prp: Aes::new(prp),
            enc: Aes::new(enc),
            gcm: Gcm128::new(gcm),
            tag: Aes::new(tag),
        }
    }
}

/// The source's forward onion: (IV_0, T_0, O_0) from the innermost IV and the message.
pub struct ForwardOnion {
    pub hardened: bool,
    pub layers: Vec<Layer>,
    pub max_hops: usize,
}

impl ForwardOnion {
    /// `padding` must be (r − l)·16 bytes in the hardened profile (the caller checks).
    pub fn wrap(&self, iv: &[u8], message: &mut [u8], padding: &[u8]) -> ([u8; K], Vec<u8>) {
        let mut iv: [u8; K] = iv[..K].try_into().expect("16-byte IV");
        if !self.hardened {
            for layer in self.layers.iter().rev() {
                layer.enc.ctr_xor(&iv, message);
                iv = layer.prp.encrypt(&iv);
            }
            return (iv, Vec::new());
        }
        let hops = self.layers.len();
        let size = self.max_hops * TAG_LEN;
        let body = size - TAG_LEN;
        // IV' of every hop (its IV after PRP⁻¹), innermost first: independent of O and T.
        let mut ivs = vec![[0u8; K]; hops];
        for i in (0..hops).rev() {
            ivs[i] = iv;
            iv = self.layers[i].prp.encrypt(&iv);
        }
        // X_i = CTR_tag_i(IV'_i) over r·16 bytes, for every hop but the last.
        let streams: Vec<Vec<u8>> = (0..hops.saturating_sub(1))
            .map(|i| {
                let mut s = vec![0u8; size];
                self.layers[i].tag.ctr_xor(&ivs[i], &mut s);
                s
            })
            .collect();
        // Sphinx filler: what the last hop must find at the tail of its T.
        let mut phi: Vec<u8> = Vec::with_capacity(body);
        for (i, stream) in streams.iter().enumerate() {
            phi.extend_from_slice(&[0u8; TAG_LEN]);
            xor_into(&mut phi, &stream[(self.max_hops - 1 - i) * TAG_LEN..]);
        }
        // Inside out: rest_{l−1} = padding ‖ φ; tag_i = GCM(O, aad = rest_i); then
        // rest_{i−1} = (tag_i ‖ rest_i)[0:(r−1)·16] ⊕ X_{i−1}[0:(r−1)·16].
        let mut tags = vec![0u8; size];
        tags[TAG_LEN..TAG_LEN + padding.len()].copy_from_slice(padding);
        tags[TAG_LEN + padding.len()..].copy_from_slice(&phi);
        for i in (0..hops).rev() {
            let tag = self.layers[i].gcm.seal(&ivs[i], &tags[TAG_LEN..], message);
            tags[..TAG_LEN].copy_from_slice(&tag);
            if i > 0 {
                let mut rest = tags[..body].to_vec();
                xor_into(&mut rest, &streams[i - 1][..body]);
                tags[TAG_LEN..].copy_from_slice(&rest);
            }
        }
        (iv, tags)
    }
}

/// One backward layer's contexts (AES-CTR layers only).
pub struct CtrLayer {
    pub prp: Aes,
    pub enc: Aes,
}

/// The source's view of a backward path: removes the layers in reverse order of adding.
pub struct BackwardOnion {
    /// Last-added layer first.
    pub layers: Vec<CtrLayer>,
}

impl BackwardOnion {
    pub fn unwrap(&self, iv: &[u8], payload: &mut [u8]) {
        let mut iv: [u8; K] = iv[..K].try_into().expect("16-byte IV");
        for layer in &self.layers {
            iv = layer.prp.decrypt(&iv);
            layer.enc.ctr_xor(&iv, payload);
        }
    }
}

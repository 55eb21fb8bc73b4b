//! Data-payload onion layers (HORNET §4.4.2) in both profiles, as `hornet/core/onion.py`.
//!
//! PAPER: ADD_LAYER(IV, O) = (PRP(IV), AES-CTR_enc(IV, O)); REMOVE_LAYER inverts it.
//! HARDENED, forward: hop i splits T = tag ‖ rest and makes ONE AES-128-GCM call under
//! its gcm key and nonce IV'[0:12]: open((rest ‖ 0^16 ‖ O) ‖ tag) = T' ‖ O', so the
//! decryption of rest ‖ 0^16 is the shifted array it passes on and the tag covers every
//! bit of rest and O. The source seals inside out: hop i's plaintext is T_{i+1} ‖ O_{i+1},
//! and a Sphinx-style filler over the GCM keystreams X_i (CTR under the gcm key from
//! IV'[0:12] ‖ 2) makes the last block of each ciphertext array the zero block.

use crate::header::HopKeys;
use crate::primitives::{xor_into, Aes, Gcm128, GCM_NONCE_LEN, K, TAG_LEN};

/// One hop's cached cipher contexts (`gcm_stream`: GCM's own keystream, for the filler).
pub struct Layer {
    pub prp: Aes,
    pub enc: Aes,
    pub gcm: Gcm128,
    pub gcm_stream: Aes,
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
            gcm_stream: Aes::new(gcm),
            tag: Aes::new(tag),
        }
    }
}

/// The CTR block at which AES-GCM's keystream for a 96-bit nonce starts: nonce ‖ 2
/// (SP 800-38D: J0 = nonce ‖ 1, plaintext block j under inc32^(j+1)(J0)).
fn gcm_keystream_counter(iv: &[u8]) -> [u8; K] {
    let mut counter = [0u8; K];
    counter[..GCM_NONCE_LEN].copy_from_slice(&iv[..GCM_NONCE_LEN]);
    counter[K - 1] = 2;
    counter
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
        // X_i: hop i's GCM keystream over T's r·16 bytes.
        let streams: Vec<Vec<u8>> = (0..hops)
            .map(|i| {
                let mut s = vec![0u8; size];
                self.layers[i]
                    .gcm_stream
                    .ctr_xor(&gcm_keystream_counter(&ivs[i]), &mut s);
                s
            })
            .collect();
        // Sphinx filler: what the last hop must find at the tail of its T.
        let mut phi: Vec<u8> = Vec::with_capacity(body);
        for (i, stream) in streams[..hops - 1].iter().enumerate() {
            phi.extend_from_slice(&[0u8; TAG_LEN]);
            xor_into(&mut phi, &stream[(self.max_hops - 1 - i) * TAG_LEN..]);
        }
        // The last hop's rest is padding ‖ φ, and its plaintext array is whatever
        // encrypts to rest ‖ 0^16. Then inside out: hop i seals T_{i+1} ‖ O_{i+1}, and
        // T_i = tag_i ‖ (the first (r−1)·16 bytes of that ciphertext).
        let mut buf = Vec::with_capacity(size + message.len());
        buf.extend_from_slice(padding);
        buf.extend_from_slice(&phi);
        buf.extend_from_slice(&[0u8; TAG_LEN]);
        xor_into(&mut buf, &streams[hops - 1]);
        buf.extend_from_slice(message);
        let mut tags = vec![0u8; size];
        for i in (0..hops).rev() {
            let tag = self.layers[i].gcm.seal(&ivs[i], &[], &mut buf);
            tags[..TAG_LEN].copy_from_slice(&tag);
            tags[TAG_LEN..].copy_from_slice(&buf[..body]);
            buf[..size].copy_from_slice(&tags);
        }
        message.copy_from_slice(&buf[size..]);
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

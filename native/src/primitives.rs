//! The symmetric primitives of the data plane, each a thin wrapper over a RustCrypto crate.
//!
//! Nothing here is a hand-written cipher: AES comes from `aes` (AES-NI when the CPU has
//! it, detected at run time), CTR from `ctr` (128-bit big-endian counter, as OpenSSL's
//! CTR mode), AES-GCM from `ring` (BoringSSL's assembly), HMAC-SHA256 from `hmac` + `sha2`. Secret-holding
//! types implement no `Debug`, so their bytes cannot reach a log.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, InnerIvInit, KeyInit, StreamCipher};
use aes::{Aes128, Aes128Enc};
use hmac::{Hmac, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_128_GCM, AES_256_GCM};
use sha2::{Digest, Sha256};

/// k: key, MAC and AES block length.
pub const K: usize = 16;
/// The GCM nonce: the first 12 bytes of an IV.
pub const GCM_NONCE_LEN: usize = 12;
/// Every AEAD tag in the data plane.
pub const TAG_LEN: usize = 16;

pub type Block = [u8; K];

/// One AES-128 key, for single-block PRP calls and CTR streams (the CTR stream gets an
/// encryption-only copy of the schedule, the cheapest to clone per call).
#[derive(Clone)]
pub struct Aes(Aes128, Aes128Enc);

impl Aes {
    pub fn new(key: &[u8]) -> Self {
        let key = GenericArray::from_slice(&key[..K]);
        Aes(Aes128::new(key), Aes128Enc::new(key))
    }

    pub fn encrypt(&self, block: &[u8]) -> Block {
        let mut b = GenericArray::clone_from_slice(&block[..K]);
        self.0.encrypt_block(&mut b);
        b.into()
    }

    pub fn decrypt(&self, block: &[u8]) -> Block {
        let mut b = GenericArray::clone_from_slice(&block[..K]);
        self.0.decrypt_block(&mut b);
        b.into()
    }

    /// AES-CTR: XOR `data` in place with the stream whose first counter block is `iv`.
    pub fn ctr_xor(&self, iv: &[u8], data: &mut [u8]) {
        let core = ctr::CtrCore::<Aes128Enc, ctr::flavors::Ctr128BE>::inner_iv_init(
            self.1.clone(),
            GenericArray::from_slice(&iv[..K]),
        );
        let mut stream = ctr::Ctr128BE::<Aes128Enc>::from_core(core);
        stream.apply_keystream(data);
    }
}

/// `count` keys AES_key(1), …, AES_key(count): HORNET's h_op derivations (`crypto.derive_keys`).
pub fn derive_keys<const N: usize>(key: &[u8]) -> [Block; N] {
    let aes = Aes::new(key);
    let mut out = [[0u8; K]; N];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut counter = [0u8; K];
        counter[8..].copy_from_slice(&((i as u64) + 1).to_be_bytes());
        *slot = aes.encrypt(&counter);
    }
    out
}

type HmacSha256 = Hmac<Sha256>;

/// HORNET MAC over the concatenation of `parts`: HMAC-SHA256 truncated to 16 bytes.
pub fn mac16(key: &[u8], parts: &[&[u8]]) -> Block {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; K];
    out.copy_from_slice(&full[..K]);
    out
}

/// Constant-time check that HMAC-SHA256(key, parts)[:16] equals `tag` (the `hmac`
/// crate's `verify_truncated_left`, which compares with `subtle`).
pub fn mac16_ok(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.verify_truncated_left(tag).is_ok()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A 32-byte PRP: a 4-round Luby–Rackoff Feistel network with AES-128 round functions,
/// round keys AES_key(1..4) (`crypto.Prp256`). It seals one forwarding segment whole.
pub struct Prp256 {
    rounds: [Aes; 4],
}

impl Prp256 {
    pub fn new(key: &[u8]) -> Self {
        let keys = derive_keys::<4>(key);
        Prp256 {
            rounds: keys.map(|k| Aes::new(&k)),
        }
    }

    pub fn encrypt(&self, block: &[u8]) -> [u8; 32] {
        let (mut left, mut right) = halves(block);
        for aes in &self.rounds {
            let f = aes.encrypt(&right);
            let next = xor16(&left, &f);
            left = right;
            right = next;
        }
        join(&left, &right)
    }

    pub fn decrypt(&self, block: &[u8]) -> [u8; 32] {
        let (mut left, mut right) = halves(block);
        for aes in self.rounds.iter().rev() {
            let f = aes.encrypt(&left);
            let prev = xor16(&right, &f);
            right = left;
            left = prev;
        }
        join(&left, &right)
    }
}

fn halves(block: &[u8]) -> (Block, Block) {
    let mut left = [0u8; K];
    let mut right = [0u8; K];
    left.copy_from_slice(&block[..K]);
    right.copy_from_slice(&block[K..2 * K]);
    (left, right)
}

fn join(left: &Block, right: &Block) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..K].copy_from_slice(left);
    out[K..].copy_from_slice(right);
    out
}

pub fn xor16(a: &Block, b: &Block) -> Block {
    let mut out = [0u8; K];
    for i in 0..K {
        out[i] = a[i] ^ b[i];
    }
    out
}

pub fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// AES-GCM under one cached key (ring's `LessSafeKey`: the nonce discipline is the
/// caller's, which the protocol gives: a fresh IV per packet, a counter per link session).
struct Gcm(LessSafeKey);

impl Gcm {
    fn new(algorithm: &'static ring::aead::Algorithm, key: &[u8]) -> Self {
        let key = UnboundKey::new(algorithm, key).expect("the key length matches the algorithm");
        Gcm(LessSafeKey::new(key))
    }

    fn nonce(nonce: &[u8]) -> Nonce {
        let mut n = [0u8; GCM_NONCE_LEN];
        n.copy_from_slice(&nonce[..GCM_NONCE_LEN]);
        Nonce::assume_unique_for_key(n)
    }

    fn seal(&self, nonce: &[u8], aad: &[u8], data: &mut [u8]) -> Block {
        let tag = self
            .0
            .seal_in_place_separate_tag(Self::nonce(nonce), Aad::from(aad), data)
            .expect("a data-plane payload is far below GCM's length limit");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn open(&self, nonce: &[u8], aad: &[u8], data: &mut [u8], tag: &[u8]) -> bool {
        let Ok(tag) = <[u8; TAG_LEN]>::try_from(&tag[..TAG_LEN]) else {
            return false;
        };
        self.0
            .open_in_place_separate_tag(
                Self::nonce(nonce),
                Aad::from(aad),
                Tag::from(tag),
                data,
                0..,
            )
            .is_ok()
    }
}

/// AES-128-GCM under one cached key (a hop's forward onion layer, hardened profile).
pub struct Gcm128(Gcm);

impl Gcm128 {
    pub fn new(key: &[u8]) -> Self {
        Gcm128(Gcm::new(&AES_128_GCM, &key[..K]))
    }

    /// Encrypt `data` in place; returns the tag.
    pub fn seal(&self, nonce: &[u8], aad: &[u8], data: &mut [u8]) -> Block {
        self.0.seal(nonce, aad, data)
    }

    /// Decrypt `data` in place if `tag` verifies (in constant time); false otherwise (then
    /// `data` holds garbage and is dropped).
    pub fn open(&self, nonce: &[u8], aad: &[u8], data: &mut [u8], tag: &[u8]) -> bool {
        self.0.open(nonce, aad, data, tag)
    }
}

/// AES-256-GCM under one cached key (link DATA datagrams, end-to-end frames).
pub struct Gcm256(Gcm);

impl Gcm256 {
    pub fn new(key: &[u8; 32]) -> Self {
        Gcm256(Gcm::new(&AES_256_GCM, key))
    }

    pub fn seal(&self, nonce: &[u8], aad: &[u8], data: &mut [u8]) -> Block {
        self.0.seal(nonce, aad, data)
    }

    pub fn open(&self, nonce: &[u8], aad: &[u8], data: &mut [u8], tag: &[u8]) -> bool {
        self.0.open(nonce, aad, data, tag)
    }
}

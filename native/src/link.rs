//! Link DATA datagrams (docs/spec-link.md §2), as `hornet/link/channel.py`'s `Session`
//! seals and opens them: type ‖ counter (u64 LE) ‖ AES-256-GCM(packet) ‖ tag, nonce =
//! 0^4 ‖ counter (LE), associated data = the 9 header bytes; a 1024-counter replay
//! window, read before the tag is checked and moved only after it verified.

use crate::primitives::{Gcm256, TAG_LEN};

pub const HEADER_LEN: usize = 9;
pub const DATA_OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Replay window width in counters: bit i of the window is counter `top − i`.
pub const REPLAY_WINDOW: u32 = 1024;
const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// Why a datagram was refused (the Python side raises the matching hornet error).
pub enum LinkError {
    Short,
    TooOld,
    Duplicate,
    Tag,
}

pub struct LinkSession {
    seal: Gcm256,
    open: Gcm256,
    send_type: u8,
    pub limit: u64,
    pub sent: u64,
    /// The highest counter accepted so far (None: nothing yet).
    pub top: Option<u64>,
    window: [u64; WORDS],
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

impl LinkSession {
    pub fn new(send_key: &[u8; 32], receive_key: &[u8; 32], send_type: u8, limit: u64) -> Self {
        LinkSession {
            seal: Gcm256::new(send_key),
            open: Gcm256::new(receive_key),
            send_type,
            limit,
            sent: 0,
            top: None,
            window: [0; WORDS],
        }
    }

    /// The DATA datagram for `packet`, or None once the counters are exhausted.
    pub fn seal(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        let counter = self.sent;
        if counter >= self.limit {
            return None;
        }
        self.sent = counter + 1;
        let mut out = Vec::with_capacity(DATA_OVERHEAD + packet.len());
        out.push(self.send_type);
        out.extend_from_slice(&counter.to_le_bytes());
        out.extend_from_slice(packet);
        let (header, body) = out.split_at_mut(HEADER_LEN);
        let tag = self.seal.seal(&nonce(counter), header, body);
        out.extend_from_slice(&tag);
        Some(out)
    }

    fn bit(&self, offset: u32) -> bool {
        self.window[(offset / 64) as usize] >> (offset % 64) & 1 == 1
    }

    /// Slide the window up by `shift` counters (the new top's bit is set by the caller).
    fn slide(&mut self, shift: u64) {
        if shift >= REPLAY_WINDOW as u64 {
            self.window = [0; WORDS];
            return;
        }
        let (words, bits) = ((shift / 64) as usize, (shift % 64) as u32);
        for i in (0..WORDS).rev() {
            let mut value = if i >= words {
                self.window[i - words] << bits
            } else {
                0
            };
            if bits > 0 && i > words {
                value |= self.window[i - words - 1] >> (64 - bits);
            }
            self.window[i] = value;
        }
    }

    /// Authenticate and decrypt a DATA datagram whose type the caller has matched.
    pub fn open(&mut self, datagram: &[u8]) -> Result<Vec<u8>, LinkError> {
        if datagram.len() < DATA_OVERHEAD {
            return Err(LinkError::Short);
        }
        let counter = u64::from_le_bytes(datagram[1..HEADER_LEN].try_into().expect("8 bytes"));
        // offset = top − counter: ≥ 0 means not newer than the newest, and the window decides.
        let offset = self.top.map_or(-1, |top| top as i128 - counter as i128);
        if offset >= 0 {
            if offset >= REPLAY_WINDOW as i128 {
                return Err(LinkError::TooOld);
            }
            if self.bit(offset as u32) {
                return Err(LinkError::Duplicate);
            }
        }
        let body = &datagram[HEADER_LEN..datagram.len() - TAG_LEN];
        let mut plain = body.to_vec();
        let tag = &datagram[datagram.len() - TAG_LEN..];
        if !self
            .open
            .open(&nonce(counter), &datagram[..HEADER_LEN], &mut plain, tag)
        {
            return Err(LinkError::Tag);
        }
        if offset < 0 {
            let shift = (-offset).min(u64::MAX as i128) as u64;
            self.slide(shift);
            self.window[0] |= 1;
            self.top = Some(counter);
        } else {
            let offset = offset as u32;
            self.window[(offset / 64) as usize] |= 1 << (offset % 64);
        }
        Ok(plain)
    }
}

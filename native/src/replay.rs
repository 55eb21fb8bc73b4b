//! The hardened profile's data replay filter (SPEC.md §7.4), bit for bit the filter of
//! `hornet/core/replay.py` (`DataReplayFilter`).
//!
//! Packets are filed under their circuit's EXP window. A window's filter is a list of
//! bit arrays ("slices"), the newest last: a packet is a replay if any slice has all four
//! of its bits set (the four probes are the value's four little-endian 32-bit words), and
//! new packets go into the newest slice. When the newest slice has taken its share
//! (2^L / bits_per_packet packets) a slice twice its size follows, while all windows
//! together stay within `max_bytes`. Windows whose every EXP has passed are freed first,
//! then the oldest once `max_windows` exist.

use std::collections::BTreeMap;

struct Slice {
    bits: Vec<u8>,
    /// A probe's top (L − 3) bits index a byte: `word >> shift`, shift = 35 − L.
    shift: u32,
}

impl Slice {
    fn new(bits_log2: u32) -> Self {
        Slice {
            bits: vec![0u8; 1usize << (bits_log2 - 3)],
            shift: 35 - bits_log2,
        }
    }

    fn bits_log2(&self) -> u32 {
        35 - self.shift
    }

    fn has(&self, words: &[u32; 4], masks: &[u8; 4]) -> bool {
        (0..4).all(|j| self.bits[(words[j] >> self.shift) as usize] & masks[j] != 0)
    }
}

struct Window {
    older: Vec<Slice>,
    newest: Slice,
    /// Packets the newest slice takes before the next one follows.
    room: i64,
}

impl Window {
    fn memory_bytes(&self) -> usize {
        self.newest.bits.len() + self.older.iter().map(|s| s.bits.len()).sum::<usize>()
    }
}

pub struct DataReplayFilter {
    bits_log2: u32,
    window_s: i64,
    max_windows: usize,
    bits_per_packet: i64,
    max_bytes: usize,
    bytes: usize,
    windows: BTreeMap<i64, Window>,
}

impl DataReplayFilter {
    /// The caller checks the ranges (as `DataReplayFilter.__init__` does).
    pub fn new(
        bits_log2: u32,
        window_s: i64,
        max_windows: usize,
        bits_per_packet: i64,
        max_bytes: usize,
    ) -> Self {
        DataReplayFilter {
            bits_log2,
            window_s,
            max_windows,
            bits_per_packet,
            max_bytes,
            bytes: 0,
            windows: BTreeMap::new(),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.bytes
    }

    fn window(&mut self, index: i64, now: f64, skew: i64) -> &mut Window {
        if !self.windows.contains_key(&index) {
            let horizon = now.trunc() as i64 - skew;
            let window_s = self.window_s;
            let expired: Vec<i64> = self
                .windows
                .keys()
                .copied()
                .filter(|i| (i + 1) * window_s <= horizon)
                .collect();
            for old in expired {
                if let Some(w) = self.windows.remove(&old) {
                    self.bytes -= w.memory_bytes();
                }
            }
            while self.windows.len() >= self.max_windows {
                if let Some((_, w)) = self.windows.pop_first() {
                    self.bytes -= w.memory_bytes();
                }
            }
            let newest = Slice::new(self.bits_log2);
            self.bytes += newest.bits.len();
            let room = (1i64 << self.bits_log2) / self.bits_per_packet;
            self.windows.insert(
                index,
                Window {
                    older: Vec::new(),
                    newest,
                    room,
                },
            );
        }
        self.windows.get_mut(&index).expect("inserted above")
    }

    /// Record the 16-byte `value`; true if it (probably) was recorded before.
    pub fn seen(&mut self, value: &[u8], exp: i64, now: f64, skew: i64) -> bool {
        let mut words = [0u32; 4];
        let mut masks = [0u8; 4];
        for j in 0..4 {
            words[j] = u32::from_le_bytes([
                value[4 * j],
                value[4 * j + 1],
                value[4 * j + 2],
                value[4 * j + 3],
            ]);
            masks[j] = 1 << (words[j] & 7);
        }
        let index = exp.div_euclid(self.window_s);
        let window = self.window(index, now, skew);
        if window.newest.has(&words, &masks) || window.older.iter().any(|s| s.has(&words, &masks)) {
            return true;
        }
        let shift = window.newest.shift;
        for j in 0..4 {
            window.newest.bits[(words[j] >> shift) as usize] |= masks[j];
        }
        window.room -= 1;
        if window.room == 0 {
            self.grow(index);
        }
        false
    }

    /// The newest slice of window `index` is full: add one twice its size, if `max_bytes`
    /// allows; else let the newest keep filling and ask again after another share.
    fn grow(&mut self, index: i64) {
        let (bits_per_packet, max_bytes, bytes) =
            (self.bits_per_packet, self.max_bytes, self.bytes);
        let window = self
            .windows
            .get_mut(&index)
            .expect("the window being filled");
        let current = window.newest.bits_log2();
        let size = current + 1;
        if size > 32 || bytes + (1usize << (size - 3)) > max_bytes {
            window.room = (1i64 << current) / bits_per_packet;
            return;
        }
        let full = std::mem::replace(&mut window.newest, Slice::new(size));
        window.older.push(full);
        window.room = (1i64 << size) / bits_per_packet;
        self.bytes += window.newest.bits.len();
    }
}

//! The hardened profile's data replay filter (SPEC.md §7.4), bit for bit the filter of
//! `hornet/core/replay.py` (`DataReplayFilter`): per-EXP-window bitmaps of 2^bits_log2
//! bits, four probes taken as the four little-endian 32-bit slices of the 16-byte value,
//! at most `max_windows` windows, expired windows freed first, then the oldest.

use std::collections::BTreeMap;

pub struct DataReplayFilter {
    bits_log2: u32,
    window_s: i64,
    max_windows: usize,
    shift: u32,
    windows: BTreeMap<i64, Vec<u8>>,
}

impl DataReplayFilter {
    /// The caller checks the ranges (bits_log2 in [10, 32], window_s ≥ 1, max_windows ≥ 1).
    pub fn new(bits_log2: u32, window_s: i64, max_windows: usize) -> Self {
        DataReplayFilter {
            bits_log2,
            window_s,
            max_windows,
            shift: 32 - (bits_log2 - 3),
            windows: BTreeMap::new(),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.windows.values().map(Vec::len).sum()
    }

    fn window(&mut self, exp: i64, now: f64, skew: i64) -> &mut Vec<u8> {
        let index = exp.div_euclid(self.window_s);
        if !self.windows.contains_key(&index) {
            let horizon = now.trunc() as i64 - skew;
            let window_s = self.window_s;
            self.windows.retain(|i, _| (i + 1) * window_s > horizon);
            while self.windows.len() >= self.max_windows {
                self.windows.pop_first();
            }
            self.windows
                .insert(index, vec![0u8; 1usize << (self.bits_log2 - 3)]);
        }
        self.windows.get_mut(&index).expect("inserted above")
    }

    /// Record the 16-byte `value`; true if it (probably) was recorded before.
    pub fn seen(&mut self, value: &[u8], exp: i64, now: f64, skew: i64) -> bool {
        let shift = self.shift;
        let bits = self.window(exp, now, skew);
        let mut index = [0usize; 4];
        let mut mask = [0u8; 4];
        for j in 0..4 {
            let slice = u32::from_le_bytes([
                value[4 * j],
                value[4 * j + 1],
                value[4 * j + 2],
                value[4 * j + 3],
            ]);
            index[j] = (slice >> shift) as usize;
            mask[j] = 1 << (slice & 7);
        }
        if (0..4).all(|j| bits[index[j]] & mask[j] != 0) {
            return true;
        }
        for j in 0..4 {
            bits[index[j]] |= mask[j];
        }
        false
    }
}

//! Synthetic firmware-like images from a seeded PRNG.
//!
//! The PRNG is SplitMix64 (public domain, Steele/Lea/Flood 2014), written out
//! here so the images never change with a dependency's version.

use deltaseal_verify::patch::Transform;

/// SplitMix64: a tiny, fixed, seedable PRNG.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A code-like image of `size` bytes: 4-byte words drawn from a small
/// vocabulary, with every 16th word a little-endian "branch target" (an
/// absolute address inside the image, based at `0x0800_0000`).
pub fn firmware(seed: u64, size: usize) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let words: Vec<[u8; 4]> = (0..48)
        .map(|_| (rng.next_u64() as u32).to_le_bytes())
        .collect();
    let mut v = Vec::with_capacity(size + 4);
    while v.len() < size {
        if v.len() % 64 == 60 {
            let target = 0x0800_0000u32 + (rng.below(size.max(1)) as u32 & !3);
            v.extend_from_slice(&target.to_le_bytes());
        } else {
            v.extend_from_slice(&words[rng.below(words.len())]);
        }
    }
    v.truncate(size);
    v
}

/// A "new version" of `old`: an inserted block, a deleted block, a moved
/// block, every branch target after the insertion shifted by the net size
/// change, and a few byte edits. Deterministic in `seed`.
pub fn edit(seed: u64, old: &[u8]) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let mut new = old.to_vec();
    if new.len() < 1024 {
        new.extend_from_slice(&rng.bytes(64));
        return new;
    }
    let ins_at = rng.below(new.len() / 2) & !3;
    let ins_len = 64 + (rng.below(192) & !3);
    let ins = rng.bytes(ins_len);
    new.splice(ins_at..ins_at, ins);
    let del_at = (new.len() / 2 + rng.below(new.len() / 4)) & !3;
    let del_len = 32 + (rng.below(96) & !3);
    new.drain(del_at..del_at + del_len);
    let delta = ins_len as i64 - del_len as i64;
    // Shift branch targets past the insertion point (what relinking does).
    let mut i = 60;
    while i + 4 <= new.len() {
        let w = u32::from_le_bytes([new[i], new[i + 1], new[i + 2], new[i + 3]]);
        if (0x0800_0000..0x0900_0000).contains(&w) && (w - 0x0800_0000) as usize > ins_at {
            let shifted = (i64::from(w) + delta) as u32;
            new[i..i + 4].copy_from_slice(&shifted.to_le_bytes());
        }
        i += 64;
    }
    // Move a 256-byte block towards the end.
    let from = rng.below(new.len() / 3);
    let block: Vec<u8> = new.drain(from..from + 256).collect();
    let to = new.len() - rng.below(new.len() / 4);
    new.splice(to..to, block);
    for _ in 0..6 {
        let at = rng.below(new.len());
        new[at] = new[at].wrapping_add(1 + rng.below(255) as u8);
    }
    new
}

/// Code with relative branches, before and after a relink: `size` bytes
/// of filler words with a call every 16 bytes to one of 64 function starts,
/// encoded for `transform` (x86 `E8 rel32`, or Thumb-2 `BL`); the new
/// version inserts 100 to 400 bytes in the middle, so every call that
/// crosses the insertion changes its displacement (what a linker does),
/// and edits a few bytes. Deterministic in `seed`.
pub fn relinked(seed: u64, size: usize, transform: Transform) -> (Vec<u8>, Vec<u8>) {
    let mut rng = SplitMix64::new(seed);
    let size = size.max(1024) & !15;
    let functions: Vec<usize> = (0..64).map(|_| rng.below(size) & !15).collect();
    let filler: Vec<[u8; 4]> = (0..16)
        .map(|_| [0x48, 0x89, rng.next_u64() as u8 & 0x3f, 0x90])
        .collect();
    // Calls as (position, callee index), then the bytes laid out at a
    // given insertion (none for the old image).
    let calls: Vec<(usize, usize)> = (0..size / 16)
        .map(|i| (i * 16 + 8, rng.below(64)))
        .collect();
    let fill: Vec<usize> = (0..size / 4).map(|_| rng.below(filler.len())).collect();
    let ins_at = (size / 2) & !15;
    let ins_len = (100 + rng.below(300)) & !15;
    let moved = |p: usize, ins: usize| if p >= ins_at { p + ins } else { p };
    let lay_out = |ins: usize| {
        let mut v: Vec<u8> = fill.iter().flat_map(|&w| filler[w]).collect();
        let tail = v.split_off(ins_at);
        v.extend((0..ins).map(|i| (i * 7) as u8));
        v.extend(tail);
        for &(at, f) in &calls {
            let (site, target) = (moved(at, ins), moved(functions[f], ins));
            let (word_at, anchor, template) = match transform {
                Transform::Thumb2 => (site, site + 4, 0xF800_F000u32),
                _ => {
                    v[site - 1] = 0xE8;
                    (site, site + 4, 0)
                }
            };
            let rel = (target as u64).wrapping_sub(anchor as u64);
            let w = transform.with_displacement(template, rel);
            v[word_at..word_at + 4].copy_from_slice(&w.to_le_bytes());
        }
        v
    };
    let old = lay_out(0);
    let mut new = lay_out(ins_len);
    for _ in 0..4 {
        let at = rng.below(new.len());
        new[at] = new[at].wrapping_add(1);
    }
    (old, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // First outputs for seed 0 (reference implementation).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn images_are_deterministic() {
        let a = firmware(7, 5000);
        assert_eq!(a, firmware(7, 5000));
        assert_eq!(edit(3, &a), edit(3, &a));
        assert_ne!(edit(3, &a), a);
    }
}

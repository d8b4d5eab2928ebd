//! A walk over one zstd frame (RFC 8878) before it is decoded: it checks the
//! frame's structure against the limits RFC 8878 sets and the reader's window
//! limit, and returns how much heap the decoder will need for it.
//!
//! Why a walk of our own: the decoder (`ruzstd`) sizes its buffers from
//! numbers in the frame (window, block sizes, literal counts, sequence
//! counts) and does not check all of them against the block size before it
//! allocates. Walking the headers first lets the applier refuse a frame whose
//! numbers are out of bounds, and lets writer and reader compute the same,
//! exact memory need from the same bytes (docs/format.md, "Memory").
//!
//! The memory model follows `ruzstd` 0.9.1 decoding with a fresh
//! `FrameDecoder` per frame, one block at a time, the output drained down to
//! the window after every block (what `apply.rs` does). The workspace pins
//! that version; the `memory` tests measure every decode against the model
//! with a counting allocator, so a decoder update that allocates differently
//! fails them.

/// Largest decoded block (RFC 8878 3.1.1.2.4: `Block_Maximum_Size`).
const MAX_BLOCK: u64 = 128 * 1024;

/// The decoder's entropy tables and their work vectors, at their largest:
///
/// - four FSE tables (literal lengths, match lengths, offsets, Huffman
///   weights), each with two 256-entry `i32`/`u32` work vectors: 8192 B;
/// - their decoding tables, 8-byte entries, at the largest accuracy logs
///   the decoder accepts (9, 9, 8, 6): 4096 + 4096 + 2048 + 512 B;
/// - the Huffman decoding table (2^11 two-byte entries) and its weight,
///   bit-count and rank vectors: 4096 + 256 + 257 + 48 + 96 B;
/// - one of those tables growing (always to a power of two) while its old
///   half-size allocation is still held: at most 2048 B.
///
/// That is 25,745 B. The allowance adds room for the Huffman weight and
/// bit-count vectors growing past 256 entries on a malformed weight stream
/// (at most 1.5 KiB) and the short-lived default-distribution vectors of
/// predefined tables. Well-formed frames come near it only with every table
/// at its largest (measured: 10 to 16 KiB). FSE table descriptions that
/// would grow the work vectors past 256 entries are refused by the walk
/// ([`fse_description`]).
pub(crate) const ZSTD_TABLES: u64 = 28 * 1024;

/// Size of one decoded sequence in the decoder (`ll`, `ml`, `of`: 3 × u32).
const SEQUENCE_SIZE: u64 = 12;

/// Smallest non-zero capacity a `Vec<u8>` grows to.
const MIN_BYTE_VEC: u64 = 8;

/// Heap the decoder needs for the frame `src`, which must decode to exactly
/// `len` bytes with a window of at most `max_window`; `None` if the frame is
/// malformed, uses a dictionary, or breaks a size limit of RFC 8878 (then it
/// would fail to decode anyway, or decode only by going past those limits).
pub(crate) fn frame_memory(src: &[u8], len: u64, max_window: u64) -> Option<u64> {
    let mut r = Bytes(src);
    if r.take(4)? != [0x28, 0xb5, 0x2f, 0xfd] {
        return None;
    }
    let descriptor = r.byte()?;
    let fcs_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    let has_checksum = descriptor & 0x04 != 0;
    if descriptor & 0x08 != 0 {
        return None; // reserved bit
    }
    let mut window = 0u64;
    if !single_segment {
        let wd = r.byte()?;
        let log = 10 + u32::from(wd >> 3);
        let base = 1u64.checked_shl(log)?;
        window = base.checked_add((base / 8).checked_mul(u64::from(wd & 7))?)?;
    }
    let dict_len = match descriptor & 3 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    };
    if r.take(dict_len)?.iter().any(|&b| b != 0) {
        return None; // dictionaries are not part of the patch format
    }
    let fcs_len = match (fcs_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    if fcs_len > 0 {
        let raw = r.take(fcs_len)?;
        let mut fcs = raw
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if fcs_len == 2 {
            fcs = fcs.checked_add(256)?;
        }
        if fcs != len {
            return None;
        }
        if single_segment {
            window = fcs;
        }
    }
    if window > max_window {
        return None;
    }
    let block_max = window.min(MAX_BLOCK);

    let mut ring = Ring::reserved(window)?;
    let mut content = VecGrowth::new(1, MIN_BYTE_VEC);
    let mut literals = VecGrowth::new(1, MIN_BYTE_VEC);
    let mut sequences = VecGrowth::new(SEQUENCE_SIZE, 4);
    let mut decoded = 0u64;
    loop {
        let h = r.take(3)?;
        let (b0, b1, b2) = (*h.first()?, *h.get(1)?, *h.get(2)?);
        let last = b0 & 1 != 0;
        let size = u64::from(b0 >> 3) | u64::from(b1) << 5 | u64::from(b2) << 13;
        if size > block_max {
            return None;
        }
        let produced = match (b0 >> 1) & 3 {
            0 => {
                r.take(usize::try_from(size).ok()?)?;
                size
            }
            1 => {
                r.byte()?;
                size
            }
            2 => {
                let body = r.take(usize::try_from(size).ok()?)?;
                let (regenerated, count) = compressed_block(body, block_max)?;
                content.need(size)?;
                literals.need(regenerated)?;
                sequences.need(count)?;
                // Only an upper bound is known before decoding.
                block_max
            }
            _ => return None,
        };
        ring.hold(decoded.min(window).checked_add(produced)?)?;
        decoded = decoded.checked_add(produced)?;
        if last {
            break;
        }
    }
    if has_checksum {
        r.take(4)?;
    }
    if !r.0.is_empty() {
        return None;
    }
    ZSTD_TABLES
        .checked_add(ring.peak)?
        .checked_add(content.peak)?
        .checked_add(literals.peak)?
        .checked_add(sequences.peak)
}

/// Checks the literals and sequences headers of a compressed block's
/// content; returns (literal bytes, sequence count).
fn compressed_block(body: &[u8], block_max: u64) -> Option<(u64, u64)> {
    let mut r = Bytes(body);
    let b0 = r.byte()?;
    let kind = b0 & 3;
    let size_format = (b0 >> 2) & 3;
    let byte = |r: &mut Bytes| r.byte().map(u64::from);
    let (regenerated, section) = if kind < 2 {
        // raw or RLE literals: size only
        let regenerated = match size_format {
            0 | 2 => u64::from(b0 >> 3),
            1 => u64::from(b0 >> 4) | byte(&mut r)? << 4,
            _ => u64::from(b0 >> 4) | byte(&mut r)? << 4 | byte(&mut r)? << 12,
        };
        (regenerated, if kind == 0 { regenerated } else { 1 })
    } else {
        // compressed or treeless literals: regenerated and compressed sizes
        let (bits, extra): (u32, u32) = match size_format {
            0 | 1 => (10, 2),
            2 => (14, 3),
            _ => (18, 4),
        };
        let mut both = u64::from(b0 >> 4);
        for shift in (4..).step_by(8).take(extra as usize) {
            both |= byte(&mut r)? << shift;
        }
        let mask = !(u64::MAX << bits);
        (both & mask, (both >> bits) & mask)
    };
    if regenerated > block_max {
        return None;
    }
    let literals = r.take(usize::try_from(section).ok()?)?;
    if kind == 2 {
        // A Huffman tree description: below 128 its header byte is the
        // size of FSE-compressed weights, which start with a table.
        let (&tree, weights) = literals.split_first()?;
        if tree < 128 && fse_description(weights, 6, 256)? > usize::from(tree) {
            return None;
        }
    }
    let s0 = u64::from(r.byte()?);
    let count = match s0 {
        0..128 => s0,
        128..255 => ((s0 & 0x7f) << 8) | byte(&mut r)?,
        _ => (byte(&mut r)? | byte(&mut r)? << 8).checked_add(0x7f00)?,
    };
    // Every sequence ends in a match of at least 3 bytes, all within the block.
    if count.checked_mul(3)? > block_max {
        return None;
    }
    if count > 0 {
        let modes = r.byte()?;
        if modes & 3 != 0 {
            return None; // reserved bits
        }
        // Literal lengths, offsets, match lengths: (mode shift, largest
        // accuracy log, symbol count).
        for (shift, max_log, symbols) in [(6, 9, 36), (4, 8, 32), (2, 9, 53)] {
            match (modes >> shift) & 3 {
                1 => {
                    r.byte()?; // RLE: one symbol byte
                }
                2 => {
                    let used = fse_description(r.0, max_log, symbols)?;
                    r.take(used)?;
                }
                _ => {} // predefined or repeat: no table in the block
            }
        }
    }
    Some((regenerated, count))
}

/// Walks one FSE table description (RFC 8878 4.1.1) bit by bit as the
/// decoder reads it and returns the bytes it takes. Refuses an accuracy log
/// over `max_log`, probabilities that do not add up, and, at any point, more
/// than `symbols` symbols: the decoder keeps reading such a description
/// into vectors sized for `symbols` and fails only at its end.
fn fse_description(src: &[u8], max_log: u32, symbols: usize) -> Option<usize> {
    let mut bits = ForwardBits { src, pos: 0 };
    let log = bits.get(4)?.checked_add(5)?;
    if log > max_log {
        return None;
    }
    let total = 1u32.checked_shl(log)?;
    let mut counted = 0u32;
    let mut seen = 0usize;
    while counted < total {
        let most = total.checked_sub(counted)?.checked_add(1)?;
        let width = u32::BITS.checked_sub(most.leading_zeros())?;
        let raw = bits.get(width)?;
        let low_threshold = 1u32.checked_shl(width)?.checked_sub(1)?.checked_sub(most)?;
        let mask = 1u32.checked_shl(width.checked_sub(1)?)?.checked_sub(1)?;
        let small = raw & mask;
        let value = if small < low_threshold {
            bits.pos = bits.pos.checked_sub(1)?;
            small
        } else if raw > mask {
            raw.checked_sub(low_threshold)?
        } else {
            raw
        };
        seen = seen.checked_add(1)?;
        match value {
            0 => counted = counted.checked_add(1)?, // probability -1 ("less than 1")
            1 => loop {
                // probability 0: then runs of further zero-probability symbols
                let run = bits.get(2)?;
                seen = seen.checked_add(usize::try_from(run).ok()?)?;
                if seen > symbols {
                    return None;
                }
                if run != 3 {
                    break;
                }
            },
            _ => counted = counted.checked_add(value.checked_sub(1)?)?,
        }
        if seen > symbols {
            return None;
        }
    }
    if counted != total {
        return None;
    }
    Some(bits.pos.div_ceil(8))
}

/// Least-significant-bit-first reader, as FSE table descriptions are read.
struct ForwardBits<'a> {
    src: &'a [u8],
    pos: usize,
}

impl ForwardBits<'_> {
    fn get(&mut self, n: u32) -> Option<u32> {
        let mut value = 0u32;
        for i in 0..n {
            let byte = self.src.get(self.pos / 8)?;
            let bit = (byte >> (self.pos % 8)) & 1;
            value |= u32::from(bit) << i;
            self.pos = self.pos.checked_add(1)?;
        }
        Some(value)
    }
}

/// A little cursor over untrusted bytes.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
}

/// Peak heap of a `Vec` that is cleared and then sized to each `need` in
/// turn, growing like `alloc`'s `RawVec` (at least double, never less than
/// `min` elements), the old allocation held while the new one is filled.
struct VecGrowth {
    elem: u64,
    min: u64,
    cap: u64,
    peak: u64,
}

impl VecGrowth {
    fn new(elem: u64, min: u64) -> Self {
        VecGrowth {
            elem,
            min,
            cap: 0,
            peak: 0,
        }
    }

    fn need(&mut self, n: u64) -> Option<()> {
        if n > self.cap {
            let new = n.max(self.cap.checked_mul(2)?).max(self.min);
            let held = self.cap.checked_add(new)?.checked_mul(self.elem)?;
            self.peak = self.peak.max(held);
            self.cap = new;
        }
        Some(())
    }
}

/// Peak heap of the decoder's ring buffer (one slot kept free; capacity
/// `2^k + 1`, or `2^k + 256 KiB + 1` once past 256 KiB; each growth reaches
/// the next such size at or above the request). The applier has it reserve
/// the frame window first, in one allocation; later growth is assumed to
/// take the smallest steps, which leave the largest old buffer to copy from.
struct Ring {
    cap: u64,
    peak: u64,
}

impl Ring {
    const SLACK: u64 = 2 * MAX_BLOCK;

    /// The buffer after reserving `window` bytes on an empty one.
    fn reserved(window: u64) -> Option<Ring> {
        let cap = if window <= Self::SLACK {
            window.checked_next_power_of_two()?.checked_add(1)?
        } else {
            window
                .checked_sub(Self::SLACK)?
                .checked_next_power_of_two()?
                .checked_add(Self::SLACK)?
                .checked_add(1)?
        };
        Some(Ring { cap, peak: cap })
    }

    fn hold(&mut self, bytes: u64) -> Option<()> {
        let required = bytes.checked_add(1)?;
        while self.cap < required {
            let step = self.cap.checked_add(1)?;
            let new = if step <= Self::SLACK {
                self.cap
                    .checked_next_power_of_two()?
                    .max(step.checked_next_power_of_two()?)
                    .checked_add(1)?
            } else {
                step.checked_sub(Self::SLACK)?
                    .checked_next_power_of_two()?
                    .checked_add(Self::SLACK)?
                    .checked_add(1)?
            };
            self.peak = self.peak.max(self.cap.checked_add(new)?);
            self.cap = new;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests;

//! Branch-target prediction (format version 4): the diff stream stores a
//! branch or address field of the new image as its difference from a
//! prediction instead of from the old field.
//!
//! When code moves, a call's relative displacement changes by the distance
//! its target moved relative to the call, so bsdiff's byte-wise difference
//! of every moved call is a new, unrepeated value. Predicting the new
//! target from where the old target went makes most of those differences
//! zero (docs/format.md, "Branch-target prediction"). The writer and the
//! reader run the same scan over the same old bytes and learn the same
//! displacements from the same new fields, so the prediction needs no
//! bytes in the patch.
//!
//! Each chunk predicts on its own (chunks stay independent): from the
//! chunk's own add regions (an old target the chunk copies maps to where
//! it copies it) and from the displacements of the fields the chunk
//! produced so far, by 1 KiB page of old target.
//!
//! ```
//! use deltaseal_verify::patch::Transform;
//! // x86 `call rel32` at old offset 0 targeting old offset 0x105.
//! let old = [0xE8, 0x00, 0x01, 0x00, 0x00];
//! let f = Transform::X86.next_field(&old, 0, (0, 0x1000), 0).unwrap();
//! assert_eq!((f.at, f.anchor, f.target), (1, 5, 0x105));
//! ```

use alloc::vec::Vec;

use super::PatchError;
use super::apply::{read_svarint, read_varint};

/// How a patch's diff stream encodes branch and address fields (header
/// byte 11). The writer picks one per patch from the new image's headers.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transform {
    /// Plain byte-wise differences (id 0; version 3 patches).
    #[default]
    None,
    /// x86 and x86-64: `call`/`jmp rel32`, `jcc rel32` and RIP-relative
    /// `disp32` operands (id 1).
    X86,
    /// ARM Thumb-2: `BL` and `B.W` (id 2), and with a non-zero image base
    /// (header bytes 108..112) word-aligned pointers into the image.
    Thumb2,
}

/// A field the scan found in the old bytes of an add region. Offsets are
/// relative to the start of the scanned bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// First byte of the 4-byte little-endian field word.
    pub at: usize,
    /// Where the relative displacement counts from.
    pub anchor: usize,
    /// Absolute old-image offset the old field points at (`< old_size`).
    pub target: u64,
    /// An absolute pointer (Thumb-2 with an image base): the word is the
    /// target's address, not a displacement.
    pub absolute: bool,
}

/// Opcodes whose ModRM byte `0x05` under mask `0xC7` means a RIP-relative
/// `disp32` (x86-64): mov, lea, movsxd, cmp, test, add, sub, and, or, xor,
/// and `call`/`jmp`/`push` through memory.
const RIP_OPCODES: [u8; 23] = [
    0x01, 0x03, 0x09, 0x0B, 0x21, 0x23, 0x29, 0x2B, 0x31, 0x33, 0x38, 0x39, 0x3A, 0x3B, 0x63, 0x84,
    0x85, 0x88, 0x89, 0x8A, 0x8B, 0x8D, 0xFF,
];

/// For each first byte, the `(mask, value)` the next byte must give to
/// start an x86 field: any byte after E8 and E9 (`call`/`jmp rel32`), 80..8F
/// after 0F (`jcc rel32`), ModRM & C7 = 05 after [`RIP_OPCODES`]
/// (RIP-relative), and none after anything else (`value` 1 under mask 0).
// Evaluated at compile time: an index out of range fails the build.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const X86_NEXT: [(u8, u8); 256] = {
    let mut t = [(0, 1); 256];
    let mut i = 0;
    while i < RIP_OPCODES.len() {
        t[RIP_OPCODES[i] as usize] = (0xC7, 0x05);
        i += 1;
    }
    t[0xE8] = (0, 0);
    t[0xE9] = (0, 0);
    t[0x0F] = (0xF0, 0x80);
    t
};

/// The positions of `block` (9 bytes: each of 8 positions' byte and the
/// next) that may start an x86 field, as bit 7 of the mask's byte at that
/// position: an E8 or E9, a 0F before 80..8F, or a next byte that is a
/// RIP-relative ModRM (& C7 = 05). A superset of [`X86_NEXT`]'s test, so a
/// clear bit skips no field.
fn x86_block_field_starts(block: &[u8]) -> u64 {
    let (Some(ops), Some(nexts)) = (block.get(..8), block.get(1..9)) else {
        return u64::MAX;
    };
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let (ops, nexts) = (word(ops), word(nexts));
    let every = |b: u8| u64::from_ne_bytes([b; 8]);
    // Bit 7 of each zero byte of `v` (exact: no carries between bytes).
    let zeros = |v: u64| !((v & every(0x7F)).wrapping_add(every(0x7F)) | v) & every(0x80);
    zeros((ops & every(0xFE)) ^ every(0xE8))
        | (zeros(ops ^ every(0x0F)) & zeros((nexts & every(0xF0)) ^ every(0x80)))
        | zeros((nexts & every(0xC7)) ^ every(0x05))
}

/// [`x86_block_field_starts`] of the 32 positions of `block` (33 bytes),
/// as four masks of 8 positions each: the same test, in a form the
/// compiler turns into a few vector compares for all 32 at once.
fn x86_block32_field_starts(block: &[u8; 33]) -> [u64; 4] {
    let (Some(ops), Some(nexts)) = (block.get(..32), block.get(1..)) else {
        return [u64::MAX; 4];
    };
    let mut flags = [0u8; 32];
    for ((flag, &op), &next) in flags.iter_mut().zip(ops).zip(nexts) {
        let start =
            (op & 0xFE == 0xE8) | ((op == 0x0F) & (next & 0xF0 == 0x80)) | (next & 0xC7 == 0x05);
        *flag = u8::from(start) << 7;
    }
    let mut masks = [0u64; 4];
    for (mask, eight) in masks.iter_mut().zip(flags.chunks_exact(8)) {
        *mask = u64::from_le_bytes(eight.try_into().unwrap_or([0x80; 8]));
    }
    masks
}

fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

impl Transform {
    /// Wire id (header byte 11).
    pub fn id(self) -> u8 {
        match self {
            Transform::None => 0,
            Transform::X86 => 1,
            Transform::Thumb2 => 2,
        }
    }

    /// Transform for a wire id, or `None` if this reader does not know it.
    pub fn from_id(id: u8) -> Option<Transform> {
        match id {
            0 => Some(Transform::None),
            1 => Some(Transform::X86),
            2 => Some(Transform::Thumb2),
            _ => None,
        }
    }

    /// The first field whose scan starts at or after `from` in `bytes`, the
    /// old bytes of an add region starting at old offset `pos`; the whole
    /// field lies in `bytes` and points inside `[0, old_size)`. Scanning
    /// resumes after the field, so fields never overlap. A non-zero
    /// `image_base` (Thumb-2 only) also makes 4-byte-aligned words that
    /// hold an address inside the old image, once linked at `image_base`,
    /// fields.
    pub fn next_field(
        self,
        bytes: &[u8],
        from: usize,
        (pos, old_size): (u64, u64),
        image_base: u32,
    ) -> Option<Field> {
        // Every byte of every add region is scanned (twice per chunk on a
        // writer, once on a reader), so a byte that cannot start a field is
        // passed over by one table lookup.
        let field = |q: usize, offsets| self.field_at(bytes, q, offsets, pos, old_size);
        match self {
            Transform::None => None,
            Transform::X86 => {
                // The x86 field that starts at `at`, if any.
                let at_q = |at: usize| {
                    let (&op, &next) = (bytes.get(at)?, bytes.get(at.checked_add(1)?)?);
                    let &(mask, value) = X86_NEXT.get(usize::from(op))?;
                    if next & mask != value {
                        return None;
                    }
                    // (field, anchor) offsets from the opcode.
                    let offsets = if op == 0xE8 || op == 0xE9 {
                        (1, 5)
                    } else {
                        (2, 6)
                    };
                    field(at, offsets)
                };
                // The first field among the eight positions from `base`
                // whose bit 7 `starts` sets.
                let first_marked = |base: usize, mut starts: u64| {
                    while starts != 0 {
                        let at = base.checked_add((starts.trailing_zeros() / 8) as usize)?;
                        starts &= starts.wrapping_sub(1);
                        if let Some(f) = at_q(at) {
                            return Some(f);
                        }
                    }
                    None
                };
                let mut q = from;
                // 32 positions at a time, then eight: one test marks the
                // few positions that may start a field (most blocks of
                // x86 code hold none), and only those are looked at.
                while let Some(block) = bytes.get(q..q.checked_add(33)?) {
                    let masks = block
                        .try_into()
                        .map_or([u64::MAX; 4], x86_block32_field_starts);
                    let mut eight = q;
                    for starts in masks {
                        if let Some(f) = first_marked(eight, starts) {
                            return Some(f);
                        }
                        eight = eight.checked_add(8)?;
                    }
                    q = eight;
                }
                while let Some(block) = bytes.get(q..q.checked_add(9)?) {
                    if let Some(f) = first_marked(q, x86_block_field_starts(block)) {
                        return Some(f);
                    }
                    q = q.checked_add(8)?;
                }
                // Then one by one, up to the last byte (which starts none).
                while q.checked_add(1)? < bytes.len() {
                    if let Some(f) = at_q(q) {
                        return Some(f);
                    }
                    q = q.checked_add(1)?;
                }
                None
            }
            Transform::Thumb2 => {
                // Even image offsets only; the first halfword's high byte
                // (at `q + 1`) is 0xF0..=0xF7, and the second halfword is
                // that of a BL (11x1) or B.W (10x1).
                let odd = pos.checked_add(from as u64)? % 2;
                let start = from.checked_add(odd as usize)?;
                (start..bytes.len()).step_by(2).find_map(|q| {
                    let w = word(bytes, q)?;
                    let second = w >> 16;
                    let branch = w & 0xF800 == 0xF000
                        && (second & 0xD000 == 0xD000 || second & 0xD000 == 0x9000);
                    if branch {
                        return field(q, (0, 4));
                    }
                    // A pointer into the image (a literal pool entry, a
                    // vector, a table of handlers); bit 0 is Thumb state.
                    let aligned = pos.checked_add(q as u64)? % 4 == 0;
                    let target = u64::from(w & !1).checked_sub(u64::from(image_base))?;
                    (image_base != 0 && aligned && target < old_size).then_some(Field {
                        at: q,
                        anchor: q,
                        target,
                        absolute: true,
                    })
                })
            }
        }
    }

    /// The field of the instruction at `bytes[q]` whose word and anchor
    /// are `offsets` bytes after `q`, if the word is in `bytes` and points
    /// inside the old image.
    fn field_at(
        self,
        bytes: &[u8],
        q: usize,
        (at, anchor): (usize, usize),
        pos: u64,
        old_size: u64,
    ) -> Option<Field> {
        let (at, anchor) = (q.checked_add(at)?, q.checked_add(anchor)?);
        let rel = self.displacement(word(bytes, at)?);
        let target = pos.checked_add(anchor as u64)?.checked_add_signed(rel)?;
        (target < old_size).then_some(Field {
            at,
            anchor,
            target,
            absolute: false,
        })
    }

    /// The signed displacement a field word holds.
    pub fn displacement(self, w: u32) -> i64 {
        match self {
            Transform::None | Transform::X86 => i64::from(w as i32),
            Transform::Thumb2 => {
                let (first, second) = (w & 0xFFFF, w >> 16);
                let s = (first >> 10) & 1;
                let i1 = !((second >> 13) ^ s) & 1;
                let i2 = !((second >> 11) ^ s) & 1;
                let v = (s << 24)
                    | (i1 << 23)
                    | (i2 << 22)
                    | ((first & 0x3FF) << 12)
                    | ((second & 0x7FF) << 1);
                // Sign-extend the 25-bit displacement.
                i64::from(((v << 7) as i32) >> 7)
            }
        }
    }

    /// `w` with its displacement replaced by `rel` (modulo the field's width).
    pub fn with_displacement(self, w: u32, rel: u64) -> u32 {
        match self {
            Transform::None | Transform::X86 => rel as u32,
            Transform::Thumb2 => {
                let v = rel as u32;
                let s = (v >> 24) & 1;
                let j1 = !(((v >> 23) & 1) ^ s) & 1;
                let j2 = !(((v >> 22) & 1) ^ s) & 1;
                let first = (w & 0xF800) | (s << 10) | ((v >> 12) & 0x3FF);
                let second = ((w >> 16) & 0xD000) | (j1 << 13) | (j2 << 11) | ((v >> 1) & 0x7FF);
                first | (second << 16)
            }
        }
    }
}

/// One add region of a chunk: old bytes `old .. old + len` become new bytes
/// from `new` (absolute offsets).
#[derive(Clone, Copy, Debug, Default)]
struct Region {
    old: u64,
    len: u64,
    new: u64,
}

/// One slot of the learned displacements: the 1 KiB page of old targets it
/// holds (`EMPTY`: none) and the displacement last seen there.
#[derive(Clone, Copy)]
struct Slot {
    page: u64,
    displacement: u64,
}

const EMPTY: u64 = u64::MAX;
/// Learned displacements are kept per `2^PAGE_SHIFT` bytes of old target.
const PAGE_SHIFT: u32 = 10;

/// Bytes of memory a [`Predictor`] for a chunk with `ctrl_len` control bytes
/// and `out_len` output bytes may hold: 24 per possible triple (a triple
/// takes at least 3 bytes) and 16 per learned-displacement slot.
pub(crate) fn predictor_memory(ctrl_len: u32, out_len: u64) -> Option<u64> {
    (u64::from(ctrl_len) / 3)
        .checked_mul(24)?
        .checked_add(slots(out_len).checked_mul(16)?)
}

/// Learned-displacement slots of a chunk of `out_len` bytes: one per 64
/// output bytes, as a power of two from 64 to 16384.
fn slots(out_len: u64) -> u64 {
    (out_len / 64)
        .clamp(64, 16384)
        .next_power_of_two()
        .min(16384)
}

/// The predictor of one chunk: its add regions by old offset and the
/// displacements learned from the fields it produced so far.
///
/// ```
/// use deltaseal_verify::patch::{Predictor, Transform};
/// // Two calls into the same page, whose code moved 0x40 bytes further
/// // from them: the first teaches the displacement, the second is then
/// // predicted exactly and costs zeros.
/// let old: [u8; 10] = [0xE8, 0x00, 0x01, 0, 0, 0xE8, 0x00, 0x01, 0, 0];
/// let new: [u8; 10] = [0xE8, 0x40, 0x01, 0, 0, 0xE8, 0x40, 0x01, 0, 0];
/// let ctrl = [10, 0, 0]; // one add of 10 bytes from old offset 0
/// let mut p = Predictor::new((Transform::X86, 0), &ctrl, 0, 0, 10)?;
/// let mut diff: Vec<u8> = new.iter().zip(&old).map(|(n, o)| n.wrapping_sub(*o)).collect();
/// p.encode_region(&old, &new, &mut diff, (0, 0x1000, 0));
/// assert_eq!(diff, [0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0]);
/// # Ok::<(), deltaseal_verify::patch::PatchError>(())
/// ```
pub struct Predictor {
    transform: Transform,
    image_base: u32,
    regions: Vec<Region>,
    learned: Vec<Slot>,
}

impl Predictor {
    /// The predictor of a chunk that starts at absolute new offset
    /// `chunk_start`, produces `out_len` bytes and runs `ctrl` from
    /// `old_offset`. A control stream that turns out malformed ends the
    /// regions early; applying it fails anyway.
    pub fn new(
        (transform, image_base): (Transform, u32),
        mut ctrl: &[u8],
        old_offset: u64,
        chunk_start: u64,
        out_len: u64,
    ) -> Result<Predictor, PatchError> {
        let mut regions = Vec::new();
        regions
            .try_reserve_exact(ctrl.len() / 3)
            .map_err(|_| PatchError::OutOfMemory)?;
        let (mut pos, mut o) = (old_offset, chunk_start);
        while let (Some(add), Some(extra), Some(seek)) = (
            read_varint(&mut ctrl),
            read_varint(&mut ctrl),
            read_svarint(&mut ctrl),
        ) {
            if add > 0 && regions.len() < regions.capacity() {
                regions.push(Region {
                    old: pos,
                    len: add,
                    new: o,
                });
            }
            let next = (|| {
                let o = o.checked_add(add)?.checked_add(extra)?;
                Some((pos.checked_add(add)?.checked_add_signed(seek)?, o))
            })();
            match next {
                Some(n) => (pos, o) = n,
                None => break,
            }
        }
        regions.sort_unstable_by_key(|r| (r.old, r.new));
        let n = usize::try_from(slots(out_len)).map_err(|_| PatchError::OutOfMemory)?;
        let mut learned = Vec::new();
        learned
            .try_reserve_exact(n)
            .map_err(|_| PatchError::OutOfMemory)?;
        learned.resize(
            n,
            Slot {
                page: EMPTY,
                displacement: 0,
            },
        );
        Ok(Predictor {
            transform,
            image_base,
            regions,
            learned,
        })
    }

    fn slot(&self, target: u64) -> usize {
        // `learned.len()` is a power of two.
        (target >> PAGE_SHIFT) as usize & self.learned.len().saturating_sub(1)
    }

    /// Predicted new offset of old offset `target`: where the chunk's add
    /// region with the greatest old start at or below `target` copies it,
    /// if that region covers it; else `target` plus the displacement
    /// learned for its page. Absolute pointers use only the learned
    /// displacements: their targets are often data the regions place
    /// wrongly (mcu-cityhub: 5,292 B with the regions, 3,806 B without).
    fn new_target(&self, target: u64, absolute: bool) -> Option<u64> {
        if !absolute {
            let i = self.regions.partition_point(|r| r.old <= target);
            if let Some(r) = i.checked_sub(1).and_then(|i| self.regions.get(i)) {
                // `r.old <= target` by the partition.
                let off = target.saturating_sub(r.old);
                if off < r.len {
                    return r.new.checked_add(off);
                }
            }
        }
        let s = self.learned.get(self.slot(target))?;
        (s.page == target >> PAGE_SHIFT).then(|| target.wrapping_add(s.displacement))
    }

    /// The predicted new word of field `f` whose old word is `old_word`
    /// and whose anchor lands at absolute new offset `new_anchor`.
    pub fn predict(&self, f: &Field, old_word: u32, new_anchor: u64) -> Option<u32> {
        let t = self.new_target(f.target, f.absolute)?;
        if f.absolute {
            let address = t.wrapping_add(u64::from(self.image_base)) as u32;
            return Some((address & !1) | (old_word & 1));
        }
        Some(
            self.transform
                .with_displacement(old_word, t.wrapping_sub(new_anchor)),
        )
    }

    /// Learn from the new word the field became.
    pub fn learn(&mut self, f: &Field, new_word: u32, new_anchor: u64) {
        let t = match f.absolute {
            true => u64::from(new_word & !1).wrapping_sub(u64::from(self.image_base)),
            false => new_anchor.wrapping_add_signed(self.transform.displacement(new_word)),
        };
        let i = self.slot(f.target);
        if let Some(s) = self.learned.get_mut(i) {
            *s = Slot {
                page: f.target >> PAGE_SHIFT,
                displacement: t.wrapping_sub(f.target),
            };
        }
    }
}

/// Byte-wise `a + b` of two little-endian words (the plain add).
fn add_bytes(a: u32, b: u32) -> u32 {
    let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
    let mut out = [0u8; 4];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x.wrapping_add(y);
    }
    u32::from_le_bytes(out)
}

/// Byte-wise `a - b` of two little-endian words (the plain difference).
fn sub_bytes(a: u32, b: u32) -> u32 {
    let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
    let mut out = [0u8; 4];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x.wrapping_sub(y);
    }
    u32::from_le_bytes(out)
}

impl Predictor {
    /// Writer side of one add region: `diff` holds `new - old` byte-wise;
    /// each field's 4 bytes become the new word minus its prediction
    /// (wrapping, little-endian), or stay byte-wise where nothing predicts
    /// it. `pos` is the region's old offset, `new_start` its absolute new
    /// offset; `old`, `new` and `diff` have the region's length.
    pub fn encode_region(
        &mut self,
        old: &[u8],
        new: &[u8],
        diff: &mut [u8],
        (pos, old_size, new_start): (u64, u64, u64),
    ) {
        let mut from = 0;
        while let Some(f) = self
            .transform
            .next_field(old, from, (pos, old_size), self.image_base)
        {
            let (Some(end), Some(o), Some(n)) =
                (f.at.checked_add(4), word(old, f.at), word(new, f.at))
            else {
                return;
            };
            from = end;
            let Some(d) = diff.get_mut(f.at..end) else {
                return;
            };
            let anchor = new_start.wrapping_add(f.anchor as u64);
            let r = match self.predict(&f, o, anchor) {
                Some(p) => n.wrapping_sub(p),
                None => sub_bytes(n, o),
            };
            d.copy_from_slice(&r.to_le_bytes());
            self.learn(&f, n, anchor);
        }
    }

    /// Reader side of one add region: `out` holds the region's old bytes
    /// and becomes its new bytes, the inverse of
    /// [`encode_region`](Self::encode_region). `diff` has `out`'s length.
    pub(crate) fn decode_region(
        &mut self,
        out: &mut [u8],
        diff: &[u8],
        (pos, old_size, new_start): (u64, u64, u64),
    ) {
        let mut done = 0;
        while let Some(f) = self
            .transform
            .next_field(out, done, (pos, old_size), self.image_base)
        {
            let Some(end) = f.at.checked_add(4) else {
                return;
            };
            super::apply::add_diff(out.get_mut(done..f.at), diff.get(done..f.at));
            let (Some(o), Some(r)) = (word(out, f.at), word(diff, f.at)) else {
                return;
            };
            let anchor = new_start.wrapping_add(f.anchor as u64);
            let n = match self.predict(&f, o, anchor) {
                Some(p) => p.wrapping_add(r),
                None => add_bytes(o, r),
            };
            if let Some(w) = out.get_mut(f.at..end) {
                w.copy_from_slice(&n.to_le_bytes());
            }
            self.learn(&f, n, anchor);
            done = end;
        }
        super::apply::add_diff(out.get_mut(done..), diff.get(done..));
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    #[test]
    fn the_block_test_misses_no_x86_field_start() {
        // Every pair that starts a field, at every position of a block of
        // otherwise field-free bytes, marks its position in the block
        // test; the field-free block alone marks none.
        let quiet = [0x90u8; 9];
        assert_eq!(x86_block_field_starts(&quiet), 0);
        for op in 0..=255u8 {
            for next in 0..=255u8 {
                let (mask, value) = X86_NEXT[usize::from(op)];
                if next & mask != value {
                    continue;
                }
                for at in 0..8 {
                    let mut block = quiet;
                    block[at] = op;
                    block[at + 1] = next;
                    assert_ne!(
                        x86_block_field_starts(&block) & (0x80 << (8 * at)),
                        0,
                        "{op:02x} {next:02x} at {at}"
                    );
                }
            }
        }
    }

    /// `len` xorshift bytes, three in four of them from `common` (opcodes
    /// and ModRM bytes that start fields), the rest random.
    fn biased_bytes(seed: u64, len: usize, common: [u8; 6]) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pick = (x >> 61) as usize;
                common
                    .get(pick)
                    .copied()
                    .unwrap_or_else(|| (x >> (8 * (pick - 6))) as u8)
            })
            .collect()
    }

    #[test]
    fn the_32_position_block_test_marks_what_the_8_position_one_marks() {
        let bytes = biased_bytes(
            0x2545_f491_4f6c_dd1d,
            40_000,
            [0xE8, 0xE9, 0x0F, 0x85, 0x05, 0x3D],
        );
        for q in 0..bytes.len() - 33 {
            let wide = x86_block32_field_starts(bytes[q..q + 33].try_into().unwrap());
            for (k, mask) in wide.into_iter().enumerate() {
                let at = q + 8 * k;
                assert_eq!(mask, x86_block_field_starts(&bytes[at..at + 9]), "{q} {k}");
            }
        }
    }

    #[test]
    fn x86_fields_are_found_as_a_byte_by_byte_scan_finds_them() {
        // xorshift bytes biased towards opcodes and RIP ModRM bytes, and
        // the fields a plain scan of every position finds.
        let bytes = biased_bytes(
            0x9e37_79b9_7f4a_7c15,
            20_000,
            [0xE8, 0x0F, 0x8B, 0x05, 0x84, 0x90],
        );
        let t = Transform::X86;
        let plain: Vec<usize> = {
            let (mut found, mut q) = (Vec::new(), 0);
            while q + 1 < bytes.len() {
                let (mask, value) = X86_NEXT[usize::from(bytes[q])];
                let offsets = if bytes[q] == 0xE8 || bytes[q] == 0xE9 {
                    (1, 5)
                } else {
                    (2, 6)
                };
                match (bytes[q + 1] & mask == value)
                    .then(|| t.field_at(&bytes, q, offsets, 0, 1 << 40))
                    .flatten()
                {
                    Some(f) => {
                        found.push(f.at);
                        q = f.at + 4;
                    }
                    None => q += 1,
                }
            }
            found
        };
        let mut scanned = Vec::new();
        let mut from = 0;
        while let Some(f) = t.next_field(&bytes, from, (0, 1 << 40), 0) {
            scanned.push(f.at);
            from = f.at + 4;
        }
        assert!(plain.len() > 500);
        assert_eq!(scanned, plain);
    }

    #[test]
    fn thumb2_pointers_need_an_image_base() {
        // A word-aligned pointer to 0x0800_1235 (Thumb bit set), then a BL.
        let mut b = 0x0800_1235u32.to_le_bytes().to_vec();
        b.extend_from_slice(&0xF800_F000u32.to_le_bytes());
        let t = Transform::Thumb2;
        let bl = t.next_field(&b, 0, (0, 0x2000), 0).unwrap();
        assert_eq!((bl.at, bl.absolute), (4, false));
        let p = t.next_field(&b, 0, (0, 0x2000), 0x0800_0000).unwrap();
        assert_eq!((p.at, p.target, p.absolute), (0, 0x1234, true));
        // Outside the old image, or not word-aligned in the image: none.
        assert_eq!(t.next_field(&b[..4], 0, (0, 0x1234), 0x0800_0000), None);
        assert_eq!(t.next_field(&b[..4], 0, (2, 0x2000), 0x0800_0000), None);
        // Predicted from the learned displacement only, Thumb bit kept.
        let mut pr = Predictor::new((t, 0x0800_0000), &[4, 0, 0], 0, 0, 8).unwrap();
        assert_eq!(pr.predict(&p, 0x0800_1235, 0), None);
        pr.learn(&p, 0x0800_1335, 0);
        let q = Field {
            target: 0x1240,
            ..p
        };
        assert_eq!(pr.predict(&q, 0x0800_1241, 0), Some(0x0800_1341));
    }

    #[test]
    fn thumb2_displacement_round_trips() {
        let bl = 0xF800_F000u32; // BL with displacement 0 (J1 = J2 = 1, S = 0)
        for rel in [0i64, 2, -2, 4096, -4096, (1 << 24) - 2, -(1 << 24)] {
            let w = Transform::Thumb2.with_displacement(bl, rel as u64);
            assert_eq!(Transform::Thumb2.displacement(w), rel, "{rel}");
            assert_eq!(w & 0xD000_F800, bl & 0xD000_F800, "opcode bits kept");
        }
    }

    #[test]
    fn x86_fields_need_a_target_inside_old() {
        // jcc rel32 (0F 85) to -0x10: outside an image starting at 0.
        let b = [0x0F, 0x85, 0xF0, 0xFF, 0xFF, 0xFF];
        assert_eq!(Transform::X86.next_field(&b, 0, (0, 100), 0), None);
        // The same at old offset 0x20: target 0x20 + 6 - 0x10 = 0x16.
        let f = Transform::X86.next_field(&b, 0, (0x20, 100), 0).unwrap();
        assert_eq!((f.at, f.anchor, f.target), (2, 6, 0x16));
        // A field must lie wholly in the bytes.
        assert_eq!(Transform::X86.next_field(&b[..5], 0, (0x20, 100), 0), None);
        // RIP-relative lea (8D 05).
        let lea = [0x8D, 0x05, 0x10, 0, 0, 0];
        let f = Transform::X86.next_field(&lea, 0, (0, 100), 0).unwrap();
        assert_eq!(f.target, 0x16);
    }

    #[test]
    fn prediction_follows_regions_then_learned_pages() {
        // A chunk starting at new offset 984: 16 bytes from old 100, seek
        // +384 (zigzag 768), then 8 bytes from old 500.
        let ctrl = [16, 0, 0x80, 0x06, 8, 0, 0];
        let mut p = Predictor::new((Transform::X86, 0), &ctrl, 100, 984, 24).unwrap();
        let f = |target| Field {
            at: 0,
            anchor: 4,
            target,
            absolute: false,
        };
        assert_eq!(p.new_target(104, false), Some(988));
        assert_eq!(p.new_target(505, false), Some(1005));
        assert_eq!(p.new_target(4000, false), None);
        // A field that pointed at old 4000 now points 0x40 further: learnt
        // for the rest of its page.
        p.learn(&f(4000), 4000 + 0x40 - 2000, 2000);
        assert_eq!(p.new_target(4001, false), Some(4001 + 0x40));
        assert_eq!(
            p.predict(&f(4001), 0, 3000),
            Some((4001 + 0x40 - 3000) as u32)
        );
    }
}

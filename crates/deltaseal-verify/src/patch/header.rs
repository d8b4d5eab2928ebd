//! Header, chunk table and chunk body header: one bounds-checked reader.

use alloc::vec::Vec;

use super::transform::{Transform, predictor_memory};
use super::{Codec, FORMAT_VERSION, Limits, MAGIC, OLDEST_FORMAT_VERSION, PatchError};
use crate::bundle::ImageRef;
use crate::digest::sha256;

/// Length of the fixed header in bytes.
pub const HEADER_LEN: usize = 112;
/// Length of one chunk table entry in bytes.
pub const CHUNK_ENTRY_LEN: usize = 72;
/// Length of the fixed header at the start of every chunk body.
pub const CHUNK_BODY_HEADER_LEN: usize = 44;

/// Decoded patch header and chunk table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchHeader {
    /// Codec of every stream.
    pub codec: Codec,
    /// How the diff streams encode branch fields ([`Transform::None`] in
    /// version 3 patches; written as version 3 when `None`).
    pub transform: Transform,
    /// Version 4 with [`Transform::Thumb2`]: the address the images are
    /// linked at; non-zero makes pointers into the image fields too. 0
    /// otherwise (header bytes 108..112, reserved in version 3):
    /// [`PatchHeader::encode`] writes it for Thumb-2 only.
    pub image_base: u32,
    /// Exact size of the old image.
    pub old_size: u64,
    /// SHA-256 of the old image.
    pub old_digest: [u8; 32],
    /// Exact size of the new image.
    pub new_size: u64,
    /// SHA-256 of the new image.
    pub new_digest: [u8; 32],
    /// Output bytes per chunk (the last chunk may be shorter).
    pub chunk_size: u32,
    /// Bytes of memory the apply needs (max of [`chunk_memory`] over chunks).
    pub decoder_memory: u64,
    /// One entry per chunk, in order.
    pub chunks: Vec<ChunkEntry>,
}

/// One chunk table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkEntry {
    /// Length of the chunk body in the patch.
    pub stored_len: u64,
    /// SHA-256 of the chunk body bytes.
    pub stored_digest: [u8; 32],
    /// SHA-256 of the bytes the chunk produces.
    pub output_digest: [u8; 32],
}

/// The fixed 44-byte header at the start of each chunk body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChunkBodyHeader {
    /// Absolute old offset the control stream starts at.
    pub old_offset: u64,
    /// Decoded length of the control stream.
    pub ctrl_len: u32,
    /// Stored length of the control stream.
    pub ctrl_stored: u32,
    /// Decoded length of the diff stream.
    pub diff_len: u32,
    /// Stored length of the diff stream.
    pub diff_stored: u32,
    /// Decoded length of the extra stream.
    pub extra_len: u32,
    /// Stored length of the extra stream.
    pub extra_stored: u32,
    /// Start of the extra stream's reference in the old image: a zstd extra
    /// frame is decoded with `old[ref_offset..ref_offset + ref_len]` as its
    /// raw-content prefix (RFC 8878 dictionary content), so it can copy
    /// bytes the matcher left as literals from the old image nearby.
    pub ref_offset: u64,
    /// Length of the extra stream's reference (0: none).
    pub ref_len: u32,
}

impl ChunkBodyHeader {
    /// Encode to the 44-byte wire form.
    pub fn encode(&self) -> [u8; CHUNK_BODY_HEADER_LEN] {
        let mut out = [0u8; CHUNK_BODY_HEADER_LEN];
        let mut w = Writer {
            buf: &mut out,
            pos: 0,
        };
        w.put(&self.old_offset.to_le_bytes());
        for v in [
            self.ctrl_len,
            self.ctrl_stored,
            self.diff_len,
            self.diff_stored,
            self.extra_len,
            self.extra_stored,
        ] {
            w.put(&v.to_le_bytes());
        }
        w.put(&self.ref_offset.to_le_bytes());
        w.put(&self.ref_len.to_le_bytes());
        out
    }

    /// Decode from the start of a chunk body.
    pub fn decode(body: &[u8]) -> Option<ChunkBodyHeader> {
        let mut r = Reader::new(body);
        let h = ChunkBodyHeader {
            old_offset: r.u64().ok()?,
            ctrl_len: r.u32().ok()?,
            ctrl_stored: r.u32().ok()?,
            diff_len: r.u32().ok()?,
            diff_stored: r.u32().ok()?,
            extra_len: r.u32().ok()?,
            extra_stored: r.u32().ok()?,
            ref_offset: r.u64().ok()?,
            ref_len: r.u32().ok()?,
        };
        Some(h)
    }

    /// Sum of the three stored stream lengths plus the body header length.
    pub fn body_len(&self) -> Option<u64> {
        u64::from(self.ctrl_stored)
            .checked_add(u64::from(self.diff_stored))?
            .checked_add(u64::from(self.extra_stored))?
            .checked_add(CHUNK_BODY_HEADER_LEN as u64)
    }

    /// Sum of the three decoded stream lengths: the stream buffers a chunk
    /// needs besides its output (part of [`chunk_memory`]).
    ///
    /// ```
    /// use deltaseal_verify::patch::ChunkBodyHeader;
    /// let bh = ChunkBodyHeader {
    ///     old_offset: 0,
    ///     ctrl_len: 3, ctrl_stored: 3,
    ///     diff_len: 4, diff_stored: 2,
    ///     extra_len: u32::MAX, extra_stored: 9,
    ///     ref_offset: 0, ref_len: 0,
    /// };
    /// assert_eq!(bh.decoded_len(), 7 + u64::from(u32::MAX));
    /// ```
    pub fn decoded_len(&self) -> u64 {
        // Three u32 values: the sum cannot overflow a u64.
        u64::from(self.ctrl_len)
            .saturating_add(u64::from(self.diff_len))
            .saturating_add(u64::from(self.extra_len))
    }

    /// The three stored streams of `body` (control, diff, extra), each with
    /// its decoded length; `None` if `body` is shorter than they say.
    pub(crate) fn streams<'a>(&self, body: &'a [u8]) -> Option<[(&'a [u8], u32); 3]> {
        let rest = body.get(CHUNK_BODY_HEADER_LEN..)?;
        let (ctrl, rest) = rest.split_at_checked(usize::try_from(self.ctrl_stored).ok()?)?;
        let (diff, rest) = rest.split_at_checked(usize::try_from(self.diff_stored).ok()?)?;
        let extra = rest.get(..usize::try_from(self.extra_stored).ok()?)?;
        Some([
            (ctrl, self.ctrl_len),
            (diff, self.diff_len),
            (extra, self.extra_len),
        ])
    }
}

/// Memory (bytes) applying one chunk needs, computed from its body (the
/// 44-byte body header and the three stored streams): the output buffer,
/// the three decoded streams and the codec's own need. For zstd that is the
/// largest, over the chunk's compressed streams, of what decoding that frame
/// needs (window, block buffers and entropy tables, read off the frame's
/// headers); for xz the window plus [`super::XZ_DECODER_OVERHEAD`]. See
/// docs/format.md ("Memory") for the formula.
///
/// `None` if the body is malformed or a zstd frame breaks a size limit (the
/// applier refuses such a chunk before decoding it).
///
/// ```
/// use deltaseal_verify::patch::{
///     CHUNK_BODY_HEADER_LEN, ChunkBodyHeader, Codec, Transform, chunk_memory,
/// };
/// // A chunk of 4 output bytes: 3 control bytes and 4 diff bytes, stored raw.
/// let bh = ChunkBodyHeader {
///     old_offset: 0,
///     ctrl_len: 3, ctrl_stored: 3,
///     diff_len: 4, diff_stored: 4,
///     extra_len: 0, extra_stored: 0,
///     ref_offset: 0, ref_len: 0,
/// };
/// let mut body = bh.encode().to_vec();
/// body.extend_from_slice(&[4, 0, 0, 0, 0, 0, 0]);
/// assert_eq!(body.len(), CHUNK_BODY_HEADER_LEN + 7);
/// assert_eq!(chunk_memory(Codec::Zstd, Transform::None, 4, &body), Some(4 + 3 + 4));
/// ```
pub fn chunk_memory(codec: Codec, transform: Transform, out_len: u64, body: &[u8]) -> Option<u64> {
    let bh = ChunkBodyHeader::decode(body)?;
    if bh.body_len() != Some(body.len() as u64) {
        return None;
    }
    body_memory((codec, transform), out_len, &bh, bh.streams(body)?)
}

/// [`chunk_memory`] of a body already split into its header and streams.
pub(crate) fn body_memory(
    (codec, transform): (Codec, Transform),
    out_len: u64,
    bh: &ChunkBodyHeader,
    streams: [(&[u8], u32); 3],
) -> Option<u64> {
    if !reference_allowed(codec, bh, streams[2]) {
        return None;
    }
    let window = zstd_window_limit(bh);
    let codec_need = match codec {
        Codec::None => 0,
        Codec::Zstd => {
            let mut need = 0u64;
            for (i, (src, len)) in streams.into_iter().enumerate() {
                if src.len() as u64 != u64::from(len) {
                    let mut frame = super::zstd_frame::frame_memory(src, u64::from(len), window)?;
                    if i == 2 && bh.ref_len > 0 {
                        frame = frame.checked_add(reference_memory(bh.ref_len)?)?;
                    }
                    need = need.max(frame);
                }
            }
            need
        }
        #[cfg(feature = "xz")]
        Codec::Xz => {
            let plain = window.checked_add(super::XZ_DECODER_OVERHEAD)?;
            match bh.ref_len {
                0 => plain,
                // The reference's copy, and the dictionary it is preset in.
                ref_len => xz_reference_dictionary(ref_len, bh.extra_len)?
                    .checked_add(u64::from(ref_len))?
                    .checked_add(super::XZ_DECODER_OVERHEAD)?
                    .max(plain),
            }
        }
    };
    let predictor = match transform {
        Transform::None => 0,
        _ => predictor_memory(bh.ctrl_len, out_len)?,
    };
    out_len
        .checked_add(bh.decoded_len())?
        .checked_add(codec_need)?
        .checked_add(predictor)
}

/// A reference (`ref_len > 0`) is only for a compressed extra stream (zstd
/// or xz).
pub(crate) fn reference_allowed(codec: Codec, bh: &ChunkBodyHeader, extra: (&[u8], u32)) -> bool {
    bh.ref_len == 0 || (codec != Codec::None && extra.0.len() as u64 != u64::from(extra.1))
}

/// Dictionary size of an xz extra stream compressed against a reference of
/// `ref_len` bytes (docs/format.md, "Extra stream reference"): the next
/// power of two at or above `ref_len + extra_len`, at least 4096, so the
/// preset reference and the whole stream fit; `None` above 2^32 - 1.
///
/// ```
/// use deltaseal_verify::patch::xz_reference_dictionary;
/// assert_eq!(xz_reference_dictionary(59_240, 54_560), Some(128 << 10));
/// assert_eq!(xz_reference_dictionary(0, 10), Some(4096));
/// assert_eq!(xz_reference_dictionary(u32::MAX, 1), None);
/// ```
pub fn xz_reference_dictionary(ref_len: u32, extra_len: u32) -> Option<u64> {
    let dict = u64::from(ref_len)
        .checked_add(u64::from(extra_len))?
        .max(4096)
        .checked_next_power_of_two()?;
    (dict <= u64::from(u32::MAX)).then_some(dict)
}

/// Heap an extra stream's reference adds to its frame's: two copies of the
/// content for the whole decode (the parsed dictionary the decoder keeps,
/// and its decode buffer's copy) and the parsed dictionary's entropy tables
/// and map entry (allowance: the decoder's tables allowance; measured in
/// `tests/decoder_memory.rs`, the peak stays at least 10 KiB under it).
fn reference_memory(ref_len: u32) -> Option<u64> {
    u64::from(ref_len)
        .checked_mul(2)?
        .checked_add(super::zstd_frame::ZSTD_TABLES)
}

/// Largest zstd window accepted for the streams of a chunk: the next power of
/// two at or above the longest decoded stream, at least 1 KiB.
pub(crate) fn zstd_window_limit(body: &ChunkBodyHeader) -> u64 {
    let longest = body.ctrl_len.max(body.diff_len).max(body.extra_len);
    u64::from(longest).max(1024).next_power_of_two()
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], PatchError> {
        let end = self.pos.checked_add(n).ok_or(PatchError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(PatchError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PatchError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, PatchError> {
        Ok(u8::from_le_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, PatchError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, PatchError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, PatchError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, data: &[u8]) {
        // Callers size the buffer exactly; a miss leaves zeros and is caught by tests.
        let end = self.pos.saturating_add(data.len());
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(data);
        }
        self.pos = end;
    }
}

impl PatchHeader {
    /// The old image this patch applies to, as a manifest names it.
    pub fn precursor(&self) -> ImageRef {
        ImageRef {
            size: self.old_size,
            digest: self.old_digest,
        }
    }

    /// The new image this patch makes, as a manifest names it.
    pub fn target(&self) -> ImageRef {
        ImageRef {
            size: self.new_size,
            digest: self.new_digest,
        }
    }

    /// Decode and check the header and chunk table of `patch`.
    ///
    /// Checks, in order: magic, version, codec, reserved fields, chunk size,
    /// sizes against `limits`, declared memory against `limits`, chunk count
    /// against `new_size` and `limits`, table presence, and that the chunk
    /// bodies fill the rest of `patch` exactly.
    pub fn decode(patch: &[u8], limits: &Limits) -> Result<PatchHeader, PatchError> {
        Self::decode_index(patch, patch.len() as u64, limits)
    }

    /// [`PatchHeader::decode`] for a patch that is not all in memory:
    /// `index` starts with the header and chunk table (bytes after them are
    /// ignored) and `patch_len` is the length of the whole patch, which the
    /// chunk bodies must fill exactly. A streaming reader calls this once
    /// the index bytes have arrived and their digest matched the manifest.
    ///
    /// ```
    /// use deltaseal_verify::patch::{Limits, PatchHeader};
    /// # fn demo(patch: &[u8]) -> Result<(), deltaseal_verify::patch::PatchError> {
    /// let whole = PatchHeader::decode(patch, &Limits::default())?;
    /// let index = &patch[..whole.encoded_len()];
    /// let streamed = PatchHeader::decode_index(index, patch.len() as u64, &Limits::default())?;
    /// assert_eq!(whole, streamed);
    /// # Ok(()) }
    /// ```
    pub fn decode_index(
        index: &[u8],
        patch_len: u64,
        limits: &Limits,
    ) -> Result<PatchHeader, PatchError> {
        let mut r = Reader::new(index);
        match r.array::<8>().map_err(|_| PatchError::BadMagic)? {
            MAGIC => {}
            super::RECOMPRESSING_MAGIC => return Err(PatchError::Recompressing),
            _ => return Err(PatchError::BadMagic),
        }
        let version = r.u16()?;
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(PatchError::UnsupportedVersion { found: version });
        }
        let codec_id = r.u8()?;
        let codec = Codec::from_id(codec_id).ok_or(PatchError::UnknownCodec { id: codec_id })?;
        // Version 3's `flags` byte, which must be zero there.
        let transform_id = r.u8()?;
        // Version 4 always names a transform: a patch without one is
        // version 3, so every header has one byte form (what decodes
        // re-encodes to the same bytes; the `patch_header` fuzz target).
        let (transform, flags) = match version {
            OLDEST_FORMAT_VERSION => (Transform::None, transform_id),
            _ => match Transform::from_id(transform_id) {
                Some(Transform::None) | None => {
                    return Err(PatchError::UnknownTransform { id: transform_id });
                }
                Some(t) => (t, 0),
            },
        };
        let chunk_size = r.u32()?;
        let old_size = r.u64()?;
        let old_digest = r.array::<32>()?;
        let new_size = r.u64()?;
        let new_digest = r.array::<32>()?;
        let decoder_memory = r.u64()?;
        let count = r.u32()?;
        let reserved = r.u32()?;
        // Version 4 keeps Thumb-2's image base in the reserved word.
        let image_base = match (version, transform) {
            (FORMAT_VERSION, Transform::Thumb2) => reserved,
            _ if reserved != 0 => return Err(PatchError::ReservedNotZero),
            _ => 0,
        };
        if flags != 0 {
            return Err(PatchError::ReservedNotZero);
        }
        if chunk_size == 0 || chunk_size > limits.max_chunk_size {
            return Err(PatchError::BadChunkSize { chunk_size });
        }
        if new_size > limits.max_new_size || old_size > limits.max_old_size {
            return Err(PatchError::OutputTooLarge);
        }
        if decoder_memory > limits.max_decoder_memory {
            return Err(PatchError::DecoderMemoryOverLimit {
                declared: decoder_memory,
                limit: limits.max_decoder_memory,
            });
        }
        let expected = new_size.div_ceil(u64::from(chunk_size));
        if u64::from(count) != expected {
            return Err(PatchError::ChunkCountMismatch {
                found: count,
                expected,
            });
        }
        if count > limits.max_chunks {
            return Err(PatchError::TooManyChunks {
                count,
                limit: limits.max_chunks,
            });
        }
        let n = usize::try_from(count).map_err(|_| PatchError::Truncated)?;
        let table_len = n
            .checked_mul(CHUNK_ENTRY_LEN)
            .ok_or(PatchError::Truncated)?;
        // Make sure the table is really there before allocating for it.
        let table = r.bytes(table_len)?;
        let mut chunks = Vec::new();
        chunks
            .try_reserve_exact(n)
            .map_err(|_| PatchError::OutOfMemory)?;
        let mut tr = Reader::new(table);
        let mut body_total: u64 = 0;
        for _ in 0..n {
            let e = ChunkEntry {
                stored_len: tr.u64()?,
                stored_digest: tr.array::<32>()?,
                output_digest: tr.array::<32>()?,
            };
            body_total = body_total
                .checked_add(e.stored_len)
                .ok_or(PatchError::BodyLengthMismatch)?;
            chunks.push(e);
        }
        let rest = patch_len
            .checked_sub(r.pos as u64)
            .ok_or(PatchError::Truncated)?;
        if rest != body_total {
            return Err(PatchError::BodyLengthMismatch);
        }
        Ok(PatchHeader {
            codec,
            transform,
            image_base,
            old_size,
            old_digest,
            new_size,
            new_digest,
            chunk_size,
            decoder_memory,
            chunks,
        })
    }

    /// Bytes of header + chunk table.
    pub fn encoded_len(&self) -> usize {
        self.chunks
            .len()
            .saturating_mul(CHUNK_ENTRY_LEN)
            .saturating_add(HEADER_LEN)
    }

    /// Encode header + chunk table (chunk bodies follow in the patch).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = alloc::vec![0u8; self.encoded_len()];
        let mut w = Writer {
            buf: &mut out,
            pos: 0,
        };
        w.put(&MAGIC);
        let version = match self.transform {
            Transform::None => OLDEST_FORMAT_VERSION,
            _ => FORMAT_VERSION,
        };
        w.put(&version.to_le_bytes());
        w.put(&[self.codec.id(), self.transform.id()]);
        w.put(&self.chunk_size.to_le_bytes());
        w.put(&self.old_size.to_le_bytes());
        w.put(&self.old_digest);
        w.put(&self.new_size.to_le_bytes());
        w.put(&self.new_digest);
        w.put(&self.decoder_memory.to_le_bytes());
        let count = u32::try_from(self.chunks.len()).unwrap_or(u32::MAX);
        w.put(&count.to_le_bytes());
        // Reserved (zero) unless Thumb-2 reads it, so every encoded header
        // decodes.
        let image_base = match self.transform {
            Transform::Thumb2 => self.image_base,
            _ => 0,
        };
        w.put(&image_base.to_le_bytes());
        for c in &self.chunks {
            w.put(&c.stored_len.to_le_bytes());
            w.put(&c.stored_digest);
            w.put(&c.output_digest);
        }
        out
    }

    /// Byte range of chunk `index`'s body within the patch, or `None` if out
    /// of range or overflowing.
    pub fn chunk_body_range(&self, index: u32) -> Option<core::ops::Range<usize>> {
        let i = usize::try_from(index).ok()?;
        let mut start = self.encoded_len();
        for c in self.chunks.get(..i)? {
            start = start.checked_add(usize::try_from(c.stored_len).ok()?)?;
        }
        let len = usize::try_from(self.chunks.get(i)?.stored_len).ok()?;
        Some(start..start.checked_add(len)?)
    }

    /// Output length of chunk `index` (the last one may be short), or `None`
    /// if out of range.
    pub fn chunk_output_len(&self, index: u32) -> Option<u64> {
        let cs = u64::from(self.chunk_size);
        let start = u64::from(index).checked_mul(cs)?;
        if start >= self.new_size {
            return None;
        }
        Some(self.new_size.checked_sub(start)?.min(cs))
    }
}

/// Length of the header + chunk table announced by the first
/// [`HEADER_LEN`] bytes of a patch, reading only the `chunk_count` field and
/// refusing counts over `limits.max_chunks` (so the index can be buffered in
/// bounded memory and its digest checked before the rest of the header is
/// parsed). `None` until `header` holds at least [`HEADER_LEN`] bytes.
pub(crate) fn index_len(header: &[u8], limits: &Limits) -> Option<Result<usize, PatchError>> {
    let count = header.get(104..108)?;
    let mut b = [0u8; 4];
    b.copy_from_slice(count);
    let count = u32::from_le_bytes(b);
    if count > limits.max_chunks {
        return Some(Err(PatchError::TooManyChunks {
            count,
            limit: limits.max_chunks,
        }));
    }
    Some(
        usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(CHUNK_ENTRY_LEN))
            .and_then(|t| t.checked_add(HEADER_LEN))
            .ok_or(PatchError::Truncated),
    )
}

/// SHA-256 over the header + chunk table bytes of `patch`, after checking
/// them with [`PatchHeader::decode`].
///
/// Because the table holds each chunk's stored digest, this one digest
/// (carried in the signed manifest) authenticates every chunk, so a device can
/// stream: check the index, then check each chunk's digest before parsing that
/// chunk.
pub fn index_digest(patch: &[u8], limits: &Limits) -> Result<[u8; 32], PatchError> {
    let h = PatchHeader::decode(patch, limits)?;
    let idx = patch.get(..h.encoded_len()).ok_or(PatchError::Truncated)?;
    Ok(sha256(idx))
}
